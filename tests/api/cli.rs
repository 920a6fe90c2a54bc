//! The command line (API.md §8), run as a real process.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

fn omi(dir: &TempDir, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_omi-server"))
        .args(args)
        .env(
            "OMI_DATABASE_URL",
            format!("sqlite://{}/omi.db", dir.path().display()),
        )
        .env("OMI_LOG", "warn")
        .output()
        .expect("run omi-server")
}

fn json_of(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("exactly one JSON value on stdout")
}

#[test]
fn users_are_created_once_per_name_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let created = json_of(&omi(
        &dir,
        &[
            "users",
            "create",
            "alice",
            "--display-name",
            "Alice A.",
            "--json",
        ],
    ));
    assert_eq!(created["name"], "alice");
    assert_eq!(created["display_name"], "Alice A.");
    let token = created["account_token"].as_str().unwrap();
    assert!(
        token.starts_with("omi_acct_") && token.len() == 41,
        "{token}"
    );
    assert!(created["id"].as_str().is_some());

    let again = omi(&dir, &["users", "create", "alice"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let bob = json_of(&omi(&dir, &["users", "create", "bob", "--json"]));
    assert_eq!(
        bob["display_name"], "bob",
        "display name defaults to the name"
    );
    let listed = json_of(&omi(&dir, &["users", "list", "--json"]));
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    assert!(
        !String::from_utf8_lossy(&omi(&dir, &["users", "list", "--json"]).stdout)
            .contains("omi_acct_")
    );
}

#[test]
fn keys_are_created_listed_rotated_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let user = json_of(&omi(&dir, &["users", "create", "alice", "--json"]));
    let user_id = user["id"].as_str().unwrap();

    let created = json_of(&omi(
        &dir,
        &[
            "keys",
            "create",
            "--user",
            "alice",
            "--name",
            "laptop",
            "--scopes",
            "memories:read,goals:write",
            "--json",
        ],
    ));
    assert_eq!(created["name"], "laptop");
    assert_eq!(
        created["scopes"],
        serde_json::json!(["memories:read", "goals:write"])
    );
    let key_id = created["id"].as_str().unwrap();
    let raw = created["key"].as_str().unwrap();
    assert!(raw.starts_with("omi_dev_"));

    let default_scopes = json_of(&omi(
        &dir,
        &[
            "keys", "create", "--user", user_id, "--name", "by-id", "--json",
        ],
    ));
    assert_eq!(
        default_scopes["scopes"].as_array().unwrap().len(),
        4,
        "--user takes an id too"
    );

    let bad_scope = omi(
        &dir,
        &[
            "keys", "create", "--user", "alice", "--name", "x", "--scopes", "nope",
        ],
    );
    assert!(!bad_scope.status.success());
    assert!(String::from_utf8_lossy(&bad_scope.stderr).contains("Invalid scopes"));
    let no_user = omi(&dir, &["keys", "list", "--user", "nobody"]);
    assert!(!no_user.status.success());

    let listed = json_of(&omi(&dir, &["keys", "list", "--user", "alice", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("key").is_none())
    );

    let rotated = json_of(&omi(&dir, &["keys", "rotate", key_id, "--json"]));
    assert_eq!(rotated["id"], key_id);
    assert_ne!(rotated["key"].as_str().unwrap(), raw);

    assert!(omi(&dir, &["keys", "revoke", key_id]).status.success());
    let listed = json_of(&omi(&dir, &["keys", "list", "--user", "alice", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let again = omi(&dir, &["keys", "revoke", key_id]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("API key not found"));
}

#[test]
fn migrate_creates_the_database_file_and_folder() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_omi-server"))
        .arg("migrate")
        .env(
            "OMI_DATABASE_URL",
            format!("sqlite://{}/nested/data/omi.db", dir.path().display()),
        )
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(dir.path().join("nested/data/omi.db").exists());
}

/// A running `omi-server serve`, killed on drop.
struct ServeProcess {
    child: std::process::Child,
    stdout_lines: Vec<String>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    address: String,
}

impl ServeProcess {
    fn start(dir: &TempDir, log_level: &str) -> Self {
        Self::start_with_env(dir, log_level, &[])
    }

    fn start_with_env(dir: &TempDir, log_level: &str, env: &[(&str, &str)]) -> Self {
        let mut child = serve_command(dir, log_level, env)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        {
            let stderr = stderr.clone();
            let pipe = child.stderr.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if line.contains("listening") {
                        let address = line
                            .split("address=")
                            .nth(1)
                            .unwrap_or("")
                            .split_whitespace()
                            .next()
                            .unwrap_or("")
                            .to_string();
                        let _ = address_tx.send(address);
                    }
                    let mut log = stderr.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        let address = address_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the server logs its address when ready");
        ServeProcess {
            child,
            stdout_lines: Vec::new(),
            stderr,
            address,
        }
    }

    /// Stops with SIGTERM and returns everything printed on stdout.
    fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "graceful stop exits 0");
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut out = String::new();
        use std::io::Read;
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        self.stdout_lines = out.lines().map(String::from).collect();
        out
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serve_bootstraps_an_empty_database_once_with_a_working_curl_line() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::start(&dir, "info");
    // The bootstrap lines are printed before the server is ready; read them after stopping,
    // but use the key while it runs.
    let keys_before_stop = {
        let output = omi(&dir, &["keys", "list", "--user", "default", "--json"]);
        json_of(&output)
    };
    assert_eq!(keys_before_stop.as_array().unwrap().len(), 1);
    assert_eq!(keys_before_stop[0]["scopes"].as_array().unwrap().len(), 11);
    let address = server.address.clone();
    let stdout = server.stop();
    assert!(stdout.contains("omi_acct_"), "{stdout}");
    let curl = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("curl "))
        .expect("a curl line");
    assert!(
        curl.contains(&address),
        "{curl} uses the bound address {address}"
    );
    let key = curl
        .split("Bearer ")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let printed_path = curl
        .split(address.as_str())
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(printed_path, "/v1/dev/user/memories?limit=5");

    // Restart: nothing secret printed, and the printed curl line works against it.
    let server = ServeProcess::start(&dir, "info");
    let url = format!("http://{}{printed_path}", server.address);
    let response = std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let response = omi_server::outbound::Outbound::system()
                .http_client()
                .build()
                .unwrap()
                .get(url)
                .bearer_auth(key)
                .send()
                .await
                .unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        })
    })
    .join()
    .unwrap();
    assert_eq!(response.0, 200);
    assert_eq!(
        response.1,
        serde_json::json!([]),
        "a JSON answer: no memories yet"
    );
    let stdout = server.stop();
    assert!(
        !stdout.contains("omi_dev_") && !stdout.contains("omi_acct_"),
        "{stdout}"
    );
    let users = json_of(&omi(&dir, &["users", "list", "--json"]));
    assert_eq!(users[0]["display_name"], "User");
}

#[test]
fn raw_keys_never_reach_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let user = json_of(&omi(&dir, &["users", "create", "alice", "--json"]));
    let token = user["account_token"].as_str().unwrap().to_string();
    let key = json_of(&omi(
        &dir,
        &["keys", "create", "--user", "alice", "--name", "k", "--json"],
    ))["key"]
        .as_str()
        .unwrap()
        .to_string();
    let server = ServeProcess::start(&dir, "debug");
    let base = format!("http://{}", server.address);
    let (key_c, token_c) = (key.clone(), token.clone());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let client = omi_server::outbound::Outbound::system()
                .http_client()
                .build()
                .unwrap();
            for path in ["/v1/dev/key", "/v1/dev/nothing", "/v1/dev/keys"] {
                client
                    .get(format!("{base}{path}"))
                    .bearer_auth(&key_c)
                    .send()
                    .await
                    .unwrap();
                client
                    .get(format!("{base}{path}"))
                    .bearer_auth(&token_c)
                    .send()
                    .await
                    .unwrap();
            }
            let created = client
                .post(format!("{base}/v1/dev/keys"))
                .bearer_auth(&token_c)
                .json(&serde_json::json!({"name": "x"}))
                .send()
                .await
                .unwrap();
            assert_eq!(created.status(), 200);
        })
    })
    .join()
    .unwrap();
    let log_handle = server.stderr.clone();
    server.stop();
    let log = log_handle.lock().unwrap().clone();
    assert!(
        log.contains("request completed"),
        "the requests were logged: {log}"
    );
    assert!(!log.contains(&key[8..]), "developer key in the log");
    assert!(!log.contains(&token[9..]), "account token in the log");
}

/// `omi-server serve` on the SQLite file in `dir`, on a free loopback port, with `env` added.
fn serve_command(dir: &TempDir, log_level: &str, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_omi-server"));
    command
        .arg("serve")
        .env(
            "OMI_DATABASE_URL",
            format!("sqlite://{}/omi.db", dir.path().display()),
        )
        .env("OMI_LISTEN", "127.0.0.1:0")
        .env("OMI_LOG", log_level)
        .envs(env.iter().copied());
    command
}

/// An `omi-server serve` that has to fail at start; killed if it is still running after 20 s.
fn serve_failing(dir: &TempDir, env: &[(&str, &str)]) -> String {
    let mut child = serve_command(dir, "warn", env)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("omi-server serve kept running with {env:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    let mut stderr = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    stderr
}

#[test]
fn serve_exports_metrics_on_the_metrics_listener_and_stops_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        ServeProcess::start_with_env(&dir, "info", &[("OMI_METRICS_LISTEN", "127.0.0.1:0")]);
    let log = server.stderr.lock().unwrap().clone();
    let metrics_address = log
        .lines()
        .find_map(|line| line.split("metrics_address=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("the metrics address is logged before the API's: {log}"))
        .to_string();
    assert_ne!(metrics_address, server.address, "a listener of its own");
    let api = format!("http://{}", server.address);
    let (content_type, text) = std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let client = omi_server::outbound::Outbound::system()
                .http_client()
                .build()
                .unwrap();
            let health = client.get(format!("{api}/healthz")).send().await.unwrap();
            assert_eq!(health.status(), 200);
            let scrape = client
                .get(format!("http://{metrics_address}/metrics"))
                .send()
                .await
                .unwrap();
            assert_eq!(scrape.status(), 200);
            let content_type = scrape.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_string();
            (content_type, scrape.text().await.unwrap())
        })
    })
    .join()
    .unwrap();
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    for line in [
        "omi_http_requests_total{method=\"GET\",path=\"/healthz\",status=\"200\"} 1",
        "omi_db_pool_max_connections{pool=\"sqlite_write\"} 1",
        "omi_rate_limit_decisions_total{kind=\"request\",outcome=\"allowed\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
    }
    server.stop();
}

#[test]
fn serve_refuses_a_bad_or_busy_metrics_address_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = serve_failing(&dir, &[("OMI_METRICS_LISTEN", "9090")]);
    assert!(
        stderr.contains("--metrics-listen") && stderr.contains("not a socket address"),
        "{stderr}"
    );

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let stderr = serve_failing(&dir, &[("OMI_METRICS_LISTEN", &address)]);
    assert!(
        stderr.contains(&format!("cannot listen for metrics on {address}")),
        "{stderr}"
    );
}

#[test]
fn a_database_failure_while_creating_a_key_prints_its_real_cause() {
    let dir = tempfile::tempdir().unwrap();
    json_of(&omi(&dir, &["users", "create", "alice", "--json"]));
    // The user is found, then the key's write fails inside the database.
    let db = rusqlite::Connection::open(dir.path().join("omi.db")).unwrap();
    db.execute_batch(
        "CREATE TRIGGER refuse_keys BEFORE INSERT ON api_keys
         BEGIN SELECT RAISE(ABORT, 'the disk refused the key'); END;",
    )
    .unwrap();
    drop(db);
    let failed = omi(
        &dir,
        &["keys", "create", "--user", "alice", "--name", "laptop"],
    );
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("the disk refused the key"), "{stderr}");
    assert!(!stderr.contains("Internal server error"), "{stderr}");
}

#[test]
fn an_unreachable_database_is_named_with_its_cause() {
    let failed = Command::new(env!("CARGO_BIN_EXE_omi-server"))
        .args(["keys", "list", "--user", "alice"])
        .env(
            "OMI_DATABASE_URL",
            "postgres://omi@127.0.0.1:1/omi?connect_timeout=2",
        )
        .env("OMI_PG_TIMEOUT_MS", "2000")
        .env("OMI_LOG", "warn")
        .output()
        .unwrap();
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("Internal server error"), "{stderr}");
    assert!(
        stderr.to_lowercase().contains("connect") || stderr.contains("refused"),
        "{stderr}"
    );
}

#[test]
fn a_key_in_a_webhook_url_never_reaches_the_log() {
    let dir = tempfile::tempdir().unwrap();
    omi(&dir, &["users", "create", "alice", "--json"]);
    let key = json_of(&omi(
        &dir,
        &[
            "keys",
            "create",
            "--user",
            "alice",
            "--name",
            "omi-app",
            "--scopes",
            "ingest:write",
            "--json",
        ],
    ))["key"]
        .as_str()
        .unwrap()
        .to_string();
    let server = ServeProcess::start(&dir, "trace");
    let base = format!("http://{}", server.address);
    let key_c = key.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let client = omi_server::outbound::Outbound::system()
                .http_client()
                .build()
                .unwrap();
            let accepted = client
                .post(format!(
                    "{base}/v1/ingest/omi/transcript?key={key_c}&uid=u1&session_id=u1"
                ))
                .json(&serde_json::json!({"segments": [{"id": "s1", "text": "hello"}]}))
                .send()
                .await
                .unwrap();
            assert_eq!(accepted.status(), 200);
            // Refused and unmatched requests carry the key too.
            for path in [
                "/v1/ingest/omi/conversations",
                "/v1/dev/user/memories",
                "/v1/ingest/omi/nothing",
            ] {
                client
                    .post(format!("{base}{path}?key={key_c}"))
                    .header("content-type", "application/json")
                    .body("{not json")
                    .send()
                    .await
                    .unwrap();
            }
        })
    })
    .join()
    .unwrap();
    let log_handle = server.stderr.clone();
    server.stop();
    let log = log_handle.lock().unwrap().clone();
    assert!(
        log.contains("path=\"/v1/ingest/omi/transcript\""),
        "the request was logged under its route template: {log}"
    );
    assert!(!log.contains(&key[8..]), "the ingest key in the log: {log}");
}
