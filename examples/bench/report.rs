//! Figures, targets and the printed report: medians over runs, ratios to the `/healthz` ceiling,
//! peak server RSS from `/proc`, and the list query's plan.

use std::path::Path;

use omi_server::store::sqlite::memories::list_sql;

use crate::load::Outcome;

const RSS_TARGET_KB: u64 = 32 * 1024;

pub struct Row {
    pub name: &'static str,
    pub label: String,
    pub connections: usize,
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub peak_rss_kb: Option<u64>,
    /// False when the peak could not be reset before the scenario: it is the process's peak.
    pub rss_per_scenario: bool,
    pub failures: u64,
    pub failure_example: String,
    pub vs_ceiling: Option<f64>,
}

impl Row {
    pub fn from_runs(
        name: &'static str,
        label: String,
        connections: usize,
        outcomes: &[Outcome],
        peak_rss_kb: Option<u64>,
        rss_per_scenario: bool,
    ) -> Row {
        let median_of = |figure: fn(&Outcome) -> f64| median(outcomes.iter().map(figure).collect());
        Row {
            name,
            label,
            connections,
            requests_per_second: median_of(Outcome::requests_per_second),
            p50_ms: median_of(|o| o.latency_ms(0.5)),
            p99_ms: median_of(|o| o.latency_ms(0.99)),
            peak_rss_kb,
            rss_per_scenario,
            failures: outcomes.iter().map(Outcome::failures).sum(),
            failure_example: outcomes
                .iter()
                .find_map(|o| o.failure_example.clone())
                .unwrap_or_default(),
            vs_ceiling: None,
        }
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Each endpoint's throughput as a fraction of the static route's, measured in the same run.
pub fn with_ceiling(rows: &mut [Row]) {
    let Some(ceiling) = rows
        .iter()
        .find(|r| r.name == "healthz")
        .map(|r| r.requests_per_second)
    else {
        return;
    };
    for row in rows {
        row.vs_ceiling = Some(row.requests_per_second / ceiling);
    }
}

fn target_text(name: &str) -> &'static str {
    match name {
        "memories" => ">= 25,000 req/s, p50 <= 3 ms, p99 <= 8 ms",
        "action-items-batch" => ">= 2,000 req/s, p99 <= 25 ms",
        "action-items-batch-normal" => ">= 3,000 req/s",
        "memories-search" => "p99 <= 20 ms (16 connections)",
        _ => "",
    }
}

pub struct Check {
    pub what: String,
    pub target: String,
    pub measured: String,
    pub met: bool,
}

fn at_least(what: &str, measured: f64, target: f64, unit: &str) -> Check {
    Check {
        what: what.into(),
        target: format!(">= {target:.0} {unit}"),
        measured: format!("{measured:.0} {unit}"),
        met: measured >= target,
    }
}

fn at_most(what: &str, measured: f64, target: f64, unit: &str) -> Check {
    Check {
        what: what.into(),
        target: format!("<= {target} {unit}"),
        measured: format!("{measured:.2} {unit}"),
        met: measured <= target,
    }
}

/// The targets that apply to a scenario, plus "no failed requests" for every one.
pub fn checks_for(name: &str, row: &Row) -> Vec<Check> {
    let mut checks = match name {
        "memories" => vec![
            at_least(
                "GET memories throughput",
                row.requests_per_second,
                25_000.0,
                "req/s",
            ),
            at_most("GET memories p50", row.p50_ms, 3.0, "ms"),
            at_most("GET memories p99", row.p99_ms, 8.0, "ms"),
        ],
        "action-items-batch" => vec![
            at_least(
                "batch-50 throughput, FULL",
                row.requests_per_second,
                2_000.0,
                "req/s",
            ),
            at_most("batch-50 p99, FULL", row.p99_ms, 25.0, "ms"),
        ],
        "memories-search" => vec![at_most("memory search p99", row.p99_ms, 20.0, "ms")],
        "action-items-batch-normal" => vec![at_least(
            "batch-50 throughput, NORMAL",
            row.requests_per_second,
            3_000.0,
            "req/s",
        )],
        _ => Vec::new(),
    };
    checks.push(Check {
        what: format!("{name}: failed requests"),
        target: "0".into(),
        measured: if row.failures == 0 {
            "0".into()
        } else {
            format!("{} (e.g. {})", row.failures, row.failure_example)
        },
        met: row.failures == 0,
    });
    checks
}

/// An `Idempotency-Key` on a single POST costs under 10% of its throughput (same run).
pub fn idempotency_check(rows: &[Row]) -> Option<Check> {
    let rate = |name: &str| {
        rows.iter()
            .find(|r| r.name == name)
            .map(|r| r.requests_per_second)
    };
    let plain = rate("memories-create")?;
    let keyed = rate("memories-create-idempotent")?;
    let ratio = keyed / plain;
    Some(Check {
        what: "POST memories with Idempotency-Key vs without".into(),
        target: ">= 0.90x".into(),
        measured: format!("{ratio:.2}x ({keyed:.0} vs {plain:.0} req/s)"),
        met: ratio >= 0.9,
    })
}

pub fn rss_check(rows: &[Row]) -> Check {
    let peak = rows.iter().filter_map(|r| r.peak_rss_kb).max().unwrap_or(0);
    Check {
        what: "peak server RSS (VmHWM)".into(),
        target: format!("<= {} MB", RSS_TARGET_KB / 1024),
        measured: format!("{:.1} MB", peak as f64 / 1024.0),
        met: peak > 0 && peak <= RSS_TARGET_KB,
    }
}

pub fn print_table(rows: &[Row], how: &str, fsync_ms: (f64, f64)) {
    println!(
        "\nResults ({how}; failed = non-2xx answers and transport errors, never counted in req/s)"
    );
    println!(
        "Disk flush (fsync of 4 KiB) in the database's folder: p50 {:.2} ms, p99 {:.2} ms; \
         each commit under synchronous=FULL waits for one.\n",
        fsync_ms.0, fsync_ms.1
    );
    println!(
        "{:<66} {:>5} {:>9} {:>8} {:>8} {:>9} {:>8} {:>6}  target",
        "endpoint", "conns", "req/s", "p50 ms", "p99 ms", "peak RSS", "vs ceil", "failed"
    );
    for row in rows {
        let rss = match row.peak_rss_kb {
            Some(kb) if row.rss_per_scenario => format!("{:.1} MB", kb as f64 / 1024.0),
            Some(kb) => format!("{:.1} MB*", kb as f64 / 1024.0),
            None => "?".into(),
        };
        println!(
            "{:<66} {:>5} {:>9.0} {:>8.2} {:>8.2} {:>9} {:>8} {:>6}  {}",
            row.label,
            row.connections,
            row.requests_per_second,
            row.p50_ms,
            row.p99_ms,
            rss,
            row.vs_ceiling
                .map_or("-".into(), |ratio| format!("{ratio:.2}")),
            row.failures,
            target_text(row.name)
        );
    }
    if rows.iter().any(|r| !r.rss_per_scenario) {
        println!("* the process's peak since start: it could not be reset per scenario");
    }
}

pub fn print_checks(checks: &[Check]) {
    println!("\nTargets\n");
    for check in checks {
        println!(
            "  [{}] {:<58} target {:<16} measured {}",
            if check.met { "met" } else { "MISSED" },
            check.what,
            check.target,
            check.measured
        );
    }
}

/// How long the disk under `folder` takes to make a 4 KiB write durable, p50 and p99 in ms:
/// every commit under `synchronous=FULL` waits for one such flush, so it bounds the write rows.
pub fn fsync_latency_ms(folder: &Path) -> anyhow::Result<(f64, f64)> {
    use std::io::Write;
    let path = folder.join("fsync-probe");
    let mut file = std::fs::File::create(&path)?;
    let mut samples = Vec::with_capacity(100);
    for _ in 0..100 {
        file.write_all(&[0u8; 4096])?;
        let started = std::time::Instant::now();
        file.sync_data()?;
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    std::fs::remove_file(path)?;
    samples.sort_by(f64::total_cmp);
    Ok((samples[50], samples[99]))
}

/// Peak resident set size of a process (`VmHWM`), in kB.
pub fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Resets the process's peak RSS to its current RSS (Linux `clear_refs` value 5).
pub fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

pub fn print_query_plan(database: &Path, user_id: &str) -> anyhow::Result<()> {
    let connection = rusqlite::Connection::open(database)?;
    // The server's own statement, unfiltered (no categories).
    let sql = list_sql(0);
    let mut statement = connection.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
    let details: Vec<String> = statement
        .query_map(rusqlite::params![user_id, 25, 0], |row| row.get(3))?
        .collect::<Result<_, _>>()?;
    println!(
        "\nEXPLAIN QUERY PLAN {}",
        sql.split_whitespace().collect::<Vec<_>>().join(" ")
    );
    for detail in details {
        println!("  {detail}");
    }
    Ok(())
}
