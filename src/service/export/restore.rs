//! `omi-server import ndjson`: restores an export exactly. The file is read twice: once to
//! check every line (a malformed file changes nothing), then in batches that each commit whole
//! or not at all. A record equal to what the user holds is left alone, so importing the same
//! file twice changes nothing the second time.

use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;

use crate::domain::export::ExportRecord;
use crate::service::export::KindCounts;
use crate::store::export::RestoreOutcome;
use crate::store::{Store, StoreError};

/// Records written per transaction.
pub const RESTORE_BATCH: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("line {line}: not an export record: {reason}")]
    BadLine { line: u64, reason: String },
    #[error("lines {first}-{last}: {source}")]
    Store {
        first: u64,
        last: u64,
        source: StoreError,
    },
}

/// What an import did, per type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreReport {
    pub created: KindCounts,
    pub updated: KindCounts,
    pub unchanged: KindCounts,
}

impl RestoreReport {
    pub fn total(&self) -> u64 {
        self.created.total() + self.updated.total() + self.unchanged.total()
    }
}

fn lines(
    path: &Path,
) -> Result<impl Iterator<Item = (u64, std::io::Result<String>)>, RestoreError> {
    let file = std::fs::File::open(path).map_err(|source| RestoreError::Read {
        path: path.display().to_string(),
        source,
    })?;
    Ok(std::io::BufReader::new(file)
        .lines()
        .enumerate()
        .map(|(index, line)| (index as u64 + 1, line))
        .filter(|(_, line)| line.as_ref().map_or(true, |l| !l.trim().is_empty())))
}

fn parse(
    path: &Path,
    number: u64,
    line: std::io::Result<String>,
) -> Result<ExportRecord, RestoreError> {
    let line = line.map_err(|source| RestoreError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let mut record: ExportRecord =
        serde_json::from_str(&line).map_err(|error| RestoreError::BadLine {
            line: number,
            reason: error.to_string(),
        })?;
    if let ExportRecord::Goal(goal) = &mut record {
        goal.goal = goal.goal.clone().refreshed();
    }
    if record.id().trim().is_empty() {
        return Err(RestoreError::BadLine {
            line: number,
            reason: "the record has no id".into(),
        });
    }
    Ok(record)
}

/// Checks every line of the file; answers how many records it holds.
pub fn check_file(path: &Path) -> Result<u64, RestoreError> {
    let mut count = 0;
    for (number, line) in lines(path)? {
        parse(path, number, line)?;
        count += 1;
    }
    Ok(count)
}

/// Restores the file into the user's data; `progress` gets the running count after each batch.
pub async fn restore_file(
    store: Arc<dyn Store>,
    user_id: &str,
    path: &Path,
    mut progress: impl FnMut(u64),
) -> Result<RestoreReport, RestoreError> {
    check_file(path)?;
    let mut report = RestoreReport::default();
    let mut batch: Vec<ExportRecord> = Vec::with_capacity(RESTORE_BATCH);
    let mut first_line = 0;
    let mut last_line;
    let mut pending = lines(path)?.peekable();
    while let Some((number, line)) = pending.next() {
        if batch.is_empty() {
            first_line = number;
        }
        last_line = number;
        batch.push(parse(path, number, line)?);
        if batch.len() == RESTORE_BATCH || pending.peek().is_none() {
            let kinds: Vec<_> = batch.iter().map(ExportRecord::kind).collect();
            let outcomes = store
                .restore_records(user_id, std::mem::take(&mut batch))
                .await
                .map_err(|source| RestoreError::Store {
                    first: first_line,
                    last: last_line,
                    source,
                })?;
            for (kind, outcome) in kinds.into_iter().zip(outcomes) {
                match outcome {
                    RestoreOutcome::Created => report.created.add(kind),
                    RestoreOutcome::Updated => report.updated.add(kind),
                    RestoreOutcome::Unchanged => report.unchanged.add(kind),
                }
            }
            progress(report.total());
        }
    }
    Ok(report)
}
