//! `GET /api/auth/jwks`: the public keys that verify access tokens, as a
//! JSON Web Key Set (RFC 7517; the bare document, not the envelope, as JWKS
//! clients expect). Each key is Ed25519 (`kty` `OKP`, `crv` `Ed25519`,
//! `alg` `EdDSA`, RFC 8037) with its `kid`; a key with a period carries
//! `nbf` and `exp` (seconds since the epoch): the tokens it verifies were
//! issued within them. This function holds no secret and reaches no
//! database: it reads `JWT_PUBLIC_KEYS`.

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

use crate::config::PublicKey;
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    GET => jwks,
}

/// The media type of a key set (RFC 7517, section 8.5).
pub const CONTENT_TYPE: &str = "application/jwk-set+json";

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct KeySet<'a> {
    keys: Vec<Jwk<'a>>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct Jwk<'a> {
    kty: &'static str,
    crv: &'static str,
    alg: &'static str,
    #[serde(rename = "use")]
    usage: &'static str,
    kid: &'a str,
    x: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
}

impl<'a> From<&'a PublicKey> for Jwk<'a> {
    fn from(key: &'a PublicKey) -> Self {
        Jwk {
            kty: "OKP",
            crv: "Ed25519",
            alg: crate::auth::jwt::ALGORITHM,
            usage: "sig",
            kid: &key.kid,
            x: key.x(),
            nbf: key.valid_from.map(|t| t.unix_timestamp()),
            exp: key.valid_until.map(|t| t.unix_timestamp()),
        }
    }
}

/// The keys that verify access tokens
///
/// A JSON Web Key Set (RFC 7517), not in the envelope: Ed25519 keys (`OKP`,
/// RFC 8037) with their `kid`, and `nbf`/`exp` for a key with a period.
/// Public; caches may keep it five minutes.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/auth/jwks", security(()),
    responses((status = 200, description = "The key set", content_type = "application/jwk-set+json", body = KeySet))))]
async fn jwks<P: Platform>(ctx: &Ctx<P>, _rq: &mut Rq) -> Result<Reply, ApiError> {
    let tokens = ctx.config.tokens()?;
    let set = KeySet {
        keys: tokens.public_keys.iter().map(Jwk::from).collect(),
    };
    let body = serde_json::to_vec(&set).map_err(ApiError::internal)?;
    Ok(Reply::raw(StatusCode::OK, Bytes::from(body))
        .header(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))
        // Keys change rarely and a rotation publishes the next key ahead of
        // its use: caches may keep the set for five minutes.
        .header(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        ))
}
