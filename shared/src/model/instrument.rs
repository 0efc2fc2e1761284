//! `instruments`: the lab's instruments, their registration, updates under
//! optimistic concurrency and removal (the row stays; its history stays
//! readable).

use crate::domain::Timestamp;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::Scope;
use super::page::{Cursor, TextCursor};
use crate::db::{Db, DbError, Statement, statement};
use crate::domain::{InstrumentStatus, InstrumentType, RunStatus, schema};
use crate::error::{ApiError, FieldError};
use crate::params;
use crate::platform::Platform;

/// Longest text field (name, location, model, serial number, firmware).
pub const MAX_TEXT: usize = 255;
/// Largest `configuration` / `calibration` document, serialized.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

pub const COLUMNS: &str = "id, name, type, status, location, model, serial_number, firmware, configuration, \
                           calibration, calibration_due_at, version, created_at, updated_at, last_seen_at, created_by, \
                           deleted_at, bridge_id";

/// An instrument as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(rename_all = "camelCase")
)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct Instrument {
    pub id: uuid::Uuid,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: InstrumentType,
    /// Set by people and by its bridge's reports; `running` only by
    /// starting and stopping runs.
    pub status: InstrumentStatus,
    pub location: Option<String>,
    pub model: Option<String>,
    /// Unique in the organization.
    pub serial_number: Option<String>,
    pub firmware: Option<String>,
    /// Its type's settings: an object whose fields depend on `type`, as
    /// the server's instrument schemas define them
    /// (`shared::domain::schema::configuration_fields`). Every type accepts
    /// `calibrationIntervalDays` (1 to 3650), `commandTimeoutSeconds` (5 to
    /// 86400, the default timeout of its commands) and `notes`; each type
    /// adds its own (a `qpcr` has `wells`, `cycles`, `dyes`; a `centrifuge`
    /// `maxRpm`, `rotor`; ...), and a type with QC metrics accepts
    /// `qcThresholds` (`{metric: {warn, fail}}`). An unknown field is
    /// refused with the list of those allowed. At most 64 KiB.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub configuration: Value,
    /// Its last calibration: `lastCalibratedAt`, `dueAt` (RFC 3339),
    /// `performedBy`, `standard`, `certificate` (text) and `results` (an
    /// object); completing a calibration maintenance item writes it
    /// (`shared::domain::schema::CALIBRATION_FIELDS`). At most 64 KiB.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub calibration: Value,
    /// The calibration's `dueAt`.
    pub calibration_due_at: Option<Timestamp>,
    /// Its version for optimistic concurrency (also the `ETag`), raised by
    /// every change.
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// When its bridge last reported it.
    pub last_seen_at: Option<Timestamp>,
    pub created_by: Option<uuid::Uuid>,
    /// Set once the instrument is removed; its history stays readable.
    pub deleted_at: Option<Timestamp>,
    /// The bridge that serves it (the only one that reports for it and
    /// takes its commands); none until one reports it or an administrator
    /// names one.
    pub bridge_id: Option<uuid::Uuid>,
}

/// The order of the list: a column, ascending or descending, then `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    CreatedAt { descending: bool },
    Name { descending: bool },
}

impl Sort {
    pub const EXPECTED: &str = "createdAt, -createdAt, name, -name";

    pub fn parse(raw: &str) -> Option<Sort> {
        let (descending, column) = match raw.strip_prefix('-') {
            Some(column) => (true, column),
            None => (false, raw),
        };
        match column {
            "createdAt" => Some(Sort::CreatedAt { descending }),
            "name" => Some(Sort::Name { descending }),
            _ => None,
        }
    }

    /// `ORDER BY` and the keyset comparison (`$5`/`$6`: created_at and id,
    /// `$8`: name; every query names all three, the other order's key being
    /// null); the columns come from this fixed list only.
    fn sql(self) -> (&'static str, &'static str) {
        match self {
            Sort::CreatedAt { descending: true } => (
                "created_at DESC, id DESC",
                "$8::text IS NULL AND ($5::timestamptz IS NULL OR (created_at, id) < ($5::timestamptz, $6::uuid))",
            ),
            Sort::CreatedAt { descending: false } => (
                "created_at ASC, id ASC",
                "$8::text IS NULL AND ($5::timestamptz IS NULL OR (created_at, id) > ($5::timestamptz, $6::uuid))",
            ),
            Sort::Name { descending: true } => (
                "name DESC, id DESC",
                "$5::timestamptz IS NULL AND ($8::text IS NULL OR (name, id) < ($8::text, $6::uuid))",
            ),
            Sort::Name { descending: false } => (
                "name ASC, id ASC",
                "$5::timestamptz IS NULL AND ($8::text IS NULL OR (name, id) > ($8::text, $6::uuid))",
            ),
        }
    }
}

/// What a list asks for.
pub struct ListFilter {
    pub status: Option<InstrumentStatus>,
    pub kind: Option<InstrumentType>,
    pub location: Option<String>,
    pub sort: Sort,
    /// Continues after this item of a list sorted by `createdAt`.
    pub after: Option<Cursor>,
    /// Continues after this item of a list sorted by `name`.
    pub after_name: Option<TextCursor>,
    /// How many rows to fetch.
    pub limit: i64,
}

/// The organization's instruments in service, filtered and in order.
pub async fn list<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    filter: &ListFilter,
) -> Result<Vec<Instrument>, DbError> {
    let (order, after) = filter.sort.sql();
    let sql = format!(
        "SELECT {COLUMNS} FROM instruments \
         WHERE organization_id = $1 AND deleted_at IS NULL \
           AND ($2::text IS NULL OR status = $2) \
           AND ($3::text IS NULL OR type = $3) \
           AND ($4::text IS NULL OR location = $4) \
           AND {after} \
         ORDER BY {order} \
         LIMIT $7"
    );
    let params = params![
        scope.organization_id(),
        filter.status.map(InstrumentStatus::as_str),
        filter.kind.map(InstrumentType::as_str),
        filter.location,
        filter.after.as_ref().map(|c| c.created_at),
        filter
            .after
            .as_ref()
            .map(|c| c.id)
            .or(filter.after_name.as_ref().map(|c| c.id)),
        filter.limit,
        filter.after_name.as_ref().map(|c| c.key.clone()),
    ];
    scope.fetch_all(db, statement(sql, params)).await
}

/// The instrument `id`, removed or not.
pub async fn load<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    id: uuid::Uuid,
) -> Result<Option<Instrument>, DbError> {
    scope
        .fetch_optional(
            db,
            statement(
                format!("SELECT {COLUMNS} FROM instruments WHERE id = $1 AND organization_id = $2"),
                params![id, scope.organization_id()],
            ),
        )
        .await
}

/// The body of `POST` (and, merged over the current instrument, of `PUT`).
#[derive(Deserialize, Serialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InstrumentInput {
    /// 1 to 255 characters, no control characters (trimmed).
    #[cfg_attr(feature = "openapi", schema(max_length = 255))]
    pub name: String,
    #[serde(rename = "type")]
    #[cfg_attr(feature = "openapi", schema(value_type = InstrumentType))]
    pub kind: String,
    /// Default `offline`. A `PUT` may not change it to or from `running`
    /// (starting and stopping runs do).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<InstrumentStatus>))]
    pub status: Option<String>,
    /// At most 255 characters (as are `model`, `serialNumber` and
    /// `firmware`); empty reads as none.
    pub location: Option<String>,
    pub model: Option<String>,
    /// Unique in the organization (409 when taken).
    pub serial_number: Option<String>,
    pub firmware: Option<String>,
    /// Its type's settings: an object whose fields depend on `type`, as
    /// the server's instrument schemas define them
    /// (`shared::domain::schema::configuration_fields`). Every type accepts
    /// `calibrationIntervalDays` (1 to 3650), `commandTimeoutSeconds` (5 to
    /// 86400, the default timeout of its commands) and `notes`; each type
    /// adds its own (a `qpcr` has `wells`, `cycles`, `dyes`; a `centrifuge`
    /// `maxRpm`, `rotor`; ...), and a type with QC metrics accepts
    /// `qcThresholds` (`{metric: {warn, fail}}`). An unknown field is
    /// refused with the list of those allowed. At most 64 KiB; none or null is `{}`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub configuration: Option<Value>,
    /// Its calibration: `lastCalibratedAt`, `dueAt` (RFC 3339; becomes
    /// `calibrationDueAt`), `performedBy`, `standard`, `certificate` (text)
    /// and `results` (an object), as `shared::domain::schema::CALIBRATION_FIELDS`
    /// defines them. At most 64 KiB; none or null is `{}`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub calibration: Option<Value>,
    /// The bridge that serves it (one of the organization's).
    pub bridge_id: Option<uuid::Uuid>,
}

/// Validated input of `POST` / `PUT`.
pub struct NewInstrument {
    pub name: String,
    pub kind: InstrumentType,
    pub status: InstrumentStatus,
    pub location: Option<String>,
    pub model: Option<String>,
    pub serial_number: Option<String>,
    pub firmware: Option<String>,
    pub configuration: Value,
    pub calibration: Value,
    pub calibration_due_at: Option<OffsetDateTime>,
    pub bridge_id: Option<uuid::Uuid>,
}

impl NewInstrument {
    pub fn parse(input: InstrumentInput) -> Result<NewInstrument, ApiError> {
        let mut problems = Vec::new();
        let mut text = |field: &str, value: Option<String>, required: bool| -> Option<String> {
            let value = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
            match value {
                None if required => {
                    problems.push(FieldError::new(field, "Must not be empty"));
                    None
                }
                Some(v) if v.chars().count() > MAX_TEXT => {
                    problems.push(FieldError::new(
                        field,
                        format!("Must be at most {MAX_TEXT} characters"),
                    ));
                    None
                }
                Some(v) if v.chars().any(char::is_control) => {
                    problems.push(FieldError::new(
                        field,
                        "Must not contain control characters",
                    ));
                    None
                }
                other => other,
            }
        };
        let name = text("name", Some(input.name), true);
        let location = text("location", input.location, false);
        let model = text("model", input.model, false);
        let serial_number = text("serialNumber", input.serial_number, false);
        let firmware = text("firmware", input.firmware, false);
        let kind = InstrumentType::parse(&input.kind);
        if kind.is_none() {
            problems.push(FieldError::new(
                "type",
                format!("Must be one of: {}", InstrumentType::expected()),
            ));
        }
        let status = match input.status.as_deref() {
            None => Some(InstrumentStatus::Offline),
            Some(s) => InstrumentStatus::parse(s),
        };
        if status.is_none() {
            problems.push(FieldError::new(
                "status",
                format!("Must be one of: {}", InstrumentStatus::expected()),
            ));
        }
        let mut document = |field: &str, value: Option<Value>| -> Value {
            match value {
                None | Some(Value::Null) => json!({}),
                Some(v @ Value::Object(_)) if v.to_string().len() <= MAX_DOCUMENT_BYTES => v,
                Some(Value::Object(_)) => {
                    problems.push(FieldError::new(
                        field,
                        format!("Must be at most {MAX_DOCUMENT_BYTES} bytes"),
                    ));
                    Value::Null
                }
                Some(_) => {
                    problems.push(FieldError::new(field, "Must be a JSON object"));
                    Value::Null
                }
            }
        };
        let configuration = document("configuration", input.configuration);
        let calibration = document("calibration", input.calibration);
        if let (Some(kind), Some(doc)) = (kind, configuration.as_object()) {
            problems.extend(schema::check_configuration(kind, doc));
        }
        if let Some(doc) = calibration.as_object() {
            problems.extend(schema::check_calibration(doc));
        }
        let calibration_due_at = calibration.as_object().and_then(schema::calibration_due);
        match (name, kind, status) {
            (Some(name), Some(kind), Some(status)) if problems.is_empty() => Ok(NewInstrument {
                name,
                kind,
                status,
                location,
                model,
                serial_number,
                firmware,
                configuration,
                calibration,
                calibration_due_at,
                bridge_id: input.bridge_id,
            }),
            _ => Err(ApiError::Validation(problems)),
        }
    }
}

impl NewInstrument {
    /// The fields as statement parameters, in the order `insert` and
    /// `update` name their columns: name, type, status, location, model,
    /// serial number, firmware, configuration, calibration, calibration due,
    /// bridge.
    fn values(&self) -> Vec<Value> {
        params![
            self.name,
            self.kind.as_str(),
            self.status.as_str(),
            self.location,
            self.model,
            self.serial_number,
            self.firmware,
            self.configuration,
            self.calibration,
            self.calibration_due_at,
            self.bridge_id,
        ]
    }

    /// The instrument's fields as its audit events record them.
    pub fn audit_values(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.kind,
            "status": self.status,
            "location": self.location,
            "model": self.model,
            "serialNumber": self.serial_number,
            "firmware": self.firmware,
            "configuration": self.configuration,
            "calibration": self.calibration,
            "bridgeId": self.bridge_id,
        })
    }
}

/// The instrument `id`, removed or not; 404 when the organization has none.
pub async fn get<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    id: uuid::Uuid,
) -> Result<Instrument, ApiError> {
    load(db, scope, id).await?.ok_or(ApiError::NotFound)
}

/// What an instrument is doing now.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(as = InstrumentStatusDetail, rename_all = "camelCase")
)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct Status {
    pub id: uuid::Uuid,
    pub status: InstrumentStatus,
    /// When its bridge last reported it.
    pub last_seen_at: Option<Timestamp>,
    /// Heard from within the last 120 seconds.
    pub reachable: bool,
    /// Its pending or running run, if any.
    pub active_run: Option<ActiveRun>,
    /// The latest value of each metric in the last hour, by metric.
    pub readings: BTreeMap<String, Latest>,
    /// Commands queued or sent and not yet expired.
    pub pending_commands: i64,
    pub calibration_due_at: Option<Timestamp>,
    /// `calibrationDueAt` is past.
    pub calibration_overdue: bool,
    /// The earliest scheduled maintenance (overdue included).
    pub next_maintenance_at: Option<Timestamp>,
    /// How many scheduled maintenance items are past their date.
    pub overdue_maintenance: i64,
    /// Set when the instrument is removed.
    pub deleted_at: Option<Timestamp>,
}

/// The run an instrument is busy with.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ActiveRun {
    pub id: uuid::Uuid,
    pub name: Option<String>,
    pub status: RunStatus,
    /// As PostgreSQL renders a time in JSON (RFC 3339).
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub started_at: Option<String>,
    pub operator_id: Option<uuid::Uuid>,
}

/// A metric's latest reading.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = LatestReading))]
#[serde(rename_all = "camelCase")]
pub struct Latest {
    /// As stored (the number's text is kept).
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub value: serde_json::Number,
    pub unit: Option<String>,
    /// As PostgreSQL renders a time in JSON (RFC 3339).
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub recorded_at: String,
}

/// Instrument `id` now (see [`Status`]): heard from within `reachable_secs`
/// counts as reachable.
pub async fn status<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    id: uuid::Uuid,
    reachable_secs: i64,
) -> Result<Option<Status>, DbError> {
    scope
        .fetch_optional(
            db,
            statement(
                "SELECT i.id, i.status, i.last_seen_at, \
                    coalesce(i.last_seen_at > now() - make_interval(secs => $3), false) AS reachable, \
                    (SELECT jsonb_build_object('id', r.id, 'name', r.name, 'status', r.status, \
                                               'startedAt', r.started_at, 'operatorId', r.operator_id) \
                       FROM runs r WHERE r.organization_id = $2 AND r.instrument_id = $1 \
                        AND r.status IN ('pending', 'running') LIMIT 1) AS active_run, \
                    coalesce((SELECT jsonb_object_agg(l.metric, jsonb_build_object( \
                                  'value', l.value, 'unit', l.unit, 'recordedAt', l.recorded_at)) \
                       FROM (SELECT DISTINCT ON (metric) metric, value, unit, recorded_at FROM readings \
                              WHERE organization_id = $2 AND instrument_id = $1 \
                                AND recorded_at > now() - interval '1 hour' \
                              ORDER BY metric, recorded_at DESC) l), '{}'::jsonb) AS readings, \
                    (SELECT count(*) FROM instrument_commands c \
                      WHERE c.organization_id = $2 AND c.instrument_id = $1 \
                        AND c.status IN ('queued', 'sent') AND c.expires_at > now()) AS pending_commands, \
                    i.calibration_due_at, \
                    coalesce(i.calibration_due_at < now(), false) AS calibration_overdue, \
                    (SELECT min(m.scheduled_for) FROM maintenance m \
                      WHERE m.organization_id = $2 AND m.instrument_id = $1 \
                        AND m.status = 'scheduled') AS next_maintenance_at, \
                    (SELECT count(*) FROM maintenance m \
                      WHERE m.organization_id = $2 AND m.instrument_id = $1 \
                        AND m.status = 'scheduled' AND m.scheduled_for < now()) AS overdue_maintenance, \
                    i.deleted_at \
               FROM instruments i WHERE i.id = $1 AND i.organization_id = $2",
                params![id, scope.organization_id(), reachable_secs as f64],
            ),
        )
        .await
}

/// Registers `new` as instrument `id`, created by `by`; returns the row.
pub fn insert(scope: &Scope, id: uuid::Uuid, new: &NewInstrument, by: uuid::Uuid) -> Statement {
    statement(
        format!(
            "INSERT INTO instruments (id, organization_id, name, type, status, location, model, serial_number, \
             firmware, configuration, calibration, calibration_due_at, bridge_id, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11::jsonb, $12, $13, $14) RETURNING {COLUMNS}"
        ),
        [
            params![id, scope.organization_id()],
            new.values(),
            params![by],
        ]
        .concat(),
    )
}

/// Replaces instrument `id` with `new` if it is still at `version` and in
/// service; returns the row (none when it moved on or was removed).
pub fn update(scope: &Scope, id: uuid::Uuid, version: i64, new: &NewInstrument) -> Statement {
    statement(
        format!(
            "UPDATE instruments SET name = $4, type = $5, status = $6, location = $7, model = $8, \
             serial_number = $9, firmware = $10, configuration = $11::jsonb, calibration = $12::jsonb, \
             calibration_due_at = $13, bridge_id = $14, version = version + 1, updated_at = now() \
             WHERE id = $1 AND organization_id = $2 AND version = $3 AND deleted_at IS NULL \
             RETURNING {COLUMNS}"
        ),
        [params![id, scope.organization_id(), version], new.values()].concat(),
    )
}

/// Removes instrument `id` unless a run of it is pending or running;
/// returns the row (none when it was already removed or a run is active).
pub fn remove(scope: &Scope, id: uuid::Uuid) -> Statement {
    statement(
        format!(
            "UPDATE instruments SET deleted_at = now(), status = 'offline', version = version + 1, updated_at = now() \
             WHERE id = $1 AND organization_id = $2 AND deleted_at IS NULL \
               AND NOT EXISTS (SELECT 1 FROM runs WHERE organization_id = $2 AND instrument_id = $1 \
                               AND status IN ('pending', 'running')) \
             RETURNING {COLUMNS}"
        ),
        params![id, scope.organization_id()],
    )
}

/// Instrument `id` goes back to idle from `running` once run `run_id`
/// ended as `outcome` (in the same transaction).
pub fn idle_after_run(
    scope: &Scope,
    id: uuid::Uuid,
    run_id: uuid::Uuid,
    outcome: RunStatus,
) -> Statement {
    statement(
        "UPDATE instruments SET status = 'idle', updated_at = now() \
         WHERE organization_id = $2 AND id = $3 AND status = 'running' \
           AND EXISTS (SELECT 1 FROM runs WHERE id = $1 AND status = $4)",
        params![run_id, scope.organization_id(), id, outcome.as_str()],
    )
}

/// Records instrument `id`'s calibration (`doc`, next due `due`), only once
/// maintenance item `maintenance_id` was completed from `version` in the
/// same transaction; returns `id`.
pub fn record_calibration(
    scope: &Scope,
    id: uuid::Uuid,
    doc: &Value,
    due: OffsetDateTime,
    maintenance_id: uuid::Uuid,
    version: i64,
) -> Statement {
    statement(
        "UPDATE instruments SET calibration = $3::jsonb, calibration_due_at = $4, version = version + 1, \
         updated_at = now() WHERE id = $1 AND organization_id = $2 \
           AND EXISTS (SELECT 1 FROM maintenance WHERE id = $5 AND organization_id = $2 \
                       AND version = $6 + 1 AND status = 'completed') \
         RETURNING id",
        params![
            id,
            scope.organization_id(),
            doc,
            due,
            maintenance_id,
            version
        ],
    )
}

/// Marks the organization's instruments `ids` heard from now.
pub fn mark_seen(scope: &Scope, bridge_id: uuid::Uuid, ids: &[String]) -> Statement {
    statement(
        "UPDATE instruments SET last_seen_at = now() WHERE organization_id = $1 AND deleted_at IS NULL \
           AND bridge_id = $3 AND id IN (SELECT value::uuid FROM jsonb_array_elements_text($2::jsonb))",
        params![
            scope.organization_id(),
            Value::from(ids.to_vec()),
            bridge_id
        ],
    )
}

/// Releases the instruments of the bridge whose key `key_id` is (now)
/// revoked: the next bridge to report them serves them.
pub fn release_from_revoked_bridge(scope: &Scope, key_id: uuid::Uuid) -> Statement {
    statement(
        "UPDATE instruments SET bridge_id = NULL, updated_at = now() \
         WHERE organization_id = $1 AND bridge_id IN ( \
           SELECT b.id FROM bridges b JOIN api_keys k ON k.id = b.api_key_id AND k.organization_id = b.organization_id \
           WHERE b.organization_id = $1 AND b.api_key_id = $2 AND NOT k.is_active)",
        params![scope.organization_id(), key_id],
    )
}

/// Binds instrument `id` to bridge `bridge_id` if no bridge serves it yet
/// (the first to report it); returns `id`.
pub fn bind_to_bridge(scope: &Scope, id: uuid::Uuid, bridge_id: uuid::Uuid) -> Statement {
    statement(
        "UPDATE instruments SET bridge_id = $3, updated_at = now() \
         WHERE organization_id = $1 AND id = $2 AND bridge_id IS NULL AND deleted_at IS NULL RETURNING id",
        params![scope.organization_id(), id, bridge_id],
    )
}

/// An instrument's status and the bridge that serves it.
#[derive(Debug, Deserialize)]
pub struct Known {
    pub id: uuid::Uuid,
    pub status: InstrumentStatus,
    pub bridge_id: Option<uuid::Uuid>,
    /// Its run that is `running`, if any.
    pub running_run: Option<uuid::Uuid>,
}

/// The statuses, bridges and running runs of the organization's
/// instruments `ids` in service.
pub async fn statuses<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    ids: &[String],
) -> Result<Vec<Known>, DbError> {
    scope
        .fetch_all(
            db,
            statement(
                "SELECT id, status, bridge_id, \
                        (SELECT r.id FROM runs r WHERE r.organization_id = i.organization_id AND r.instrument_id = i.id \
                            AND r.status = 'running' LIMIT 1) AS running_run \
                   FROM instruments i WHERE organization_id = $1 AND deleted_at IS NULL \
                   AND id IN (SELECT value::uuid FROM jsonb_array_elements_text($2::jsonb))",
                params![scope.organization_id(), Value::from(ids.to_vec())],
            ),
        )
        .await
}

/// Sets instrument `id`'s status to `status` as bridge `bridge_id` (the
/// one that serves it) reported it, if it is still `current`; returns `id`.
pub fn set_reported_status(
    scope: &Scope,
    id: uuid::Uuid,
    bridge_id: uuid::Uuid,
    status: InstrumentStatus,
    current: InstrumentStatus,
) -> Statement {
    statement(
        "UPDATE instruments SET status = $3, updated_at = now() \
         WHERE organization_id = $1 AND id = $2 AND status = $4 AND bridge_id = $5 AND deleted_at IS NULL \
         RETURNING id",
        params![
            scope.organization_id(),
            id,
            status.as_str(),
            current.as_str(),
            bridge_id
        ],
    )
}

/// An instrument as a dashboard follows it.
#[derive(Debug, Deserialize)]
pub struct Summary {
    pub id: uuid::Uuid,
    pub name: String,
    pub status: String,
    pub last_seen_at: Option<Timestamp>,
}

/// The organization's instruments in service, `ids` only (or the first
/// 1,000 when none are named), by name.
pub async fn summaries<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    ids: Option<&[uuid::Uuid]>,
) -> Result<Vec<Summary>, DbError> {
    let query = match ids {
        None => statement(
            "SELECT id, name, status, last_seen_at FROM instruments \
              WHERE organization_id = $1 AND deleted_at IS NULL ORDER BY name, id LIMIT 1000",
            params![scope.organization_id()],
        ),
        Some(ids) => statement(
            "SELECT id, name, status, last_seen_at FROM instruments \
              WHERE organization_id = $1 AND deleted_at IS NULL \
                AND id IN (SELECT value::uuid FROM jsonb_array_elements_text($2::jsonb)) ORDER BY name, id",
            params![scope.organization_id(), json!(ids)],
        ),
    };
    scope.fetch_all(db, query).await
}

/// A registration or update the database refused, as the client should
/// see it: a serial number taken, a bridge the organization does not have.
pub fn refused_write(err: DbError) -> ApiError {
    match err.constraint() {
        Some("instruments_organization_id_serial_number_key") => ApiError::Conflict {
            message: "An instrument with this serial number already exists".into(),
            details: vec![FieldError::new(
                "serialNumber",
                "Already registered in this organization",
            )],
        },
        Some("instruments_bridge_fk") => {
            ApiError::invalid("bridgeId", "No such bridge in this organization")
        }
        _ => err.into(),
    }
}
