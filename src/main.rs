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
    sqlite_allocates_through_jemalloc();
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

/// SQLite's page caches, statements and full-text buffers come and go with the load; through the
/// C library's `malloc` their freed memory stays in its arenas (it only gives back the top of a
/// heap), so the server's resident size kept the high-water mark of the busiest moment.
/// Through jemalloc it is returned within `dirty_decay_ms` like the rest. Runs before SQLite is
/// initialised (the first connection), which is when SQLite reads this setting.
fn sqlite_allocates_through_jemalloc() {
    use std::ffi::{c_int, c_void};

    use rusqlite::ffi;
    use tikv_jemalloc_sys as jemalloc;

    // SAFETY (all five): SQLite passes sizes it validated as positive and pointers that these
    // functions returned; jemalloc's allocations are 16-byte aligned, beyond SQLite's 8.
    unsafe extern "C" fn allocate(size: c_int) -> *mut c_void {
        unsafe { jemalloc::malloc(size as usize) }
    }
    unsafe extern "C" fn release(pointer: *mut c_void) {
        unsafe { jemalloc::free(pointer) }
    }
    unsafe extern "C" fn reallocate(pointer: *mut c_void, size: c_int) -> *mut c_void {
        unsafe { jemalloc::realloc(pointer, size as usize) }
    }
    unsafe extern "C" fn size_of(pointer: *mut c_void) -> c_int {
        unsafe { jemalloc::malloc_usable_size(pointer) as c_int }
    }
    unsafe extern "C" fn round_up(size: c_int) -> c_int {
        // SAFETY: `nallocx` only computes a size class.
        (unsafe { jemalloc::nallocx(size as usize, 0) }) as c_int
    }
    unsafe extern "C" fn init(_: *mut c_void) -> c_int {
        ffi::SQLITE_OK
    }
    unsafe extern "C" fn shutdown(_: *mut c_void) {}

    let methods = ffi::sqlite3_mem_methods {
        xMalloc: Some(allocate),
        xFree: Some(release),
        xRealloc: Some(reallocate),
        xSize: Some(size_of),
        xRoundup: Some(round_up),
        xInit: Some(init),
        xShutdown: Some(shutdown),
        pAppData: std::ptr::null_mut(),
    };
    // SAFETY: nothing has opened a connection yet (SQLite is not initialised), and SQLite copies
    // the methods before this returns. A refusal leaves SQLite on the C library's allocator.
    let status = unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_MALLOC, &methods) };
    debug_assert_eq!(status, ffi::SQLITE_OK);
}

/// Unmaps the executable's read-only pages from the process, to be mapped again from the page
/// cache as they are next used. Starting up (argument parsing, migrations, building every route
/// and the API document) runs code that serving never runs again, and the kernel maps code in
/// blocks around each page touched: left alone, about 13 MB of the 20 MB of code stayed resident
/// from the first second, while serving keeps a fraction of it busy (docs/BENCHMARKS.md,
/// "Memory"). Compiling the processing rules on the first conversation is the same kind of work,
/// so it runs again after that. Only clean mappings of the file are dropped; the relocated
/// (written) ones stay.
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
