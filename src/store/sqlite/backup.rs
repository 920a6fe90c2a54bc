//! Online backup and restore of the SQLite database. A backup is taken with `VACUUM INTO` on a
//! read-only connection: one read transaction, so the copy is the database as of one commit
//! even while the server keeps writing, and it is compacted. Both directions check the copy
//! with `PRAGMA integrity_check` before calling it done.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use rusqlite::{Connection, OpenFlags};

/// What a finished backup or restore reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    pub path: PathBuf,
    pub bytes: u64,
    /// The newest schema migration the copy holds.
    pub schema_version: i64,
    pub elapsed: Duration,
}

/// Writes a consistent, verified copy of `database` to `out`, which must not exist yet. The copy
/// is written beside `out` first and renamed into place once it passed the integrity check, so
/// `out` is never a partial file.
pub fn backup(database: &Path, out: &Path) -> anyhow::Result<CopyReport> {
    let started = Instant::now();
    ensure!(database.exists(), "no database at {}", database.display());
    ensure!(!out.exists(), "{} already exists", out.display());
    let partial = sibling(out, "partial");
    let _ = std::fs::remove_file(&partial);
    let source = open_read_only(database)?;
    let written = source
        .execute("VACUUM INTO ?1", [partial.to_string_lossy()])
        .with_context(|| format!("copying {} to {}", database.display(), partial.display()));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(error);
    }
    let schema_version = match verify(&partial) {
        Ok(version) => version,
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            return Err(error);
        }
    };
    std::fs::File::open(&partial)?.sync_all()?;
    std::fs::rename(&partial, out)
        .with_context(|| format!("moving the backup into {}", out.display()))?;
    sync_parent(out);
    Ok(CopyReport {
        path: out.to_path_buf(),
        bytes: std::fs::metadata(out)?.len(),
        schema_version,
        elapsed: started.elapsed(),
    })
}

/// Replaces `database` with the verified backup `from`. The database it replaces is first kept
/// beside it as a backup of its own (`<name>.before-restore-<time>`), named in the report. Stop
/// the server first: a running server would keep serving from its open connections.
pub fn restore(from: &Path, database: &Path) -> anyhow::Result<(CopyReport, Option<PathBuf>)> {
    let started = Instant::now();
    ensure!(from.exists(), "no backup at {}", from.display());
    verify(from).with_context(|| format!("{} is not a usable backup", from.display()))?;
    let kept = if database.exists() {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        let aside = sibling(database, &format!("before-restore-{stamp}"));
        backup(database, &aside)
            .with_context(|| format!("keeping the current database as {}", aside.display()))?;
        Some(aside)
    } else {
        if let Some(parent) = database.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        None
    };
    let source = open_read_only(from)?;
    let mut target =
        Connection::open(database).with_context(|| format!("opening {}", database.display()))?;
    target.busy_timeout(Duration::from_secs(5))?;
    {
        let copy = rusqlite::backup::Backup::new(&source, &mut target)?;
        copy.run_to_completion(256, Duration::ZERO, None)
            .with_context(|| format!("writing {}", database.display()))?;
    }
    drop(target);
    let schema_version = verify(database)?;
    Ok((
        CopyReport {
            path: database.to_path_buf(),
            bytes: std::fs::metadata(database)?.len(),
            schema_version,
            elapsed: started.elapsed(),
        },
        kept,
    ))
}

fn open_read_only(path: &Path) -> anyhow::Result<Connection> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {}", path.display()))?;
    connection.busy_timeout(Duration::from_secs(5))?;
    Ok(connection)
}

/// `PRAGMA integrity_check` answers `ok`, and the file is an omi-server database: the newest
/// migration it holds.
fn verify(path: &Path) -> anyhow::Result<i64> {
    let connection = open_read_only(path)?;
    let verdict: String = connection
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .with_context(|| format!("checking {}", path.display()))?;
    if verdict != "ok" {
        bail!("{} failed the integrity check: {verdict}", path.display());
    }
    connection
        .query_row("SELECT max(version) FROM schema_migrations", [], |row| {
            row.get::<_, Option<i64>>(0)
        })
        .ok()
        .flatten()
        .with_context(|| format!("{} is not an omi-server database", path.display()))
}

/// `<file>.<suffix>` in the same folder (so a rename stays on one file system).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{suffix}"));
    path.with_file_name(name)
}

/// Makes the rename durable (best effort: not every file system lets a folder be synced).
fn sync_parent(path: &Path) {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && let Ok(folder) = std::fs::File::open(parent)
    {
        let _ = folder.sync_all();
    }
}
