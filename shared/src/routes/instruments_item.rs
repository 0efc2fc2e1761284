//! `/api/v1/instruments/:id`: `GET` one instrument (a removed one too: its
//! history stays readable), `PUT` a partial update under optimistic
//! concurrency (`If-Match: "<version>"` or `version` in the body; 412 when
//! stale, 428 when missing), `DELETE` removes it with a `reason` (409 while a
//! run is active). `instruments:view` / `instruments:manage`.

use http::{HeaderValue, header};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::instruments::{COLUMNS, CreateInput, Instrument, NewInstrument, conflict_on_serial};
use crate::audit;
use crate::auth::{self, Permission, Principal};
use crate::ctx::Ctx;
use crate::db::statement;
use crate::domain::InstrumentStatus;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::params;
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    GET => show,
    PUT => update,
    DELETE => remove,
}

/// Fields `PUT` may change.
const UPDATABLE: &[&str] = &[
    "name",
    "type",
    "status",
    "location",
    "model",
    "serialNumber",
    "firmware",
    "configuration",
    "calibration",
];

/// The instrument `id` of the caller's organization, removed or not.
pub async fn load<P: Platform>(
    ctx: &Ctx<P>,
    principal: &Principal,
    id: uuid::Uuid,
) -> Result<Instrument, ApiError> {
    ctx.db()
        .fetch_optional(
            &format!("SELECT {COLUMNS} FROM instruments WHERE id = $1 AND organization_id = $2"),
            params![id, principal.organization_id],
        )
        .await?
        .ok_or(ApiError::NotFound)
}

/// The `ETag` of a version.
pub fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

async fn show<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::InstrumentsView)?;
    let instrument = load(ctx, &principal, rq.uuid_param("id")?).await?;
    let version = instrument.version;
    Ok(Reply::ok(instrument)?.header(header::ETAG, etag(version)))
}

/// The version the client read: `If-Match: "3"` (or `W/"3"`), else the
/// body's `version`. Neither is `428`.
pub fn expected_version(rq: &Rq, body_version: Option<&Value>) -> Result<i64, ApiError> {
    if let Some(raw) = rq.req.headers().get(header::IF_MATCH) {
        let text = raw.to_str().unwrap_or("");
        let tag = text.trim().trim_start_matches("W/").trim_matches('"');
        return tag
            .parse::<i64>()
            .map_err(|_| ApiError::invalid("If-Match", "Must be the ETag you read, e.g. \"3\""));
    }
    match body_version {
        None => Err(ApiError::PreconditionRequired),
        Some(v) => v
            .as_i64()
            .filter(|v| *v >= 1)
            .ok_or_else(|| ApiError::invalid("version", "Must be a positive integer")),
    }
}

async fn update<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::InstrumentsManage)?;
    let id = rq.uuid_param("id")?;
    let body: Map<String, Value> = rq.json(ctx)?;
    let unknown: Vec<FieldError> = body
        .keys()
        .filter(|k| *k != "version" && !UPDATABLE.contains(&k.as_str()))
        .map(|k| {
            FieldError::new(
                k.as_str(),
                format!("Unknown field; updatable: {}", UPDATABLE.join(", ")),
            )
        })
        .collect();
    if !unknown.is_empty() {
        return Err(ApiError::Validation(unknown));
    }
    let version = expected_version(rq, body.get("version"))?;
    let current = load(ctx, &principal, id).await?;
    if current.deleted_at.is_some() {
        return Err(ApiError::NotFound);
    }
    if current.version != version {
        return Err(ApiError::PreconditionFailed {
            given: version.to_string(),
            current: current.version,
        });
    }

    // The new state: the current instrument with the given fields replaced
    // (null clears an optional field), validated as a whole.
    let mut merged = serde_json::to_value(&current)
        .map_err(ApiError::internal)?
        .as_object()
        .cloned()
        .unwrap_or_default();
    merged.retain(|k, _| UPDATABLE.contains(&k.as_str()));
    for (key, value) in body {
        if key != "version" {
            merged.insert(key, value);
        }
    }
    let input: CreateInput = crate::request::parse_value(Value::Object(merged))?;
    let new = NewInstrument::parse(input)?;
    if new.status != current.status
        && (new.status == InstrumentStatus::Running || current.status == InstrumentStatus::Running)
    {
        return Err(ApiError::invalid(
            "status",
            "`running` is set and cleared by starting and stopping runs",
        ));
    }

    let after = json!({
        "name": new.name, "type": new.kind, "status": new.status, "location": new.location,
        "model": new.model, "serialNumber": new.serial_number, "firmware": new.firmware,
        "configuration": new.configuration, "calibration": new.calibration,
    });
    let before = serde_json::to_value(&current).map_err(ApiError::internal)?;
    let (old_values, new_values) = audit::changed_fields(&before, &after, &[]);
    if new_values.as_object().is_some_and(Map::is_empty) {
        let version = current.version;
        return Ok(Reply::ok(current)?.header(header::ETAG, etag(version)));
    }
    let event = audit::Event {
        old_values: Some(old_values),
        new_values: Some(new_values),
        ..audit::Event::by(
            ctx.new_uuid(),
            &principal,
            "INSTRUMENT_UPDATED",
            "Instrument updated",
            ("instrument", id),
        )
    };
    let change = statement(
        format!(
            "UPDATE instruments SET name = $4, type = $5, status = $6, location = $7, model = $8, \
             serial_number = $9, firmware = $10, configuration = $11::jsonb, calibration = $12::jsonb, \
             calibration_due_at = $13, version = version + 1, updated_at = now() \
             WHERE id = $1 AND organization_id = $2 AND version = $3 AND deleted_at IS NULL \
             RETURNING {COLUMNS}"
        ),
        params![
            id,
            principal.organization_id,
            version,
            new.name,
            new.kind.as_str(),
            new.status.as_str(),
            new.location,
            new.model,
            new.serial_number,
            new.firmware,
            new.configuration,
            new.calibration,
            new.calibration_due_at,
        ],
    );
    let recorded = event.record_change(rq, change);
    let updated: Option<Instrument> = ctx
        .db()
        .fetch_optional(&recorded.query, recorded.params)
        .await
        .map_err(conflict_on_serial)?;
    match updated {
        Some(instrument) => {
            let version = instrument.version;
            Ok(Reply::ok(instrument)?.header(header::ETAG, etag(version)))
        }
        // Someone else changed or removed it between our read and write.
        None => {
            let now = load(ctx, &principal, id).await?;
            if now.deleted_at.is_some() {
                Err(ApiError::NotFound)
            } else {
                Err(ApiError::PreconditionFailed {
                    given: version.to_string(),
                    current: now.version,
                })
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveInput {
    reason: String,
}

async fn remove<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::InstrumentsManage)?;
    let id = rq.uuid_param("id")?;
    let input: RemoveInput = rq.json(ctx)?;
    let reason = input.reason.trim();
    if reason.is_empty() || reason.chars().count() > 1000 {
        return Err(ApiError::invalid(
            "reason",
            "Say why the instrument is removed (1 to 1000 characters)",
        ));
    }
    let event = audit::Event {
        severity: "WARNING",
        reason: Some(reason),
        ..audit::Event::by(
            ctx.new_uuid(),
            &principal,
            "INSTRUMENT_DELETED",
            "Instrument removed",
            ("instrument", id),
        )
    };
    let change = statement(
        format!(
            "UPDATE instruments SET deleted_at = now(), status = 'offline', version = version + 1, updated_at = now() \
             WHERE id = $1 AND organization_id = $2 AND deleted_at IS NULL \
               AND NOT EXISTS (SELECT 1 FROM runs WHERE organization_id = $2 AND instrument_id = $1 \
                               AND status IN ('pending', 'running')) \
             RETURNING {COLUMNS}"
        ),
        params![id, principal.organization_id],
    );
    let recorded = event.record_change(rq, change);
    let removed: Option<Instrument> = ctx
        .db()
        .fetch_optional(&recorded.query, recorded.params)
        .await?;
    match removed {
        Some(instrument) => Reply::ok(instrument),
        None => {
            let current = load(ctx, &principal, id).await?;
            if current.deleted_at.is_some() {
                Err(ApiError::NotFound)
            } else {
                Err(ApiError::Conflict {
                    message: "The instrument has an active run; stop the run before removing it"
                        .into(),
                    details: Vec::new(),
                })
            }
        }
    }
}
