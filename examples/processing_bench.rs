//! Times the offline processor on a ~100,000-character text (median of several runs) and
//! processes 1,000 conversations in a row, printing resident memory before and after.
//!
//! Run with `cargo run --release --example processing_bench`.

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use omi_server::processing::{
    ConversationInput, OfflineProcessor, ProcessingContext, TextSource, finalize,
};

const RUNS: usize = 9;
const CONVERSATIONS: usize = 1_000;

/// Sentences of a realistic meeting, cycled with a counter so that no two are identical.
const SENTENCES: &[&str] = &[
    "We reviewed the quarterly budget and the marketing spend is over by ten percent.",
    "I need to send the revised forecast to finance by Friday.",
    "Priya said the migration to the new database is almost finished.",
    "Can you book the conference room for the planning meeting on Monday at 10am?",
    "The customer onboarding flow still needs copy from the design team.",
    "Yeah, okay, that makes sense.",
    "My doctor says I should take more breaks during long meetings.",
    "Remind me to renew the software licenses next week.",
    "The release is blocked until QA signs off on the payment changes.",
    "I'm allergic to peanuts, so please order something else for lunch.",
];

fn long_text(target_chars: usize) -> String {
    let mut text = String::with_capacity(target_chars + 200);
    let mut i = 0;
    while text.len() < target_chars {
        text.push_str(SENTENCES[i % SENTENCES.len()]);
        text.push_str(&format!(" Item {i} was discussed. "));
        i += 1;
    }
    text
}

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let started_at = Utc.with_ymd_and_hms(2025, 6, 10, 15, 0, 0).unwrap();
    let ctx = ProcessingContext { now: started_at };
    let processor = OfflineProcessor;
    let none = std::collections::HashSet::new();

    let text = long_text(100_000);
    let input =
        ConversationInput::from_text(&text, TextSource::AudioTranscript, started_at, "Alex");
    let samples: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            let out = finalize(processor.process_sync(&input, &ctx), &ctx, &none, &none);
            std::hint::black_box(out);
            start.elapsed()
        })
        .collect();
    println!(
        "{} characters: median {:.2} ms over {RUNS} runs (min {:.2} ms, max {:.2} ms)",
        text.len(),
        median(samples.clone()).as_secs_f64() * 1e3,
        samples.iter().min().unwrap().as_secs_f64() * 1e3,
        samples.iter().max().unwrap().as_secs_f64() * 1e3,
    );

    let rss_before = rss_kib();
    let start = Instant::now();
    for i in 0..CONVERSATIONS {
        let sentence_a = SENTENCES[i % SENTENCES.len()];
        let sentence_b = SENTENCES[(i * 7 + 3) % SENTENCES.len()];
        let text = format!("{sentence_a} {sentence_b} Conversation number {i}.");
        let input = ConversationInput::from_text(text, TextSource::OtherText, started_at, "Alex");
        let out = finalize(processor.process_sync(&input, &ctx), &ctx, &none, &none);
        std::hint::black_box(out);
    }
    let elapsed = start.elapsed();
    let rss_after = rss_kib();
    println!(
        "{CONVERSATIONS} conversations in {:.1} ms ({:.1} µs each)",
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_secs_f64() * 1e6 / CONVERSATIONS as f64
    );
    match (rss_before, rss_after) {
        (Some(before), Some(after)) => println!(
            "RSS before {before} KiB, after {after} KiB (change {} KiB)",
            after as i64 - before as i64
        ),
        _ => println!("RSS unavailable (no /proc/self/status)"),
    }
}
