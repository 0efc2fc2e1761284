//! Access tokens: JWT signed with Ed25519 (`EdDSA`, pinned, never taken
//! from the token), with `kid` for key rotation and header `typ` =
//! `at+jwt` (RFC 9068). Only the functions that issue tokens hold the
//! private key; every other function verifies with public keys.
//!
//! Verification order: parse, require `EdDSA`, look the `kid` up among the
//! public keys, check the signature with that key, and only then read
//! claims: the key's period covers `iat`, `exp`, `nbf` (with a small
//! leeway), `iss`, `aud`, and the token type.

use chrono::{DateTime, Utc};
use jwt_compact::alg::Ed25519;
use jwt_compact::{AlgorithmExt, Claims, Header, TimeOptions, UntrustedToken, ValidationError};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::config::ed25519::{PublicKey, SigningKey};

/// The one algorithm of access tokens.
pub const ALGORITHM: &str = "EdDSA";

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
    #[error("token algorithm is not EdDSA")]
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

/// The `typ` header of a second-factor challenge: what the password step
/// of a login yields for an account with (or due for) a second factor. It
/// is no access token, and no access token is one.
pub const CHALLENGE_TOKEN_TYPE: &str = "mfa-challenge+jwt";

/// Custom claims of a second-factor challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeClaims {
    pub iss: String,
    pub aud: String,
    /// User id.
    pub sub: uuid::Uuid,
    /// Organization id.
    pub org: uuid::Uuid,
    /// `verify` (give a code) or `enroll` (the organization requires a
    /// second factor the account does not have yet).
    pub purpose: String,
    pub jti: uuid::Uuid,
}

/// Claims naming their issuer and audience.
pub trait Addressed {
    fn issuer(&self) -> &str;
    fn audience(&self) -> &str;
}

impl Addressed for AccessClaims {
    fn issuer(&self) -> &str {
        &self.iss
    }
    fn audience(&self) -> &str {
        &self.aud
    }
}

impl Addressed for ChallengeClaims {
    fn issuer(&self) -> &str {
        &self.iss
    }
    fn audience(&self) -> &str {
        &self.aud
    }
}

/// Signs an access token with `key`.
pub fn sign(
    key: &SigningKey,
    claims: &AccessClaims,
    now: OffsetDateTime,
    ttl_secs: i64,
) -> Result<String, TokenError> {
    sign_typed(key, claims, ACCESS_TOKEN_TYPE, now, ttl_secs)
}

/// Signs a token of type `typ` with `key`.
pub fn sign_typed<C: Serialize + Clone>(
    key: &SigningKey,
    claims: &C,
    typ: &str,
    now: OffsetDateTime,
    ttl_secs: i64,
) -> Result<String, TokenError> {
    let now = to_chrono(now);
    let options = TimeOptions::new(chrono::Duration::seconds(LEEWAY_SECS), move || now);
    let header = Header::empty()
        .with_key_id(key.kid.clone())
        .with_token_type(typ);
    let claims = Claims::new(claims.clone())
        .set_duration_and_issuance(&options, chrono::Duration::seconds(ttl_secs))
        .set_not_before(now);
    Ed25519
        .token(&header, &claims, &key.key)
        .map_err(|_| TokenError::Signing)
}

/// Verifies an access token (see the module docs for the order of checks).
pub fn verify(
    keys: &[PublicKey],
    token: &str,
    now: OffsetDateTime,
    issuer: &str,
    audience: &str,
) -> Result<AccessClaims, TokenError> {
    verify_typed(keys, token, ACCESS_TOKEN_TYPE, now, issuer, audience)
}

/// What a long-lived connection opened with an access token keeps instead
/// of the token: when it expires (unix seconds) and the key that signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validity {
    pub expires_at: i64,
    pub kid: String,
}

/// [`verify`], and the token's [`Validity`].
pub fn verify_until(
    keys: &[PublicKey],
    token: &str,
    now: OffsetDateTime,
    issuer: &str,
    audience: &str,
) -> Result<(AccessClaims, Validity), TokenError> {
    verified(keys, token, ACCESS_TOKEN_TYPE, now, issuer, audience)
}

/// Verifies a token of type `typ`, in the same order.
pub fn verify_typed<C: serde::de::DeserializeOwned + Clone + Addressed>(
    keys: &[PublicKey],
    token: &str,
    typ: &str,
    now: OffsetDateTime,
    issuer: &str,
    audience: &str,
) -> Result<C, TokenError> {
    verified(keys, token, typ, now, issuer, audience).map(|(claims, _)| claims)
}

/// A token's claims and validity, verified.
fn verified<C: serde::de::DeserializeOwned + Clone + Addressed>(
    keys: &[PublicKey],
    token: &str,
    typ: &str,
    now: OffsetDateTime,
    issuer: &str,
    audience: &str,
) -> Result<(C, Validity), TokenError> {
    let untrusted = UntrustedToken::new(token).map_err(|_| TokenError::Malformed)?;
    if untrusted.algorithm() != ALGORITHM {
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
    let verified = Ed25519
        .validator::<C>(&key.key)
        .validate(&untrusted)
        .map_err(|e| match e {
            ValidationError::AlgorithmMismatch { .. } => TokenError::Algorithm,
            ValidationError::InvalidSignature
            | ValidationError::InvalidSignatureLen { .. }
            | ValidationError::MalformedSignature(_) => TokenError::Signature,
            _ => TokenError::Claims,
        })?;
    // The signature holds: the header and claims are ours.
    if verified.header().token_type.as_deref() != Some(typ) {
        return Err(TokenError::WrongType);
    }
    let now = to_chrono(now);
    let options = TimeOptions::new(chrono::Duration::seconds(LEEWAY_SECS), move || now);
    let claims = verified.claims();
    // The key must have been in force when the token was issued.
    let issued_at = claims
        .issued_at
        .and_then(|at| OffsetDateTime::from_unix_timestamp(at.timestamp()).ok())
        .ok_or(TokenError::Claims)?;
    if !key.covers(issued_at) {
        return Err(TokenError::UnknownKey);
    }
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
    if custom.issuer() != issuer {
        return Err(TokenError::Issuer);
    }
    if custom.audience() != audience {
        return Err(TokenError::Audience);
    }
    let expires_at = claims
        .expiration
        .map(|at| at.timestamp())
        .ok_or(TokenError::Claims)?;
    Ok((
        custom.clone(),
        Validity {
            expires_at,
            kid: key.kid.clone(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jwt_compact::alg::{Hs256, Hs256Key};

    fn claims() -> AccessClaims {
        AccessClaims {
            iss: "antevus".into(),
            aud: "antevus-api".into(),
            sub: uuid::Uuid::from_u128(1),
            org: uuid::Uuid::from_u128(2),
            role: "ADMIN".into(),
            sid: uuid::Uuid::from_u128(3),
            jti: uuid::Uuid::from_u128(4),
        }
    }

    fn public(signing: &SigningKey, period: &str) -> Vec<PublicKey> {
        crate::config::ed25519::parse_public_keys(
            "JWT_PUBLIC_KEYS",
            &format!("{}{period}", signing.public_entry()),
        )
        .expect("public key")
    }

    #[test]
    fn a_signed_token_verifies_with_the_public_key_only() {
        let signing = SigningKey::from_seed("k1", [9; 32]);
        let now = OffsetDateTime::now_utc();
        let token = sign(&signing, &claims(), now, 300).expect("signs");
        let header = UntrustedToken::new(&token).expect("parses");
        assert_eq!(header.algorithm(), "EdDSA");
        let verified = verify(&public(&signing, ""), &token, now, "antevus", "antevus-api");
        assert_eq!(verified, Ok(claims()));
        let other = SigningKey::from_seed("k1", [8; 32]);
        assert_eq!(
            verify(&public(&other, ""), &token, now, "antevus", "antevus-api"),
            Err(TokenError::Signature)
        );
    }

    #[test]
    fn an_hs256_token_keyed_with_the_public_key_is_refused() {
        // The classic confusion: a verifier that let the token pick the
        // algorithm would check this HMAC with the public key's bytes.
        let signing = SigningKey::from_seed("k1", [9; 32]);
        let keys = public(&signing, "");
        let now = to_chrono(OffsetDateTime::now_utc());
        let options = TimeOptions::new(chrono::Duration::seconds(LEEWAY_SECS), move || now);
        let forged = Hs256
            .token(
                &Header::empty()
                    .with_key_id("k1")
                    .with_token_type(ACCESS_TOKEN_TYPE),
                &Claims::new(claims())
                    .set_duration_and_issuance(&options, chrono::Duration::seconds(300))
                    .set_not_before(now),
                &Hs256Key::new(keys[0].key.as_bytes()),
            )
            .expect("signs");
        assert_eq!(
            verify(
                &keys,
                &forged,
                OffsetDateTime::now_utc(),
                "antevus",
                "antevus-api"
            ),
            Err(TokenError::Algorithm)
        );
    }

    #[test]
    fn a_key_verifies_only_tokens_issued_in_its_period() {
        let signing = SigningKey::from_seed("k1", [9; 32]);
        let retired = public(&signing, ":..2026-01-01T00:00:00Z");
        let before = OffsetDateTime::from_unix_timestamp(1_767_225_000).expect("time"); // 2025-12-31
        let after = OffsetDateTime::from_unix_timestamp(1_767_226_000).expect("time"); // 2026-01-01
        let old = sign(&signing, &claims(), before, 3_600).expect("signs");
        let new = sign(&signing, &claims(), after, 3_600).expect("signs");
        assert!(verify(&retired, &old, after, "antevus", "antevus-api").is_ok());
        assert_eq!(
            verify(&retired, &new, after, "antevus", "antevus-api"),
            Err(TokenError::UnknownKey)
        );
    }
}
