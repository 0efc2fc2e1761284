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
use crate::model::instrument::{self, Instrument, ListFilter, MAX_TEXT, NewInstrument, Sort};
use crate::model::page::{self, Cursor, Page, TextCursor};
use crate::platform::Platform;
use crate::request::Rq;

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
