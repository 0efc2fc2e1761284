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
#[cfg(feature = "openapi")]
use crate::domain::InstrumentType;
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

/// The body of `PUT`, as the document shows it (the handler reads a map
/// and refuses any other key): the fields to change, all optional.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(as = InstrumentPatch, rename_all = "camelCase")]
#[allow(dead_code)]
struct InstrumentPatch {
    /// The version read, when no `If-Match` header is sent.
    #[schema(minimum = 1, nullable = false)]
    version: Option<i64>,
    /// 1 to 255 characters, no control characters.
    #[schema(max_length = 255, nullable = false)]
    name: Option<String>,
    /// The new type; `configuration` must then fit it.
    #[schema(rename = "type", nullable = false)]
    kind: Option<InstrumentType>,
    /// Not to or from `running` (starting and stopping runs set it).
    #[schema(nullable = false)]
    status: Option<InstrumentStatus>,
    /// At most 255 characters (as are `model`, `serialNumber` and
    /// `firmware`); null clears it.
    location: Option<String>,
    model: Option<String>,
    /// Unique in the organization (409 when taken).
    serial_number: Option<String>,
    firmware: Option<String>,
    /// The whole new configuration (it replaces the old one, it is not
    /// merged), an object whose fields depend on `type`: the schema of each
    /// type is `shared::domain::schema::configuration_fields` (see
    /// `Instrument.configuration`). Null resets it to `{}`.
    #[schema(value_type = Option<Object>)]
    configuration: Option<serde_json::Value>,
    /// The whole new calibration document (see `Instrument.calibration`);
    /// null resets it to `{}`.
    #[schema(value_type = Option<Object>)]
    calibration: Option<serde_json::Value>,
    /// The bridge that serves it (one of the organization's); null
    /// releases it to the next bridge that reports it.
    bridge_id: Option<uuid::Uuid>,
}

/// One instrument
///
/// Requires `instruments:view`. A removed instrument is shown too (with
/// `deletedAt`): its history stays readable. The `ETag` is its version, for
/// `If-Match` on `PUT`.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/v1/instruments/{id}",
    params(("id" = uuid::Uuid, Path, description = "The instrument's id")),
    responses((status = 200, description = "The instrument", body = Instrument,
        headers(("ETag" = String, description = "The instrument's version, quoted (`\"3\"`)"))))))]
async fn show<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::InstrumentsView)?;
    let instrument = instrument::get(&ctx.db(), &principal.scope(), rq.uuid_param("id")?).await?;
    let version = instrument.version;
    Ok(Reply::ok(instrument)?.header(header::ETAG, etag(version)))
}

/// Change an instrument
///
/// Requires `instruments:manage`. A partial update: the given fields
/// replace the current ones (null clears an optional field) and the result
/// is validated as a whole, like a registration; any other key is 400.
/// Optimistic concurrency: send the version read as `If-Match: "<version>"`
/// (the `ETag`) or as `version` in the body; 428 `PRECONDITION_REQUIRED`
/// without either, 412 `PRECONDITION_FAILED` when the instrument changed
/// since. `status` cannot be set to or from `running`. 404 for a removed
/// instrument, 409 when the serial number is taken. A request that changes
/// nothing answers the instrument as it is; a change is audited
/// (`INSTRUMENT_UPDATED`, with the old and new values of what changed).
#[cfg_attr(feature = "openapi", utoipa::path(put, path = "/api/v1/instruments/{id}",
    params(
        ("id" = uuid::Uuid, Path, description = "The instrument's id"),
        ("If-Match" = Option<String>, Header, nullable = false, description = "The version read (its `ETag`), e.g. `\"3\"`; else `version` in the body")),
    request_body = InstrumentPatch,
    responses(
        (status = 200, description = "The instrument as it is now", body = Instrument,
            headers(("ETag" = String, description = "Its new version, quoted"))),
        (status = 409, description = "The serial number is already registered"),
        (status = 412, description = "The version is stale: the instrument changed since it was read"),
        (status = 428, description = "Neither `If-Match` nor `version` was sent"))))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = InstrumentRemoval))]
#[serde(deny_unknown_fields)]
struct RemoveInput {
    /// Why it is removed: 1 to 1000 characters, kept in the audit trail.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 1000))]
    reason: String,
}

/// Remove an instrument
///
/// Requires `instruments:manage`. The instrument leaves service (status
/// `offline`, `deletedAt` set) but stays readable with its history; the
/// `reason` is audited (`INSTRUMENT_DELETED`). 409 while one of its runs is
/// pending or running; 404 when it is already removed.
#[cfg_attr(feature = "openapi", utoipa::path(delete, path = "/api/v1/instruments/{id}",
    params(("id" = uuid::Uuid, Path, description = "The instrument's id")),
    request_body = RemoveInput,
    responses(
        (status = 200, description = "The removed instrument", body = Instrument),
        (status = 409, description = "A run of the instrument is active"))))]
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
