//! `api_keys`: keys stored as SHA-256 hashes with a lookup prefix, their
//! scopes, address allowlist, expiry, rate limit and use.

use serde::Deserialize;

use super::Scope;
use crate::db::{Db, DbError, Statement, statement};
use crate::domain::roles::Permission;
use crate::params;
use crate::platform::Platform;

/// A key found by its prefix, with its owner.
#[derive(Deserialize)]
pub struct KeyRow {
    pub id: uuid::Uuid,
    pub key_hash: String,
    pub permissions: Vec<Permission>,
    pub ip_allowlist: Vec<String>,
    pub rate_limit: Option<i32>,
    pub usable: bool,
    pub user_id: uuid::Uuid,
    pub organization_id: uuid::Uuid,
    pub role: String,
}

/// The key with `prefix` and its owner (before anyone is authenticated:
/// the prefix names one key across all organizations).
pub async fn by_prefix<P: Platform>(
    db: &Db<'_, P>,
    prefix: &str,
) -> Result<Option<KeyRow>, DbError> {
    db.fetch_optional(
        "SELECT k.id, encode(k.key_hash, 'hex') AS key_hash, k.permissions, k.ip_allowlist::text[] AS ip_allowlist, \
                k.rate_limit, (k.is_active AND u.is_active AND (k.expires_at IS NULL OR k.expires_at > now())) AS usable, \
                u.id AS user_id, u.organization_id, u.role \
         FROM api_keys k JOIN users u ON u.id = k.user_id AND u.organization_id = k.organization_id \
         WHERE k.key_prefix = $1",
        params![prefix],
    )
    .await
}

/// Counts a use of key `id`.
pub fn record_use(scope: &Scope, id: uuid::Uuid) -> Statement {
    statement(
        "UPDATE api_keys SET last_used_at = now(), usage_count = usage_count + 1 \
         WHERE id = $1 AND organization_id = $2",
        params![id, scope.organization_id()],
    )
}
