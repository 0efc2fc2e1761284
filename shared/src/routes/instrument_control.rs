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
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ControlInput {
    command: String,
    parameters: Option<Map<String, Value>>,
    timeout_seconds: Option<i64>,
}

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
