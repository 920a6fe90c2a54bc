//! `omi-server backup` under write load and `omi-server restore`, run as real processes against
//! the database a running server writes to.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::common::TestServer;

fn omi(database: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_omi-server"))
        .args(args)
        .env(
            "OMI_DATABASE_URL",
            format!("sqlite://{}", database.display()),
        )
        .env("OMI_LOG", "warn")
        .output()
        .expect("run omi-server")
}

fn stored_item_ids(database: &Path) -> HashSet<String> {
    let db = rusqlite::Connection::open(database).unwrap();
    let verdict: String = db
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(verdict, "ok");
    let mut statement = db.prepare("SELECT id FROM action_items").unwrap();
    statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test]
async fn a_backup_under_write_load_restores_every_write_acknowledged_before_it() {
    let server = TestServer::start().await;
    let user = server.user("alice").await;
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (client, url, key) = (
            server.client.clone(),
            server.url("/v1/dev/user/action-items"),
            user.key.clone(),
        );
        let (acknowledged, stop) = (acknowledged.clone(), stop.clone());
        tokio::spawn(async move {
            // Bounded: at most 3,000 writes, or until the backup is done.
            for n in 0..3_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let reply = client
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&json!({"description": format!("Task {n}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(reply.status(), 200);
                let body: serde_json::Value = reply.json().await.unwrap();
                acknowledged
                    .lock()
                    .unwrap()
                    .push(body["id"].as_str().unwrap().to_string());
            }
        })
    };
    while acknowledged.lock().unwrap().len() < 50 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let before_backup: Vec<String> = acknowledged.lock().unwrap().clone();
    let database = server.db_path();
    let out = server.dir.path().join("snapshot.db");
    let taken = {
        let (database, out) = (database.clone(), out.clone());
        tokio::task::spawn_blocking(move || {
            omi(&database, &["backup", "--out", out.to_str().unwrap()])
        })
        .await
        .unwrap()
    };
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    assert!(
        taken.status.success(),
        "{}",
        String::from_utf8_lossy(&taken.stderr)
    );
    let said = String::from_utf8_lossy(&taken.stdout);
    assert!(said.contains("integrity ok"), "{said}");
    assert!(
        acknowledged.lock().unwrap().len() > before_backup.len(),
        "writes went on during the backup"
    );

    // A backup never overwrites a file.
    let again = omi(&database, &["backup", "--out", out.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    // Restored into an empty place: every write acknowledged before the backup is there.
    let restored = tempfile::tempdir().unwrap();
    let target = restored.path().join("data/omi.db");
    let done = omi(&target, &["restore", "--from", out.to_str().unwrap()]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let ids = stored_item_ids(&target);
    for id in &before_backup {
        assert!(
            ids.contains(id),
            "acknowledged item {id} missing from the backup"
        );
    }

    // Restored over an existing database: the replaced one is kept beside it.
    let over = omi(&target, &["restore", "--from", out.to_str().unwrap()]);
    assert!(
        over.status.success(),
        "{}",
        String::from_utf8_lossy(&over.stderr)
    );
    let said = String::from_utf8_lossy(&over.stdout);
    assert!(said.contains("before-restore-"), "{said}");
    let kept: Vec<_> = std::fs::read_dir(target.parent().unwrap())
        .unwrap()
        .filter_map(|entry| entry.ok())
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .contains("before-restore-")
        })
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(stored_item_ids(&kept[0].path()), ids);
}

#[test]
fn a_file_that_is_not_a_database_is_refused_and_nothing_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, b"not a database at all").unwrap();
    let target = dir.path().join("omi.db");
    let refused = omi(&target, &["restore", "--from", junk.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("is not a usable backup"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(!target.exists());
    let postgres = Command::new(env!("CARGO_BIN_EXE_omi-server"))
        .args(["backup", "--out", "x.db"])
        .env("OMI_DATABASE_URL", "postgres://omi@127.0.0.1:1/omi")
        .output()
        .unwrap();
    assert!(!postgres.status.success());
    assert!(String::from_utf8_lossy(&postgres.stderr).contains("pg_dump"));
}
