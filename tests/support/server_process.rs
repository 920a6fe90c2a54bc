//! The real `omi-server` binary as a child process on a SQLite file, shared by the crash test and
//! the benchmark: started with `OMI_LISTEN=127.0.0.1:0`, ready when it logs its listen address,
//! ended with SIGKILL (a crash, not a shutdown).

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, bail};
use parking_lot::Mutex;
use serde_json::Value;

/// How many of the server's last log lines are kept for failure messages.
const KEPT_LOG_LINES: usize = 200;
/// Only the "listening" line (from `omi_server::app`) and warnings: per-request logging would
/// cost the benchmark throughput and the tests nothing but noise.
const LOG_FILTER: &str = "warn,omi_server::app=info";

pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

pub struct ServerProcess {
    child: Child,
    pub address: SocketAddr,
    log: Arc<Mutex<VecDeque<String>>>,
}

impl ServerProcess {
    /// Runs `omi-server serve` on `database_url` with `env` added, and waits until it listens.
    pub fn start(binary: &Path, database_url: &str, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .env("OMI_DATABASE_URL", database_url)
            .env("OMI_LISTEN", "127.0.0.1:0")
            .env("OMI_LOG", LOG_FILTER)
            .env_remove("OMI_REDIS_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (ready, listening) = mpsc::channel();
        // The server blocks once a full pipe stops being read, so one thread drains it for the
        // whole life of the process.
        std::thread::spawn({
            let log = log.clone();
            move || drain_log(stderr, &log, ready)
        });
        match listening.recv_timeout(Duration::from_secs(60)) {
            Ok(address) => Ok(ServerProcess {
                child,
                address,
                log,
            }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let recent = log.lock().iter().cloned().collect::<Vec<_>>().join("\n");
                bail!("omi-server did not report a listen address; its log:\n{recent}")
            }
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, then reaps the process: nothing gets to flush or close.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// How the process ended, if it has (killed by someone else, crashed).
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn recent_log(&self) -> String {
        self.log
            .lock()
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn drain_log(
    stderr: std::process::ChildStderr,
    log: &Mutex<VecDeque<String>>,
    ready: mpsc::Sender<SocketAddr>,
) {
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        if let Some(address) = listen_address(&line) {
            let _ = ready.send(address);
        }
        let mut log = log.lock();
        if log.len() == KEPT_LOG_LINES {
            log.pop_front();
        }
        log.push_back(line);
    }
}

/// `... INFO listening address=127.0.0.1:41234` -> the address.
fn listen_address(line: &str) -> Option<SocketAddr> {
    if !line.contains("listening") {
        return None;
    }
    let (_, rest) = line.split_once("address=")?;
    rest.split_whitespace().next()?.parse().ok()
}

/// Runs a command-line subcommand with `--json` on `database_url` and returns its JSON answer.
pub fn omi_json(binary: &Path, database_url: &str, args: &[&str]) -> anyhow::Result<Value> {
    let output = Command::new(binary)
        .args(args)
        .arg("--json")
        .env("OMI_DATABASE_URL", database_url)
        .env("OMI_LOG", "warn")
        .output()
        .with_context(|| format!("running {}", binary.display()))?;
    if !output.status.success() {
        bail!(
            "omi-server {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    serde_json::from_slice(&output.stdout).context("the command printed no JSON")
}

/// A user and a developer key holding all eight scopes, made with the command line.
pub struct CliUser {
    pub id: String,
    pub account_token: String,
    pub key: String,
}

pub fn create_user(binary: &Path, database_url: &str, name: &str) -> anyhow::Result<CliUser> {
    let user = omi_json(binary, database_url, &["users", "create", name])?;
    let key = omi_json(
        binary,
        database_url,
        &[
            "keys",
            "create",
            "--user",
            name,
            "--name",
            "all scopes",
            "--scopes",
            "conversations:read,conversations:write,memories:read,memories:write,\
             action_items:read,action_items:write,goals:read,goals:write,webhooks:read,\
             webhooks:write",
        ],
    )?;
    let text = |value: &Value, field: &str| -> anyhow::Result<String> {
        value[field]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("no `{field}` in {value}"))
    };
    Ok(CliUser {
        id: text(&user, "id")?,
        account_token: text(&user, "account_token")?,
        key: text(&key, "key")?,
    })
}

/// The database file inside `dir` that the server and the command line share.
pub fn database_in(dir: &Path) -> PathBuf {
    dir.join("omi.db")
}
