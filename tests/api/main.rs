//! Black-box API tests: real HTTP against the server bound to 127.0.0.1:0.

mod cli;
mod common;
mod errors;
mod keys;
mod memories;
mod service;
