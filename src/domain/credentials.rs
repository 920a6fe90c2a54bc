//! Developer keys and account tokens: generation from the OS RNG, parsing, hashing, display.
//!
//! Raw credentials only ever live in [`Secret`], whose `Debug` and `Display` redact them.

use sha2::{Digest, Sha256};

pub const DEV_KEY_PREFIX: &str = "omi_dev_";
pub const ACCOUNT_TOKEN_PREFIX: &str = "omi_acct_";
const SECRET_HEX_LEN: usize = 32;

/// A string that must not reach logs or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The raw value, for the one place that must show or send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

/// What kind of credential a bearer token is, decided by its shape alone.
#[derive(Debug, PartialEq, Eq)]
pub enum Credential<'a> {
    /// `omi_dev_` + 32 lowercase hex; holds the secret part.
    DevKey(&'a str),
    /// `omi_acct_` + 32 lowercase hex; holds the secret part.
    AccountToken(&'a str),
    /// Anything else: rejected without a database lookup.
    Malformed,
    /// Starts like a developer key but is not one (wrong length or alphabet).
    MalformedDevKey,
}

pub fn classify(token: &str) -> Credential<'_> {
    if let Some(secret) = token.strip_prefix(DEV_KEY_PREFIX) {
        return if is_secret_hex(secret) {
            Credential::DevKey(secret)
        } else {
            Credential::MalformedDevKey
        };
    }
    if let Some(secret) = token.strip_prefix(ACCOUNT_TOKEN_PREFIX)
        && is_secret_hex(secret)
    {
        return Credential::AccountToken(secret);
    }
    Credential::Malformed
}

fn is_secret_hex(secret: &str) -> bool {
    secret.len() == SECRET_HEX_LEN
        && secret
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// SHA-256 of the secret part, lowercase hex: what the database stores and looks up.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A freshly generated credential: the raw value (shown once), its hash, and its display prefix.
#[derive(Debug)]
pub struct Generated {
    pub raw: Secret,
    pub hash: String,
    pub display_prefix: String,
}

pub fn generate_dev_key() -> Generated {
    generate(DEV_KEY_PREFIX)
}

pub fn generate_account_token() -> Generated {
    generate(ACCOUNT_TOKEN_PREFIX)
}

fn generate(prefix: &str) -> Generated {
    let mut bytes = [0u8; SECRET_HEX_LEN / 2];
    getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
    let secret = hex::encode(bytes);
    Generated {
        raw: Secret(format!("{prefix}{secret}")),
        hash: hash_secret(&secret),
        display_prefix: format!(
            "{prefix}{}...{}",
            &secret[..4],
            &secret[SECRET_HEX_LEN - 4..]
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_documented_shape() {
        let key = generate_dev_key();
        let raw = key.raw.expose();
        assert_eq!(raw.len(), DEV_KEY_PREFIX.len() + 32);
        let Credential::DevKey(secret) = classify(raw) else {
            panic!("not classified as a developer key")
        };
        assert_eq!(hash_secret(secret), key.hash);
        assert_eq!(
            key.display_prefix,
            format!("omi_dev_{}...{}", &secret[..4], &secret[28..])
        );
    }

    #[test]
    fn two_generated_keys_differ() {
        assert_ne!(generate_dev_key().raw, generate_dev_key().raw);
    }

    #[test]
    fn malformed_tokens_are_recognised_without_a_lookup() {
        assert_eq!(classify("omi_dev_short"), Credential::MalformedDevKey);
        assert_eq!(
            classify(&format!("omi_dev_{}", "G".repeat(32))),
            Credential::MalformedDevKey
        );
        assert_eq!(
            classify(&format!("omi_dev_{}", "A".repeat(32))),
            Credential::MalformedDevKey
        );
        assert_eq!(classify("sk-something"), Credential::Malformed);
        assert_eq!(classify("omi_acct_x"), Credential::Malformed);
    }

    #[test]
    fn account_tokens_are_classified() {
        let token = generate_account_token();
        assert!(matches!(
            classify(token.raw.expose()),
            Credential::AccountToken(_)
        ));
    }

    #[test]
    fn secrets_are_redacted_in_debug_and_display() {
        let key = generate_dev_key();
        let raw = key.raw.expose().to_string();
        assert!(!format!("{key:?}").contains(&raw));
        assert!(!format!("{}", key.raw).contains(&raw));
    }
}
