//! `/api/v1/runs`: `GET` lists the organization's runs, newest first
//! (filters `instrumentId`, `status`, `operatorId`, `startedFrom`,
//! `startedTo`; keyset pagination), `runs:view`; with a start-time window
//! the list is ordered by start time, newest first. `POST` starts one
//! (`runs:create`): `{instrumentId, name?, protocol?, metadata?}` with an
//! optional `Idempotency-Key`; the instrument must be online or idle with
//! no active run. The run is created `pending` and a `start` command is
//! queued for the bridge, in one statement; the instrument's acknowledgement
//! moves the run to `running`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::instrument_control::{self, DEFAULT_TIMEOUT_SECS, NewCommand};
use crate::audit;
use crate::auth::{self, Permission, Principal};
use crate::ctx::Ctx;
use crate::db::statement;
use crate::domain::{RunStatus, command};
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::model::instrument;
use crate::model::page::Page;
use crate::model::page::{self, Cursor};
use crate::params;
use crate::platform::Platform;
use crate::request::Rq;

/// A run's columns (from `runs r` joined to `instruments i`, and its data
/// file `d` when there is one).
pub const RUN_COLUMNS: &str = "r.id, r.instrument_id, i.name AS instrument_name, i.type AS instrument_type, i.status AS instrument_status, \
     r.name, r.status, r.started_at, r.completed_at, r.operator_id, r.metadata, r.results, r.end_reason, \
     r.version, r.created_at, r.updated_at, \
     CASE WHEN d.run_id IS NULL THEN NULL ELSE jsonb_build_object( \
         'filename', d.filename, 'contentType', d.content_type, 'format', d.format, 'status', d.status, \
         'totalBytes', d.total_bytes, 'receivedBytes', d.received_bytes, \
         'sha256', encode(d.sha256, 'hex'), 'completedAt', d.completed_at) END AS data, \
     (SELECT coalesce(jsonb_agg(jsonb_build_object('id', s.id, 'meaning', s.meaning, 'printedName', s.printed_name, \
         'signedAt', s.signed_at, 'runVersion', s.run_version, 'current', s.run_version = r.version) \
         ORDER BY s.signed_at, s.id), '[]'::jsonb) \
      FROM run_signatures s WHERE s.organization_id = r.organization_id AND s.run_id = r.id) AS signatures";

/// `FROM` clause matching [`RUN_COLUMNS`].
pub const RUN_FROM: &str = "runs r JOIN instruments i ON i.organization_id = r.organization_id AND i.id = r.instrument_id \
     LEFT JOIN run_data d ON d.run_id = r.id";

/// A run as the API shows it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct RunView {
    pub id: uuid::Uuid,
    pub instrument_id: uuid::Uuid,
    pub instrument_name: String,
    pub instrument_type: String,
    pub instrument_status: crate::domain::InstrumentStatus,
    pub name: Option<String>,
    pub status: RunStatus,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub completed_at: Option<OffsetDateTime>,
    pub operator_id: Option<uuid::Uuid>,
    pub metadata: Value,
    pub results: Option<Value>,
    pub end_reason: Option<String>,
    pub version: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// The run's data file, when one was uploaded (or is being uploaded).
    pub data: Option<Value>,
    /// Its electronic signatures (`current`: made on this version; see
    /// `/signatures` for the full check).
    pub signatures: Value,
}

/// The run `id` of the caller's organization.
pub async fn load<P: Platform>(
    ctx: &Ctx<P>,
    principal: &Principal,
    id: uuid::Uuid,
) -> Result<RunView, ApiError> {
    ctx.db()
        .fetch_optional(
            &format!(
                "SELECT {RUN_COLUMNS} FROM {RUN_FROM} WHERE r.id = $1 AND r.organization_id = $2"
            ),
            params![id, principal.organization_id],
        )
        .await?
        .ok_or(ApiError::NotFound)
}

super::methods! {
    GET => list,
    POST => start,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ListQuery {
    instrument_id: Option<String>,
    status: Option<String>,
    operator_id: Option<String>,
    started_from: Option<String>,
    started_to: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

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
    // A start-time window lists by start time (its own index); otherwise
    // newest created first.
    let by_start = from.is_some() || to.is_some();
    let key = if by_start {
        "r.started_at"
    } else {
        "r.created_at"
    };
    let mut items: Vec<RunView> = ctx
        .db()
        .fetch_all(
            &format!(
                "SELECT {RUN_COLUMNS} FROM {RUN_FROM} \
                 WHERE r.organization_id = $1 \
                   AND ($2::uuid IS NULL OR r.instrument_id = $2) \
                   AND ($3::text IS NULL OR r.status = $3) \
                   AND ($4::uuid IS NULL OR r.operator_id = $4) \
                   AND ($5::timestamptz IS NULL OR r.started_at >= $5) \
                   AND ($6::timestamptz IS NULL OR r.started_at <= $6) \
                   AND ($7::timestamptz IS NULL OR ({key}, r.id) < ($7::timestamptz, $8::uuid)) \
                 ORDER BY {key} DESC, r.id DESC LIMIT $9"
            ),
            params![
                principal.organization_id,
                instrument_id,
                status.map(RunStatus::as_str),
                operator_id,
                from,
                to,
                cursor.as_ref().map(|c| c.created_at),
                cursor.as_ref().map(|c| c.id),
                limit + 1,
            ],
        )
        .await?;
    let next_cursor = page::finish(&mut items, limit, |last| Cursor {
        created_at: if by_start {
            last.started_at.unwrap_or(last.created_at)
        } else {
            last.created_at
        },
        id: last.id,
    });
    Reply::ok(Page { items, next_cursor })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct StartInput {
    instrument_id: uuid::Uuid,
    name: Option<String>,
    protocol: Option<String>,
    metadata: Option<Map<String, Value>>,
}

async fn start<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::RunsCreate)?;
    let given_key = match rq.req.headers().get("idempotency-key") {
        None => None,
        Some(_) => Some(instrument_control::idempotency_key(rq)?),
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
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let instrument = match instrument::get(&ctx.db(), &principal.scope(), input.instrument_id).await
    {
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
        && let Some(existing) = instrument_control::by_key(ctx, &principal, key).await?
    {
        return replay_start(ctx, &principal, existing).await;
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
        ..audit::Event::by(
            ctx.new_uuid(),
            &principal,
            "RUN_STARTED",
            "Run started",
            ("run", run_id),
        )
    };
    // The run (only while the instrument is still in the state checked),
    // then its start command, in one transaction.
    let run = statement(
        "INSERT INTO runs (id, organization_id, instrument_id, status, name, metadata, operator_id, created_by) \
         SELECT $1, $2, $3, 'pending', $4, $5::jsonb, $6, $6 FROM instruments \
          WHERE id = $3 AND organization_id = $2 AND status = $7 AND deleted_at IS NULL RETURNING id",
        params![
            run_id,
            principal.organization_id,
            instrument.id,
            name,
            metadata,
            principal.user_id,
            instrument.status.as_str(),
        ],
    );
    let results = ctx
        .db()
        .batch(
            vec![event.record_change(rq, run), start.insert(&principal)],
            Default::default(),
        )
        .await;
    match results {
        Ok(results) if results.first().is_some_and(|r| !r.rows.is_empty()) => {
            Reply::created(load(ctx, &principal, run_id).await?)
        }
        Ok(_) => Err(ApiError::Conflict {
            message: "The instrument's state changed while the run was being started; check its status and try again".into(),
            details: Vec::new(),
        }),
        Err(err) if err.constraint() == Some("runs_one_active_idx") => {
            if let Some(key) = &given_key
                && let Some(existing) = instrument_control::by_key(ctx, &principal, key).await?
            {
                return replay_start(ctx, &principal, existing).await;
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
    principal: &Principal,
    existing: instrument_control::CommandView,
) -> Result<Reply, ApiError> {
    let Some(run_id) = existing.run_id.filter(|_| existing.command == "start") else {
        return Err(instrument_control::key_reused());
    };
    instrument_control::replayed(Reply::with_status(
        http::StatusCode::CREATED,
        load(ctx, principal, run_id).await?,
    )?)
}
