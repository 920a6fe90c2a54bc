//! The server's public origin (`https://omi.example.com`), for the absolute URLs of the OAuth
//! metadata and `WWW-Authenticate` challenges: `OMI_PUBLIC_URL` when set; otherwise the
//! request's `Host`, with the scheme (and host) a trusted proxy forwarded.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use crate::config::Settings;

/// The public origin a request was addressed to, without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicOrigin(pub String);

impl PublicOrigin {
    /// `origin` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }
}

/// The first value of a comma list header a trusted proxy set.
fn forwarded<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)?
        .to_str()
        .ok()?
        .split(',')
        .next()
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

/// Whether `peer` is one of `OMI_TRUSTED_PROXIES`, whose forwarded headers are believed.
pub fn from_trusted_proxy(peer: Option<SocketAddr>, settings: &Settings) -> bool {
    peer.is_some_and(|peer| settings.trusted_proxies.contains(&peer.ip()))
}

/// Whether the client reached us over https: only a trusted proxy's `X-Forwarded-Proto` is
/// believed, as the server itself speaks plain HTTP.
pub fn over_https(headers: &HeaderMap, peer: Option<SocketAddr>, settings: &Settings) -> bool {
    from_trusted_proxy(peer, settings)
        && forwarded(headers, "x-forwarded-proto")
            .is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
}

/// A host header value we are willing to echo into a URL: an authority with no path, query,
/// credentials or spaces.
fn plausible_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_')
        })
}

pub fn public_origin(
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    settings: &Settings,
) -> PublicOrigin {
    if let Some(url) = settings
        .public_url
        .as_deref()
        .map(str::trim)
        .filter(|url| !url.is_empty())
    {
        return PublicOrigin(url.trim_end_matches('/').to_string());
    }
    let scheme = if over_https(headers, peer, settings) {
        "https"
    } else {
        "http"
    };
    let trusted = from_trusted_proxy(peer, settings);
    let host = trusted
        .then(|| forwarded(headers, "x-forwarded-host"))
        .flatten()
        .or_else(|| {
            headers
                .get(header::HOST)
                .and_then(|host| host.to_str().ok())
        })
        .map(str::trim)
        .filter(|host| plausible_host(host))
        .map(str::to_string)
        .unwrap_or_else(|| settings.listen.to_string());
    PublicOrigin(format!("{scheme}://{host}"))
}

/// The public origin as an extractor, for any state that can lend the settings.
impl FromRequestParts<crate::state::AppState> for PublicOrigin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &crate::state::AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0);
        Ok(public_origin(&parts.headers, peer, &state.settings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn the_setting_wins() {
        let mut settings = Settings::defaults();
        settings.public_url = Some("https://omi.example.com/".into());
        let origin = public_origin(&headers(&[("host", "evil.example")]), None, &settings);
        assert_eq!(origin.url("/v1/mcp"), "https://omi.example.com/v1/mcp");
    }

    #[test]
    fn the_host_header_is_the_fallback_and_proxies_are_believed_only_when_trusted() {
        let mut settings = Settings::defaults();
        let peer: SocketAddr = "10.0.0.2:4000".parse().unwrap();
        let request = headers(&[
            ("host", "127.0.0.1:8080"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "omi.example.com"),
        ]);
        assert_eq!(
            public_origin(&request, Some(peer), &settings).0,
            "http://127.0.0.1:8080"
        );
        settings.trusted_proxies = vec![peer.ip()];
        assert_eq!(
            public_origin(&request, Some(peer), &settings).0,
            "https://omi.example.com"
        );
        let odd = headers(&[("host", "a.example/evil?x")]);
        assert_eq!(
            public_origin(&odd, None, &settings).0,
            "http://127.0.0.1:8080"
        );
    }
}
