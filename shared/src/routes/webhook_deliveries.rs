//! `GET /api/v1/webhooks/:id/deliveries` (`webhooks:manage`): the
//! endpoint's deliveries, newest first, each with its attempts (`status`
//! filter, keyset pagination with `cursor` / `limit`).

use serde::Deserialize;

use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::model::page::{self, Cursor, Page};
use crate::model::webhook;
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    GET => list,
}

/// A delivery's statuses.
const STATUSES: &[&str] = &["pending", "delivered", "failed", "cancelled"];

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Only deliveries in this status: `pending`, `delivered`, `failed`, `cancelled`.
    status: Option<String>,
    /// Items per page, 1 to 100 (default 25).
    #[cfg_attr(feature = "openapi", param(value_type = Option<i64>, minimum = 1, maximum = 100))]
    limit: Option<String>,
    /// `nextCursor` of the previous page.
    cursor: Option<String>,
}

/// A webhook endpoint's deliveries
///
/// Requires `webhooks:manage`. Newest first, each with its attempts (time,
/// HTTP status, duration, the start of the answer), optionally of one
/// `status`; keyset pagination.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries",
    params(("id" = uuid::Uuid, Path, description = "The endpoint's id"), ListQuery),
    responses((status = 200, description = "One page of deliveries", body = Page<webhook::Delivery>))))]
async fn list<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::WebhooksManage)?;
    let id = rq.uuid_param("id")?;
    let query: ListQuery = rq.query()?;
    let mut problems = Vec::new();
    if let Some(status) = &query.status
        && !STATUSES.contains(&status.as_str())
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
    let scope = principal.scope();
    let db = ctx.db();
    webhook::get(&db, &scope, id).await?;
    let mut items = webhook::deliveries(
        &db,
        &scope,
        id,
        query.status.as_deref(),
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
