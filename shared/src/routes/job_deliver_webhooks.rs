//! `POST /api/v1/jobs/deliver-webhooks`: the webhook delivery job, a
//! scheduled job (every minute). Each run delivers what is due and claims
//! again every second for [`RUN_SECS`] (so a 5-second retry goes within
//! about a second of its time while a run lasts, and a new event within
//! about a second of its commit); see `crate::webhook`. On Workers a cron
//! trigger runs it ([`run`]); elsewhere a scheduler posts here with
//! `Authorization: Bearer <SCHEDULER_KEY>` (the dev runner does, every
//! minute), optionally with `{"seconds": n}` (0: one pass).

use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;

use crate::auth::scheduler;
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::platform::Platform;
use crate::request::Rq;
use crate::webhook::{self, Drained};

/// How long a run keeps claiming (cron fires each minute).
pub const RUN_SECS: u64 = 50;

super::methods! {
    POST => tick,
}

#[derive(Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = DeliverWebhooksInput))]
#[serde(deny_unknown_fields)]
struct Input {
    /// How long to keep claiming, 0 to 55 seconds (default 50; 0: one pass).
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 55))]
    seconds: Option<u64>,
}

/// Deliver the due webhooks (scheduled job)
///
/// A scheduled job, every minute: delivers the due webhook deliveries of
/// every organization, claiming again each second for 50 seconds (or
/// `seconds`), and answers what it did. On Workers a cron trigger runs it;
/// elsewhere a scheduler posts here with the scheduler's key.
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/v1/jobs/deliver-webhooks",
    security(("schedulerKey" = [])),
    request_body(content = Option<Input>),
    responses((status = 200, description = "What this run did", body = Drained))))]
async fn tick<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    scheduler::authorize(ctx, rq)?;
    let input: Input = if rq.req.body().is_empty() {
        Input::default()
    } else {
        rq.json(ctx)?
    };
    let seconds = input.seconds.unwrap_or(RUN_SECS);
    if seconds > 55 {
        return Err(ApiError::invalid("seconds", "Must be from 0 to 55"));
    }
    Reply::ok(webhook::drain(ctx, rq, Duration::from_secs(seconds)).await?)
}

/// One run of the job without a request (a cron trigger): its events carry
/// an id of their own and no client.
pub async fn run<P: Platform>(ctx: &Ctx<P>) -> Result<Drained, ApiError> {
    let rq = Rq::new(ctx, http::Request::new(Bytes::new()), true)
        .map_err(|_| ApiError::internal("the audit signing key is missing"))?;
    webhook::drain(ctx, &rq, Duration::from_secs(RUN_SECS)).await
}
