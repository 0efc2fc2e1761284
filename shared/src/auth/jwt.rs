//! Access tokens: JWT, HS256 only (pinned, never taken from the token), with
//! `kid` for key rotation and header `typ` = `at+jwt` (RFC 9068).
//!
//! Verification order: parse, look the `kid` up among configured keys, check
//! the signature with that key and HS256, and only then read claims: `exp`,
//! `nbf` (with a small leeway), `iss`, `aud`, and the token type.

use chrono::{DateTime, Utc};
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{AlgorithmExt, Claims, Header, TimeOptions, UntrustedToken, ValidationError};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::config::HmacKey;

/// The `typ` header of access tokens.
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";
/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: i64 = 30;

/// Custom claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    /// User id.
    pub sub: uuid::Uuid,
    /// Organization id.
    pub org: uuid::Uuid,
    /// Role name as stored (e.g. `ADMIN`) when the token was issued; the
    /// role in force is read from the database on every request.
    pub role: String,
    /// Session family (the login) this token belongs to.
    pub sid: uuid::Uuid,
    /// Token id.
    pub jti: uuid::Uuid,
}

/// Why a token was refused. Only [`TokenError::Expired`] is told apart to the
/// client; every other reason is one generic answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is malformed")]
    Malformed,
    #[error("token algorithm is not HS256")]
    Algorithm,
    #[error("token key id is unknown")]
    UnknownKey,
    #[error("token signature is invalid")]
    Signature,
    #[error("token has expired")]
    Expired,
    #[error("token is not yet valid")]
    NotYetValid,
    #[error("token claims are invalid")]
    Claims,
    #[error("token is not an access token")]
    WrongType,
    #[error("token issuer is wrong")]
    Issuer,
    #[error("token audience is wrong")]
    Audience,
    #[error("token could not be signed")]
    Signing,
}

fn to_chrono(ts: OffsetDateTime) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(ts.unix_timestamp(), ts.nanosecond()).unwrap_or_default()
}

/// Signs an access token with the first configured key.
pub fn sign(
    keys: &[HmacKey],
    claims: &AccessClaims,
    now: OffsetDateTime,
    ttl_secs: i64,
) -> Result<String, TokenError> {
    let key = keys.first().ok_or(TokenError::Signing)?;
    let now = to_chrono(now);
    let options = TimeOptions::new(chrono::Duration::seconds(LEEWAY_SECS), move || now);
    let header = Header::empty()
        .with_key_id(key.kid.clone())
        .with_token_type(ACCESS_TOKEN_TYPE);
    let claims = Claims::new(claims.clone())
        .set_duration_and_issuance(&options, chrono::Duration::seconds(ttl_secs))
        .set_not_before(now);
    Hs256
        .token(&header, &claims, &Hs256Key::new(&key.secret))
        .map_err(|_| TokenError::Signing)
}

/// Verifies an access token (see the module docs for the order of checks).
pub fn verify(
    keys: &[HmacKey],
    token: &str,
    now: OffsetDateTime,
    issuer: &str,
    audience: &str,
) -> Result<AccessClaims, TokenError> {
    let untrusted = UntrustedToken::new(token).map_err(|_| TokenError::Malformed)?;
    if untrusted.algorithm() != "HS256" {
        return Err(TokenError::Algorithm);
    }
    let kid = untrusted
        .header()
        .key_id
        .as_deref()
        .ok_or(TokenError::UnknownKey)?;
    let key = keys
        .iter()
        .find(|k| k.kid == kid)
        .ok_or(TokenError::UnknownKey)?;
    let verified = Hs256
        .validator::<AccessClaims>(&Hs256Key::new(&key.secret))
        .validate(&untrusted)
        .map_err(|e| match e {
            ValidationError::AlgorithmMismatch { .. } => TokenError::Algorithm,
            ValidationError::InvalidSignature
            | ValidationError::InvalidSignatureLen { .. }
            | ValidationError::MalformedSignature(_) => TokenError::Signature,
            _ => TokenError::Claims,
        })?;
    // The signature holds: the header and claims are ours.
    if verified.header().token_type.as_deref() != Some(ACCESS_TOKEN_TYPE) {
        return Err(TokenError::WrongType);
    }
    let now = to_chrono(now);
    let options = TimeOptions::new(chrono::Duration::seconds(LEEWAY_SECS), move || now);
    let claims = verified.claims();
    claims.validate_expiration(&options).map_err(|e| match e {
        ValidationError::Expired => TokenError::Expired,
        _ => TokenError::Claims,
    })?;
    if claims.not_before.is_none() {
        return Err(TokenError::Claims);
    }
    claims.validate_maturity(&options).map_err(|e| match e {
        ValidationError::NotMature => TokenError::NotYetValid,
        _ => TokenError::Claims,
    })?;
    let custom = &claims.custom;
    if custom.iss != issuer {
        return Err(TokenError::Issuer);
    }
    if custom.aud != audience {
        return Err(TokenError::Audience);
    }
    Ok(custom.clone())
}
