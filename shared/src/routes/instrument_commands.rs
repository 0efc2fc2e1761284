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
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Only commands in this status (`expired` included).
    #[cfg_attr(feature = "openapi", param(value_type = Option<CommandStatus>))]
    status: Option<String>,
    /// Items per page, 1 to 100 (default 25).
    #[cfg_attr(feature = "openapi", param(value_type = Option<i64>, minimum = 1, maximum = 100))]
    limit: Option<String>,
    /// `nextCursor` of the previous page.
    cursor: Option<String>,
}

/// An instrument's commands
///
/// Requires `instruments:view`. Its control commands, newest first,
/// optionally of one `status`; keyset pagination: pass the page's
/// `nextCursor` as `cursor` for the next page. A removed instrument's
/// commands stay readable.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/v1/instruments/{id}/commands",
    params(("id" = uuid::Uuid, Path, description = "The instrument's id"), ListQuery),
    responses((status = 200, description = "One page of commands", body = Page<crate::model::command::Command>))))]
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
