//! The threads that run the offline rules.
//!
//! Offline processing is pure CPU work: running more conversations at once than there are cores
//! adds no throughput, only memory. And what it keeps between conversations is per thread: every
//! regex holds one match cache (lazy DFA transitions, up to megabytes for the long patterns) for
//! each thread that has run it, and the allocator a cache per thread. On the blocking pool, idle
//! threads exit after ten seconds and new ones start under the next load, each growing a fresh
//! set of caches while the departed threads' sets stay behind in the regexes, never used again.
//! A fixed set of long-lived threads, one per core, keeps exactly one set per core: the compiled
//! rules are shared, and so are the caches, conversation after conversation.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, LazyLock, Once, OnceLock};

use parking_lot::Mutex;
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// Started on first use: a process that never processes a conversation never starts them.
static QUEUE: LazyLock<Sender<Job>> =
    LazyLock::new(|| start(std::thread::available_parallelism().map_or(2, |n| n.get())));

fn start(threads: usize) -> Sender<Job> {
    let (sender, receiver) = channel::<Job>();
    let receiver = Arc::new(Mutex::new(receiver));
    for index in 0..threads {
        let receiver = Arc::clone(&receiver);
        std::thread::Builder::new()
            .name(format!("omi-processing-{index}"))
            .spawn(move || work(&receiver))
            .expect("starting a processing thread");
    }
    sender
}

fn work(receiver: &Mutex<Receiver<Job>>) {
    // The lock is held only while waiting: one idle thread takes the next job, the others wait
    // their turn to.
    while let Ok(job) = { receiver.lock().recv() } {
        job();
        if let Some(hook) = AFTER_FIRST_JOB.get() {
            FIRST_JOB_DONE.call_once(*hook);
        }
    }
}

static AFTER_FIRST_JOB: OnceLock<fn()> = OnceLock::new();
static FIRST_JOB_DONE: Once = Once::new();

/// Sets what runs once, on a processing thread, after the first conversation is processed. The
/// rules compile on first use (their regexes are built lazily and then shared); compiling runs
/// the regex parser and compiler and reads the Unicode tables, code and data that matching never
/// touches again, so the binary drops them from memory there as it does after starting up.
pub fn after_first_conversation(hook: fn()) {
    let _ = AFTER_FIRST_JOB.set(hook);
}

/// Runs `rules` on a processing thread; conversations beyond one per core wait their turn. A
/// caller that stops waiting (a closed connection) before its turn comes costs nothing; a panic
/// in the rules is raised again in the caller's task and leaves the thread serving.
pub(crate) async fn run<T: Send + 'static>(rules: impl FnOnce() -> T + Send + 'static) -> T {
    let (reply, answer) = oneshot::channel();
    let job: Job = Box::new(move || {
        if !reply.is_closed() {
            let _ = reply.send(catch_unwind(AssertUnwindSafe(rules)));
        }
    });
    QUEUE
        .send(job)
        .expect("the processing threads run as long as the process");
    match answer
        .await
        .expect("a processing thread answers every job it takes")
    {
        Ok(value) => value,
        Err(panic) => resume_unwind(panic),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_the_work_off_the_caller_thread() {
        let caller = std::thread::current().id();
        let (result, thread) = run(move || (6 * 7, std::thread::current().id())).await;
        assert_eq!(result, 42);
        assert_ne!(thread, caller);
    }

    #[tokio::test]
    async fn a_panic_reaches_the_caller_and_the_threads_keep_serving() {
        let panicked = tokio::spawn(run(|| -> u32 { panic!("broken rule") })).await;
        assert!(panicked.unwrap_err().is_panic());
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        for _ in 0..threads * 2 {
            assert_eq!(run(|| 1).await, 1);
        }
    }

    #[tokio::test]
    async fn the_hook_runs_once_after_the_first_job() {
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        fn count() {
            CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        after_first_conversation(count);
        for _ in 0..5 {
            run(|| ()).await;
        }
        // The hook runs after the job has answered: wait for it rather than race it.
        for _ in 0..100 {
            if CALLS.load(std::sync::atomic::Ordering::SeqCst) > 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        run(|| ()).await;
        assert_eq!(CALLS.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn the_same_few_threads_serve_every_conversation() {
        let mut names = std::collections::HashSet::new();
        for _ in 0..50 {
            names.insert(run(|| std::thread::current().name().map(str::to_owned)).await);
        }
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        assert!(names.len() <= threads, "{names:?}");
        assert!(names.iter().all(|n| {
            n.as_deref()
                .is_some_and(|n| n.starts_with("omi-processing-"))
        }));
    }
}
