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

fn main() -> ExitCode {
    limit_c_allocator_arenas();
    run()
}

#[tokio::main]
async fn run() -> ExitCode {
    let cli = omi_server::config::Cli::parse();
    omi_server::cli::on_serving(release_startup_code);
    omi_server::telemetry::init_logging();
    omi_server::outbound::install_crypto_provider();
    omi_server::cli::run(cli).await
}

/// SQLite allocates through the C library's `malloc`, which gives every thread that allocates its
/// own arena (up to eight per core), each holding on to freed memory. Two arenas keep the
/// database's memory from spreading over the writer, checkpoint, worker and blocking threads.
/// Runs before any thread starts.
fn limit_c_allocator_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets an allocator parameter; nothing else runs yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Unmaps the executable's read-only pages from the process, to be mapped again from the page
/// cache as they are next used. Starting up (argument parsing, migrations, building every route
/// and the API document) runs code that serving never runs again, and the kernel maps code in
/// blocks around each page touched: left alone, about 13 MB of the 20 MB of code stayed resident
/// from the first second, while serving keeps a fraction of it busy (docs/BENCHMARKS.md,
/// "Memory"). Only clean mappings of the file are dropped; the relocated (written) ones stay.
fn release_startup_code() {
    #[cfg(target_os = "linux")]
    {
        let (Ok(executable), Ok(smaps)) = (
            std::fs::read_link("/proc/self/exe"),
            std::fs::read_to_string("/proc/self/smaps"),
        ) else {
            return;
        };
        let executable = executable.to_string_lossy();
        for mapping in omi_server::cli::file_backed_clean_mappings(&smaps, &executable) {
            // SAFETY: the range is a private, read-only mapping of the executable without a
            // single copied-on-write page, so dropping it only drops page-table entries: the
            // next access maps the same bytes from the page cache again.
            unsafe {
                libc::madvise(
                    mapping.start as *mut libc::c_void,
                    mapping.end - mapping.start,
                    libc::MADV_DONTNEED,
                );
            }
        }
    }
}
