//! Black-box API tests: real HTTP against the server bound to 127.0.0.1:0.

mod cli;
mod common;
mod conversations;
mod errors;
mod folders;
mod keys;
mod service;
