//! DNS-rebinding protection for the MCP endpoint: a web page on another site can make a browser
//! send requests to `localhost` under the attacker's host name, so the endpoint answers only
//! when the `Host` (and the `Origin`, when a browser sends one) names a host it is meant to serve.

use axum::http::uri::Authority;
use axum::http::{HeaderMap, Uri, header};

/// One entry of `OMI_MCP_ALLOWED_HOSTS`: a host name, optionally with the only port it may use.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostPattern {
    host: String,
    port: Option<u16>,
}

/// The allowed hosts, parsed once. `*` allows every host.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    any: bool,
    patterns: Vec<HostPattern>,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Host,
    Origin,
}

impl Refusal {
    pub fn detail(self) -> &'static str {
        match self {
            Refusal::Host => "Host not allowed",
            Refusal::Origin => "Origin not allowed",
        }
    }
}

impl AllowedHosts {
    pub fn parse(entries: &[String]) -> Self {
        let entries: Vec<&str> = entries
            .iter()
            .map(|entry| entry.trim())
            .filter(|entry| !entry.is_empty())
            .collect();
        AllowedHosts {
            any: entries.contains(&"*"),
            patterns: entries.into_iter().filter_map(parse_authority).collect(),
        }
    }

    /// Checks the `Host` header (or the URI's authority, as HTTP/2 sends it), then the `Origin`.
    pub fn check(&self, uri: &Uri, headers: &HeaderMap) -> Result<(), Refusal> {
        if self.any {
            return Ok(());
        }
        let host = headers
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_authority)
            .or_else(|| uri.authority().and_then(|a| parse_authority(a.as_str())));
        if !host.is_some_and(|host| self.allows(&host)) {
            return Err(Refusal::Host);
        }
        match headers.get(header::ORIGIN) {
            None => Ok(()),
            Some(origin) => origin
                .to_str()
                .ok()
                .and_then(parse_origin)
                .filter(|origin| self.allows(origin))
                .map(|_| ())
                .ok_or(Refusal::Origin),
        }
    }

    fn allows(&self, candidate: &HostPattern) -> bool {
        self.patterns.iter().any(|allowed| {
            allowed.host == candidate.host
                && allowed.port.is_none_or(|port| candidate.port == Some(port))
        })
    }
}

fn normalize_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

fn parse_authority(text: &str) -> Option<HostPattern> {
    let authority: Authority = text.trim().parse().ok()?;
    // Credentials in an authority (`user@host`) never belong in a Host header or in our list.
    if authority.as_str().contains('@') || authority.host().is_empty() {
        return None;
    }
    Some(HostPattern {
        host: normalize_host(authority.host()),
        port: authority.port_u16(),
    })
}

/// `scheme://host[:port]`, the port defaulting by scheme; `null` and anything else is refused.
fn parse_origin(text: &str) -> Option<HostPattern> {
    let uri: Uri = text.trim().parse().ok()?;
    let scheme = uri.scheme_str()?;
    let authority = uri.authority()?;
    let default_port = match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    };
    let mut origin = parse_authority(authority.as_str())?;
    origin.port = origin.port.or(default_port);
    Some(origin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn allowed(entries: &[&str]) -> AllowedHosts {
        AllowedHosts::parse(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>())
    }

    fn loopback() -> AllowedHosts {
        allowed(&["localhost", "127.0.0.1", "[::1]"])
    }

    fn request(host: Option<&str>, origin: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(host) = host {
            headers.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        }
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
        }
        headers
    }

    fn check(
        hosts: &AllowedHosts,
        host: Option<&str>,
        origin: Option<&str>,
    ) -> Result<(), Refusal> {
        hosts.check(&Uri::from_static("/v1/mcp"), &request(host, origin))
    }

    #[test]
    fn loopback_names_on_any_port_are_allowed_by_default() {
        let hosts = loopback();
        assert_eq!(check(&hosts, Some("localhost:8080"), None), Ok(()));
        assert_eq!(check(&hosts, Some("127.0.0.1:54321"), None), Ok(()));
        assert_eq!(check(&hosts, Some("[::1]:8080"), None), Ok(()));
        assert_eq!(check(&hosts, Some("LOCALHOST"), None), Ok(()));
    }

    #[test]
    fn a_foreign_host_is_refused() {
        let hosts = loopback();
        assert_eq!(
            check(&hosts, Some("evil.example"), None),
            Err(Refusal::Host)
        );
        assert_eq!(
            check(&hosts, Some("localhost.evil.example"), None),
            Err(Refusal::Host)
        );
        assert_eq!(
            check(&hosts, Some("user@localhost"), None),
            Err(Refusal::Host)
        );
        assert_eq!(check(&hosts, None, None), Err(Refusal::Host));
    }

    #[test]
    fn a_foreign_origin_is_refused_even_with_an_allowed_host() {
        let hosts = loopback();
        assert_eq!(
            check(
                &hosts,
                Some("localhost:8080"),
                Some("http://localhost:3000")
            ),
            Ok(())
        );
        assert_eq!(
            check(&hosts, Some("localhost:8080"), Some("https://evil.example")),
            Err(Refusal::Origin)
        );
        assert_eq!(
            check(&hosts, Some("localhost:8080"), Some("null")),
            Err(Refusal::Origin)
        );
    }

    #[test]
    fn an_entry_with_a_port_allows_only_that_port() {
        let hosts = allowed(&["omi.example.com:8443"]);
        assert_eq!(check(&hosts, Some("omi.example.com:8443"), None), Ok(()));
        assert_eq!(
            check(&hosts, Some("omi.example.com"), None),
            Err(Refusal::Host)
        );
        let https = allowed(&["omi.example.com:443"]);
        assert_eq!(
            check(
                &https,
                Some("omi.example.com:443"),
                Some("https://omi.example.com")
            ),
            Ok(())
        );
    }

    #[test]
    fn a_star_allows_every_host() {
        let hosts = allowed(&["*"]);
        assert_eq!(
            check(&hosts, Some("evil.example"), Some("https://evil.example")),
            Ok(())
        );
    }

    #[test]
    fn http2_requests_are_checked_by_their_authority() {
        let hosts = loopback();
        let uri = Uri::from_static("http://127.0.0.1:8080/v1/mcp");
        assert_eq!(hosts.check(&uri, &HeaderMap::new()), Ok(()));
        let uri = Uri::from_static("http://evil.example/v1/mcp");
        assert_eq!(hosts.check(&uri, &HeaderMap::new()), Err(Refusal::Host));
    }
}
