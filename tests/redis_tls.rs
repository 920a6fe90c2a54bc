//! The Redis limiter over `rediss://`, against a Redis started here with TLS only (Debian's
//! `redis-server` is built with TLS) on a free port of 127.0.0.1, with a certificate for
//! `localhost` from a CA made in the test. Skipped with a notice when `redis-server` is missing.

#[path = "support/tls.rs"]
mod tls;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use omi_server::config::Settings;
use omi_server::domain::credentials::Secret;
use omi_server::outbound::{Outbound, TlsOptions};
use omi_server::ratelimit::{Limiter as _, Limits, RedisLimiter};
use omi_server::state;

use tls::TestCa;

/// A TLS-only Redis, stopped when dropped.
struct TlsRedis {
    child: Child,
    port: u16,
    ca: TestCa,
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TlsRedis {
    fn start(test: &str) -> Option<TlsRedis> {
        if Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            eprintln!("skipping {test}: redis-server is not installed");
            return None;
        }
        let ca = TestCa::new("omi-server test Redis CA");
        let certificate = ca.issue(&["localhost"]);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", "0"])
            .args(["--tls-port", &port.to_string()])
            .arg("--tls-cert-file")
            .arg(&certificate.cert_file)
            .arg("--tls-key-file")
            .arg(&certificate.key_file)
            .arg("--tls-ca-cert-file")
            .arg(&ca.ca_file)
            .args(["--tls-auth-clients", "no"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(ca.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let redis = TlsRedis { child, port, ca };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(redis)
    }

    fn url(&self, host: &str) -> String {
        format!("rediss://{host}:{}/", self.port)
    }

    fn trusting(&self) -> Outbound {
        Outbound::new(&TlsOptions {
            extra_ca_file: Some(self.ca.ca_file.clone()),
            insecure_skip_verify: false,
        })
        .unwrap()
    }
}

fn limits(per_minute: u64) -> Limits {
    Limits {
        per_minute,
        per_day: 0,
        failed_auth_per_minute: 0,
    }
}

fn prefix() -> String {
    format!("omi-test:{}:", uuid::Uuid::new_v4())
}

#[tokio::test]
async fn the_limiter_counts_over_rediss_with_the_extra_ca() {
    let Some(redis) = TlsRedis::start("the_limiter_counts_over_rediss_with_the_extra_ca") else {
        return;
    };
    let limiter = RedisLimiter::connect_with(
        &redis.url("localhost"),
        &prefix(),
        limits(3),
        &redis.trusting(),
    )
    .await
    .expect("rediss:// connects with the test CA trusted");
    let mut allowed = Vec::new();
    for _ in 0..4 {
        let decision = limiter.check_request("key-1", "user-1").await.unwrap();
        allowed.push(decision.allowed);
    }
    assert_eq!(allowed, [true, true, true, false]);
    // The port speaks TLS only: the same limiter over plain redis:// cannot work there.
    let plain = format!("redis://localhost:{}/", redis.port);
    assert!(
        RedisLimiter::connect(&plain, &prefix(), limits(3))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn the_settings_reach_a_rediss_url_through_the_shared_setup() {
    let Some(redis) = TlsRedis::start("the_settings_reach_a_rediss_url_through_the_shared_setup")
    else {
        return;
    };
    let mut settings = Settings::defaults();
    settings.redis_url = Some(Secret::new(redis.url("localhost")));
    settings.redis_key_prefix = prefix();
    settings.rate_limit_per_minute = 2;
    settings.rate_limit_per_day = 0;
    settings.extra_ca_file = Some(redis.ca.ca_file.clone());
    let outbound = Outbound::from_settings(&settings).unwrap();
    let limiter = state::open_limiter(&settings, &outbound).await.unwrap();
    let first = limiter.check_request("key-1", "user-1").await.unwrap();
    let second = limiter.check_request("key-1", "user-1").await.unwrap();
    let third = limiter.check_request("key-1", "user-1").await.unwrap();
    assert_eq!(
        [first.allowed, second.allowed, third.allowed],
        [true, true, false]
    );
}

#[tokio::test]
async fn an_untrusted_or_misnamed_certificate_is_refused_with_the_reason() {
    let Some(redis) =
        TlsRedis::start("an_untrusted_or_misnamed_certificate_is_refused_with_the_reason")
    else {
        return;
    };
    // The system roots do not know the test CA.
    let Err(error) = RedisLimiter::connect(&redis.url("localhost"), &prefix(), limits(3)).await
    else {
        panic!("an untrusted certificate is refused");
    };
    let error = error.to_string();
    assert!(
        error.contains("TLS handshake failed") && error.contains("UnknownIssuer"),
        "{error}"
    );
    // Trusted, but the certificate names `localhost` only.
    let Err(error) = RedisLimiter::connect_with(
        &redis.url("127.0.0.1"),
        &prefix(),
        limits(3),
        &redis.trusting(),
    )
    .await
    else {
        panic!("a certificate for another name is refused");
    };
    let error = error.to_string();
    assert!(error.contains("not valid for name"), "{error}");
}
