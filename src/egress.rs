//! Calls to addresses users choose (webhook URLs), guarded against server-side request forgery:
//! only `http(s)`; loopback, private, link-local, shared, multicast and cloud-metadata
//! addresses are refused after name resolution, at every connection (a name that resolves to
//! such an address is refused too, and the address checked is the one connected to, so a
//! name cannot change its answer between check and use); redirects are never followed; no
//! proxy from the environment. `OMI_WEBHOOK_ALLOW_PRIVATE=true` lifts the address rule (for a
//! receiver on the same host or network).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::outbound::Outbound;

/// Why a destination was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("only http and https URLs are allowed")]
    Scheme,
    #[error("the URL has no host")]
    NoHost,
    #[error("the destination address {0} is private, loopback, link-local or metadata")]
    Address(IpAddr),
    #[error("the host name resolves to no allowed address")]
    NoAllowedAddress,
}

/// Whether a user-chosen URL may never reach this address (unless private ones are allowed).
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (first & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
                || (first == 0x0064 && v6.segments()[1] == 0xff9b) // NAT64 64:ff9b::/96
                || (first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) // AWS metadata
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254/16, the metadata address 169.254.169.254 included
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space 100.64/10
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

/// Checks the scheme, and a host written as an address (the HTTP client connects to a
/// literal address without resolving it, so the resolver below never sees it).
pub fn check_url(url: &reqwest::Url, allow_private: bool) -> Result<(), Refused> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Refused::Scheme);
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or(Refused::NoHost)?;
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    let Ok(ip) = literal.parse::<IpAddr>() else {
        return Ok(()); // a name: checked when it is resolved
    };
    if !allow_private && is_forbidden(ip) {
        return Err(Refused::Address(ip));
    }
    Ok(())
}

/// Name resolution that drops forbidden addresses and fails when none is left: the client
/// connects only to what this returns.
#[derive(Debug, Clone, Copy)]
struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|addr| allow_private || !is_forbidden(addr.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(Box::new(Refused::NoAllowedAddress) as _);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// Timeouts and limits of the guarded client.
#[derive(Debug, Clone, Copy)]
pub struct EgressOptions {
    pub allow_private: bool,
    pub connect_timeout: Duration,
    pub total_timeout: Duration,
}

/// The HTTP client for user-chosen URLs, built on the shared TLS setup.
pub fn guarded_client(
    outbound: &Outbound,
    options: EgressOptions,
) -> anyhow::Result<reqwest::Client> {
    outbound
        .http_client()
        .dns_resolver(Arc::new(GuardedResolver {
            allow_private: options.allow_private,
        }))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(options.connect_timeout)
        .timeout(options.total_timeout)
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .map_err(|error| anyhow::anyhow!("building the webhook HTTP client: {error}"))
}

/// Whether a failed request was refused by the guard (as opposed to a network failure).
pub fn refused_by_guard(error: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if current.downcast_ref::<Refused>().is_some() {
            return true;
        }
        source = current.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forbidden(text: &str) -> bool {
        is_forbidden(text.parse().unwrap())
    }

    #[test]
    fn private_loopback_link_local_and_metadata_addresses_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "fd00:ec2::254",
        ] {
            assert!(forbidden(ip), "{ip}");
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700::1111"] {
            assert!(!forbidden(ip), "{ip}");
        }
    }

    #[test]
    fn literal_hosts_are_checked_before_any_connection() {
        let check = |url: &str, allow| check_url(&reqwest::Url::parse(url).unwrap(), allow);
        assert!(matches!(
            check("http://127.0.0.1:9/x", false),
            Err(Refused::Address(_))
        ));
        assert!(matches!(
            check("http://[::1]:9/x", false),
            Err(Refused::Address(_))
        ));
        assert!(check("http://127.0.0.1:9/x", true).is_ok());
        assert!(check("https://hooks.example.net/x", false).is_ok());
        assert_eq!(check("ftp://x.net/", false), Err(Refused::Scheme));
    }
}
