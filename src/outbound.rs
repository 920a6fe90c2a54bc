//! The one outbound TLS setup shared by everything that calls out: the model endpoint, the
//! PostgreSQL and Redis connections, and any later HTTP client.
//!
//! rustls with the ring provider, no OpenSSL. Trusted roots are the operating system's store
//! (read by `rustls-native-certs`, which honours `SSL_CERT_FILE` and `SSL_CERT_DIR`), or the
//! bundled Mozilla roots (`webpki-roots`) when the system has none, as in a minimal container;
//! the certificates of `OMI_EXTRA_CA_FILE` are trusted on top, for a private CA. The extra file is
//! read when the settings are loaded, so a missing or unreadable one stops the start with a clear
//! message; the system store is read on first use, so a server that never calls out over TLS
//! never pays for it.
//!
//! Certificate verification is on unless `OMI_TLS_INSECURE_SKIP_VERIFY=true`, which is meant for
//! tests against throwaway certificates and logs a warning.
//!
//! Build every HTTP client with [`Outbound::http_client`]: reqwest is compiled without a crypto
//! provider of its own (its default would be aws-lc-rs), so a bare `reqwest::Client::new()` works
//! only once [`install_crypto_provider`] has run (as `main` and [`Outbound::new`] do).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientConfig, WebPkiServerVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::Settings;

/// What the shared TLS setup is built from.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// PEM file of extra certificate authorities to trust.
    pub extra_ca_file: Option<PathBuf>,
    /// Accept any server certificate (tests only).
    pub insecure_skip_verify: bool,
}

/// The shared outbound TLS setup; cheap to clone.
#[derive(Clone)]
pub struct Outbound {
    inner: Arc<Inner>,
}

struct Inner {
    provider: Arc<CryptoProvider>,
    extra_ca: Vec<CertificateDer<'static>>,
    insecure: bool,
    roots: OnceLock<Arc<RootCertStore>>,
    config: OnceLock<Arc<ClientConfig>>,
}

impl fmt::Debug for Outbound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outbound")
            .field("extra_ca", &self.inner.extra_ca.len())
            .field("insecure", &self.inner.insecure)
            .finish()
    }
}

impl Outbound {
    /// From `OMI_EXTRA_CA_FILE` and `OMI_TLS_INSECURE_SKIP_VERIFY`.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Outbound> {
        Outbound::new(&TlsOptions {
            extra_ca_file: settings.extra_ca_file.clone(),
            insecure_skip_verify: settings.tls_insecure_skip_verify,
        })
    }

    pub fn new(options: &TlsOptions) -> anyhow::Result<Outbound> {
        let extra_ca = match &options.extra_ca_file {
            Some(path) => read_certificates(path).context("OMI_EXTRA_CA_FILE")?,
            None => Vec::new(),
        };
        if options.insecure_skip_verify {
            tracing::warn!(
                "OMI_TLS_INSECURE_SKIP_VERIFY is on: the certificates of HTTPS and rediss:// \
                 servers are not checked, so anyone on the network path can read and change that \
                 traffic; use it for tests only"
            );
        }
        install_crypto_provider();
        Ok(Outbound {
            inner: Arc::new(Inner {
                provider: Arc::new(ring_provider()),
                extra_ca,
                insecure: options.insecure_skip_verify,
                roots: OnceLock::new(),
                config: OnceLock::new(),
            }),
        })
    }

    /// The system roots only, verification on: for tools and tests without settings.
    pub fn system() -> Outbound {
        Outbound::new(&TlsOptions::default()).expect("no file to read")
    }

    pub fn provider(&self) -> Arc<CryptoProvider> {
        self.inner.provider.clone()
    }

    /// Whether `OMI_TLS_INSECURE_SKIP_VERIFY` is on.
    pub fn skips_verification(&self) -> bool {
        self.inner.insecure
    }

    /// The trusted roots: the system's (or the bundled ones) and the extra CA file's.
    pub fn roots(&self) -> Arc<RootCertStore> {
        self.inner
            .roots
            .get_or_init(|| Arc::new(load_roots(&self.inner.extra_ca)))
            .clone()
    }

    /// The client configuration for HTTPS and `rediss://`: verifying against [`Self::roots`],
    /// or accepting anything when verification is switched off.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.inner
            .config
            .get_or_init(|| {
                Arc::new(if self.inner.insecure {
                    self.unverified_config()
                } else {
                    self.verifying_config(self.roots(), true)
                        .expect("the ring provider supports the default protocol versions")
                })
            })
            .clone()
    }

    /// A configuration that checks the server's certificate chain against `roots`, and its
    /// name too when `check_name` is set.
    pub fn verifying_config(
        &self,
        roots: Arc<RootCertStore>,
        check_name: bool,
    ) -> anyhow::Result<ClientConfig> {
        let verifier = WebPkiServerVerifier::builder_with_provider(roots, self.provider())
            .build()
            .context("no trusted certificate authority to verify servers with")?;
        let builder = ClientConfig::builder_with_provider(self.provider())
            .with_safe_default_protocol_versions()?;
        let config = if check_name {
            builder.with_webpki_verifier(verifier).with_no_client_auth()
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly(verifier)))
                .with_no_client_auth()
        };
        Ok(config)
    }

    /// A configuration that encrypts but accepts any certificate (the handshake's signatures
    /// are still checked). For PostgreSQL's `sslmode=prefer|require` and the insecure switch.
    pub fn unverified_config(&self) -> ClientConfig {
        ClientConfig::builder_with_provider(self.provider())
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(
                self.inner.provider.signature_verification_algorithms,
            )))
            .with_no_client_auth()
    }

    /// A builder for an HTTP client speaking TLS with [`Self::client_config`]; the caller adds
    /// its own timeouts.
    pub fn http_client(&self) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .user_agent(concat!("omi-server/", env!("CARGO_PKG_VERSION")))
            .tls_backend_preconfigured((*self.client_config()).clone())
    }
}

/// Makes ring the process's default rustls provider, for libraries that build their own
/// configuration (a bare `reqwest::Client`, the redis crate's own TLS); later calls do nothing.
pub fn install_crypto_provider() {
    let _ = ring_provider().install_default();
}

/// rustls on ring: a plain C and assembly build (aws-lc-rs, rustls's default, needs a much longer
/// C build). rustls marks it deprecated because ring has no post-quantum key exchange; the
/// classical X25519 and P-256 exchanges it offers are what the services connected to accept.
#[allow(deprecated)]
fn ring_provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// Every certificate in a PEM file; an error when the file cannot be read or holds none.
pub fn read_certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path)
        .with_context(|| format!("cannot read the certificate file {}", path.display()))?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} is not a PEM certificate file", path.display()))?;
    anyhow::ensure!(
        !certificates.is_empty(),
        "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
        path.display()
    );
    Ok(certificates)
}

/// A root store of exactly these certificates; an error when one is not a usable CA.
pub fn root_store(certificates: Vec<CertificateDer<'static>>) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for certificate in certificates {
        roots
            .add(certificate)
            .map_err(|error| anyhow::anyhow!("unusable CA certificate: {error}"))?;
    }
    Ok(roots)
}

fn load_roots(extra: &[CertificateDer<'static>]) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::debug!(error = %error, "reading the system's trusted certificates");
    }
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    if added == 0 {
        tracing::info!(
            "no trusted certificates in the system store; using the bundled Mozilla roots"
        );
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    for certificate in extra {
        if let Err(error) = roots.add(certificate.clone()) {
            tracing::warn!(error = %error, "a certificate of OMI_EXTRA_CA_FILE is not a usable CA");
        }
    }
    roots
}

/// Checks the chain, not the name: PostgreSQL's `sslmode=verify-ca`.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The name is checked last, after the chain: a name error means the chain is good.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Accepts any certificate; the handshake signatures are still verified.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// An error and its causes on one line: TLS failures keep their reason in the source chain
/// (`error sending request` alone says nothing about an untrusted certificate).
pub fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
        source = source.and_then(std::error::Error::source);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_extra_ca_file_is_a_clear_error() {
        let error = Outbound::new(&TlsOptions {
            extra_ca_file: Some("/nonexistent/ca.pem".into()),
            insecure_skip_verify: false,
        })
        .unwrap_err();
        let message = format!("{error:#}");
        assert!(
            message.contains("OMI_EXTRA_CA_FILE") && message.contains("/nonexistent/ca.pem"),
            "{message}"
        );
    }

    #[test]
    fn a_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let error = read_certificates(&path).unwrap_err();
        assert!(
            format!("{error:#}").contains("no PEM certificate"),
            "{error:#}"
        );
    }

    #[test]
    fn there_are_always_roots_to_verify_with() {
        let outbound = Outbound::system();
        assert!(!outbound.roots().is_empty());
        assert!(!outbound.skips_verification());
    }
}
