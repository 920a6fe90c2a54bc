//! Web console sessions: their secret ids, the CSRF token bound to each, and their lifetimes.

use chrono::Duration;

use crate::domain::credentials::{Secret, hash_secret};

/// A session ends after this long without a request.
pub const SESSION_IDLE: Duration = Duration::hours(12);
/// A session ends this long after sign-in, however active.
pub const SESSION_ABSOLUTE: Duration = Duration::days(7);
/// Activity is written at most this often per session, so that reading pages does not queue
/// behind writes.
pub const SESSION_TOUCH_INTERVAL: Duration = Duration::seconds(60);

const SESSION_SECRET_BYTES: usize = 32;

/// A new session id: the raw value goes in the cookie, the hash in the database.
#[derive(Debug)]
pub struct GeneratedSession {
    pub raw: Secret,
    pub hash: String,
}

pub fn generate_session() -> GeneratedSession {
    let raw = random_hex();
    GeneratedSession {
        hash: hash_secret(&raw),
        raw: Secret::new(raw),
    }
}

/// A random value for a form's pre-sign-in CSRF cookie.
pub fn generate_login_nonce() -> String {
    random_hex()
}

/// The CSRF token of the session whose raw id is `raw`. Derived from the raw id (never stored,
/// not derivable from the stored hash): only the browser holding the cookie can know it.
pub fn csrf_token_for(raw_session_id: &str) -> String {
    hash_secret(&format!("csrf:{raw_session_id}"))
}

/// Compares two tokens in time independent of where they differ.
pub fn tokens_match(expected: &str, given: &str) -> bool {
    expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

/// The shape of a raw session id, checked before any lookup.
pub fn is_plausible_session_id(raw: &str) -> bool {
    raw.len() == SESSION_SECRET_BYTES * 2
        && raw
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn random_hex() -> String {
    let mut bytes = [0u8; SESSION_SECRET_BYTES];
    getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_random_and_stored_as_their_hash() {
        let a = generate_session();
        let b = generate_session();
        assert_ne!(a.raw, b.raw);
        assert_eq!(a.hash, hash_secret(a.raw.expose()));
        assert!(is_plausible_session_id(a.raw.expose()));
    }

    #[test]
    fn the_csrf_token_is_not_the_stored_hash() {
        let session = generate_session();
        let csrf = csrf_token_for(session.raw.expose());
        assert_ne!(csrf, session.hash);
        assert!(tokens_match(&csrf, &csrf_token_for(session.raw.expose())));
        assert!(!tokens_match(&csrf, &session.hash));
        assert!(!tokens_match(&csrf, ""));
    }
}
