//! Black-box API tests: real HTTP against the server bound to 127.0.0.1:0.

mod action_items;
mod cli;
mod common;
mod conversations;
mod errors;
mod folders;
mod goals;
mod keys;
mod llm;
mod memories;
mod metrics;
mod outage;
mod rate_limits;
mod search;
mod service;

#[path = "../support/fake_llm.rs"]
mod fake_llm;
#[path = "../support/tcp_proxy.rs"]
mod tcp_proxy;
