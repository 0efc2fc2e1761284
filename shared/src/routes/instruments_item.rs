//! `/api/v1/instruments/:id`: `GET` one instrument (a removed one too: its
//! history stays readable), `PUT` a partial update under optimistic
//! concurrency (`If-Match: "<version>"` or `version` in the body; 412 when
//! stale, 428 when missing), `DELETE` removes it with a `reason` (409 while a
//! run is active). `instruments:view` / `instruments:manage`.

use http::header;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::audit::{self, EventType};
use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::domain::InstrumentStatus;
use crate::envelope::{Reply, etag};
use crate::error::{ApiError, FieldError};
use crate::model::instrument::{self, Instrument, InstrumentInput, NewInstrument};
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
    "bridgeId",
];

async fn show<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::InstrumentsView)?;
    let instrument = instrument::get(&ctx.db(), &principal.scope(), rq.uuid_param("id")?).await?;
    let version = instrument.version;
    Ok(Reply::ok(instrument)?.header(header::ETAG, etag(version)))
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
    let version = rq.expected_version(body.get("version"))?;
    let scope = principal.scope();
    let current = instrument::get(&ctx.db(), &scope, id).await?;
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
    let input: InstrumentInput = crate::request::parse_value(Value::Object(merged))?;
    let new = NewInstrument::parse(input)?;
    if new.status != current.status
        && (new.status == InstrumentStatus::Running || current.status == InstrumentStatus::Running)
    {
        return Err(ApiError::invalid(
            "status",
            "`running` is set and cleared by starting and stopping runs",
        ));
    }

    let after = new.audit_values();
    let before = serde_json::to_value(&current).map_err(ApiError::internal)?;
    let (old_values, new_values) = audit::changed_fields(&before, &after, &[]);
    if new_values.as_object().is_some_and(Map::is_empty) {
        let version = current.version;
        return Ok(Reply::ok(current)?.header(header::ETAG, etag(version)));
    }
    let event = audit::Event {
        old_values: Some(old_values),
        new_values: Some(new_values),
        ..audit::Event::by(ctx.new_uuid(), &principal, EventType::InstrumentUpdated, id)
    };
    let change = instrument::update(&scope, id, version, &new);
    let updated: Option<Instrument> = scope
        .fetch_optional(&ctx.db(), event.record_change(rq, change)?)
        .await
        .map_err(instrument::refused_write)?;
    match updated {
        Some(instrument) => {
            let version = instrument.version;
            Ok(Reply::ok(instrument)?.header(header::ETAG, etag(version)))
        }
        // Someone else changed or removed it between our read and write.
        None => {
            let now = instrument::get(&ctx.db(), &scope, id).await?;
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
        reason: Some(reason),
        ..audit::Event::by(ctx.new_uuid(), &principal, EventType::InstrumentDeleted, id)
    };
    let scope = principal.scope();
    let removed: Option<Instrument> = scope
        .fetch_optional(
            &ctx.db(),
            event.record_change(rq, instrument::remove(&scope, id))?,
        )
        .await?;
    match removed {
        Some(instrument) => Reply::ok(instrument),
        None => {
            let current = instrument::get(&ctx.db(), &scope, id).await?;
            if current.deleted_at.is_some() {
                Err(ApiError::NotFound)
            } else {
                Err(ApiError::conflict(
                    "The instrument has an active run; stop the run before removing it",
                ))
            }
        }
    }
}
