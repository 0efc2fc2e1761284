//! `/api/v1/runs`: `GET` lists the organization's runs, newest first
//! (filters `instrumentId`, `status`, `operatorId`, `startedFrom`,
//! `startedTo`; keyset pagination), `runs:view`; with a start-time window
//! the list is ordered by start time, newest first. `POST` starts one
//! (`runs:create`): `{instrumentId, name?, protocol?, metadata?, settings?}`
//! with an optional `Idempotency-Key`; the instrument must be online or idle
//! with no active run. The run is created `pending` and a `start` command is
//! queued for the bridge, in one statement. The bridge's reports move it on
//! (`live::persist`): the start acknowledged, it is `running`; refused, it
//! `failed`; the instrument reported back from `running` to idle (or
//! online), it `completed`; to error, it `failed`.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::audit::{self, EventType};
use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::domain::{RunStatus, command};
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::model::command::{self as commands, Command, DEFAULT_TIMEOUT_SECS, NewCommand};
use crate::model::page::{self, Cursor, Page};
use crate::model::run::{self, ListFilter, NewRun};
use crate::model::{Scope, instrument};
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    GET => list,
    POST => start,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ListQuery {
    /// Only the runs of this instrument.
    #[cfg_attr(feature = "openapi", param(value_type = Option<uuid::Uuid>))]
    instrument_id: Option<String>,
    /// Only the runs in this status.
    #[cfg_attr(feature = "openapi", param(value_type = Option<RunStatus>))]
    status: Option<String>,
    /// Only the runs this user operates.
    #[cfg_attr(feature = "openapi", param(value_type = Option<uuid::Uuid>))]
    operator_id: Option<String>,
    /// Only runs started at or after this instant (RFC 3339); a start-time
    /// window orders the list by start time.
    #[cfg_attr(feature = "openapi", param(value_type = Option<String>, format = DateTime))]
    started_from: Option<String>,
    /// Only runs started at or before this instant (RFC 3339), not before
    /// `startedFrom`.
    #[cfg_attr(feature = "openapi", param(value_type = Option<String>, format = DateTime))]
    started_to: Option<String>,
    /// Items per page (default 25).
    #[cfg_attr(feature = "openapi", param(value_type = Option<i64>, minimum = 1, maximum = 100))]
    limit: Option<String>,
    /// The `nextCursor` of the previous page.
    cursor: Option<String>,
}

/// List the organization's runs
///
/// Requires `runs:view`. Newest first (by creation; by start time, newest
/// first, when `startedFrom` or `startedTo` is given), filtered by
/// instrument, status, operator and start-time window; keyset pagination
/// with `cursor`.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/v1/runs",
    params(ListQuery),
    responses((status = 200, description = "One page of runs", body = Page<crate::model::run::Run>))))]
async fn list<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::RunsView)?;
    let query: ListQuery = rq.query()?;
    let mut problems = Vec::new();
    let instrument_id = crate::request::uuid_field(
        "instrumentId",
        query.instrument_id.as_deref(),
        &mut problems,
    );
    let operator_id =
        crate::request::uuid_field("operatorId", query.operator_id.as_deref(), &mut problems);
    let status = query.status.as_deref().and_then(|s| {
        RunStatus::parse(s).or_else(|| {
            problems.push(FieldError::new(
                "status",
                format!("Must be one of: {}", RunStatus::expected()),
            ));
            None
        })
    });
    let from =
        crate::request::time_field("startedFrom", query.started_from.as_deref(), &mut problems);
    let to = crate::request::time_field("startedTo", query.started_to.as_deref(), &mut problems);
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        problems.push(FieldError::new(
            "startedTo",
            "Must not be before startedFrom",
        ));
    }
    let limit = page::limit(query.limit.as_deref(), &mut problems);
    let cursor = page::cursor(query.cursor.as_deref(), &mut problems);
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let filter = ListFilter {
        instrument_id,
        status,
        operator_id,
        started_from: from,
        started_to: to,
        after: cursor,
        limit: limit + 1,
    };
    let by_start = filter.by_start();
    let mut items = run::list(&ctx.db(), &principal.scope(), &filter).await?;
    let next_cursor = page::finish(&mut items, limit, |last| Cursor {
        created_at: if by_start {
            last.started_at.unwrap_or(last.created_at).get()
        } else {
            last.created_at.get()
        },
        id: last.id,
    });
    Reply::ok(Page { items, next_cursor })
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct StartInput {
    /// The instrument to run on: online or idle, with no active run.
    instrument_id: uuid::Uuid,
    /// 1 to 255 printable characters (trimmed).
    name: Option<String>,
    /// 1 to 255 characters (trimmed); passed to the instrument with its
    /// `start` command.
    protocol: Option<String>,
    /// Free-form, at most 65536 bytes as JSON.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    metadata: Option<Map<String, Value>>,
    /// The instrument's settings for this run, passed with its `start`
    /// command (as the start control command's `settings`); at most 16384
    /// bytes as JSON.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    settings: Option<Map<String, Value>>,
}

/// Start a run
///
/// Requires `runs:create`. The instrument must be the organization's (else
/// 400) and online or idle with no active run (else 409, as when its state
/// changes meanwhile).
/// The run is created `pending` and a `start` command is queued for its
/// bridge in one transaction. The instrument's acknowledgement moves the
/// run to `running` (`RUN_RUNNING`); a refused start fails it, and the
/// instrument reported back from `running` completes it (idle or online)
/// or fails it (error) (`RUN_FINISHED`). Audited (`RUN_STARTED`). With an `Idempotency-Key`, a
/// retry answers the run the key created (`Idempotent-Replayed: true`); a
/// key already used for another command is refused.
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/v1/runs",
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters; makes the start safe to retry: the same key answers the run it created")),
    request_body = StartInput,
    responses(
        (status = 201, description = "The run, `pending`; a replay carries `Idempotent-Replayed: true`", body = crate::model::run::Run,
            headers(("Idempotent-Replayed" = String, description = "`true` when this answers an earlier request with the same key"))),
        (status = 409, description = "The instrument is not in a state to start, already has an active run, or changed meanwhile"))))]
async fn start<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::RunsCreate)?;
    let given_key = match rq.req.headers().get("idempotency-key") {
        None => None,
        Some(_) => Some(rq.idempotency_key()?),
    };
    let input: StartInput = rq.json(ctx)?;
    let mut problems = Vec::new();
    let name = input.name.as_deref().map(str::trim);
    if name.is_some_and(|n| n.is_empty() || !crate::domain::printable_within(n, 255)) {
        problems.push(FieldError::new("name", "Must be 1 to 255 characters"));
    }
    let protocol = input.protocol.as_deref().map(str::trim);
    if protocol.is_some_and(|p| p.is_empty() || p.chars().count() > 255) {
        problems.push(FieldError::new("protocol", "Must be 1 to 255 characters"));
    }
    let metadata = Value::Object(input.metadata.unwrap_or_default());
    if metadata.to_string().len() > 64 * 1024 {
        problems.push(FieldError::new("metadata", "Must be at most 65536 bytes"));
    }
    let settings = input.settings.map(Value::Object);
    if settings
        .as_ref()
        .is_some_and(|s| s.to_string().len() > 16 * 1024)
    {
        problems.push(FieldError::new("settings", "Must be at most 16384 bytes"));
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let scope = principal.scope();
    let db = ctx.db();
    let instrument = match instrument::get(&db, &scope, input.instrument_id).await {
        Ok(i) if i.deleted_at.is_none() => i,
        Ok(_) | Err(ApiError::NotFound) => {
            return Err(ApiError::invalid("instrumentId", "No such instrument"));
        }
        Err(e) => return Err(e),
    };

    let run_id = ctx.new_uuid();
    let mut parameters = Map::new();
    if let Some(p) = protocol {
        parameters.insert("protocol".into(), json!(p));
    }
    if let Some(settings) = settings {
        parameters.insert("settings".into(), settings);
    }
    let start = NewCommand {
        id: ctx.new_uuid(),
        instrument_id: instrument.id,
        run_id: Some(run_id),
        command: "start".into(),
        parameters: Value::Object(parameters),
        idempotency_key: given_key.clone().unwrap_or_else(|| format!("run:{run_id}")),
        timeout_secs: instrument.configuration["commandTimeoutSeconds"]
            .as_i64()
            .unwrap_or(DEFAULT_TIMEOUT_SECS),
        observed_status: instrument.status.as_str(),
    };
    if let Some(key) = &given_key
        && let Some(existing) = commands::by_key(&db, &scope, key).await?
    {
        return replay_start(ctx, &scope, existing).await;
    }
    let spec = command::find(instrument.kind, "start")
        .ok_or_else(|| ApiError::internal("every type has start"))?;
    if let Some(why) = command::refusal(spec, instrument.status) {
        return Err(ApiError::Conflict {
            message: why,
            details: vec![FieldError::new(
                "instrumentId",
                format!("Instrument status is {}", instrument.status.as_str()),
            )],
        });
    }

    let event = audit::Event {
        new_values: Some(json!({
            "instrumentId": instrument.id, "name": name, "protocol": protocol,
            "status": "pending", "metadata": metadata,
        })),
        ..audit::Event::by(ctx.new_uuid(), &principal, EventType::RunStarted, run_id)
    };
    // The run (only while the instrument is still in the state checked),
    // then its start command, in one transaction.
    let run = run::insert(
        &scope,
        &NewRun {
            id: run_id,
            instrument_id: instrument.id,
            name,
            metadata: &metadata,
            operator_id: principal.user_id,
            observed_status: instrument.status,
        },
    );
    let results = scope
        .batch(
            &db,
            vec![
                event.record_change(rq, run)?,
                start.insert(&scope, principal.user_id),
            ],
        )
        .await;
    match results {
        Ok(results) if results.first().is_some_and(|r| !r.rows.is_empty()) => {
            Reply::created(run::get(&db, &scope, run_id).await?)
        }
        Ok(_) => Err(ApiError::conflict(
            "The instrument's state changed while the run was being started; check its status and try again",
        )),
        Err(err) if err.constraint() == Some(run::ONE_ACTIVE_RUN) => {
            if let Some(key) = &given_key
                && let Some(existing) = commands::by_key(&db, &scope, key).await?
            {
                return replay_start(ctx, &scope, existing).await;
            }
            Err(active_run_conflict())
        }
        Err(err) => Err(err.into()),
    }
}

fn active_run_conflict() -> ApiError {
    ApiError::Conflict {
        message: "The instrument already has an active run".into(),
        details: vec![FieldError::new("instrumentId", "Stop its active run first")],
    }
}

/// A retried start: the run its key created.
async fn replay_start<P: Platform>(
    ctx: &Ctx<P>,
    scope: &Scope,
    existing: Command,
) -> Result<Reply, ApiError> {
    let Some(run_id) = existing.run_id.filter(|_| existing.command == "start") else {
        return Err(commands::key_reused());
    };
    Ok(Reply::with_status(
        http::StatusCode::CREATED,
        run::get(&ctx.db(), scope, run_id).await?,
    )?
    .replayed())
}
