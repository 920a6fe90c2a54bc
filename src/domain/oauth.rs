//! OAuth 2.1 for MCP clients: the rules for registering a client (RFC 7591), for an
//! authorization request (PKCE S256 only, exact redirect URIs, `http` only to loopback), the
//! scopes a client may be granted, and the shapes and lifetimes of codes and tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Duration;
use sha2::{Digest, Sha256};

use crate::domain::credentials::{Secret, hash_secret};
use crate::domain::scope::{Scope, ScopeSet};

/// An authorization code is redeemable for this long, once.
pub const CODE_LIFETIME: Duration = Duration::seconds(60);
/// A refresh token lives this long unless it is used (and so replaced) first.
pub const REFRESH_LIFETIME: Duration = Duration::days(30);
/// Prefix of an access token (`omi_oat_` + 32 hex), recognised without a lookup.
pub const ACCESS_TOKEN_PREFIX: &str = "omi_oat_";
/// Prefix of a refresh token.
pub const REFRESH_TOKEN_PREFIX: &str = "omi_ort_";

/// Where the protected-resource metadata (RFC 9728) is served.
pub const PROTECTED_RESOURCE_METADATA: &str = "/.well-known/oauth-protected-resource";

/// The protected-resource metadata path of a resource path (RFC 9728 §3.1: inserted after the
/// well-known prefix).
pub fn resource_metadata_path(resource_path: &str) -> String {
    format!("{PROTECTED_RESOURCE_METADATA}{resource_path}")
}

pub const MAX_REDIRECT_URIS: usize = 10;
pub const MAX_REDIRECT_URI_BYTES: usize = 2000;
pub const MAX_CLIENT_NAME_CHARS: usize = 100;
/// Registered clients kept at most: registration is open to anyone, so its table is bounded.
pub const MAX_CLIENTS: u64 = 10_000;
/// A registered client that never obtained a grant is forgotten after this long.
pub const UNUSED_CLIENT_LIFETIME: Duration = Duration::days(1);

/// What a client asked to be registered as.
#[derive(Debug, Clone, Default)]
pub struct RegistrationRequest {
    pub redirect_uris: Vec<String>,
    pub client_name: Option<String>,
    pub token_endpoint_auth_method: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
}

/// A registration that follows the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub name: String,
    pub redirect_uris: Vec<String>,
}

/// Why a registration was refused (RFC 7591 §3.2.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    #[error("{0}")]
    InvalidRedirectUri(String),
    #[error("{0}")]
    InvalidMetadata(String),
}

impl RegistrationError {
    pub fn code(&self) -> &'static str {
        match self {
            RegistrationError::InvalidRedirectUri(_) => "invalid_redirect_uri",
            RegistrationError::InvalidMetadata(_) => "invalid_client_metadata",
        }
    }
}

/// Checks a registration: 1..10 redirect URIs, each https or http to a loopback host, no
/// fragment; a public client (`none`) using the authorization code (and refresh token) grant.
pub fn check_registration(request: RegistrationRequest) -> Result<Registration, RegistrationError> {
    if request.redirect_uris.is_empty() || request.redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(RegistrationError::InvalidRedirectUri(format!(
            "redirect_uris must hold between 1 and {MAX_REDIRECT_URIS} URIs"
        )));
    }
    let mut redirect_uris: Vec<String> = Vec::new();
    for uri in &request.redirect_uris {
        check_redirect_uri(uri).map_err(RegistrationError::InvalidRedirectUri)?;
        if !redirect_uris.contains(uri) {
            redirect_uris.push(uri.clone());
        }
    }
    match request.token_endpoint_auth_method.as_deref() {
        None | Some("none") => {}
        Some(other) => {
            return Err(RegistrationError::InvalidMetadata(format!(
                "token_endpoint_auth_method {other} is not supported: only public clients (none) register here"
            )));
        }
    }
    if let Some(grants) = &request.grant_types
        && let Some(other) = grants
            .iter()
            .find(|grant| !matches!(grant.as_str(), "authorization_code" | "refresh_token"))
    {
        return Err(RegistrationError::InvalidMetadata(format!(
            "grant type {other} is not supported: use authorization_code and refresh_token"
        )));
    }
    if let Some(types) = &request.response_types
        && let Some(other) = types.iter().find(|kind| kind.as_str() != "code")
    {
        return Err(RegistrationError::InvalidMetadata(format!(
            "response type {other} is not supported: use code"
        )));
    }
    let name = request
        .client_name
        .as_deref()
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .unwrap_or("Unnamed client");
    if name.chars().count() > MAX_CLIENT_NAME_CHARS {
        return Err(RegistrationError::InvalidMetadata(format!(
            "client_name has at most {MAX_CLIENT_NAME_CHARS} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(RegistrationError::InvalidMetadata(
            "client_name must not contain control characters".into(),
        ));
    }
    Ok(Registration {
        name: name.to_string(),
        redirect_uris,
    })
}

/// A redirect URI a client may register: absolute, no fragment, no credentials, https, or
/// http to a loopback host (RFC 8252 §7.3).
pub fn check_redirect_uri(uri: &str) -> Result<(), String> {
    if uri.len() > MAX_REDIRECT_URI_BYTES {
        return Err(format!(
            "a redirect URI has at most {MAX_REDIRECT_URI_BYTES} bytes"
        ));
    }
    let parsed = url::Url::parse(uri).map_err(|_| format!("{uri} is not an absolute URI"))?;
    if parsed.fragment().is_some() {
        return Err(format!("{uri} must not have a fragment"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!("{uri} must not carry credentials"));
    }
    let host = parsed.host().ok_or_else(|| format!("{uri} has no host"))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&host) => Ok(()),
        "http" => Err(format!(
            "{uri}: http redirect URIs are allowed only to localhost, 127.0.0.1 or [::1]"
        )),
        other => Err(format!("{uri}: scheme {other} is not allowed (use https)")),
    }
}

fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// The host (and port, when not the scheme's default) the consent page names.
pub fn redirect_host(uri: &str) -> String {
    url::Url::parse(uri)
        .ok()
        .and_then(|url| {
            let host = url.host_str()?.to_string();
            Some(match url.port() {
                Some(port) => format!("{host}:{port}"),
                None => host,
            })
        })
        .unwrap_or_default()
}

/// The origin of a redirect URI, for the consent page's `form-action`.
pub fn redirect_origin(uri: &str) -> Option<String> {
    let url = url::Url::parse(uri).ok()?;
    Some(url.origin().ascii_serialization()).filter(|origin| origin != "null")
}

/// `redirect_uri` with `params` added to its query (RFC 6749 §4.1.2: its own query is kept).
pub fn redirect_with(uri: &str, params: &[(&str, &str)]) -> String {
    match url::Url::parse(uri) {
        Ok(mut url) => {
            {
                let mut query = url.query_pairs_mut();
                for (name, value) in params {
                    query.append_pair(name, value);
                }
            }
            url.to_string()
        }
        Err(_) => uri.to_string(),
    }
}

/// The scopes an MCP client is offered when it asks for none: the scopes of the MCP tools
/// (reading and writing memories, conversations, action items and goals).
pub fn default_offer() -> ScopeSet {
    [
        Scope::ConversationsRead,
        Scope::ConversationsWrite,
        Scope::MemoriesRead,
        Scope::MemoriesWrite,
        Scope::ActionItemsRead,
        Scope::ActionItemsWrite,
        Scope::GoalsRead,
        Scope::GoalsWrite,
    ]
    .into_iter()
    .collect()
}

/// The `scope` parameter (space-separated names): absent or blank offers the default;
/// an unknown name is `Err` with that name.
pub fn requested_scopes(scope: Option<&str>) -> Result<ScopeSet, String> {
    match scope.map(str::trim).filter(|scope| !scope.is_empty()) {
        None => Ok(default_offer()),
        Some(scope) => ScopeSet::parse(scope.split_ascii_whitespace()),
    }
}

/// The space-separated form of a scope set, as token answers carry it.
pub fn scope_string(scopes: ScopeSet) -> String {
    scopes.names().join(" ")
}

/// A PKCE `code_challenge` for S256: 43 base64url characters (RFC 7636 §4.2).
pub fn is_valid_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The S256 challenge of a `code_verifier`; `None` for a verifier that breaks RFC 7636 §4.1
/// (43..128 unreserved characters).
pub fn s256_challenge(verifier: &str) -> Option<String> {
    let valid = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    valid.then(|| URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())))
}

/// A new secret value: the raw value for the client, its hash for the database.
#[derive(Debug)]
pub struct Issued {
    pub raw: Secret,
    pub hash: String,
}

fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).expect("the operating system's random number generator failed");
    hex::encode(buffer)
}

/// The hash a token is stored and looked up by: the hash of its secret part, like keys.
/// `None` for anything that is not shaped like an access or refresh token.
pub fn token_hash(token: &str) -> Option<String> {
    access_token_hash(token).or_else(|| refresh_token_hash(token))
}

/// [`token_hash`] of an access token only (what a bearer header may carry).
pub fn access_token_hash(token: &str) -> Option<String> {
    secret_hash(token.strip_prefix(ACCESS_TOKEN_PREFIX)?)
}

/// [`token_hash`] of a refresh token only.
pub fn refresh_token_hash(token: &str) -> Option<String> {
    secret_hash(token.strip_prefix(REFRESH_TOKEN_PREFIX)?)
}

fn secret_hash(secret: &str) -> Option<String> {
    (secret.len() == 32
        && secret
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
    .then(|| hash_secret(secret))
}

fn issue_token(prefix: &str) -> Issued {
    let secret = random_hex(16);
    Issued {
        hash: hash_secret(&secret),
        raw: Secret::new(format!("{prefix}{secret}")),
    }
}

pub fn issue_access_token() -> Issued {
    issue_token(ACCESS_TOKEN_PREFIX)
}

pub fn issue_refresh_token() -> Issued {
    issue_token(REFRESH_TOKEN_PREFIX)
}

/// An authorization code: 256 random bits, stored as its hash.
pub fn issue_code() -> Issued {
    let raw = random_hex(32);
    Issued {
        hash: hash_secret(&raw),
        raw: Secret::new(raw),
    }
}

/// The hash a code is stored by.
pub fn code_hash(code: &str) -> String {
    hash_secret(code)
}

/// A new client id (public: it identifies, it does not authenticate).
pub fn new_client_id() -> String {
    format!("omi_client_{}", random_hex(16))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration(uris: &[&str]) -> RegistrationRequest {
        RegistrationRequest {
            redirect_uris: uris.iter().map(|uri| uri.to_string()).collect(),
            client_name: Some("Claude".into()),
            ..Default::default()
        }
    }

    #[test]
    fn https_and_loopback_http_redirects_are_accepted() {
        for uri in [
            "https://claude.ai/api/mcp/auth_callback",
            "http://127.0.0.1:33418/callback",
            "http://localhost/cb?x=1",
            "http://[::1]:8080/cb",
        ] {
            assert_eq!(check_redirect_uri(uri), Ok(()), "{uri}");
        }
    }

    #[test]
    fn other_redirects_are_refused() {
        for uri in [
            "http://example.com/cb",
            "https://example.com/cb#frag",
            "https://user:pw@example.com/cb",
            "javascript:alert(1)",
            "/relative",
            "ftp://example.com/cb",
        ] {
            assert!(check_redirect_uri(uri).is_err(), "{uri}");
        }
    }

    #[test]
    fn registrations_are_bounded() {
        assert!(check_registration(registration(&[])).is_err());
        let many: Vec<String> = (0..11).map(|i| format!("https://a.example/{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(check_registration(registration(&many)).is_err());
        let mut long_name = registration(&["https://a.example/cb"]);
        long_name.client_name = Some("x".repeat(101));
        assert_eq!(
            check_registration(long_name).unwrap_err().code(),
            "invalid_client_metadata"
        );
        let mut confidential = registration(&["https://a.example/cb"]);
        confidential.token_endpoint_auth_method = Some("client_secret_basic".into());
        assert!(check_registration(confidential).is_err());
        let ok = check_registration(registration(&["https://a.example/cb"])).unwrap();
        assert_eq!(ok.name, "Claude");
    }

    #[test]
    fn the_s256_challenge_matches_rfc_7636_appendix_b() {
        assert_eq!(
            s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").as_deref(),
            Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
        );
        assert_eq!(s256_challenge("short"), None);
        assert!(is_valid_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!is_valid_challenge("plain-verifier"));
    }

    #[test]
    fn scopes_default_to_the_mcp_tools_and_unknown_ones_are_named() {
        assert_eq!(requested_scopes(None), Ok(default_offer()));
        assert_eq!(requested_scopes(Some("  ")), Ok(default_offer()));
        assert_eq!(
            requested_scopes(Some("memories:read goals:read"))
                .unwrap()
                .names(),
            ["memories:read", "goals:read"]
        );
        assert_eq!(
            requested_scopes(Some("memories:read admin")),
            Err("admin".into())
        );
    }

    #[test]
    fn redirects_keep_their_own_query() {
        assert_eq!(
            redirect_with(
                "https://a.example/cb?x=1",
                &[("code", "c"), ("state", "s t")]
            ),
            "https://a.example/cb?x=1&code=c&state=s+t"
        );
        assert_eq!(redirect_host("https://a.example:8443/cb"), "a.example:8443");
        assert_eq!(
            redirect_origin("http://127.0.0.1:5000/cb").as_deref(),
            Some("http://127.0.0.1:5000")
        );
    }

    #[test]
    fn tokens_are_hashed_by_their_secret_part() {
        let access = issue_access_token();
        assert_eq!(token_hash(access.raw.expose()), Some(access.hash));
        let refresh = issue_refresh_token();
        assert_eq!(token_hash(refresh.raw.expose()), Some(refresh.hash));
        assert_eq!(token_hash("omi_oat_short"), None);
    }
}
