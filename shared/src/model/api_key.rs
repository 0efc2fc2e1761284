//! `api_keys`: keys stored as SHA-256 hashes with a lookup prefix, their
//! scopes, address allowlist, expiry, rate limit and use.

use crate::domain::Timestamp;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::Scope;
use crate::db::{Db, DbError, Statement, statement};
use crate::domain::roles::Permission;
use crate::params;
use crate::platform::Platform;

/// A key found by its prefix, with its owner.
#[derive(Deserialize)]
pub struct KeyRow {
    pub id: uuid::Uuid,
    /// Hex; only a lookup by prefix reads it (by id it is empty).
    #[serde(default)]
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
    db.fetch_optional("SELECT * FROM api_key_by_prefix($1)", params![prefix])
        .await
}

/// Key `id` of the organization and its owner, as [`by_prefix`] reads it
/// but without the hash: a connection's key, checked again (its secret was
/// checked when it opened).
pub async fn by_id<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    id: uuid::Uuid,
) -> Result<Option<KeyRow>, DbError> {
    scope
        .fetch_optional(
            db,
            statement(
                "SELECT k.id, k.permissions, k.ip_allowlist::text[] AS ip_allowlist, k.rate_limit, \
                        (k.is_active AND u.is_active AND (k.expires_at IS NULL OR k.expires_at > now())) AS usable, \
                        u.id AS user_id, u.organization_id, u.role \
                 FROM api_keys k JOIN users u ON u.id = k.user_id AND u.organization_id = k.organization_id \
                 WHERE k.id = $1 AND k.organization_id = $2",
                params![id, scope.organization_id()],
            ),
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

pub const COLUMNS: &str = "id, name, key_prefix, permissions, ip_allowlist::text[] AS ip_allowlist, rate_limit, \
                       created_at, expires_at, last_used_at, usage_count, is_active, user_id";

/// A key as listed (no secret, no hash).
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(as = ApiKey, rename_all = "camelCase")
)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct Key {
    pub id: uuid::Uuid,
    pub name: String,
    /// The key's first part (`ak_` + 12 hex digits), to recognize it by.
    pub key_prefix: String,
    /// The key's scopes: what it may do (never more than its creator).
    pub permissions: Vec<Permission>,
    /// The addresses (CIDR blocks) it may be used from; empty: any.
    pub ip_allowlist: Vec<String>,
    /// Requests per minute allowed with the key; none: its creator's role's limit.
    pub rate_limit: Option<i32>,
    pub created_at: Timestamp,
    /// When it stops working; none: never.
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    /// Requests made with it.
    pub usage_count: i64,
    /// `false` once revoked.
    pub is_active: bool,
    /// Who created it; requests made with it act as them.
    pub user_id: uuid::Uuid,
}

/// The organization's keys, newest first.
pub async fn list<P: Platform>(db: &Db<'_, P>, scope: &Scope) -> Result<Vec<Key>, DbError> {
    scope
        .fetch_all(
            db,
            statement(
                format!(
                    "SELECT {COLUMNS} FROM api_keys WHERE organization_id = $1 ORDER BY created_at DESC, id DESC"
                ),
                params![scope.organization_id()],
            ),
        )
        .await
}

/// A key to store (its hash, never the key).
pub struct NewKey<'a> {
    pub id: uuid::Uuid,
    pub user_id: uuid::Uuid,
    pub prefix: &'a str,
    /// The key's SHA-256, a bytea literal.
    pub hash: &'a str,
    pub name: &'a str,
    pub permissions: &'a [Permission],
    /// CIDR blocks.
    pub ip_allowlist: &'a [String],
    pub expires_at: Option<OffsetDateTime>,
    pub rate_limit: Option<i64>,
}

/// Stores `new`; returns it as listed.
pub fn insert(scope: &Scope, new: &NewKey<'_>) -> Statement {
    statement(
        format!(
            "INSERT INTO api_keys (id, organization_id, user_id, key_prefix, key_hash, name, permissions, ip_allowlist, \
             expires_at, rate_limit) \
             VALUES ($1, $2, $3, $4, $5::text::bytea, $6, $7::jsonb, \
                     ARRAY(SELECT jsonb_array_elements_text($8::jsonb))::cidr[], $9, $10) RETURNING {COLUMNS}"
        ),
        params![
            new.id,
            scope.organization_id(),
            new.user_id,
            new.prefix,
            new.hash,
            new.name,
            serde_json::to_value(new.permissions).unwrap_or_default(),
            serde_json::Value::from(new.ip_allowlist.to_vec()),
            new.expires_at,
            new.rate_limit,
        ],
    )
}

/// Revokes key `id` if it is active; returns `id` (no row: nothing to
/// revoke).
pub fn revoke(scope: &Scope, id: uuid::Uuid) -> Statement {
    statement(
        "UPDATE api_keys SET is_active = false WHERE id = $1 AND organization_id = $2 AND is_active RETURNING id",
        params![id, scope.organization_id()],
    )
}
