//! TLS to PostgreSQL with libpq's URL conventions.
//!
//! `sslmode` in `OMI_DATABASE_URL`:
//! - `disable`: plain TCP;
//! - `prefer` (the default, as in libpq): TLS when the server offers it, plain otherwise; the
//!   certificate is not checked;
//! - `require`: TLS or no connection; the certificate is not checked, unless `sslrootcert` names
//!   a file, which then makes it `verify-ca` (libpq does the same);
//! - `verify-ca`: TLS, and the certificate must chain to a trusted CA;
//! - `verify-full`: `verify-ca`, and the certificate must name the host connected to.
//!
//! `sslrootcert=<file>` trusts exactly the CAs of that PEM file; without it, or with
//! `sslrootcert=system`, the verifying modes trust the shared outbound roots (the system's and
//! `OMI_EXTRA_CA_FILE`). tokio-postgres knows only `disable|prefer|require`: both parameters are
//! taken out of the URL here, and the verifying modes reach it as `require` with a connector that
//! verifies.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::Context;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::outbound::{self, Outbound};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgSslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl PgSslMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PgSslMode::Disable => "disable",
            PgSslMode::Prefer => "prefer",
            PgSslMode::Require => "require",
            PgSslMode::VerifyCa => "verify-ca",
            PgSslMode::VerifyFull => "verify-full",
        }
    }

    fn for_tokio_postgres(self) -> SslMode {
        match self {
            PgSslMode::Disable => SslMode::Disable,
            PgSslMode::Prefer => SslMode::Prefer,
            PgSslMode::Require | PgSslMode::VerifyCa | PgSslMode::VerifyFull => SslMode::Require,
        }
    }
}

impl FromStr for PgSslMode {
    type Err = anyhow::Error;

    fn from_str(value: &str) -> anyhow::Result<Self> {
        Ok(match value {
            "disable" => PgSslMode::Disable,
            "prefer" => PgSslMode::Prefer,
            "require" => PgSslMode::Require,
            "verify-ca" => PgSslMode::VerifyCa,
            "verify-full" => PgSslMode::VerifyFull,
            // libpq's `allow` tries plain first: prefer is the closest safe reading, but a
            // silent change of meaning is worse than a clear refusal.
            other => anyhow::bail!(
                "sslmode={other} is not supported in OMI_DATABASE_URL \
                 (use disable, prefer, require, verify-ca or verify-full)"
            ),
        })
    }
}

/// Where the verifying modes take their trusted CAs from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// The shared outbound roots (no `sslrootcert`, or `sslrootcert=system`).
    Outbound,
    File(PathBuf),
}

/// `OMI_DATABASE_URL` split into what tokio-postgres reads and the TLS parameters it does not.
#[derive(Debug)]
pub struct PgUrl {
    pub config: tokio_postgres::Config,
    pub mode: PgSslMode,
    pub root_cert: RootCert,
}

impl PgUrl {
    pub fn parse(url: &str) -> anyhow::Result<PgUrl> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut mode = PgSslMode::Prefer;
        let mut root_cert = RootCert::Outbound;
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = decode(value);
            match key {
                "sslmode" => mode = value.parse()?,
                "sslrootcert" if value == "system" => root_cert = RootCert::Outbound,
                "sslrootcert" => root_cert = RootCert::File(PathBuf::from(value)),
                _ => kept.push(pair),
            }
        }
        let mut rewritten = format!(
            "{base}?sslmode={}",
            match mode.for_tokio_postgres() {
                SslMode::Disable => "disable",
                SslMode::Prefer => "prefer",
                _ => "require",
            }
        );
        for pair in kept {
            rewritten.push('&');
            rewritten.push_str(pair);
        }
        let config = tokio_postgres::Config::from_str(&rewritten)
            .context("OMI_DATABASE_URL is not a valid PostgreSQL URL")?;
        // libpq: a root certificate given with `require` makes it verify the chain.
        if mode == PgSslMode::Require && matches!(root_cert, RootCert::File(_)) {
            mode = PgSslMode::VerifyCa;
        }
        Ok(PgUrl {
            config,
            mode,
            root_cert,
        })
    }

    /// The connector for this mode. Reads `sslrootcert` now, so a bad file stops the start.
    pub fn connector(&self, outbound: &Outbound) -> anyhow::Result<MakeRustlsConnect> {
        let config = match self.mode {
            PgSslMode::Disable | PgSslMode::Prefer | PgSslMode::Require => {
                outbound.unverified_config()
            }
            PgSslMode::VerifyCa | PgSslMode::VerifyFull => {
                let roots = match &self.root_cert {
                    RootCert::Outbound => outbound.roots(),
                    RootCert::File(path) => Arc::new(
                        outbound::root_store(outbound::read_certificates(path)?)
                            .with_context(|| format!("sslrootcert={}", path.display()))?,
                    ),
                };
                outbound
                    .verifying_config(roots, self.mode == PgSslMode::VerifyFull)
                    .with_context(|| format!("sslmode={}", self.mode.as_str()))?
            }
        };
        Ok(MakeRustlsConnect::new(config))
    }

    /// What to add to a failed first connection's reason so it says what to change.
    pub fn explain(&self, reason: &str) -> Option<String> {
        let mode = self.mode.as_str();
        if reason.contains("server does not support TLS") {
            return Some(format!(
                "sslmode={mode} requires TLS, and this PostgreSQL server does not accept TLS \
                 connections (turn `ssl = on` on the server, or use sslmode=prefer or disable)"
            ));
        }
        if reason.contains("not valid for name") {
            let hosts = self
                .config
                .get_hosts()
                .iter()
                .map(|host| match host {
                    tokio_postgres::config::Host::Tcp(name) => name.clone(),
                    #[cfg(unix)]
                    tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
                })
                .collect::<Vec<_>>()
                .join(",");
            return Some(format!(
                "sslmode=verify-full: the server's certificate does not name the host `{hosts}` \
                 in OMI_DATABASE_URL (connect with a name the certificate lists, or use \
                 sslmode=verify-ca to check the chain only)"
            ));
        }
        if reason.contains("invalid peer certificate") {
            return Some(format!(
                "sslmode={mode}: the server's certificate is not trusted (name its CA with \
                 sslrootcert=/path/to/ca.pem or OMI_EXTRA_CA_FILE)"
            ));
        }
        None
    }
}

fn decode(value: &str) -> String {
    form_urlencoded::parse(format!("v={value}").as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_prefer_like_libpq() {
        let url = PgUrl::parse("postgres://u@db/omi").unwrap();
        assert_eq!(url.mode, PgSslMode::Prefer);
        assert_eq!(url.config.get_ssl_mode(), SslMode::Prefer);
        assert_eq!(url.root_cert, RootCert::Outbound);
    }

    #[test]
    fn verifying_modes_reach_tokio_postgres_as_require_and_other_parameters_stay() {
        let url = PgUrl::parse(
            "postgresql://u:p%40ss@db.example.com:6543/omi?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fca%20dir%2Fca.pem&connect_timeout=3",
        )
        .unwrap();
        assert_eq!(url.mode, PgSslMode::VerifyFull);
        assert_eq!(url.config.get_ssl_mode(), SslMode::Require);
        assert_eq!(
            url.root_cert,
            RootCert::File(PathBuf::from("/etc/ca dir/ca.pem"))
        );
        assert_eq!(url.config.get_application_name(), Some("x"));
        assert_eq!(url.config.get_password(), Some(&b"p@ss"[..]));
        assert_eq!(url.config.get_ports(), [6543]);
        let ca = PgUrl::parse("postgres://db/omi?sslmode=verify-ca&sslrootcert=system").unwrap();
        assert_eq!(
            (ca.mode, ca.root_cert),
            (PgSslMode::VerifyCa, RootCert::Outbound)
        );
    }

    #[test]
    fn require_with_a_root_certificate_verifies_the_chain_like_libpq() {
        let url = PgUrl::parse("postgres://db/omi?sslmode=require&sslrootcert=/ca.pem").unwrap();
        assert_eq!(url.mode, PgSslMode::VerifyCa);
        let plain = PgUrl::parse("postgres://db/omi?sslmode=require").unwrap();
        assert_eq!(plain.mode, PgSslMode::Require);
    }

    #[test]
    fn unknown_modes_are_refused_with_the_choices() {
        let error = PgUrl::parse("postgres://db/omi?sslmode=allow").unwrap_err();
        assert!(error.to_string().contains("verify-full"), "{error}");
        let error = PgUrl::parse("postgres://db/omi?sslmode=bogus").unwrap_err();
        assert!(error.to_string().contains("sslmode=bogus"), "{error}");
    }

    #[test]
    fn a_missing_root_certificate_file_is_named() {
        let url =
            PgUrl::parse("postgres://db/omi?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")
                .unwrap();
        let error = url.connector(&Outbound::system()).err().unwrap();
        assert!(
            format!("{error:#}").contains("/nonexistent/ca.pem"),
            "{error:#}"
        );
    }
}
