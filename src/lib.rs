//! omi-server: a self-hostable implementation of the Omi Developer API.
//!
//! Data flows one way: route -> (authentication, rate limit) -> service -> domain constructor ->
//! store / processor -> response type. Modules sit on floors and import only from their own
//! floor or below (docs/ARCHITECTURE.md; `tests/layers.rs` checks it).
// `unsafe` is denied everywhere but in `store::sqlite::rank`, which calls FTS5's C interface.
#![deny(unsafe_code)]

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod console;
pub mod domain;
pub mod egress;
pub mod error;
pub mod extract;
pub mod mcp;
pub mod metrics;
pub mod openapi;
pub mod outbound;
pub mod processing;
pub mod ratelimit;
pub mod routes;
pub mod search;
pub mod service;
pub mod state;
pub mod store;
pub mod telemetry;
