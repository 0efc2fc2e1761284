//! `POST /api/v1/instruments/:id/control` (`instruments:control`): queue a
//! command for the instrument, `{command, parameters?, timeoutSeconds?}`
//! with an `Idempotency-Key` header. The command is checked against the
//! instrument's type (standard commands plus its own) and state; it waits as
//! `queued` until a bridge takes it, and expires after `timeoutSeconds`
//! (default: the instrument's `commandTimeoutSeconds`, else 300). The same
//! key with the same request returns the first answer
//! (`Idempotent-Replayed: true`); with a different request it is 409.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::audit::{self, EventType};
use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::domain::command;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::model::command::{self as commands, Command, DEFAULT_TIMEOUT_SECS, NewCommand};
use crate::model::instrument;
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    POST => control,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = CommandInput))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ControlInput {
    /// A standard command (`start`, `stop`, `pause`, `resume`, `calibrate`,
    /// `home`) or one of the instrument type's own (e.g. a centrifuge's
    /// `set_speed`), as `shared::domain::command` defines them; a refusal
    /// lists those of the instrument.
    command: String,
    /// The command's parameters, checked against its specification
    /// (unknown ones refused, required ones demanded).
    parameters: Option<Map<String, Value>>,
    /// How long it may wait for its bridge, 5 to 86400 seconds; default the
    /// instrument's `commandTimeoutSeconds`, else 300.
    #[cfg_attr(feature = "openapi", schema(minimum = 5, maximum = 86400))]
    timeout_seconds: Option<i64>,
}

/// Send a command to an instrument
///
/// Requires `instruments:control`. Requires an `Idempotency-Key` header (1
/// to 255 visible ASCII characters): the same key with the same request
/// answers the first command again with `Idempotent-Replayed: true`; with a
/// different request it is 409. The command must be one of the
/// instrument's type (400 otherwise, listing them) with valid parameters,
/// and allowed in the instrument's current status (409 otherwise, e.g.
/// `start` only when `online` or `idle`; none while `offline`, `error` or
/// in `maintenance`); 409 too when the status changed while it was being
/// queued. It waits as `queued` until the instrument's bridge takes it and
/// expires after `timeoutSeconds`; follow it with
/// `GET /api/v1/instruments/{id}/commands`. Audited
/// (`INSTRUMENT_COMMAND_QUEUED`).
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/v1/instruments/{id}/control",
    params(
        ("id" = uuid::Uuid, Path, description = "The instrument's id"),
        ("Idempotency-Key" = String, Header, description = "1 to 255 visible ASCII characters, new for each new command")),
    request_body = ControlInput,
    responses(
        (status = 202, description = "Queued (or the first answer again, for a repeated key)", body = Command,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the answer to an earlier request with the same key"))),
        (status = 409, description = "Not allowed in the instrument's status, or the key was used for a different request"))))]
async fn control<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::InstrumentsControl)?;
    let instrument_id = rq.uuid_param("id")?;
    let key = rq.idempotency_key()?;
    let input: ControlInput = rq.json(ctx)?;
    let parameters = input.parameters.unwrap_or_default();
    let scope = principal.scope();
    let db = ctx.db();
    let instrument = instrument::get(&db, &scope, instrument_id).await?;
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
    if let Some(existing) = commands::by_key(&db, &scope, &key).await? {
        return replayed(commands::replay(existing, &new.request_hash())?);
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
            EventType::InstrumentCommandQueued,
            new.id,
        )
    };
    let queued: Option<Command> = scope
        .fetch_optional(
            &db,
            event.record_change(rq, new.insert(&scope, principal.user_id))?,
        )
        .await?;
    match queued {
        Some(command) => Reply::with_status(http::StatusCode::ACCEPTED, command),
        None => match commands::by_key(&db, &scope, &key).await? {
            // A concurrent request with the same key won.
            Some(existing) => replayed(commands::replay(existing, &new.request_hash())?),
            None => Err(ApiError::conflict(
                "The instrument's state changed while the command was being queued; check its status and try again",
            )),
        },
    }
}

/// The first answer again, for a repeated key.
fn replayed(existing: Command) -> Result<Reply, ApiError> {
    Ok(Reply::with_status(http::StatusCode::ACCEPTED, existing)?.replayed())
}
