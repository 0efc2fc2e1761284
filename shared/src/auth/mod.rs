//! Authentication and authorization.
//!
//! - [`password`]: argon2id hashing.
//! - [`jwt`]: HS256 access tokens.
//! - [`roles`]: the 12 roles and the permission matrix.
//!
//! [`authenticate`] turns a request's bearer token into a [`Principal`];
//! [`Principal::require`] is the one place a permission is checked.

pub mod jwt;
pub mod password;
pub mod roles;

use bytes::Bytes;
use http::Request;

use crate::error::ApiError;
use crate::platform::{Ctx, Platform};
pub use roles::{Permission, Role};

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: uuid::Uuid,
    pub organization_id: uuid::Uuid,
    pub role: Role,
}

impl Principal {
    /// Fails with `403 AUTH_INSUFFICIENT_PERMISSIONS` unless the role has `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if self.role.can(permission) {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

/// Verifies the request's `Authorization: Bearer` access token.
pub fn authenticate<P: Platform>(
    ctx: &Ctx<P>,
    req: &Request<Bytes>,
) -> Result<Principal, ApiError> {
    let token = crate::request::bearer_token(req.headers())
        .ok_or(ApiError::TokenInvalid("no bearer token"))?;
    let config = &ctx.config;
    let claims = jwt::verify(
        &config.jwt_keys,
        token,
        ctx.now(),
        &config.jwt_issuer,
        &config.jwt_audience,
    )
    .map_err(|e| match e {
        jwt::TokenError::Expired => ApiError::TokenExpired,
        _ => ApiError::TokenInvalid("token rejected"),
    })?;
    let role = Role::parse(&claims.role).ok_or(ApiError::TokenInvalid("token rejected"))?;
    Ok(Principal {
        user_id: claims.sub,
        organization_id: claims.org,
        role,
    })
}
