//! `POST /api/v1/jobs/send-mail`: the mail sender, a scheduled job (every
//! minute). It sends the due messages of every organization's outbox and
//! answers what it did (`{claimed, sent, failed}`); see `crate::mail`. On
//! Workers a cron trigger runs it ([`run`]); elsewhere a scheduler posts
//! here with `Authorization: Bearer <SCHEDULER_KEY>` (the dev runner does,
//! every minute).

use crate::auth::scheduler;
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::mail::{self, Sent};
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    POST => tick,
}

/// Send the due mail (scheduled job)
///
/// A scheduled job, every minute: sends the due messages of every
/// organization's outbox and answers what it did. On Workers a cron
/// trigger runs it; elsewhere a scheduler posts here with the scheduler's
/// key.
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/v1/jobs/send-mail",
    security(("schedulerKey" = [])),
    responses((status = 200, description = "What this run did (deferred: claimed but not tried, the provider could not be reached)", body = crate::mail::Sent))))]
async fn tick<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    scheduler::authorize(ctx, rq)?;
    Reply::ok(run(ctx).await?)
}

/// One run of the job.
pub async fn run<P: Platform>(ctx: &Ctx<P>) -> Result<Sent, ApiError> {
    mail::send_due(ctx).await
}
