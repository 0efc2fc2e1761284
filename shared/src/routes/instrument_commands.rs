//! `GET /api/v1/instruments/:id/commands` (`instruments:view`): the
//! instrument's control commands, newest first (`status` filter, keyset
//! pagination with `cursor` / `limit`).

use serde::Deserialize;

use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::domain::CommandStatus;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::model::page::{self, Cursor, Page};
use crate::model::{command, instrument};
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    GET => list,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

async fn list<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::InstrumentsView)?;
    let instrument_id = rq.uuid_param("id")?;
    let query: ListQuery = rq.query()?;
    let mut problems = Vec::new();
    let status = query.status.as_deref().and_then(|raw| {
        CommandStatus::parse(raw).or_else(|| {
            problems.push(FieldError::new(
                "status",
                format!("Must be one of: {}", CommandStatus::expected()),
            ));
            None
        })
    });
    let limit = page::limit(query.limit.as_deref(), &mut problems);
    let cursor = page::cursor(query.cursor.as_deref(), &mut problems);
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let scope = principal.scope();
    let db = ctx.db();
    instrument::get(&db, &scope, instrument_id).await?;
    let mut items = command::list(
        &db,
        &scope,
        instrument_id,
        status,
        cursor.as_ref(),
        limit + 1,
    )
    .await?;
    let next_cursor = page::finish(&mut items, limit, |last| Cursor {
        created_at: last.created_at.get(),
        id: last.id,
    });
    Reply::ok(Page { items, next_cursor })
}
