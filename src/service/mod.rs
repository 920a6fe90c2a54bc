//! Use cases shared by the HTTP routes, the MCP tools and the command line: they read and
//! write through the store and build their results with the pure rules of `processing`.

pub mod daily_summaries;
pub mod people;
