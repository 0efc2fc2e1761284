//! `GET /api/audit/events` (`audit:view`): the organization's audit trail,
//! newest first. Filters: `userId`, `eventType`, `severity`, `outcome`,
//! `recordType` and `recordId`, `from` / `to` (RFC 3339), `q` (text in the
//! action, case-insensitive); `limit` and an opaque `cursor` (keyset on the
//! chain's sequence). Each event shows its chain position, hash and key id.

use crate::audit::query::{After, AuditQuery, after};
use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::model::audit_event;
use crate::model::page::{self, Page};
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    GET => list,
}

/// List the organization's audit trail
///
/// Requires `audit:view`. Newest first, filtered by user, type, severity,
/// outcome, record, time window and text in the action; keyset pagination
/// on the chain's sequence with `cursor`. Each event shows its chain
/// position, hash and signing key id. (`format` and `after` belong to
/// `/api/audit/export`.)
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/audit/events",
    params(
        AuditQuery,
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "Events per page (default 25)"),
        ("cursor" = Option<String>, Query, description = "The `nextCursor` of the previous page"),
    ),
    responses((status = 200, description = "One page of events", body = Page<audit_event::Listed>))))]
async fn list<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::AuditView)?;
    let query: AuditQuery = rq.query()?;
    let mut problems = Vec::new();
    let filters = query.filters(&mut problems);
    for (field, given) in [("format", &query.format), ("after", &query.after)] {
        if given.is_some() {
            problems.push(FieldError::new(field, "Only for /api/audit/export"));
        }
    }
    let limit = page::limit(query.limit.as_deref(), &mut problems);
    let cursor = after(query.cursor.as_deref(), &mut problems);
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let mut items =
        audit_event::list(&ctx.db(), &principal.scope(), &filters, cursor, limit + 1).await?;
    let next_cursor = page::finish(&mut items, limit, |last| After(last.sequence));
    Reply::ok(Page { items, next_cursor })
}
