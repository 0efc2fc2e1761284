//! `/api/v1/instruments`: `GET` lists the caller's organization's instruments
//! (filters `status`, `type`, `location`; `sort` by `createdAt` (default
//! `-createdAt`, newest first) or `name`, `-` for descending; keyset
//! pagination with an opaque `cursor` of the same order), `POST` registers
//! one (`instruments:manage`).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::page::{self, Cursor};
use crate::audit::{self, Outcome};
use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::db::{BatchOptions, DbError, statement};
use crate::domain::{InstrumentStatus, InstrumentType, schema};
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::params;
use crate::platform::Platform;
use crate::request::Rq;

/// Longest text field (name, location, model, serial number, firmware).
pub const MAX_TEXT: usize = 255;
/// Largest `configuration` / `calibration` document, serialized.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

pub const COLUMNS: &str = "id, name, type, status, location, model, serial_number, firmware, configuration, \
                           calibration, calibration_due_at, version, created_at, updated_at, last_seen_at, created_by, \
                           deleted_at";

/// An instrument as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct Instrument {
    pub id: uuid::Uuid,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: InstrumentType,
    pub status: InstrumentStatus,
    pub location: Option<String>,
    pub model: Option<String>,
    pub serial_number: Option<String>,
    pub firmware: Option<String>,
    pub configuration: Value,
    pub calibration: Value,
    #[serde(with = "time::serde::rfc3339::option")]
    pub calibration_due_at: Option<OffsetDateTime>,
    pub version: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_seen_at: Option<OffsetDateTime>,
    pub created_by: Option<uuid::Uuid>,
    /// Set once the instrument is removed; its history stays readable.
    #[serde(with = "time::serde::rfc3339::option")]
    pub deleted_at: Option<OffsetDateTime>,
}

super::methods! {
    GET => list,
    POST => create,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    location: Option<String>,
    sort: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// The order of the list: a column, ascending or descending, then `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sort {
    CreatedAt { descending: bool },
    Name { descending: bool },
}

impl Sort {
    const EXPECTED: &str = "createdAt, -createdAt, name, -name";

    fn parse(raw: &str) -> Option<Sort> {
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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

async fn list<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::InstrumentsView)?;
    let query: ListQuery = rq.query()?;

    let mut problems = Vec::new();
    let status = query.status.as_deref().and_then(|s| {
        InstrumentStatus::parse(s).or_else(|| {
            problems.push(FieldError::new(
                "status",
                format!("Must be one of: {}", InstrumentStatus::expected()),
            ));
            None
        })
    });
    let kind = query.kind.as_deref().and_then(|s| {
        InstrumentType::parse(s).or_else(|| {
            problems.push(FieldError::new(
                "type",
                format!("Must be one of: {}", InstrumentType::expected()),
            ));
            None
        })
    });
    if query
        .location
        .as_ref()
        .is_some_and(|l| l.chars().count() > MAX_TEXT)
    {
        problems.push(FieldError::new(
            "location",
            format!("Must be at most {MAX_TEXT} characters"),
        ));
    }
    let sort = match query.sort.as_deref() {
        None => Sort::CreatedAt { descending: true },
        Some(raw) => Sort::parse(raw).unwrap_or_else(|| {
            problems.push(FieldError::new(
                "sort",
                format!("Must be one of: {}", Sort::EXPECTED),
            ));
            Sort::CreatedAt { descending: true }
        }),
    };
    let limit = page::limit(query.limit.as_deref(), &mut problems);
    // A cursor continues the order it came from.
    let (cursor, name_cursor) = match (sort, query.cursor.as_deref()) {
        (_, None) => (None, None),
        (Sort::CreatedAt { .. }, Some(raw)) => (page::cursor(Some(raw), &mut problems), None),
        (Sort::Name { .. }, Some(raw)) => match page::TextCursor::decode(raw) {
            Some(c) => (None, Some(c)),
            None => {
                problems.push(FieldError::new("cursor", "Invalid cursor"));
                (None, None)
            }
        },
    };
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let (order, after) = sort.sql();

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
    let mut items: Vec<Instrument> = ctx
        .db()
        .fetch_all(
            &sql,
            params![
                principal.organization_id,
                status.map(InstrumentStatus::as_str),
                kind.map(InstrumentType::as_str),
                query.location,
                cursor.as_ref().map(|c| c.created_at),
                cursor
                    .as_ref()
                    .map(|c| c.id)
                    .or(name_cursor.as_ref().map(|c| c.id)),
                limit + 1,
                name_cursor.as_ref().map(|c| c.key.clone()),
            ],
        )
        .await?;
    let next_cursor = match sort {
        Sort::CreatedAt { .. } => page::finish(&mut items, limit, |last| Cursor {
            created_at: last.created_at,
            id: last.id,
        }),
        Sort::Name { .. } => page::finish(&mut items, limit, |last| page::TextCursor {
            key: last.name.clone(),
            id: last.id,
        }),
    };
    Reply::ok(Page { items, next_cursor })
}

/// The body of `POST` (and, merged over the current instrument, of `PUT`).
#[derive(Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateInput {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: Option<String>,
    pub location: Option<String>,
    pub model: Option<String>,
    pub serial_number: Option<String>,
    pub firmware: Option<String>,
    pub configuration: Option<Value>,
    pub calibration: Option<Value>,
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
}

impl NewInstrument {
    pub fn parse(input: CreateInput) -> Result<NewInstrument, ApiError> {
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
            }),
            _ => Err(ApiError::Validation(problems)),
        }
    }
}

async fn create<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::InstrumentsManage)?;
    let new = NewInstrument::parse(rq.json(ctx)?)?;

    let id = ctx.new_uuid();
    let insert = statement(
        format!(
            "INSERT INTO instruments (id, organization_id, name, type, status, location, model, serial_number, \
             firmware, configuration, calibration, calibration_due_at, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11::jsonb, $12, $13) RETURNING {COLUMNS}"
        ),
        params![
            id,
            principal.organization_id,
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
            principal.user_id,
        ],
    );
    let event = audit::Event {
        id: ctx.new_uuid(),
        organization_id: Some(principal.organization_id),
        user_id: Some(principal.user_id),
        event_type: "INSTRUMENT_CREATED",
        severity: "INFO",
        action: "Instrument registered",
        outcome: Outcome::Success,
        record_type: Some("instrument"),
        record_id: Some(id),
        old_values: None,
        new_values: Some(json!({
            "name": new.name,
            "type": new.kind,
            "status": new.status,
            "location": new.location,
            "model": new.model,
            "serialNumber": new.serial_number,
            "firmware": new.firmware,
            "configuration": new.configuration,
            "calibration": new.calibration,
        })),
        metadata: json!({}),
        reason: None,
    };
    let results = ctx
        .db()
        .batch(vec![insert, event.insert(rq)], BatchOptions::default())
        .await
        .map_err(conflict_on_serial)?;
    let created: Instrument = results
        .first()
        .and_then(|r| r.decode::<Instrument>().ok())
        .and_then(|rows| rows.into_iter().next())
        .ok_or_else(|| ApiError::internal("INSERT ... RETURNING gave no row"))?;
    Reply::created(created)
}

pub fn conflict_on_serial(err: DbError) -> ApiError {
    if err.constraint() == Some("instruments_organization_id_serial_number_key") {
        ApiError::Conflict {
            message: "An instrument with this serial number already exists".into(),
            details: vec![FieldError::new(
                "serialNumber",
                "Already registered in this organization",
            )],
        }
    } else {
        err.into()
    }
}
