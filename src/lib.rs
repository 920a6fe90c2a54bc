//! omi-server: a self-hostable implementation of the Omi Developer API.
//!
//! Data flows one way: route -> (authentication, rate limit) -> domain constructor ->
//! store / processor -> response type. See the module docs for what each part owns.
#![forbid(unsafe_code)]

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod conversations;
pub mod domain;
pub mod error;
pub mod extract;
pub mod mcp;
pub mod metrics;
pub mod openapi;
pub mod processing;
pub mod ratelimit;
pub mod routes;
pub mod search;
pub mod service;
pub mod store;
pub mod telemetry;
