//! `/api/v1/instruments`: `GET` lists the caller's organization's instruments
//! (filters `status`, `type`, `location`; keyset pagination with an opaque
//! `cursor`), `POST` registers one (`instruments:manage`).

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Rq;
use crate::audit::{self, Outcome};
use crate::auth::{self, Permission};
use crate::db::{BatchOptions, DbError, statement};
use crate::domain::{InstrumentStatus, InstrumentType};
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::params;
use crate::platform::{Ctx, Platform};

pub const DEFAULT_LIMIT: i64 = 25;
pub const MAX_LIMIT: i64 = 100;
/// Longest text field (name, location, model, serial number, firmware).
pub const MAX_TEXT: usize = 255;
/// Largest `configuration` / `calibration` document, serialized.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

const COLUMNS: &str = "id, name, type, status, location, model, serial_number, firmware, configuration, \
                       calibration, version, created_at, updated_at, last_seen_at, created_by";

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
    pub version: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_seen_at: Option<OffsetDateTime>,
    pub created_by: Option<uuid::Uuid>,
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
    limit: Option<String>,
    cursor: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    items: Vec<Instrument>,
    next_cursor: Option<String>,
}

/// Position after the last item of a page: `(created_at, id)`.
struct Cursor {
    created_at: OffsetDateTime,
    id: uuid::Uuid,
}

impl Cursor {
    fn encode(&self) -> String {
        let text = format!(
            "{}|{}",
            self.created_at.format(&Rfc3339).unwrap_or_default(),
            self.id
        );
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
    }

    fn decode(raw: &str) -> Option<Cursor> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(raw)
            .ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (ts, id) = text.split_once('|')?;
        Some(Cursor {
            created_at: OffsetDateTime::parse(ts, &Rfc3339).ok()?,
            id: id.parse().ok()?,
        })
    }
}

async fn list<P: Platform>(ctx: &Ctx<P>, rq: &Rq) -> Result<Reply, ApiError> {
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
    let limit = match query.limit.as_deref().map(str::parse::<i64>) {
        None => DEFAULT_LIMIT,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => {
            problems.push(FieldError::new(
                "limit",
                format!("Must be an integer from 1 to {MAX_LIMIT}"),
            ));
            DEFAULT_LIMIT
        }
    };
    let cursor = query.cursor.as_deref().and_then(|raw| {
        Cursor::decode(raw).or_else(|| {
            problems.push(FieldError::new("cursor", "Invalid cursor"));
            None
        })
    });
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }

    let sql = format!(
        "SELECT {COLUMNS} FROM instruments \
         WHERE organization_id = $1 AND deleted_at IS NULL \
           AND ($2::text IS NULL OR status = $2) \
           AND ($3::text IS NULL OR type = $3) \
           AND ($4::text IS NULL OR location = $4) \
           AND ($5::timestamptz IS NULL OR (created_at, id) < ($5::timestamptz, $6::uuid)) \
         ORDER BY created_at DESC, id DESC \
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
                cursor.as_ref().map(|c| c.id),
                limit + 1,
            ],
        )
        .await?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|last| {
            Cursor {
                created_at: last.created_at,
                id: last.id,
            }
            .encode()
        })
    } else {
        None
    };
    Reply::ok(Page { items, next_cursor })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateInput {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    status: Option<String>,
    location: Option<String>,
    model: Option<String>,
    serial_number: Option<String>,
    firmware: Option<String>,
    configuration: Option<Value>,
    calibration: Option<Value>,
}

/// Validated input of `POST`.
struct NewInstrument {
    name: String,
    kind: InstrumentType,
    status: InstrumentStatus,
    location: Option<String>,
    model: Option<String>,
    serial_number: Option<String>,
    firmware: Option<String>,
    configuration: Value,
    calibration: Value,
}

impl NewInstrument {
    fn parse(input: CreateInput) -> Result<NewInstrument, ApiError> {
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
            }),
            _ => Err(ApiError::Validation(problems)),
        }
    }
}

async fn create<P: Platform>(ctx: &Ctx<P>, rq: &Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::InstrumentsManage)?;
    let new = NewInstrument::parse(rq.json(ctx)?)?;

    let id = ctx.new_uuid();
    let insert = statement(
        format!(
            "INSERT INTO instruments (id, organization_id, name, type, status, location, model, serial_number, \
             firmware, configuration, calibration, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11::jsonb, $12) RETURNING {COLUMNS}"
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

fn conflict_on_serial(err: DbError) -> ApiError {
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
