use std::process::ExitCode;

use clap::Parser;

/// jemalloc instead of the system allocator: fewer cycles per request in the allocation-heavy
/// JSON paths, and far less memory held by per-thread arenas (README, "Benchmarks").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Two arenas serve a server that keeps a handful of busy threads; freed pages go back to the
/// system within a second instead of ten. (The crate builds jemalloc with the `_rjem_` symbol
/// prefix, so this is the name jemalloc reads its options from.)
#[unsafe(export_name = "_rjem_malloc_conf")]
static ALLOCATOR_OPTIONS: &[u8] = b"narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

#[tokio::main]
async fn main() -> ExitCode {
    let cli = omi_server::config::Cli::parse();
    omi_server::telemetry::init_logging();
    omi_server::cli::run(cli).await
}
