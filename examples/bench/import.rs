//! `--import`: `omi-server import omi` from a local release server, as the import issue's
//! benchmark asks: a whole history (memories, and conversations with transcripts whose action
//! items come along) imported from a source with rate limits off, timed, with the importer's
//! peak RSS; then a paced run against a source limited to 100 requests a minute, counting the
//! requests per second the importer held and the 429s it met.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use serde_json::json;

use crate::report::peak_rss_kb;
use crate::seed::{self, conversation_text};
use crate::server_process::{ServerProcess, create_user, database_in, sqlite_url};

/// The history of the full run and of `--quick`.
const FULL: (u64, u64) = (100_000, 10_000);
const QUICK: (u64, u64) = (10_000, 1_000);
/// Memories of the paced run: about 130 pages of 100, so the run crosses two rate-limit minutes.
const PACED_MEMORIES: u64 = 13_000;
const PACED_LIMIT_PER_MINUTE: &str = "100";
/// The targets of the issue.
const TARGET_SECONDS: f64 = 180.0;
const TARGET_RSS_MB: f64 = 100.0;
/// Words per seeded conversation, spoken in turns of a few sentences.
const CONVERSATION_WORDS: usize = 300;

const UNLIMITED: [(&str, &str); 2] = [
    ("OMI_RATE_LIMIT_PER_MINUTE", "0"),
    ("OMI_RATE_LIMIT_PER_DAY", "0"),
];

/// A conversation body with a transcript of turns between the user and two others.
fn segments_bodies() -> crate::load::BodyFn {
    Arc::new(move |n| {
        let text = conversation_text(CONVERSATION_WORDS, &format!("history {n}"));
        let segments: Vec<_> = text
            .split_inclusive(". ")
            .enumerate()
            .map(|(i, sentence)| {
                let speaker = i % 3;
                json!({"text": sentence.trim(), "speaker": format!("SPEAKER_0{speaker}"),
                       "speaker_id": speaker, "is_user": speaker == 0,
                       "start": i as f64 * 4.0, "end": i as f64 * 4.0 + 3.5})
            })
            .collect();
        let body = json!({"transcript_segments": segments, "language": "en"});
        Bytes::from(serde_json::to_vec(&body).expect("JSON serializes"))
    })
}

/// What one importer run did.
struct Run {
    seconds: f64,
    peak_rss_mb: f64,
    report: String,
}

impl Run {
    /// `(requests, rate-limited waits)` from the report's first line.
    fn requests_and_waits(&self) -> (u64, u64) {
        let numbers: Vec<u64> = self
            .report
            .lines()
            .next()
            .and_then(|line| line.rsplit_once('('))
            .map(|(_, tail)| {
                tail.split(|c: char| !c.is_ascii_digit())
                    .filter_map(|n| n.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        (
            numbers.first().copied().unwrap_or(0),
            numbers.get(1).copied().unwrap_or(0),
        )
    }
}

/// Runs the importer into a fresh SQLite target, polling its peak RSS until it exits.
fn import(
    binary: &Path,
    folder: &Path,
    source: &str,
    key: &str,
    user: &str,
    extra: &[&str],
) -> anyhow::Result<Run> {
    let target = folder.join(format!("target-{user}"));
    std::fs::create_dir_all(&target)?;
    let target_url = sqlite_url(&database_in(&target));
    create_user(binary, &target_url, user)?;
    let started = Instant::now();
    let mut child = Command::new(binary)
        .args(["import", "omi", "--from", source, "--user", user])
        .args(extra)
        .env("OMI_DATABASE_URL", &target_url)
        .env("OMI_IMPORT_KEY", key)
        .env("OMI_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the importer")?;
    let mut peak_kb = 0;
    let output = loop {
        if let Some(kb) = peak_rss_kb(child.id()) {
            peak_kb = peak_kb.max(kb);
        }
        if child.try_wait()?.is_some() {
            break child.wait_with_output()?;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let seconds = started.elapsed().as_secs_f64();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    ensure!(output.status.success(), "the import failed:\n{report}");
    Ok(Run {
        seconds,
        peak_rss_mb: peak_kb as f64 / 1024.0,
        report,
    })
}

pub async fn run(binary: &Path, quick: bool) -> anyhow::Result<()> {
    let (memories, conversations) = if quick { QUICK } else { FULL };
    let folder = tempfile::tempdir()?;
    let source_dir = folder.path().join("source");
    std::fs::create_dir_all(&source_dir)?;
    let source_db = database_in(&source_dir);
    let source_url = sqlite_url(&source_db);
    let history = create_user(binary, &source_url, "history")?;
    let paced = create_user(binary, &source_url, "paced")?;

    println!(
        "Seeding the source: {memories} memories and {conversations} conversations with \
         transcripts for 'history', {PACED_MEMORIES} memories for 'paced'"
    );
    let seeding = Instant::now();
    seed::memories_into_sqlite(&source_db, &history.id, memories)?;
    seed::memories_into_sqlite(&source_db, &paced.id, PACED_MEMORIES)?;
    let source = ServerProcess::start(binary, &source_url, &UNLIMITED)?;
    if let Err(error) = seed::through_api(
        source.address,
        &history.key,
        "/v1/dev/user/conversations/from-segments",
        conversations,
        segments_bodies(),
    )
    .await
    {
        bail!("{error:#}\nsource log:\n{}", source.recent_log());
    }
    println!("  seeded in {:.0} s", seeding.elapsed().as_secs_f64());

    println!("Importing the whole history (source without rate limits)...");
    let whole = import(
        binary,
        folder.path(),
        &source.base_url(),
        &history.key,
        "history",
        &[],
    )?;
    print!("{}", whole.report);
    drop(source);

    println!(
        "Importing {PACED_MEMORIES} memories from a source limited to {PACED_LIMIT_PER_MINUTE} requests a minute..."
    );
    let limited = ServerProcess::start(
        binary,
        &source_url,
        &[
            ("OMI_RATE_LIMIT_PER_MINUTE", PACED_LIMIT_PER_MINUTE),
            ("OMI_RATE_LIMIT_PER_DAY", "0"),
        ],
    )?;
    let paced_run = import(
        binary,
        folder.path(),
        &limited.base_url(),
        &paced.key,
        "paced",
        &["--only", "memories"],
    )?;
    print!("{}", paced_run.report);
    let (requests, waits) = paced_run.requests_and_waits();

    let objects = memories + conversations;
    println!("\n{:<52} {:>12} {:>12}", "", "measured", "target");
    println!(
        "{:<52} {:>10.0} s {:>10.0} s  {}",
        format!("whole history ({memories} memories, {conversations} conversations)"),
        whole.seconds,
        TARGET_SECONDS,
        verdict(whole.seconds <= TARGET_SECONDS || quick)
    );
    println!(
        "{:<52} {:>10.0} /s",
        "objects imported per second",
        objects as f64 / whole.seconds
    );
    println!(
        "{:<52} {:>9.1} MB {:>9.0} MB  {}",
        "importer peak RSS (VmHWM)",
        whole.peak_rss_mb,
        TARGET_RSS_MB,
        verdict(whole.peak_rss_mb <= TARGET_RSS_MB)
    );
    println!(
        "{:<52} {:>10.2} /s {:>9.2} /s",
        format!("paced: requests per second ({requests} requests)"),
        requests as f64 / paced_run.seconds,
        100.0 / 60.0
    );
    println!(
        "{:<52} {:>12} {:>12}  {}",
        "paced: 429s met (rate-limited waits)",
        waits,
        "<= 1",
        verdict(waits <= 1)
    );
    if quick {
        println!(
            "\n--quick imports a tenth of the history: the time target applies to the full run."
        );
    }
    Ok(())
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}
