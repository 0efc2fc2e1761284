//! `bridges`, `bridge_join_tokens` and `bridge_streams`: the lab's edge
//! bridges, the single-use tokens they enrol with, and the numbered streams
//! of records they send (see `live::persist`).

use crate::domain::Timestamp;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::Scope;
use crate::db::{Db, DbError, Statement, statement};
use crate::params;
use crate::platform::Platform;

/// A bridge as the API shows it.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(rename_all = "camelCase")
)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct Bridge {
    pub id: uuid::Uuid,
    /// The name of the join token it enrolled with.
    pub name: String,
    /// The agent's version, as its last heartbeat said.
    pub version: Option<String>,
    pub hostname: Option<String>,
    pub last_heartbeat_at: Option<Timestamp>,
    /// A heartbeat within the last 60 seconds.
    pub online: bool,
    /// Records waiting in its disk queue, as its last heartbeat said.
    pub queue_depth: Option<i64>,
    /// The instruments it reported in its last heartbeat that it serves.
    pub connected_instruments: Vec<uuid::Uuid>,
    pub created_at: Timestamp,
    /// Its own API key: revoking it (`DELETE /api/v1/api-keys/:id`) takes
    /// the bridge out of service.
    pub api_key_id: uuid::Uuid,
}

/// The organization's bridges whose key is active, newest first.
pub async fn list<P: Platform>(db: &Db<'_, P>, scope: &Scope) -> Result<Vec<Bridge>, DbError> {
    scope
        .fetch_all(
            db,
            statement(
                "SELECT b.id, b.name, b.version, b.hostname, b.last_heartbeat_at, \
                   coalesce(b.last_heartbeat_at > now() - interval '60 seconds', false) AS online, \
                   b.queue_depth, b.connected_instruments, b.created_at, b.api_key_id \
                 FROM bridges b JOIN api_keys k ON k.id = b.api_key_id \
                 WHERE b.organization_id = $1 AND k.is_active \
                 ORDER BY b.created_at DESC, b.id DESC LIMIT 500",
                params![scope.organization_id()],
            ),
        )
        .await
}

/// A bridge as its own requests know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Identity {
    pub id: uuid::Uuid,
    pub organization_id: uuid::Uuid,
}

/// The bridge whose key is `api_key_id`, if it is one.
pub async fn by_key<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    api_key_id: uuid::Uuid,
) -> Result<Option<Identity>, DbError> {
    scope
        .fetch_optional(
            db,
            statement(
                "SELECT id, organization_id FROM bridges WHERE api_key_id = $1 AND organization_id = $2",
                params![api_key_id, scope.organization_id()],
            ),
        )
        .await
}

/// Stores a join token (its hash) named `name`, valid until `expires_at`;
/// returns its `id`.
pub fn insert_join_token(
    scope: &Scope,
    id: uuid::Uuid,
    token_hash: &str,
    name: &str,
    created_by: uuid::Uuid,
    expires_at: OffsetDateTime,
) -> Statement {
    statement(
        "INSERT INTO bridge_join_tokens (id, organization_id, token_hash, name, created_by, expires_at) \
         VALUES ($1, $2, $3::text::bytea, $4, $5, $6) RETURNING id",
        params![
            id,
            scope.organization_id(),
            token_hash,
            name,
            created_by,
            expires_at
        ],
    )
}

/// Where a join token stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = JoinTokenStatus))]
#[serde(rename_all = "lowercase")]
pub enum JoinTokenStatus {
    /// It can still enrol a bridge.
    Active,
    /// A bridge enrolled with it.
    Used,
    /// It ran out unused.
    Expired,
    /// An administrator withdrew it.
    Revoked,
}

/// A join token as administrators see it (never the token).
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(rename_all = "camelCase", as = JoinTokenListed)
)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct JoinTokenListed {
    pub id: uuid::Uuid,
    /// The bridge's name once enrolled.
    pub name: String,
    pub status: JoinTokenStatus,
    pub created_by: uuid::Uuid,
    pub created_by_name: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
    /// The bridge that enrolled with it.
    pub bridge_id: Option<uuid::Uuid>,
    pub revoked_at: Option<Timestamp>,
    pub revoked_by: Option<uuid::Uuid>,
}

const JOIN_TOKEN_COLUMNS: &str = "t.id, t.name, \
     CASE WHEN t.revoked_at IS NOT NULL THEN 'revoked' WHEN t.used_at IS NOT NULL THEN 'used' \
          WHEN t.expires_at <= now() THEN 'expired' ELSE 'active' END AS status, \
     t.created_by, u.name AS created_by_name, t.created_at, t.expires_at, t.used_at, t.bridge_id, \
     t.revoked_at, t.revoked_by";

/// `FROM` clause matching [`JOIN_TOKEN_COLUMNS`].
const JOIN_TOKEN_FROM: &str = "bridge_join_tokens t LEFT JOIN users u ON u.id = t.created_by AND u.organization_id = t.organization_id";

/// The organization's join tokens, newest first (at most 500).
pub async fn join_tokens<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
) -> Result<Vec<JoinTokenListed>, DbError> {
    scope
        .fetch_all(
            db,
            statement(
                format!(
                    "SELECT {JOIN_TOKEN_COLUMNS} FROM {JOIN_TOKEN_FROM} WHERE t.organization_id = $1 ORDER BY t.created_at DESC, t.id DESC LIMIT 500"
                ),
                params![scope.organization_id()],
            ),
        )
        .await
}

/// Join token `id` as administrators see it.
pub async fn join_token<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    id: uuid::Uuid,
) -> Result<Option<JoinTokenListed>, DbError> {
    scope
        .fetch_optional(
            db,
            statement(
                format!(
                    "SELECT {JOIN_TOKEN_COLUMNS} FROM {JOIN_TOKEN_FROM} WHERE t.organization_id = $1 AND t.id = $2"
                ),
                params![scope.organization_id(), id],
            ),
        )
        .await
}

/// Revokes join token `id` if it can still enrol a bridge: it stops
/// working at once; returns `id` (no row: it was not active).
pub fn revoke_join_token(scope: &Scope, id: uuid::Uuid, by: uuid::Uuid) -> Statement {
    statement(
        "UPDATE bridge_join_tokens SET revoked_at = now(), revoked_by = $3, expires_at = now() \
          WHERE organization_id = $1 AND id = $2 AND revoked_at IS NULL AND used_at IS NULL \
            AND expires_at > now() RETURNING id",
        params![scope.organization_id(), id, by],
    )
}

/// A live join token.
#[derive(Debug, Deserialize)]
pub struct JoinToken {
    pub id: uuid::Uuid,
    pub organization_id: uuid::Uuid,
    pub created_by: uuid::Uuid,
    pub name: String,
}

/// The unused, unexpired join token whose hash is `token_hash` (before
/// the bridge is authenticated: the token is its only credential).
pub async fn join_token_by_hash<P: Platform>(
    db: &Db<'_, P>,
    token_hash: &str,
) -> Result<Option<JoinToken>, DbError> {
    db.fetch_optional("SELECT * FROM bridge_join_token($1)", params![token_hash])
        .await
}

/// What a bridge's key may do: read and control its instruments, and
/// upload the raw data files of their runs (the file-drop driver).
pub const BRIDGE_SCOPES: &str =
    r#"["instruments:view","instruments:control","runs:view","runs:create"]"#;

/// A bridge's key has its own rate limit (requests a minute): batches,
/// heartbeats, command polls and file chunks of a busy lab.
pub const BRIDGE_RATE_LIMIT: i32 = 6000;

/// A bridge to enrol with a join token.
pub struct Enrolment<'a> {
    pub join_token_id: uuid::Uuid,
    pub bridge_id: uuid::Uuid,
    pub key_id: uuid::Uuid,
    pub key_prefix: &'a str,
    /// The key's SHA-256, a bytea literal.
    pub key_hash: &'a str,
    pub version: Option<&'a str>,
    pub hostname: Option<&'a str>,
}

/// The statements of an enrolment, for one transaction: the token spent
/// (`RETURNING id`: none when someone spent it first), then the bridge's
/// key, the bridge, and the token's link to it. `used_at = now()` marks the
/// token this transaction consumed, so a concurrent enrolment with the
/// same token creates nothing.
pub fn enroll(scope: &Scope, enrolment: &Enrolment<'_>) -> (Statement, Vec<Statement>) {
    let org = scope.organization_id();
    let token = enrolment.join_token_id;
    let spend = statement(
        "UPDATE bridge_join_tokens SET used_at = now() \
         WHERE id = $1 AND organization_id = $2 AND used_at IS NULL AND expires_at > now() RETURNING id",
        params![token, org],
    );
    let create = vec![
        statement(
            format!(
                "INSERT INTO api_keys (id, organization_id, user_id, key_prefix, key_hash, name, permissions, rate_limit) \
                 SELECT $2, organization_id, created_by, $3, $4::text::bytea, left('bridge: ' || name, 255), \
                        '{BRIDGE_SCOPES}'::jsonb, {BRIDGE_RATE_LIMIT} \
                 FROM bridge_join_tokens WHERE id = $1 AND organization_id = $5 AND used_at = now()"
            ),
            params![
                token,
                enrolment.key_id,
                enrolment.key_prefix,
                enrolment.key_hash,
                org
            ],
        ),
        statement(
            "INSERT INTO bridges (id, organization_id, name, api_key_id, version, hostname, enrolled_by) \
             SELECT $2, t.organization_id, t.name, k.id, $4, $5, t.created_by \
             FROM bridge_join_tokens t JOIN api_keys k ON k.id = $3 AND k.organization_id = t.organization_id \
             WHERE t.id = $1 AND t.organization_id = $6 AND t.used_at = now()",
            params![
                token,
                enrolment.bridge_id,
                enrolment.key_id,
                enrolment.version,
                enrolment.hostname,
                org
            ],
        ),
        statement(
            "UPDATE bridge_join_tokens SET bridge_id = $2 WHERE id = $1 AND organization_id = $3 AND used_at = now()",
            params![token, enrolment.bridge_id, org],
        ),
    ];
    (spend, create)
}

/// A batch's place in its stream. Every statement of the batch's
/// transaction after the stream's lock acts only when the batch continues
/// the stream (`acked_sequence >= first - 1`): nothing is skipped, nothing
/// stored twice. The statements share `$1` bridge, `$2` stream, `$3`
/// first sequence and `$4` organization.
#[derive(Debug, Clone, Copy)]
pub struct Position {
    pub bridge_id: uuid::Uuid,
    pub stream: uuid::Uuid,
    pub first: i64,
}

/// The condition that a batch continues its stream (`s` is its
/// `bridge_streams` row).
pub const CONTINUES: &str = "s.acked_sequence >= $3 - 1";

/// Locks the stream's row for the transaction (a stream the cloud has not
/// seen starts where its first batch starts); returns `acked_sequence`.
pub fn lock_stream(scope: &Scope, at: &Position) -> Statement {
    statement(
        "INSERT INTO bridge_streams AS s (bridge_id, stream_id, organization_id, acked_sequence) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (bridge_id, stream_id) DO UPDATE SET updated_at = now() \
         RETURNING s.acked_sequence",
        params![
            at.bridge_id,
            at.stream,
            scope.organization_id(),
            at.first - 1
        ],
    )
}

/// The stream's `acked_sequence`, read only (a heartbeat without records).
pub fn read_stream(scope: &Scope, at: &Position) -> Statement {
    statement(
        "SELECT acked_sequence FROM bridge_streams WHERE bridge_id = $1 AND stream_id = $2 AND organization_id = $3",
        params![at.bridge_id, at.stream, scope.organization_id()],
    )
}

/// Acknowledges the stream up to `last`, if the batch continues it.
pub fn advance_stream(scope: &Scope, at: &Position, last: i64) -> Statement {
    statement(
        format!(
            "UPDATE bridge_streams s SET acked_sequence = $4, updated_at = now() \
             WHERE s.bridge_id = $1 AND s.stream_id = $2 AND s.acked_sequence < $4 AND {CONTINUES} \
               AND s.organization_id = $5"
        ),
        params![
            at.bridge_id,
            at.stream,
            at.first,
            last,
            scope.organization_id()
        ],
    )
}

/// What a bridge says about itself with every batch.
pub struct Heartbeat<'a> {
    pub version: Option<&'a str>,
    pub hostname: Option<&'a str>,
    pub queue_depth: i64,
    /// The instruments it reaches (ids).
    pub instruments: &'a [String],
}

/// Records bridge `id`'s heartbeat: its version, host, queue depth and the
/// organization's instruments among those it reaches that it serves.
pub fn record_heartbeat(scope: &Scope, id: uuid::Uuid, heartbeat: &Heartbeat<'_>) -> Statement {
    statement(
        "UPDATE bridges SET version = coalesce($3, version), hostname = coalesce($4, hostname), \
           last_heartbeat_at = now(), queue_depth = $5, \
           connected_instruments = (SELECT coalesce(jsonb_agg(i.id ORDER BY i.id), '[]'::jsonb) FROM instruments i \
              WHERE i.organization_id = $2 AND i.deleted_at IS NULL AND i.bridge_id = $1 \
                AND i.id IN (SELECT value::uuid FROM jsonb_array_elements_text($6::jsonb))) \
         WHERE id = $1 AND organization_id = $2",
        params![
            id,
            scope.organization_id(),
            heartbeat.version,
            heartbeat.hostname,
            heartbeat.queue_depth,
            serde_json::Value::from(heartbeat.instruments.to_vec())
        ],
    )
}
