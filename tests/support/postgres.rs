//! A fresh PostgreSQL database per test, created on the server named by `OMI_TEST_DATABASE_URL`
//! and dropped when the test ends, so tests run in parallel and can be repeated.

#![allow(dead_code)]

use std::net::SocketAddr;

use tokio_postgres::NoTls;

pub const TEST_DATABASE_URL_VAR: &str = "OMI_TEST_DATABASE_URL";

/// The server to create test databases on, when the environment names one.
pub fn configured_server_url() -> Option<String> {
    std::env::var(TEST_DATABASE_URL_VAR)
        .ok()
        .filter(|url| !url.trim().is_empty())
}

/// Says why a PostgreSQL test did nothing; `None` means it should run.
pub fn skip_notice(test: &str) -> Option<String> {
    configured_server_url()
        .is_none()
        .then(|| format!("skipped {test} on PostgreSQL: set {TEST_DATABASE_URL_VAR} to run it"))
}

/// One database, dropped (with any connections still open to it) when this value is.
pub struct TestDatabase {
    pub name: String,
    /// The URL of the new database.
    pub url: String,
    server_url: String,
}

impl TestDatabase {
    /// Creates `omi_test_<uuid>` on the configured server; panics when none is configured or it
    /// cannot be reached (a configured server is required, never silently skipped).
    pub async fn create() -> Self {
        let server_url =
            configured_server_url().unwrap_or_else(|| panic!("{TEST_DATABASE_URL_VAR} is not set"));
        Self::create_on(server_url).await
    }

    /// Creates `omi_test_<uuid>` on the server at `server_url`; panics when it cannot.
    pub async fn create_on(server_url: String) -> Self {
        let name = format!("omi_test_{}", uuid::Uuid::new_v4().simple());
        let client = connect(&server_url).await;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|error| panic!("creating the test database {name}: {error}"));
        TestDatabase {
            url: with_database(&server_url, &name),
            name,
            server_url,
        }
    }

    /// The same database reached through another address (a proxy in front of the server).
    pub fn url_through(&self, address: SocketAddr) -> String {
        with_authority_host(&self.url, &address.to_string())
    }

    /// `host:port` of the PostgreSQL server itself.
    pub fn server_address(&self) -> String {
        host_port(&self.url)
    }

    /// A direct connection to the test database, to check what a server wrote.
    pub async fn connect(&self) -> tokio_postgres::Client {
        connect(&self.url).await
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let server_url = self.server_url.clone();
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop cannot await; a separate thread with its own runtime works whichever runtime
        // (if any) the test is on.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(&server_url, NoTls).await?;
                tokio::spawn(connection);
                client.batch_execute(&statement).await
            })
        })
        .join();
        if let Ok(Err(error)) = dropped {
            eprintln!("could not drop a test database: {error}");
        }
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|error| panic!("connecting to the test PostgreSQL server: {error}"));
    tokio::spawn(connection);
    client
}

/// Splits `postgres://[user[:password]@]host[:port][/database][?query]` into the part up to
/// and including `@` (or the scheme), `host[:port]`, and the rest after it.
fn split_authority(url: &str) -> (&str, &str, &str) {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    (
        &url[..scheme_end + host_start],
        &authority[host_start..],
        &rest[authority_end..],
    )
}

fn with_database(url: &str, database: &str) -> String {
    let (head, host, rest) = split_authority(url);
    let query = rest.find('?').map_or("", |i| &rest[i..]);
    format!("{head}{host}/{database}{query}")
}

fn with_authority_host(url: &str, host_port: &str) -> String {
    let (head, _, rest) = split_authority(url);
    format!("{head}{host_port}{rest}")
}

fn host_port(url: &str) -> String {
    let (_, host, _) = split_authority(url);
    if host.is_empty() {
        "127.0.0.1:5432".to_string()
    } else if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:5432")
    }
}

#[test]
fn urls_are_rewritten_for_another_database_or_address() {
    let url = "postgres://u:p@db.example:6543/test?sslmode=disable";
    assert_eq!(
        with_database(url, "omi_x"),
        "postgres://u:p@db.example:6543/omi_x?sslmode=disable"
    );
    assert_eq!(
        with_authority_host(url, "127.0.0.1:9"),
        "postgres://u:p@127.0.0.1:9/test?sslmode=disable"
    );
    assert_eq!(host_port("postgresql://h/test"), "h:5432");
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/test", "d"),
        "postgres://postgres@127.0.0.1:5432/d"
    );
}
