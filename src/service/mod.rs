//! Use cases shared by HTTP, MCP and the command line, above the store and the engines.

pub mod ask;
