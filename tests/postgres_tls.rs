//! PostgreSQL over TLS with libpq's `sslmode` and `sslrootcert`, against the local server.
//!
//! The verifying tests need a server whose certificate (for `localhost` only) is issued by the
//! CA in `OMI_TEST_PG_TLS_CA`; `.ci/run` sets that up (`.ci/run pg-tls` alone does it for
//! development). Without that variable, or without `OMI_TEST_DATABASE_URL`, they print a notice
//! and pass. A server that refuses TLS is played by a listener answering the TLS request with
//! `N`, as PostgreSQL without `ssl = on` does, so that test always runs.

#[path = "support/postgres.rs"]
mod pg_support;

use omi_server::config::Settings;
use omi_server::domain::credentials::Secret;
use omi_server::store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use pg_support::{TestDatabase, configured_server_url};

const CA_VAR: &str = "OMI_TEST_PG_TLS_CA";

/// The test database and the CA file, or `None` (with a notice) when not configured.
async fn configured(test: &str) -> Option<(TestDatabase, String)> {
    let ca = std::env::var(CA_VAR)
        .ok()
        .filter(|ca| !ca.trim().is_empty());
    match (configured_server_url(), ca) {
        (Some(_), Some(ca)) => Some((TestDatabase::create().await, ca)),
        _ => {
            eprintln!(
                "skipped {test}: set OMI_TEST_DATABASE_URL and {CA_VAR} (.ci/run pg-tls) to run it"
            );
            None
        }
    }
}

/// The test database's URL with `host` in place of its address, and these parameters.
fn url_with(database: &TestDatabase, host: &str, query: &str) -> String {
    let port = database
        .server_address()
        .rsplit_once(':')
        .map(|(_, port)| port.to_string())
        .unwrap();
    database
        .url
        .replacen(&database.server_address(), &format!("{host}:{port}"), 1)
        + "?"
        + query
}

async fn open(url: &str) -> anyhow::Result<std::sync::Arc<dyn Store>> {
    let mut settings = Settings::defaults();
    settings.database_url = Secret::new(url.to_string());
    settings.pg_timeout_ms = 5_000;
    omi_server::store::open(&settings).await
}

/// Connections to `database` that are encrypted, seen from the server.
async fn encrypted_connections(database: &TestDatabase) -> i64 {
    database
        .connect()
        .await
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
             WHERE datname = $1 AND ssl",
            &[&database.name],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn verify_full_with_sslrootcert_connects_encrypted() {
    let Some((database, ca)) = configured("verify_full_with_sslrootcert_connects_encrypted").await
    else {
        return;
    };
    let url = url_with(
        &database,
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    let store = open(&url).await.expect("verify-full connects");
    assert_eq!(store.count_users().await.unwrap(), 0, "migrated and usable");
    assert!(
        encrypted_connections(&database).await >= 1,
        "the store's connection is TLS"
    );
    store.close().await.unwrap();
}

#[tokio::test]
async fn verify_full_refuses_a_host_the_certificate_does_not_name() {
    let Some((database, ca)) =
        configured("verify_full_refuses_a_host_the_certificate_does_not_name").await
    else {
        return;
    };
    // The certificate names `localhost` only.
    let url = url_with(
        &database,
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    let error = format!(
        "{:#}",
        open(&url).await.err().expect("a name mismatch fails")
    );
    assert!(
        error.contains("verify-full")
            && error.contains("does not name the host `127.0.0.1`")
            && error.contains("not valid for name"),
        "{error}"
    );
    // verify-ca checks the chain alone, so the same address is fine.
    let url = url_with(
        &database,
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={ca}"),
    );
    open(&url)
        .await
        .expect("verify-ca connects")
        .close()
        .await
        .unwrap();
}

#[tokio::test]
async fn verify_full_refuses_a_certificate_from_an_untrusted_ca() {
    let Some((database, _ca)) =
        configured("verify_full_refuses_a_certificate_from_an_untrusted_ca").await
    else {
        return;
    };
    // The system roots do not include the throwaway CA.
    let url = url_with(&database, "localhost", "sslmode=verify-full");
    let error = format!("{:#}", open(&url).await.err().expect("an unknown CA fails"));
    assert!(
        error.contains("not trusted") && error.contains("UnknownIssuer"),
        "{error}"
    );
}

#[tokio::test]
async fn require_encrypts_without_checking_the_certificate_and_prefer_is_the_default() {
    let Some((database, _ca)) =
        configured("require_encrypts_without_checking_the_certificate_and_prefer_is_the_default")
            .await
    else {
        return;
    };
    let store = open(&url_with(&database, "127.0.0.1", "sslmode=require"))
        .await
        .expect("require connects to any certificate, as in libpq");
    assert!(encrypted_connections(&database).await >= 1);
    store.close().await.unwrap();
    // No sslmode: prefer, which takes the TLS the server offers.
    let store = open(&database.url).await.unwrap();
    assert!(encrypted_connections(&database).await >= 1);
    store.close().await.unwrap();
    let store = open(&url_with(&database, "127.0.0.1", "sslmode=disable"))
        .await
        .unwrap();
    assert_eq!(encrypted_connections(&database).await, 0);
    store.close().await.unwrap();
}

/// A listener that answers every TLS request with `N` and then closes, like a PostgreSQL
/// server without TLS.
async fn server_without_tls() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        for _ in 0..16 {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                // SSLRequest: length 8, code 80877103.
                let mut request = [0u8; 8];
                if socket.read_exact(&mut request).await.is_ok()
                    && request == [0, 0, 0, 8, 4, 210, 22, 47]
                {
                    let _ = socket.write_all(b"N").await;
                }
            });
        }
    });
    address
}

#[tokio::test]
async fn require_against_a_server_without_tls_fails_clearly() {
    let address = server_without_tls().await;
    let url = format!("postgres://postgres@{address}/omi?sslmode=require");
    let error = format!(
        "{:#}",
        open(&url).await.err().expect("no TLS, no connection")
    );
    assert!(
        error.contains("sslmode=require requires TLS")
            && error.contains("does not accept TLS connections"),
        "{error}"
    );
}
