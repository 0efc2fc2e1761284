//! `POST /api/v1/instruments/:id/control` (`instruments:control`): queue a
//! command for the instrument, `{command, parameters?, timeoutSeconds?}`
//! with an `Idempotency-Key` header. The command is checked against the
//! instrument's type (standard commands plus its own) and state; it waits as
//! `queued` until a bridge takes it, and expires after `timeoutSeconds`
//! (default: the instrument's `commandTimeoutSeconds`, else 300). The same
//! key with the same request returns the first answer
//! (`Idempotent-Replayed: true`); with a different request it is 409.

use http::HeaderValue;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use crate::audit;
use crate::auth::{self, Permission, Principal};
use crate::ctx::Ctx;
use crate::db::{Statement, statement};
use crate::domain::command;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::model::instrument;
use crate::params;
use crate::platform::Platform;
use crate::request::Rq;

pub const DEFAULT_TIMEOUT_SECS: i64 = 300;

/// Columns of a command as the API shows it; a queued or sent command past
/// its deadline reads as `expired`.
pub const COMMAND_COLUMNS: &str = "id, instrument_id, run_id, command, parameters, \
     CASE WHEN status IN ('queued', 'sent') AND expires_at <= now() THEN 'expired' ELSE status END AS status, \
     result, error, created_by, created_at, updated_at, sent_at, acknowledged_at, completed_at, expires_at, \
     request_hash";

/// A control command.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct CommandView {
    pub id: uuid::Uuid,
    pub instrument_id: uuid::Uuid,
    pub run_id: Option<uuid::Uuid>,
    pub command: String,
    pub parameters: Value,
    pub status: String,
    pub result: Option<Value>,
    pub error: Option<String>,
    pub created_by: Option<uuid::Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub sent_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub acknowledged_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub completed_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
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

super::methods! {
    POST => control,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ControlInput {
    command: String,
    parameters: Option<Map<String, Value>>,
    timeout_seconds: Option<i64>,
}

/// The `Idempotency-Key` header: 1 to 255 visible ASCII characters.
pub fn idempotency_key(rq: &Rq) -> Result<String, ApiError> {
    let problem = || {
        ApiError::invalid(
            "Idempotency-Key",
            "Send an Idempotency-Key header (1 to 255 visible ASCII characters) so a retry cannot run the command twice",
        )
    };
    let raw = rq
        .req
        .headers()
        .get("idempotency-key")
        .ok_or_else(problem)?;
    let key = raw.to_str().map_err(|_| problem())?.trim();
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(problem());
    }
    Ok(key.to_owned())
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
    pub fn insert(&self, principal: &Principal) -> Statement {
        statement(
            format!(
                "INSERT INTO instrument_commands (id, organization_id, instrument_id, run_id, command, parameters, \
                 idempotency_key, request_hash, created_by, expires_at) \
                 SELECT $1, $2, $3, $4, $5, $6::jsonb, $7, decode($8, 'hex'), $9, now() + make_interval(secs => $10) \
                   FROM instruments WHERE id = $3 AND organization_id = $2 AND status = $11 AND deleted_at IS NULL \
                 ON CONFLICT (organization_id, idempotency_key) DO NOTHING \
                 RETURNING {COMMAND_COLUMNS}"
            ),
            params![
                self.id,
                principal.organization_id,
                self.instrument_id,
                self.run_id,
                self.command,
                self.parameters,
                self.idempotency_key,
                hex::encode(self.request_hash()),
                principal.user_id,
                self.timeout_secs as f64,
                self.observed_status,
            ],
        )
    }
}

/// The command stored under `key`, if any.
pub async fn by_key<P: Platform>(
    ctx: &Ctx<P>,
    principal: &Principal,
    key: &str,
) -> Result<Option<CommandView>, ApiError> {
    Ok(ctx
        .db()
        .fetch_optional(
            &format!(
                "SELECT {COMMAND_COLUMNS} FROM instrument_commands WHERE organization_id = $1 AND idempotency_key = $2"
            ),
            params![principal.organization_id, key],
        )
        .await?)
}

/// The answer for a repeated key: the first result, or 409 when the key
/// was used for a different request.
pub fn replay(existing: CommandView, hash: &[u8]) -> Result<Reply, ApiError> {
    if existing.request_hash != hash {
        return Err(key_reused());
    }
    replayed(Reply::with_status(http::StatusCode::ACCEPTED, existing)?)
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

/// Marks an answer as the replay of an earlier request with the same key.
pub fn replayed(reply: Reply) -> Result<Reply, ApiError> {
    Ok(reply.header(
        http::HeaderName::from_static("idempotent-replayed"),
        HeaderValue::from_static("true"),
    ))
}

async fn control<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::InstrumentsControl)?;
    let instrument_id = rq.uuid_param("id")?;
    let key = idempotency_key(rq)?;
    let input: ControlInput = rq.json(ctx)?;
    let parameters = input.parameters.unwrap_or_default();
    let instrument = instrument::get(&ctx.db(), &principal.scope(), instrument_id).await?;
    if instrument.deleted_at.is_some() {
        return Err(ApiError::NotFound);
    }
    let mut new = NewCommand {
        id: ctx.new_uuid(),
        instrument_id,
        run_id: None,
        command: input.command.clone(),
        parameters: Value::Object(parameters.clone()),
        idempotency_key: key.clone(),
        timeout_secs: DEFAULT_TIMEOUT_SECS,
        observed_status: instrument.status.as_str(),
    };
    if let Some(existing) = by_key(ctx, &principal, &key).await? {
        return replay(existing, &new.request_hash());
    }

    let Some(spec) = command::find(instrument.kind, &input.command) else {
        return Err(ApiError::invalid(
            "command",
            format!(
                "Not a command of a {}; commands: {}",
                instrument.kind.as_str(),
                command::names(instrument.kind)
            ),
        ));
    };
    let mut problems = command::check_parameters(spec, &parameters);
    let default_timeout = instrument.configuration["commandTimeoutSeconds"]
        .as_i64()
        .unwrap_or(DEFAULT_TIMEOUT_SECS);
    new.timeout_secs = match input.timeout_seconds {
        None => default_timeout,
        Some(t) if (5..=86_400).contains(&t) => t,
        Some(_) => {
            problems.push(FieldError::new("timeoutSeconds", "Must be from 5 to 86400"));
            default_timeout
        }
    };
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    if let Some(why) = command::refusal(spec, instrument.status) {
        return Err(ApiError::Conflict {
            message: why,
            details: vec![FieldError::new(
                "command",
                format!("Instrument status is {}", instrument.status.as_str()),
            )],
        });
    }

    let event = audit::Event {
        new_values: Some(json!({
            "command": new.command,
            "parameters": new.parameters,
            "instrumentId": instrument_id,
        })),
        ..audit::Event::by(
            ctx.new_uuid(),
            &principal,
            "INSTRUMENT_COMMAND_QUEUED",
            "Control command queued",
            ("instrument_command", new.id),
        )
    };
    let recorded = event.record_change(rq, new.insert(&principal));
    let queued: Option<CommandView> = ctx
        .db()
        .fetch_optional(&recorded.query, recorded.params)
        .await?;
    match queued {
        Some(command) => Reply::with_status(http::StatusCode::ACCEPTED, command),
        None => match by_key(ctx, &principal, &key).await? {
            // A concurrent request with the same key won.
            Some(existing) => replay(existing, &new.request_hash()),
            None => Err(ApiError::Conflict {
                message: "The instrument's state changed while the command was being queued; check its status and try again".into(),
                details: Vec::new(),
            }),
        },
    }
}
