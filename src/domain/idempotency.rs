//! `Idempotency-Key` on POST requests (Stripe's semantics, the IETF httpapi draft): what a key
//! may look like, how long an answer is kept, and the fingerprint that tells a retry from a
//! different request reusing the key.

use sha2::{Digest, Sha256};

/// An answer is replayed for this long after the first request (API.md §1 addition).
pub const KEPT_HOURS: i64 = 24;
/// A request still marked in progress after this long died with its server: a retry may run.
pub const ABANDONED_AFTER_SECONDS: i64 = 120;
pub const MAX_KEY_CHARS: usize = 255;

/// Why an `Idempotency-Key` header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdempotencyKeyError {
    /// Empty, longer than 255 characters, or not visible ASCII.
    Malformed,
}

/// 1..255 visible ASCII characters (a UUID is the usual choice).
pub fn parse_idempotency_key(raw: &[u8]) -> Result<String, IdempotencyKeyError> {
    let valid = !raw.is_empty()
        && raw.len() <= MAX_KEY_CHARS
        && raw.iter().all(|byte| byte.is_ascii_graphic());
    if valid {
        Ok(String::from_utf8_lossy(raw).into_owned())
    } else {
        Err(IdempotencyKeyError::Malformed)
    }
}

/// What makes two requests the same: method, path with query, and the exact body bytes.
pub fn request_fingerprint(method: &str, path_and_query: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    for part in [method.as_bytes(), path_and_query.as_bytes()] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.update(body);
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_one_to_255_visible_ascii_characters() {
        assert_eq!(parse_idempotency_key(b"abc-123").unwrap(), "abc-123");
        assert!(parse_idempotency_key(&[b'k'; 255]).is_ok());
        for bad in [&b""[..], &[b'k'; 256], b"has space", "é".as_bytes()] {
            assert_eq!(
                parse_idempotency_key(bad),
                Err(IdempotencyKeyError::Malformed)
            );
        }
    }

    #[test]
    fn the_fingerprint_changes_with_the_body_path_or_method() {
        let base = request_fingerprint("POST", "/v1/x", b"{}");
        assert_eq!(base, request_fingerprint("POST", "/v1/x", b"{}"));
        assert_ne!(base, request_fingerprint("POST", "/v1/x", b"{ }"));
        assert_ne!(base, request_fingerprint("POST", "/v1/y", b"{}"));
        assert_ne!(base, request_fingerprint("PUT", "/v1/x", b"{}"));
        // The parts are delimited: moving bytes between them is another request.
        assert_ne!(
            request_fingerprint("POST", "/v1/xa", b"b"),
            request_fingerprint("POST", "/v1/x", b"ab")
        );
    }
}
