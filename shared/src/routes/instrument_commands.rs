//! `GET /api/v1/instruments/:id/commands` (`instruments:view`): the
//! instrument's control commands, newest first (`status` filter, keyset
//! pagination with `cursor` / `limit`).

use serde::Deserialize;

use super::instrument_control::{COMMAND_COLUMNS, CommandView};
use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::model::instrument;
use crate::model::page::Page;
use crate::model::page::{self, Cursor};
use crate::params;
use crate::platform::Platform;
use crate::request::Rq;

const STATUSES: &[&str] = &[
    "queued",
    "sent",
    "acknowledged",
    "completed",
    "failed",
    "expired",
];

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
    if let Some(status) = query.status.as_deref()
        && !STATUSES.contains(&status)
    {
        problems.push(FieldError::new(
            "status",
            format!("Must be one of: {}", STATUSES.join(", ")),
        ));
    }
    let limit = page::limit(query.limit.as_deref(), &mut problems);
    let cursor = page::cursor(query.cursor.as_deref(), &mut problems);
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    instrument::get(&ctx.db(), &principal.scope(), instrument_id).await?;
    let mut items: Vec<CommandView> = ctx
        .db()
        .fetch_all(
            &format!(
                "SELECT * FROM (SELECT {COMMAND_COLUMNS} FROM instrument_commands \
                  WHERE organization_id = $1 AND instrument_id = $2 \
                    AND ($3::timestamptz IS NULL OR (created_at, id) < ($3::timestamptz, $4::uuid)) \
                  ORDER BY created_at DESC, id DESC) c \
                 WHERE ($5::text IS NULL OR c.status = $5) LIMIT $6"
            ),
            params![
                principal.organization_id,
                instrument_id,
                cursor.as_ref().map(|c| c.created_at),
                cursor.as_ref().map(|c| c.id),
                query.status,
                limit + 1,
            ],
        )
        .await?;
    let next_cursor = page::finish(&mut items, limit, |last| Cursor {
        created_at: last.created_at,
        id: last.id,
    });
    Reply::ok(Page { items, next_cursor })
}
