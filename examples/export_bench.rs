//! Export benchmark: how fast the portable export streams, and the exporting process's peak
//! memory, for one user holding many records (see docs/BENCHMARKS.md).
//!
//! `cargo build --release --bin omi-server && cargo run --release --example export_bench -- --records 1000000`
//!
//! Seeds a fresh SQLite file with bulk SQL (memories, action items, and conversations of three
//! transcript segments each, in the ratio 70:25:5), then measures in the same run:
//! - the baseline: the same rows read with plain SQL in id order (no JSON), in this process;
//! - `omi-server export --format ndjson` (a child process): records/s and its peak RSS;
//! - `GET /v1/dev/user/export` against `omi-server serve`, following the cursor with pages of
//!   100,000 records: records/s and the server's peak RSS.
//!
//! Peak RSS is the kernel's high-water mark (`VmHWM`) of the process, read until it exits (CLI)
//! or after the last page (server).

#[path = "../tests/support/server_process.rs"]
mod server_process;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use server_process::{ServerProcess, create_user, database_in, sqlite_url};

#[derive(Debug, Parser)]
struct Args {
    /// Records of the user (all types together).
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
}

fn release_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let release = exe
        .parent()
        .and_then(Path::parent)
        .context("the example's folder")?;
    let binary = release.join("omi-server");
    if !binary.exists() || !release.ends_with("release") {
        bail!(
            "no release binary at {}: run `cargo build --release --bin omi-server` first",
            binary.display()
        );
    }
    Ok(binary)
}

fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Bulk SQL, the way a long-lived user's data would sit: ids in random order relative to time.
fn seed(database: &Path, user_id: &str, records: u64) -> anyhow::Result<(u64, u64, u64)> {
    let conversations = records / 20;
    let items = records / 4;
    let memories = records - conversations - items;
    let mut c = rusqlite::Connection::open(database)?;
    c.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;")?;
    let t = c.transaction()?;
    t.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
         INSERT INTO memories (user_id, id, content, normalized_content, category, visibility,
             tags, scoring, manually_added, reviewed, user_review, edited, conversation_id,
             created_at, updated_at)
         SELECT ?1, lower(hex(randomblob(16))), 'The user remembers fact number ' || i
             || ' about the garden, the team and the quarterly plan.', 'fact ' || i, 'system',
             'private', '[\"bench\"]', '01_000_1767605400', 1, 0, NULL, 0, NULL,
             1767605400000000 + i, 1767605400000000 + i FROM n",
        rusqlite::params![user_id, memories as i64],
    )?;
    t.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
         INSERT INTO action_items (id, user_id, description, normalized_description, completed,
             due_at, completed_at, conversation_id, created_at, updated_at)
         SELECT lower(hex(randomblob(16))), ?1, 'Follow up on task ' || i || ' with the team',
             'task ' || i, i % 2, NULL, CASE WHEN i % 2 = 1 THEN 1767605400000000 END, NULL,
             1767605400000000 + i, 1767605400000000 + i FROM n",
        rusqlite::params![user_id, items as i64],
    )?;
    t.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
         INSERT INTO conversations (id, user_id, created_at, started_at, finished_at, updated_at,
             title, overview, emoji, category, events, language, source, discarded,
             processed_by, starred)
         SELECT lower(hex(randomblob(16))), ?1, 1767605400000000 + i * 1000000,
             1767605400000000 + i * 1000000, 1767605400000000 + i * 1000000 + 600000000,
             1767605400000000 + i * 1000000, 'Planning meeting ' || i,
             'The team reviewed the plan and agreed on next steps.', '🗓️', 'work', '[]', 'en',
             'omi', 0, 'offline', 0 FROM n",
        rusqlite::params![user_id, conversations as i64],
    )?;
    t.execute(
        "INSERT INTO transcript_segments (conversation_id, position, user_id, id, text, speaker,
             speaker_id, is_user, person_id, start_seconds, end_seconds)
         SELECT c.id, p.position, ?1, c.id || '-' || p.position,
             'We should review the quarterly budget with finance next week.',
             'SPEAKER_0' || p.position, p.position, p.position = 0, NULL, p.position * 5.0,
             p.position * 5.0 + 4.5
         FROM conversations c, (SELECT 0 AS position UNION ALL SELECT 1 UNION ALL SELECT 2) p
         WHERE c.user_id = ?1",
        rusqlite::params![user_id],
    )?;
    t.commit()?;
    Ok((memories, items, conversations))
}

/// Every row of the user read with plain SQL in id order: what the export cannot beat.
fn baseline(database: &Path, user_id: &str) -> anyhow::Result<(u64, Duration)> {
    let c = rusqlite::Connection::open(database)?;
    let started = Instant::now();
    let mut rows = 0u64;
    let mut bytes = 0usize;
    for sql in [
        "SELECT id, content, category, tags, created_at FROM memories WHERE user_id = ?1 ORDER BY id",
        "SELECT id, description, completed, created_at FROM action_items WHERE user_id = ?1 ORDER BY id",
        "SELECT c.id, c.title, c.overview, (SELECT group_concat(text, ' ') FROM transcript_segments s
             WHERE s.conversation_id = c.id) FROM conversations c WHERE c.user_id = ?1 ORDER BY c.id",
    ] {
        let mut statement = c.prepare(sql)?;
        let mut result = statement.query([user_id])?;
        while let Some(row) = result.next()? {
            let id: String = row.get(0)?;
            let text: String = row.get(1)?;
            bytes += id.len() + text.len();
            rows += 1;
        }
    }
    std::hint::black_box(bytes);
    Ok((rows, started.elapsed()))
}

fn cli_export(binary: &Path, url: &str, out: &Path) -> anyhow::Result<(Duration, Option<u64>)> {
    let started = Instant::now();
    let mut child = Command::new(binary)
        .args(["export", "--user", "bench", "--format", "ndjson", "--out"])
        .arg(out)
        .env("OMI_DATABASE_URL", url)
        .env("OMI_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let mut peak = None;
    loop {
        if let Some(kb) = peak_rss_kb(child.id()) {
            peak = Some(kb);
        }
        if let Some(status) = child.try_wait()? {
            if !status.success() {
                bail!("omi-server export failed: {status}");
            }
            return Ok((started.elapsed(), peak));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn http_export(server: &ServerProcess, key: &str) -> anyhow::Result<(u64, Duration)> {
    let client = omi_server::outbound::Outbound::system()
        .http_client()
        .build()?;
    let started = Instant::now();
    let mut lines = 0u64;
    let mut path = "/v1/dev/user/export?limit=100000".to_string();
    for _ in 0..1_000 {
        let mut response = client
            .get(format!("{}{path}", server.base_url()))
            .bearer_auth(key)
            .send()
            .await?
            .error_for_status()?;
        let next = response
            .headers()
            .get("x-next-cursor")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        while let Some(chunk) = response.chunk().await? {
            lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        }
        match next {
            Some(cursor) => path = format!("/v1/dev/user/export?limit=100000&cursor={cursor}"),
            None => return Ok((lines, started.elapsed())),
        }
    }
    bail!("the export did not end within 1,000 pages")
}

fn rate(records: u64, took: Duration) -> f64 {
    records as f64 / took.as_secs_f64()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let binary = release_binary()?;
    let dir = tempfile::tempdir()?;
    let database = database_in(dir.path());
    let url = sqlite_url(&database);
    let user = create_user(&binary, &url, "bench")?;

    let seeding = Instant::now();
    let (memories, items, conversations) = seed(&database, &user.id, args.records)?;
    let total = memories + items + conversations;
    println!(
        "seeded {total} records ({memories} memories, {items} action items, {conversations} \
         conversations of 3 segments) in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );

    let (rows, took) = baseline(&database, &user.id)?;
    let base = rate(rows, took);
    println!(
        "baseline (plain SQL, id order): {rows} rows in {:.2} s = {base:.0} rows/s",
        took.as_secs_f64()
    );

    let out = dir.path().join("out");
    let (took, peak) = cli_export(&binary, &url, &out)?;
    let written = std::fs::read(out.join("export.ndjson"))?;
    let lines = written.iter().filter(|b| **b == b'\n').count() as u64;
    drop(written);
    let cli = rate(lines, took);
    println!(
        "omi-server export --format ndjson: {lines} records in {:.2} s = {cli:.0} records/s \
         ({:.2}x baseline), peak RSS {:.1} MB",
        took.as_secs_f64(),
        cli / base,
        peak.unwrap_or(0) as f64 / 1024.0
    );

    let server = ServerProcess::start(
        &binary,
        &url,
        &[
            ("OMI_RATE_LIMIT_PER_MINUTE", "0"),
            ("OMI_RATE_LIMIT_PER_DAY", "0"),
            ("OMI_DAILY_SUMMARIES", "false"),
        ],
    )?;
    let before = peak_rss_kb(server.pid()).unwrap_or(0);
    let (lines, took) = http_export(&server, &user.key).await?;
    let peak = peak_rss_kb(server.pid()).unwrap_or(0);
    let http = rate(lines, took);
    println!(
        "GET /v1/dev/user/export (pages of 100,000): {lines} records in {:.2} s = {http:.0} \
         records/s ({:.2}x baseline), server peak RSS {:.1} MB (idle {:.1} MB)",
        took.as_secs_f64(),
        http / base,
        peak as f64 / 1024.0,
        before as f64 / 1024.0
    );
    if lines != total {
        bail!("the export held {lines} records, the user {total}");
    }
    Ok(())
}
