//! Black-box API tests: real HTTP against the server bound to 127.0.0.1:0.

mod action_items;
mod backup;
mod cli;
mod common;
mod console;
mod console_browser;
mod conversations;
mod errors;
mod export;
mod folders;
mod goals;
mod hybrid;
mod idempotency;
mod ingest;
mod insights;
mod keys;
mod llm;
mod memories;
mod metrics;
mod oauth;
mod outage;
mod rate_limits;
mod search;
mod service;
mod sync;
mod webhooks;
mod webhooks_rules;

#[path = "../support/webhook_receiver.rs"]
mod webhook_receiver;

#[path = "../support/fake_llm.rs"]
mod fake_llm;

#[path = "../support/fake_embeddings.rs"]
mod fake_embeddings;

/// How `llm` reaches its fake model here (tests/llm_https.rs runs it again over HTTPS).
pub const LLM_TRANSPORT: fake_llm::Transport = fake_llm::Transport::Http;
#[path = "../support/tcp_proxy.rs"]
mod tcp_proxy;
