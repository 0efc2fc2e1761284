//! Login sessions and refresh tokens.
//!
//! A login opens a session *family*; its id is the `sid` claim of every
//! access token it issues. The refresh token is opaque (`rt_` + 256 random
//! bits), stored only as its SHA-256, and rotated on every use: the spent
//! row is revoked with `replaced_by` set, a new row joins the family.
//! Presenting a spent token again is reuse: the whole family is revoked.
//! Logout and deactivation revoke the family, which ends its access tokens
//! at once (every request checks that its family is live).

use base64::Engine as _;
use http::HeaderValue;
use sha2::{Digest, Sha256};

/// Lifetime of a login (design document: 7 days).
pub const SESSION_TTL_SECS: i64 = 7 * 24 * 3600;
/// Name of the refresh-token cookie for browser clients.
pub const REFRESH_COOKIE: &str = "antevus_refresh";
/// Failed logins before the account is locked.
pub const MAX_FAILED_LOGINS: i32 = 5;
/// How long a lock lasts (design document: 15-minute block).
pub const LOCKOUT_MINUTES: i64 = 15;

/// A new refresh token and the hash to store.
pub fn new_refresh_token(random: [u8; 32]) -> (String, String) {
    let token = format!(
        "rt_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
    );
    let hash = token_hash(&token);
    (token, hash)
}

/// The stored form of a refresh token: `\x` + hex SHA-256 (a bytea literal).
pub fn token_hash(token: &str) -> String {
    format!("\\x{}", hex::encode(Sha256::digest(token.as_bytes())))
}

/// Whether `token` has the shape of a refresh token (checked before any lookup).
pub fn looks_like_refresh_token(token: &str) -> bool {
    token.len() == 46
        && token.starts_with("rt_")
        && token[3..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `Set-Cookie` carrying a refresh token: HttpOnly, Secure, SameSite=Strict,
/// scoped to the auth routes.
pub fn refresh_cookie(token: &str, max_age_secs: i64) -> HeaderValue {
    let value = format!(
        "{REFRESH_COOKIE}={token}; Path=/api/auth; Max-Age={max_age_secs}; HttpOnly; Secure; SameSite=Strict"
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `Set-Cookie` that removes the refresh cookie.
pub fn clear_refresh_cookie() -> HeaderValue {
    HeaderValue::from_static(
        "antevus_refresh=; Path=/api/auth; Max-Age=0; HttpOnly; Secure; SameSite=Strict",
    )
}

/// The refresh token from the `Cookie` header, if any.
pub fn refresh_token_from_cookies(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == REFRESH_COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_a_checkable_shape_and_a_stable_hash() {
        let (token, hash) = new_refresh_token([9; 32]);
        assert!(looks_like_refresh_token(&token), "{token}");
        assert_eq!(hash, token_hash(&token));
        assert_eq!(hash.len(), 2 + 64);
        assert!(!looks_like_refresh_token("rt_short"));
        assert!(!looks_like_refresh_token(&token.replace("rt_", "at_")));
    }

    #[test]
    fn cookie_round_trip() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::COOKIE,
            HeaderValue::from_static("a=b; antevus_refresh=rt_x; c=d"),
        );
        assert_eq!(
            refresh_token_from_cookies(&headers).as_deref(),
            Some("rt_x")
        );
        let cookie = refresh_cookie("rt_x", 60);
        let text = cookie.to_str().unwrap_or_default();
        assert!(
            text.contains("HttpOnly")
                && text.contains("Secure")
                && text.contains("SameSite=Strict")
        );
    }
}
