//! `POST /api/v1/jobs/watch`: the watch, a scheduled job (every minute)
//! that publishes bridges gone silent, maintenance fallen due and
//! calibrations overdue, each once (see `crate::watch`). On Workers a cron
//! trigger runs it ([`run`]); elsewhere a scheduler posts here with
//! `Authorization: Bearer <SCHEDULER_KEY>` (the dev runner does, every
//! minute).

use bytes::Bytes;

use crate::auth::scheduler;
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::platform::Platform;
use crate::request::Rq;
use crate::watch::{self, Watched};

super::methods! {
    POST => tick,
}

/// Run the watch
///
/// Only the scheduler (`Authorization: Bearer <SCHEDULER_KEY>`). Publishes
/// `bridge.disconnected` for bridges without a heartbeat for two minutes,
/// `maintenance.due` for scheduled maintenance whose time has come and
/// `calibration.overdue` for instruments past their calibration's due date,
/// each once for what it saw (audited, and delivered to the webhooks
/// subscribed); answers how many of each.
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/v1/jobs/watch",
    security(("schedulerKey" = [])),
    responses((status = 200, description = "What this run published", body = Watched))))]
async fn tick<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    scheduler::authorize(ctx, rq)?;
    Reply::ok(watch::run(ctx, rq).await?)
}

/// The cron trigger's run (Workers).
pub async fn run<P: Platform>(ctx: &Ctx<P>) -> Result<Watched, ApiError> {
    let rq = Rq::new(ctx, http::Request::new(Bytes::new()), true)
        .map_err(|_| ApiError::internal("the audit signing key is missing"))?;
    watch::run(ctx, &rq).await
}
