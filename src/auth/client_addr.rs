//! The client address used to count failed authentications: the peer, or, when the peer is a
//! trusted proxy, the `X-Forwarded-For` entry that proxy added (API.md §10).

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

pub fn client_address(peer: Option<SocketAddr>, headers: &HeaderMap, trusted: &[IpAddr]) -> String {
    let Some(peer) = peer else {
        return "unknown".to_string();
    };
    let peer_ip = peer.ip();
    if !trusted.contains(&peer_ip) {
        return peer_ip.to_string();
    }
    // Walk the chain from the right: the last entry not itself a trusted proxy is the client as
    // seen by the outermost trusted hop. Entries further left are the client's own claims.
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|entry| entry.trim().parse().ok())
        .collect();
    forwarded
        .iter()
        .rev()
        .find(|ip| !trusted.contains(ip))
        .copied()
        .unwrap_or(peer_ip)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", xff.parse().unwrap());
        headers
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let peer: SocketAddr = "10.0.0.9:5000".parse().unwrap();
        assert_eq!(
            client_address(Some(peer), &headers("1.2.3.4"), &[]),
            "10.0.0.9"
        );
    }

    #[test]
    fn a_trusted_proxy_names_the_client_it_saw() {
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        let peer = SocketAddr::new(proxy, 5000);
        assert_eq!(
            client_address(Some(peer), &headers("6.6.6.6, 1.2.3.4"), &[proxy]),
            "1.2.3.4"
        );
    }

    #[test]
    fn a_trusted_proxy_without_the_header_is_the_client() {
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        let peer = SocketAddr::new(proxy, 5000);
        assert_eq!(
            client_address(Some(peer), &HeaderMap::new(), &[proxy]),
            "127.0.0.1"
        );
    }
}
