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

/// The account whose live reset link hashes to `token_hash` (an active
/// one), found by the token alone: the organization is not known before.
/// Spends nothing.
pub async fn reset_token_owner<P: Platform>(
    db: &Db<'_, P>,
    token_hash: &str,
) -> Result<Option<Reset>, DbError> {
    db.fetch_optional("SELECT * FROM reset_token_owner($1)", params![token_hash])
        .await
}

/// Spends the live reset link whose token hashes to `token_hash`, sets the
/// active account's password (clearing its lock) and ends all its logins,
/// in one statement (to run with its audit event, in the organization
/// [`reset_token_owner`] named); returns the account, none when the link
/// was spent meanwhile.
pub fn use_reset_token(token_hash: &str, password_hash: &str) -> Statement {
    statement(
        "SELECT * FROM use_reset_token($1, $2)",
        params![token_hash, password_hash],
    )
}
