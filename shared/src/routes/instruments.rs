//! `/api/v1/instruments`: `GET` lists the caller's organization's instruments
//! (filters `status`, `type`, `location`; `sort` by `createdAt` (default
//! `-createdAt`, newest first) or `name`, `-` for descending; keyset
//! pagination with an opaque `cursor` of the same order), `POST` registers
//! one (`instruments:manage`).

use serde::Deserialize;

use crate::audit::{self, EventType};
use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::domain::{InstrumentStatus, InstrumentType};
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::model::first_row;
#[cfg(feature = "openapi")]
use crate::model::instrument::InstrumentInput;
use crate::model::instrument::{self, Instrument, ListFilter, MAX_TEXT, NewInstrument, Sort};
use crate::model::page::{self, Cursor, Page, TextCursor};
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    GET => list,
    POST => create,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Only instruments in this status.
    #[cfg_attr(feature = "openapi", param(value_type = Option<InstrumentStatus>))]
    status: Option<String>,
    /// Only instruments of this type.
    #[serde(rename = "type")]
    #[cfg_attr(feature = "openapi", param(value_type = Option<InstrumentType>))]
    kind: Option<String>,
    /// Only instruments at exactly this location (at most 255 characters).
    #[cfg_attr(feature = "openapi", param(max_length = 255))]
    location: Option<String>,
    /// `createdAt`, `-createdAt` (the default, newest first), `name` or
    /// `-name`; `-` for descending, ties broken by `id`.
    #[cfg_attr(feature = "openapi", param(value_type = Option<String>, pattern = "^-?(createdAt|name)$"))]
    sort: Option<String>,
    /// Items per page, 1 to 100 (default 25).
    #[cfg_attr(feature = "openapi", param(value_type = Option<i64>, minimum = 1, maximum = 100))]
    limit: Option<String>,
    /// `nextCursor` of the previous page, in the same `sort`.
    cursor: Option<String>,
}

/// List the organization's instruments
///
/// Requires `instruments:view`. The instruments in service (removed ones
/// are left out), filtered by `status`, `type` and `location`, in the
/// order of `sort`; keyset pagination: pass the page's `nextCursor` as
/// `cursor` (with the same `sort`) for the next page, none on the last.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/v1/instruments",
    params(ListQuery),
    responses((status = 200, description = "One page of instruments", body = Page<Instrument>))))]
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
    let (after, after_name) = match (sort, query.cursor.as_deref()) {
        (_, None) => (None, None),
        (Sort::CreatedAt { .. }, Some(raw)) => (page::cursor(Some(raw), &mut problems), None),
        (Sort::Name { .. }, Some(raw)) => match TextCursor::decode(raw) {
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
    let filter = ListFilter {
        status,
        kind,
        location: query.location,
        sort,
        after,
        after_name,
        limit: limit + 1,
    };
    let mut items = instrument::list(&ctx.db(), &principal.scope(), &filter).await?;
    let next_cursor = match sort {
        Sort::CreatedAt { .. } => page::finish(&mut items, limit, |last| Cursor {
            created_at: last.created_at.get(),
            id: last.id,
        }),
        Sort::Name { .. } => page::finish(&mut items, limit, |last| TextCursor {
            key: last.name.clone(),
            id: last.id,
        }),
    };
    Reply::ok(Page { items, next_cursor })
}

/// Register an instrument
///
/// Requires `instruments:manage`. `name` and `type` are required; `status`
/// defaults to `offline`; `configuration` is checked against the type's
/// schema and `calibration` against the calibration fields, every problem
/// reported at once (400 `VALIDATION_ERROR`, `details[].field` the JSON
/// path). 409 when the serial number is already registered in the
/// organization; 400 when `bridgeId` is not one of its bridges. Audited
/// (`INSTRUMENT_CREATED`).
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/v1/instruments",
    request_body = InstrumentInput,
    responses(
        (status = 201, description = "Registered", body = Instrument),
        (status = 409, description = "The serial number is already registered"))))]
async fn create<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::InstrumentsManage)?;
    let new = NewInstrument::parse(rq.json(ctx)?)?;

    let id = ctx.new_uuid();
    let scope = principal.scope();
    let event = audit::Event {
        new_values: Some(new.audit_values()),
        ..audit::Event::by(ctx.new_uuid(), &principal, EventType::InstrumentCreated, id)
    };
    let results = scope
        .batch(
            &ctx.db(),
            vec![
                instrument::insert(&scope, id, &new, principal.user_id),
                event.insert(rq)?,
            ],
        )
        .await
        .map_err(instrument::refused_write)?;
    let created: Instrument = first_row(&results, 0)?
        .ok_or_else(|| ApiError::internal("INSERT ... RETURNING gave no row"))?;
    Reply::created(created)
}
