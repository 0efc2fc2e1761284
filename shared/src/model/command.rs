//! `instrument_commands`: control commands, idempotent per organization
//! and `Idempotency-Key`, queued only while the instrument is in the state
//! the checks saw, and moved forward as the instrument's bridge takes and
//! reports them.

use crate::domain::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use super::Scope;
use super::bridge::{CONTINUES, Position};
use super::page::Cursor;
use crate::db::{Db, DbError, Statement, statement};
use crate::domain::{CommandStatus, RunStatus};
use crate::error::{ApiError, FieldError};
use crate::params;
use crate::platform::Platform;

pub const DEFAULT_TIMEOUT_SECS: i64 = 300;

/// Columns of a command as the API shows it; a queued or sent command past
/// its deadline reads as `expired`.
pub const COLUMNS: &str = "id, instrument_id, run_id, command, parameters, \
     CASE WHEN status IN ('queued', 'sent') AND expires_at <= now() THEN 'expired' ELSE status END AS status, \
     result, error, created_by, created_at, updated_at, sent_at, acknowledged_at, completed_at, expires_at, \
     request_hash";

/// A control command.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(rename_all = "camelCase")
)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct Command {
    pub id: uuid::Uuid,
    pub instrument_id: uuid::Uuid,
    /// The run it belongs to: a run's `start` and `stop`; none for a
    /// command sent through `POST /api/v1/instruments/{id}/control`.
    pub run_id: Option<uuid::Uuid>,
    /// Its name: a standard command (`start`, `stop`, `pause`, `resume`,
    /// `calibrate`, `home`) or one of the instrument type's own.
    pub command: String,
    /// The command's parameters, as checked against its specification.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub parameters: Value,
    /// A queued or sent command past `expiresAt` reads `expired`.
    pub status: CommandStatus,
    /// What the instrument reported with its outcome, if anything.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub result: Option<Value>,
    /// Why it failed, as the instrument (or the server) said.
    pub error: Option<String>,
    pub created_by: Option<uuid::Uuid>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// When a bridge was last handed it.
    pub sent_at: Option<Timestamp>,
    pub acknowledged_at: Option<Timestamp>,
    /// When it completed or failed.
    pub completed_at: Option<Timestamp>,
    /// Undelivered or unacknowledged by then, it expires.
    pub expires_at: Timestamp,
    #[serde(skip_serializing, with = "hex_bytes")]
    pub request_hash: Vec<u8>,
}

/// `bytea` arrives as `\x..` text.
mod hex_bytes {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(text.trim_start_matches("\\x")).map_err(serde::de::Error::custom)
    }
}

/// A command to queue: checked against the instrument, not yet stored.
pub struct NewCommand {
    pub id: uuid::Uuid,
    pub instrument_id: uuid::Uuid,
    pub run_id: Option<uuid::Uuid>,
    pub command: String,
    pub parameters: Value,
    pub idempotency_key: String,
    pub timeout_secs: i64,
    /// The instrument status the checks were made against; the insert only
    /// happens if it still holds.
    pub observed_status: &'static str,
}

impl NewCommand {
    /// SHA-256 of what the request asks for, to tell a retry from a
    /// different request under the same key.
    pub fn request_hash(&self) -> Vec<u8> {
        let canonical = json!({
            "instrument": self.instrument_id,
            "command": self.command,
            "parameters": self.parameters,
            "run": self.run_id,
        });
        Sha256::digest(canonical.to_string().as_bytes()).to_vec()
    }

    /// `INSERT ... RETURNING` the command, only while the instrument is
    /// still in the observed state and the key is unused.
    pub fn insert(&self, scope: &Scope, created_by: uuid::Uuid) -> Statement {
        statement(
            format!(
                "INSERT INTO instrument_commands (id, organization_id, instrument_id, run_id, command, parameters, \
                 idempotency_key, request_hash, created_by, expires_at) \
                 SELECT $1, $2, $3, $4, $5, $6::jsonb, $7, decode($8, 'hex'), $9, now() + make_interval(secs => $10) \
                   FROM instruments WHERE id = $3 AND organization_id = $2 AND status = $11 AND deleted_at IS NULL \
                 ON CONFLICT (organization_id, idempotency_key) DO NOTHING \
                 RETURNING {COLUMNS}"
            ),
            params![
                self.id,
                scope.organization_id(),
                self.instrument_id,
                self.run_id,
                self.command,
                self.parameters,
                self.idempotency_key,
                hex::encode(self.request_hash()),
                created_by,
                self.timeout_secs as f64,
                self.observed_status,
            ],
        )
    }
}

/// The command stored under `key`, if any.
pub async fn by_key<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    key: &str,
) -> Result<Option<Command>, DbError> {
    scope
        .fetch_optional(
            db,
            statement(
                format!(
                    "SELECT {COLUMNS} FROM instrument_commands WHERE organization_id = $1 AND idempotency_key = $2"
                ),
                params![scope.organization_id(), key],
            ),
        )
        .await
}

/// The command a repeated key stands for, if it was used for the same
/// request (`hash`); 409 when it was used for a different one.
pub fn replay(existing: Command, hash: &[u8]) -> Result<Command, ApiError> {
    if existing.request_hash == hash {
        Ok(existing)
    } else {
        Err(key_reused())
    }
}

/// 409 for an `Idempotency-Key` already used for a different request.
pub fn key_reused() -> ApiError {
    ApiError::Conflict {
        message: "This Idempotency-Key was already used for a different request".into(),
        details: vec![FieldError::new(
            "Idempotency-Key",
            "Use a new key for a new request",
        )],
    }
}

/// Instrument `instrument_id`'s commands, newest first, optionally of one
/// status, after `after`.
pub async fn list<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    instrument_id: uuid::Uuid,
    status: Option<CommandStatus>,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<Vec<Command>, DbError> {
    scope
        .fetch_all(
            db,
            statement(
                format!(
                    "SELECT * FROM (SELECT {COLUMNS} FROM instrument_commands \
                      WHERE organization_id = $1 AND instrument_id = $2 \
                        AND ($3::timestamptz IS NULL OR (created_at, id) < ($3::timestamptz, $4::uuid)) \
                      ORDER BY created_at DESC, id DESC) c \
                     WHERE ($5::text IS NULL OR c.status = $5) LIMIT $6"
                ),
                params![
                    scope.organization_id(),
                    instrument_id,
                    after.map(|c| c.created_at),
                    after.map(|c| c.id),
                    status.map(CommandStatus::as_str),
                    limit,
                ],
            ),
        )
        .await
}

/// Withdraws run `run_id`'s undelivered `start` once the run ended as
/// `outcome` (in the same transaction).
pub fn withdraw_start(scope: &Scope, run_id: uuid::Uuid, outcome: RunStatus) -> Statement {
    statement(
        "UPDATE instrument_commands SET status = 'failed', error = 'Run stopped before the instrument started it', \
         updated_at = now(), completed_at = now() \
         WHERE organization_id = $2 AND run_id = $1 AND command = 'start' AND status IN ('queued', 'sent') \
           AND EXISTS (SELECT 1 FROM runs WHERE id = $1 AND status = $3)",
        params![run_id, scope.organization_id(), outcome.as_str()],
    )
}

/// A command's outcome, as its instrument reported it.
pub struct Outcome<'a> {
    /// `acknowledged`, `completed` or `failed`.
    pub state: &'a str,
    pub at: OffsetDateTime,
    pub result: Option<&'a Value>,
    pub error: Option<&'a str>,
    /// The record's sequence in the stream.
    pub seq: i64,
}

/// Moves command `id` forward (sent -> acknowledged -> completed | failed;
/// a fast command may skip acknowledged) if it was handed to the batch's
/// bridge, the record is new and the batch continues its stream. Returns
/// `id` (no row: nothing moved).
pub fn record_outcome(
    scope: &Scope,
    at: &Position,
    id: uuid::Uuid,
    outcome: &Outcome<'_>,
) -> Statement {
    statement(
        format!(
            "UPDATE instrument_commands c SET status = $5, updated_at = now(), \
               acknowledged_at = coalesce(c.acknowledged_at, $6::timestamptz), \
               completed_at = CASE WHEN $5 IN ('completed', 'failed') THEN $6::timestamptz END, \
               result = coalesce($7::jsonb, c.result), error = $8 \
             FROM bridge_streams s \
             WHERE s.bridge_id = $1 AND s.stream_id = $2 AND s.acked_sequence < $9 AND {CONTINUES} \
               AND c.organization_id = $4 AND c.id = $10 AND c.bridge_id = $1 \
               AND (c.status = 'sent' OR (c.status = 'acknowledged' AND $5 <> 'acknowledged')) \
             RETURNING c.id"
        ),
        params![
            at.bridge_id,
            at.stream,
            at.first,
            scope.organization_id(),
            outcome.state,
            outcome.at,
            outcome.result,
            outcome.error,
            outcome.seq,
            id,
        ],
    )
}

/// A command a bridge may be handed.
#[derive(Debug, Deserialize)]
pub struct Waiting {
    pub id: uuid::Uuid,
    pub instrument_id: uuid::Uuid,
    pub command: String,
    pub parameters: Value,
    pub expires_at: Timestamp,
}

/// The unexpired commands waiting for the instruments bridge `bridge_id`
/// reaches (as its last heartbeat said) and serves, oldest first: queued ones, and
/// those sent (to it, or to the bridge that served the instrument before)
/// but unacknowledged for `redeliver_secs`.
pub async fn waiting_for<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    bridge_id: uuid::Uuid,
    redeliver_secs: i64,
    limit: i64,
) -> Result<Vec<Waiting>, DbError> {
    scope
        .fetch_all(
            db,
            statement(
                "SELECT c.id, c.instrument_id, c.command, c.parameters, c.expires_at \
                   FROM instrument_commands c JOIN bridges b ON b.id = $2 AND b.organization_id = c.organization_id \
                  WHERE c.organization_id = $1 AND c.expires_at > now() \
                    AND c.instrument_id IN (SELECT value::uuid FROM jsonb_array_elements_text(b.connected_instruments)) \
                    AND EXISTS (SELECT 1 FROM instruments i WHERE i.organization_id = c.organization_id \
                                AND i.id = c.instrument_id AND i.bridge_id = $2) \
                    AND (c.status = 'queued' \
                         OR (c.status = 'sent' AND c.sent_at < now() - make_interval(secs => $3))) \
                  ORDER BY c.created_at, c.id LIMIT $4",
                params![scope.organization_id(), bridge_id, redeliver_secs, limit],
            ),
        )
        .await
}

/// Marks command `id` sent to bridge `bridge_id`, the one that serves its
/// instrument, if it is still waiting (queued, or sent but unacknowledged
/// for `redeliver_secs`, perhaps to the bridge that served it before);
/// returns `id`.
pub fn mark_sent(
    scope: &Scope,
    id: uuid::Uuid,
    bridge_id: uuid::Uuid,
    redeliver_secs: i64,
) -> Statement {
    statement(
        "UPDATE instrument_commands SET status = 'sent', bridge_id = $3, sent_at = now(), updated_at = now() \
         WHERE organization_id = $1 AND id = $2 AND expires_at > now() \
           AND EXISTS (SELECT 1 FROM instruments i WHERE i.organization_id = $1 \
                       AND i.id = instrument_commands.instrument_id AND i.bridge_id = $3) \
           AND (status = 'queued' OR (status = 'sent' AND sent_at < now() - make_interval(secs => $4))) \
         RETURNING id",
        params![scope.organization_id(), id, bridge_id, redeliver_secs],
    )
}
