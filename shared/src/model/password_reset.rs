//! `password_resets`: single-use reset links, stored as their hash.

use serde::Deserialize;

use super::Scope;
use crate::db::{Db, DbError, Statement, statement};
use crate::params;
use crate::platform::Platform;

/// Records a reset link for `user`, valid `ttl_minutes`.
pub fn insert(
    scope: &Scope,
    user: uuid::Uuid,
    token_hash: &str,
    ip: Option<String>,
    ttl_minutes: i64,
) -> Statement {
    statement(
        "INSERT INTO password_resets (organization_id, user_id, token_hash, ip_address, expires_at) \
         VALUES ($1, $2, $3::text::bytea, $4::inet, now() + make_interval(mins => $5))",
        params![scope.organization_id(), user, token_hash, ip, ttl_minutes],
    )
}

/// The account whose password a reset changed.
#[derive(Debug, Deserialize)]
pub struct Reset {
    pub id: uuid::Uuid,
    pub organization_id: uuid::Uuid,
}

/// Spends the live reset link whose token hashes to `token_hash`, sets the
/// active account's password (clearing its lock) and ends all its logins,
/// in one statement. Found by the token alone: the organization is not
/// known before.
pub async fn use_reset_token<P: Platform>(
    db: &Db<'_, P>,
    token_hash: &str,
    password_hash: &str,
) -> Result<Option<Reset>, DbError> {
    db.fetch_optional(
        "SELECT * FROM use_reset_token($1, $2)",
        params![token_hash, password_hash],
    )
    .await
}
