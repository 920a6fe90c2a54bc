//! Use cases shared by the HTTP routes, MCP and the command line: creating and reprocessing
//! conversations, managing developer keys, recording key usage. Each returns its own error
//! enum, with the store's error kept as the cause, and leaves the wording to its caller: the
//! routes turn it into the contract's `detail`, the command line prints the cause.

pub mod ask;
pub mod conversations;
pub mod daily_summaries;
pub mod embedding;
pub mod export;
pub mod import;
pub mod ingest;
pub mod keys;
pub mod oauth;
pub mod people;
pub mod pruning;
pub mod search;
pub mod tombstones;
pub mod usage;
pub mod webhooks;
