//! A PostgreSQL server of the benchmark's own, in a temporary folder on a free port, started
//! pinned to given CPUs (its backends inherit the setting from the postmaster). A shared server
//! started by someone else cannot be re-pinned without changing it for everyone.

use std::ffi::CString;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Where `initdb` and `postgres` are looked for unless `OMI_BENCH_PG_BIN` names a folder.
const DEFAULT_BIN: &str = "/usr/lib/postgresql/15/bin";
/// PostgreSQL refuses to run as root; a root benchmark runs it as this system user.
const SYSTEM_USER: &str = "postgres";

pub struct PrivatePostgres {
    postmaster: Child,
    folder: tempfile::TempDir,
    /// `postgres://postgres@127.0.0.1:<port>/postgres`
    pub url: String,
}

impl PrivatePostgres {
    pub async fn start(cpus: &[usize]) -> anyhow::Result<Self> {
        let bin = PathBuf::from(std::env::var("OMI_BENCH_PG_BIN").unwrap_or(DEFAULT_BIN.into()));
        let folder = tempfile::tempdir()?;
        let data = folder.path().join("data");
        // SAFETY: `geteuid` reads the process's credentials and cannot fail.
        let owner = if unsafe { libc::geteuid() } == 0 {
            let (uid, gid) = system_user()?;
            std::os::unix::fs::chown(folder.path(), Some(uid), Some(gid))?;
            Some((uid, gid))
        } else {
            None
        };
        let initdb = run_as(owner, &bin.join("initdb"))
            .args(["--auth=trust", "--username=postgres", "--no-sync", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .output()
            .context("running initdb")?;
        if !initdb.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&initdb.stderr));
        }
        let port = free_port()?;
        let cpu_list = cpus
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let mut command = run_as(owner, Path::new("taskset"));
        command
            .args(["-c", &cpu_list])
            .arg(bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(folder.path())
            .args(["-c", "listen_addresses=127.0.0.1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let postmaster = command.spawn().context("starting postgres")?;
        let server = PrivatePostgres {
            postmaster,
            folder,
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        };
        server.wait_until_ready().await?;
        Ok(server)
    }

    async fn wait_until_ready(&self) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            match tokio_postgres::connect(&self.url, tokio_postgres::NoTls).await {
                Ok(_) => return Ok(()),
                Err(error) if started.elapsed() > Duration::from_secs(30) => {
                    bail!(
                        "the private PostgreSQL in {} did not accept connections: {error}",
                        self.folder.path().display()
                    )
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        // SIGINT is PostgreSQL's fast shutdown (`taskset` has exec'd it: the pid is the
        // postmaster's). The data folder goes with the temporary folder.
        // SAFETY: signals a child this value owns and has not reaped.
        unsafe { libc::kill(self.postmaster.id() as i32, libc::SIGINT) };
        let _ = self.postmaster.wait();
    }
}

/// `program`, run as `owner` (uid, gid) when given.
fn run_as(owner: Option<(u32, u32)>, program: &Path) -> Command {
    let mut command = Command::new(program);
    if let Some((uid, gid)) = owner {
        command.uid(uid).gid(gid);
    }
    command
}

/// The PostgreSQL system user's uid and gid.
fn system_user() -> anyhow::Result<(u32, u32)> {
    let name = CString::new(SYSTEM_USER)?;
    // SAFETY: `getpwnam` returns null or a pointer to a static entry, read at once.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    if entry.is_null() {
        bail!(
            "PostgreSQL refuses to run as root and there is no `{SYSTEM_USER}` user to run it as"
        );
    }
    // SAFETY: checked not null above.
    let entry = unsafe { &*entry };
    Ok((entry.pw_uid, entry.pw_gid))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
