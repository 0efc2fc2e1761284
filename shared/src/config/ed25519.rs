//! Ed25519 keys with ids: a private key that signs (held only by the
//! functions that sign) and the public keys that verify, each with the
//! period it covers. Access tokens use them (`JWT_SIGNING_KEY`,
//! `JWT_PUBLIC_KEYS`).
//!
//! - A signing key: `kid:base64url`, the 32-byte Ed25519 seed.
//! - Public keys: `kid:base64url[:from..until]`, comma-separated; the
//!   32-byte public key, and optionally the period (RFC 3339, either end
//!   may be empty) in which what it verifies may have been signed. A key
//!   being retired keeps verifying what was signed before its `until`.

use std::fmt;

use base64::Engine as _;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::ConfigError;

/// An Ed25519 key that signs (access tokens).
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub key: ed25519_dalek::SigningKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl SigningKey {
    /// A key from its id and 32-byte seed.
    pub fn from_seed(kid: &str, seed: [u8; 32]) -> SigningKey {
        SigningKey {
            kid: kid.to_owned(),
            key: ed25519_dalek::SigningKey::from_bytes(&seed),
        }
    }

    /// Parses `kid:base64url` (the seed).
    pub fn parse(name: &str, raw: &str) -> Result<SigningKey, ConfigError> {
        let (kid, encoded) = split_entry(name, raw.trim())?;
        let seed: [u8; 32] = decode(name, kid, encoded)?
            .try_into()
            .map_err(|_| ConfigError(format!("{name} key {kid} is not a 32-byte Ed25519 seed")))?;
        Ok(SigningKey::from_seed(kid, seed))
    }

    /// The public half, base64url (a JWK's `x`).
    pub fn x(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.key.verifying_key().as_bytes())
    }

    /// The public-key list entry of this key (no period).
    pub fn public_entry(&self) -> String {
        format!("{}:{}", self.kid, self.x())
    }
}

/// An Ed25519 key that verifies, with the period it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub kid: String,
    pub key: ed25519_dalek::VerifyingKey,
    pub valid_from: Option<OffsetDateTime>,
    pub valid_until: Option<OffsetDateTime>,
}

impl PublicKey {
    /// Whether a token issued at `issued_at` may be verified by this key.
    pub fn covers(&self, issued_at: OffsetDateTime) -> bool {
        self.valid_from.is_none_or(|from| issued_at >= from)
            && self.valid_until.is_none_or(|until| issued_at < until)
    }

    /// The public key, base64url (a JWK's `x`).
    pub fn x(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.key.as_bytes())
    }
}

/// Parses a list of public keys (variable `name`, see the module docs): at
/// least one key, ids unique and non-empty.
pub fn parse_public_keys(name: &str, raw: &str) -> Result<Vec<PublicKey>, ConfigError> {
    let mut keys: Vec<PublicKey> = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (kid, rest) = split_entry(name, entry)?;
        let (encoded, period) = match rest.split_once(':') {
            Some((encoded, period)) => (encoded, Some(period)),
            None => (rest, None),
        };
        let bytes: [u8; 32] = decode(name, kid, encoded)?
            .try_into()
            .map_err(|_| ConfigError(format!("{name} key {kid} is not a 32-byte Ed25519 key")))?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map_err(|_| ConfigError(format!("{name} key {kid} is not an Ed25519 key")))?;
        let (valid_from, valid_until) = match period {
            None => (None, None),
            Some(period) => {
                let (from, until) = period.split_once("..").ok_or_else(|| {
                    ConfigError(format!("{name} key {kid}: the period must be from..until"))
                })?;
                (instant(name, kid, from)?, instant(name, kid, until)?)
            }
        };
        if let (Some(from), Some(until)) = (valid_from, valid_until)
            && from >= until
        {
            return Err(ConfigError(format!(
                "{name} key {kid}: the period ends before it starts"
            )));
        }
        if keys.iter().any(|k| k.kid == kid) {
            return Err(ConfigError(format!("{name} key ids must be unique")));
        }
        keys.push(PublicKey {
            kid: kid.to_owned(),
            key,
            valid_from,
            valid_until,
        });
    }
    if keys.is_empty() {
        return Err(ConfigError(format!("{name} holds no key")));
    }
    Ok(keys)
}

fn split_entry<'a>(name: &str, entry: &'a str) -> Result<(&'a str, &'a str), ConfigError> {
    match entry.split_once(':') {
        Some((kid, rest)) if !kid.trim().is_empty() => Ok((kid.trim(), rest.trim())),
        _ => Err(ConfigError(format!("{name} entries must be kid:base64url"))),
    }
}

fn decode(name: &str, kid: &str, encoded: &str) -> Result<Vec<u8>, ConfigError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded.trim_end_matches('='))
        .map_err(|_| ConfigError(format!("{name} key {kid} is not base64url")))
}

fn instant(name: &str, kid: &str, raw: &str) -> Result<Option<OffsetDateTime>, ConfigError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    OffsetDateTime::parse(raw, &Rfc3339)
        .map(Some)
        .map_err(|_| ConfigError(format!("{name} key {kid}: {raw} is not an RFC 3339 time")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signing() -> SigningKey {
        SigningKey::from_seed("k1", [7; 32])
    }

    #[test]
    fn a_signing_key_names_its_public_half() {
        let entry = signing().public_entry();
        let keys = parse_public_keys("JWT_PUBLIC_KEYS", &entry).expect("parses");
        assert_eq!(keys[0].kid, "k1");
        assert_eq!(keys[0].key, signing().key.verifying_key());
        assert!(keys[0].covers(OffsetDateTime::now_utc()));
        let seed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 32]);
        let parsed = SigningKey::parse("JWT_SIGNING_KEY", &format!("k1:{seed}")).expect("seed");
        assert_eq!(parsed.public_entry(), entry);
        assert!(!format!("{parsed:?}").contains(&seed));
    }

    #[test]
    fn periods_bound_what_a_key_verifies() {
        let x = signing().public_entry();
        let raw = format!(
            "{x}:2026-01-01T00:00:00Z..2026-07-01T00:00:00Z,k2:{}:2026-06-01T00:00:00Z..",
            &x[3..]
        );
        let keys = parse_public_keys("JWT_PUBLIC_KEYS", &raw).expect("parses");
        let at = |s: &str| OffsetDateTime::parse(s, &Rfc3339).expect("time");
        assert!(keys[0].covers(at("2026-03-01T00:00:00Z")));
        assert!(!keys[0].covers(at("2026-07-01T00:00:00Z")));
        assert!(!keys[0].covers(at("2025-12-31T23:59:59Z")));
        assert!(keys[1].covers(at("2030-01-01T00:00:00Z")));
        assert!(!keys[1].covers(at("2026-05-31T00:00:00Z")));
    }

    #[test]
    fn bad_entries_are_refused_with_their_reason() {
        let x = signing().public_entry();
        for (raw, says) in [
            ("", "holds no key"),
            ("k1", "kid:base64url"),
            (":abc", "kid:base64url"),
            ("k1:!!!", "base64url"),
            ("k1:AAAA", "32-byte"),
            (&format!("{x},{x}") as &str, "unique"),
            (&format!("{x}:2026-01-01T00:00:00Z") as &str, "from..until"),
            (&format!("{x}:yesterday..") as &str, "RFC 3339"),
            (
                &format!("{x}:2026-02-01T00:00:00Z..2026-01-01T00:00:00Z") as &str,
                "ends before",
            ),
        ] {
            let err = parse_public_keys("JWT_PUBLIC_KEYS", raw).expect_err(raw);
            assert!(err.0.contains(says), "{raw}: {}", err.0);
        }
        assert!(SigningKey::parse("JWT_SIGNING_KEY", "k1:AAAA").is_err());
    }
}
