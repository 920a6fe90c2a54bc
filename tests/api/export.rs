//! The portable export (`GET /v1/dev/user/export`, `omi-server export`) and its import
//! (`omi-server import ndjson`), on both backends.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use omi_server::service::export::restore::{RestoreReport, restore_file};
use omi_server::service::export::vault::{VaultReport, write_vault};
use omi_server::service::export::write_ndjson;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::common::{Backend, TestServer, TestUser};

const EXPORT: &str = "/v1/dev/user/export";

fn fixture_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/export_fixture.ndjson")
}

fn fixture() -> String {
    std::fs::read_to_string(fixture_path()).unwrap()
}

fn vault_snapshot_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/vault.md")
}

async fn restore(server: &TestServer, user: &TestUser, file: &Path) -> RestoreReport {
    restore_file(server.state.store.clone(), &user.id, file, |_| {})
        .await
        .expect("restore")
}

/// The whole export of the key, following the cursor; at most 100 pages.
async fn export_all(server: &TestServer, key: &str, limit: Option<u32>) -> (String, usize) {
    let mut path = match limit {
        Some(limit) => format!("{EXPORT}?limit={limit}"),
        None => EXPORT.to_string(),
    };
    let mut text = String::new();
    for page in 1..=100 {
        let reply = server.get(&path, key).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.header("content-type"), Some("application/x-ndjson"));
        text.push_str(&reply.text);
        match reply.header("x-next-cursor") {
            Some(cursor) => {
                let link = reply.header("link").expect("a next page has a Link");
                assert!(
                    link.starts_with(&format!("<{EXPORT}?cursor={cursor}")),
                    "{link}"
                );
                assert!(link.ends_with(">; rel=\"next\""), "{link}");
                path = link
                    .trim_start_matches('<')
                    .trim_end_matches(">; rel=\"next\"")
                    .to_string();
            }
            None => {
                assert!(reply.header("link").is_none());
                return (text, page);
            }
        }
    }
    panic!("the export did not end within 100 pages")
}

fn types_of(ndjson: &str) -> Vec<String> {
    ndjson
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

async fn fixture_restores_exactly_and_once(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;

    let first = restore(&server, &alice, &fixture_path()).await;
    assert_eq!(first.created.total(), 14, "{first:?}");
    assert_eq!(first.updated.total() + first.unchanged.total(), 0);
    let again = restore(&server, &alice, &fixture_path()).await;
    assert_eq!(again.unchanged.total(), 14, "{again:?}");
    assert_eq!(again.created.total() + again.updated.total(), 0);

    let (exported, pages) = export_all(&server, &alice.key, None).await;
    assert_eq!(pages, 1);
    assert_eq!(exported, fixture(), "export after import is byte-identical");
    let mut written = Vec::new();
    write_ndjson(server.state.store.clone(), &alice.id, &mut written, |_| {})
        .await
        .unwrap();
    assert_eq!(String::from_utf8(written).unwrap(), fixture());

    // Another user's export holds none of it.
    let (bobs, _) = export_all(&server, &bob.key, None).await;
    assert_eq!(bobs, "");

    // The objects read back through the API as restored.
    let item = server
        .get("/v1/dev/user/action-items/a-0002", &alice.key)
        .await;
    assert_eq!(item.body["completed"], true);
    assert_eq!(item.body["completed_at"], "2026-01-05T11:00:00Z");
    let conversation = server
        .get(
            "/v1/dev/user/conversations/c-0001?include_transcript=true",
            &alice.key,
        )
        .await;
    assert_eq!(conversation.body["folder_name"], "Work");
    assert_eq!(conversation.body["starred"], true);
    assert_eq!(
        conversation.body["transcript_segments"][1]["speaker_name"],
        "Sam"
    );

    // An id another user holds is refused, and the batch writes nothing.
    let report = restore_file(server.state.store.clone(), &bob.id, &fixture_path(), |_| {}).await;
    assert!(report.is_err(), "{report:?}");
    let (bobs, _) = export_all(&server, &bob.key, None).await;
    assert_eq!(bobs, "");
}

async fn seed_through_the_api(server: &TestServer, user: &TestUser) {
    let key = &user.key;
    let reply = server
        .post(
            "/v1/dev/user/memories/batch",
            key,
            json!({"memories": [{"content": "Likes green tea", "tags": ["food"]},
                                {"content": "Works on the search launch", "category": "work"}]}),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let item = server
        .post(
            "/v1/dev/user/action-items",
            key,
            json!({"description": "Renew passport", "due_at": "2026-02-01T10:00:00Z"}),
        )
        .await;
    assert_eq!(item.status, 200, "{item:?}");
    let item_id = item.body["id"].as_str().unwrap();
    let done = server
        .patch(
            &format!("/v1/dev/user/action-items/{item_id}"),
            key,
            json!({"completed": true}),
        )
        .await;
    assert_eq!(done.status, 200, "{done:?}");
    let text = server
        .post(
            "/v1/dev/user/conversations",
            key,
            json!({"text": "Tomorrow I need to call the dentist at 10am and buy milk. My sister Anna visits on Friday.",
                   "geolocation": {"latitude": 48.1, "longitude": 11.5}}),
        )
        .await;
    assert_eq!(text.status, 200, "{text:?}");
    let segments = server
        .post(
            "/v1/dev/user/conversations/from-segments",
            key,
            json!({"transcript_segments": [
                {"text": "We should review the quarterly budget with finance next week.", "speaker": "SPEAKER_00", "is_user": true, "start": 0.0, "end": 4.0},
                {"text": "I will send the spreadsheet to the team by Monday.", "speaker": "SPEAKER_01", "is_user": false, "start": 4.0, "end": 9.5}]}),
        )
        .await;
    assert_eq!(segments.status, 200, "{segments:?}");
    let starred = server
        .patch(
            &format!(
                "/v1/dev/user/conversations/{}",
                segments.body["id"].as_str().unwrap()
            ),
            key,
            json!({"starred": true}),
        )
        .await;
    assert_eq!(starred.status, 200, "{starred:?}");
    let goal = server
        .post("/v1/dev/user/goals", key, json!({"title": "Read books", "goal_type": "numeric", "target_value": 12, "unit": "books"}))
        .await;
    assert_eq!(goal.status, 200, "{goal:?}");
    let progress = server
        .patch(
            &format!("/v1/dev/user/goals/{}", goal.body["id"].as_str().unwrap()),
            key,
            json!({"current_value": 3}),
        )
        .await;
    assert_eq!(progress.status, 200, "{progress:?}");
}

async fn api_data_round_trips_byte_identical(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    seed_through_the_api(&server, &alice).await;
    seed_through_the_api(&server, &bob).await;

    let (exported, _) = export_all(&server, &alice.key, Some(100_000)).await;
    let types = types_of(&exported);
    for expected in ["folder", "conversation", "action_item", "memory", "goal"] {
        assert!(
            types.iter().any(|t| t == expected),
            "no {expected} in {types:?}"
        );
    }
    // Bob's objects never appear in Alice's export.
    let (bobs, _) = export_all(&server, &bob.key, None).await;
    for line in bobs.lines() {
        let id = serde_json::from_str::<Value>(line).unwrap()["data"]["id"].clone();
        let memory_like = line.contains("\"type\":\"memory\"");
        if !memory_like {
            assert!(
                !exported.contains(id.as_str().unwrap()),
                "bob's {id} in alice's export"
            );
        }
    }

    let file = server.dir.path().join("alice.ndjson");
    std::fs::write(&file, &exported).unwrap();
    let target = TestServer::start_on(backend).await;
    let restored = target.user("alice").await;
    let first = restore(&target, &restored, &file).await;
    assert_eq!(
        first.created.total() as usize,
        exported.lines().count(),
        "{first:?}"
    );
    let second = restore(&target, &restored, &file).await;
    assert_eq!(
        second.unchanged.total() as usize,
        exported.lines().count(),
        "{second:?}"
    );
    let (again, _) = export_all(&target, &restored.key, None).await;
    assert_eq!(
        again, exported,
        "export -> import -> export is byte-identical"
    );
}

async fn pages_follow_the_cursor(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    restore(&server, &alice, &fixture_path()).await;
    for limit in [1, 2, 4, 13, 14] {
        let (text, pages) = export_all(&server, &alice.key, Some(limit)).await;
        assert_eq!(text, fixture(), "limit {limit}");
        assert_eq!(pages, 14usize.div_ceil(limit as usize), "limit {limit}");
    }
    server
        .get(&format!("{EXPORT}?cursor=zz"), &alice.key)
        .await
        .assert_error(400, "Invalid cursor");
}

async fn scopes_choose_the_types(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    restore(&server, &alice, &fixture_path()).await;

    let memories = server.key_with(&alice, &["memories:read"]).await;
    let (text, _) = export_all(&server, &memories, None).await;
    assert_eq!(types_of(&text), ["memory", "memory", "memory"]);

    let reader = server
        .key_with(
            &alice,
            &["conversations:read", "goals:read", "memories:write"],
        )
        .await;
    let (text, _) = export_all(&server, &reader, Some(2)).await;
    let mut kinds = types_of(&text);
    kinds.dedup();
    assert_eq!(kinds, ["folder", "conversation", "goal", "daily_summary"]);

    let writer = server
        .key_with(&alice, &["memories:write", "conversations:write"])
        .await;
    server.get(EXPORT, &writer).await.assert_error(
        403,
        "Insufficient permissions. Required scope: any of conversations:read, memories:read, action_items:read, goals:read",
    );
}

/// Every file of the vault, by relative path.
fn vault_files(root: &Path) -> BTreeMap<String, (String, SystemTime)> {
    let mut files = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                pending.push(entry.path());
            } else {
                let relative = entry
                    .path()
                    .strip_prefix(root)
                    .unwrap()
                    .display()
                    .to_string();
                let content = std::fs::read_to_string(entry.path()).unwrap();
                let modified = entry.metadata().unwrap().modified().unwrap();
                files.insert(relative, (content, modified));
            }
        }
    }
    files
}

async fn vault(server: &TestServer, user: &TestUser, root: &Path) -> VaultReport {
    write_vault(server.state.store.clone(), &user.id, "Alex", root)
        .await
        .expect("vault")
}

async fn markdown_vault_is_stable_and_rewrites_only_what_changed(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let alice = server.user("alice").await;
    restore(&server, &alice, &fixture_path()).await;
    let root = server.dir.path().join("vault");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("My own note.md"), "mine").unwrap();

    let first = vault(&server, &alice, &root).await;
    assert_eq!(
        (
            first.conversations,
            first.daily_notes,
            first.memory_notes,
            first.goals
        ),
        (2, 2, 2, 1)
    );
    let files = vault_files(&root);
    let snapshot: String = files
        .iter()
        .map(|(path, (content, _))| format!("==> {path} <==\n{content}\n"))
        .collect();
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(vault_snapshot_path(), &snapshot).unwrap();
    }
    let expected = std::fs::read_to_string(vault_snapshot_path())
        .expect("snapshot missing: run with UPDATE_SNAPSHOTS=1 once");
    assert_eq!(
        snapshot, expected,
        "the vault differs from tests/snapshots/vault.md"
    );

    let second = vault(&server, &alice, &root).await;
    assert_eq!((second.written, second.removed), (0, 0), "{second:?}");

    // One edit rewrites one note.
    let done = server
        .patch(
            "/v1/dev/user/action-items/a-0003",
            &alice.key,
            json!({"completed": true}),
        )
        .await;
    assert_eq!(done.status, 200, "{done:?}");
    let third = vault(&server, &alice, &root).await;
    assert_eq!((third.written, third.removed), (1, 0), "{third:?}");
    let after = vault_files(&root);
    let changed: Vec<&String> = after
        .iter()
        .filter(|(path, (content, modified))| files[*path] != (content.clone(), *modified))
        .map(|(path, _)| path)
        .collect();
    assert_eq!(changed, ["Conversations/2026-01-06 Fence repair c-0002.md"]);
    assert!(
        after[changed[0].as_str()]
            .0
            .contains("- [x] Buy fence posts")
    );

    // A deleted conversation's note goes; its day's note no longer links it.
    let deleted = server
        .delete("/v1/dev/user/conversations/c-0001", &alice.key)
        .await;
    assert_eq!(deleted.status, 200, "{deleted:?}");
    let fourth = vault(&server, &alice, &root).await;
    assert_eq!((fourth.written, fourth.removed), (1, 1), "{fourth:?}");
    let last = vault_files(&root);
    assert!(!last.keys().any(|path| path.contains("c-0001")));
    assert!(!last["Daily/2026-01-05.md"].0.contains("[["));
    assert_eq!(last["My own note.md"].0, "mine");
}

backend_tests!(
    fixture_restores_exactly_and_once,
    api_data_round_trips_byte_identical,
    pages_follow_the_cursor,
    scopes_choose_the_types,
    markdown_vault_is_stable_and_rewrites_only_what_changed,
);

fn omi(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_omi-server"))
        .args(args)
        .env(
            "OMI_DATABASE_URL",
            format!("sqlite://{}/omi.db", dir.display()),
        )
        .env("OMI_LOG", "warn")
        .output()
        .expect("run omi-server")
}

fn stdout_of(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_command_line_exports_and_imports() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    stdout_of(&omi(home, &["users", "create", "alice"]));
    let fixture_file = fixture_path();
    let fixture_file = fixture_file.to_str().unwrap();

    // A malformed file is refused whole: nothing is written.
    let broken = home.join("broken.ndjson");
    std::fs::write(&broken, format!("{}{{\"type\":\"memory\"}}\n", fixture())).unwrap();
    let refused = omi(
        home,
        &[
            "import",
            "ndjson",
            "--user",
            "alice",
            broken.to_str().unwrap(),
        ],
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("line 15"),
        "{refused:?}"
    );

    let first = stdout_of(&omi(
        home,
        &["import", "ndjson", "--user", "alice", fixture_file],
    ));
    assert!(
        first.contains("Imported 14 records") && first.contains("created 14"),
        "{first}"
    );
    let second = stdout_of(&omi(
        home,
        &["import", "ndjson", "--user", "alice", fixture_file],
    ));
    assert!(
        second.contains("created 0") && second.contains("unchanged 14"),
        "{second}"
    );

    let out = home.join("out");
    let report = stdout_of(&omi(
        home,
        &[
            "export",
            "--user",
            "alice",
            "--format",
            "ndjson",
            "--out",
            out.to_str().unwrap(),
        ],
    ));
    assert!(report.contains("Exported 14 records"), "{report}");
    assert_eq!(
        std::fs::read_to_string(out.join("export.ndjson")).unwrap(),
        fixture()
    );

    let vault = home.join("vault");
    let report = stdout_of(&omi(
        home,
        &[
            "export",
            "--user",
            "alice",
            "--format",
            "markdown",
            "--out",
            vault.to_str().unwrap(),
        ],
    ));
    assert!(
        report.contains("2 conversations") && report.contains("0 unchanged"),
        "{report}"
    );
    assert!(vault.join("Daily/2026-01-05.md").is_file());

    let unknown = omi(
        home,
        &["export", "--user", "nobody", "--out", out.to_str().unwrap()],
    );
    assert!(!unknown.status.success());
}
