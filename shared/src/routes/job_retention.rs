//! `POST /api/v1/jobs/retention`: retention on a schedule (hourly), a
//! scheduled job. Each tick claims up to [`BATCH`] organizations whose last
//! run is more than [`EVERY_HOURS`] old and runs [`crate::retention`] for
//! each, recorded as the schedule's (`RETENTION_RUN`, no user); an
//! organization whose expired chain does not verify keeps everything and
//! is counted as failed (its next run is the next period's). Then it sweeps
//! what belongs to no organization: idle rate-limit state keyed by address,
//! expired signup requests and the mail of no organization. Answers what it
//! did. On Workers a cron trigger runs it ([`run`]); elsewhere a scheduler
//! posts here with `Authorization: Bearer <SCHEDULER_KEY>`.

use bytes::Bytes;
use serde::Serialize;

use crate::auth::scheduler;
use crate::ctx::Ctx;
use crate::db::BatchOptions;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::model::{Count, Scope, email, first_row, organization, rate_limit, signup_request};
use crate::platform::Platform;
use crate::request::Rq;
use crate::retention::{self, By};

/// Organizations handled per tick.
pub const BATCH: i64 = 25;

/// How often each organization's retention runs.
pub const EVERY_HOURS: i64 = 20;

/// What one tick did.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Swept {
    /// Organizations whose retention ran.
    pub organizations: usize,
    /// Organizations whose retention refused (see the log).
    pub failed: usize,
    pub audit_events_removed: i64,
    pub run_data_purged: usize,
    pub rate_limit_entries_deleted: i64,
    pub signup_requests_deleted: i64,
    pub mail_deleted: i64,
}

super::methods! {
    POST => tick,
}

async fn tick<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    scheduler::authorize(ctx, rq)?;
    Reply::ok(sweep(ctx, rq).await?)
}

/// One run of the job without a request (a cron trigger): its events carry
/// an id of their own and no client.
pub async fn run<P: Platform>(ctx: &Ctx<P>) -> Result<Swept, ApiError> {
    let rq = Rq::new(ctx, http::Request::new(Bytes::new()), true)
        .map_err(|_| ApiError::internal("the audit signing key is missing"))?;
    sweep(ctx, &rq).await
}

async fn sweep<P: Platform>(ctx: &Ctx<P>, rq: &Rq) -> Result<Swept, ApiError> {
    let policy = *ctx.config.retention()?;
    let s3 = ctx.config.storage()?.s3.as_ref();
    let db = ctx.db();
    let mut swept = Swept::default();
    for claimed in organization::claim_retention_due(&db, BATCH, EVERY_HOURS).await? {
        let scope = Scope::scheduled(claimed.id);
        match retention::run(ctx, rq, &scope, By::Schedule, s3).await {
            Ok(outcome) => {
                swept.organizations += 1;
                swept.audit_events_removed += outcome.audit_events_removed;
                swept.run_data_purged += outcome.run_data_purged;
                swept.rate_limit_entries_deleted += outcome.rate_limit_entries_deleted;
                swept.mail_deleted += outcome.mail_deleted;
            }
            Err(error) => {
                swept.failed += 1;
                tracing::error!(organization = %claimed.id, error = %error, "scheduled retention refused for this organization");
            }
        }
    }
    // What belongs to no organization.
    let results = db
        .batch(
            vec![
                rate_limit::purge_idle_addresses(policy.rate_limits_hours),
                signup_request::purge_expired_signup_requests(),
                email::purge_unowned_mail(policy.mail_days),
            ],
            BatchOptions::default(),
        )
        .await?;
    let count = |i: usize| -> Result<i64, ApiError> {
        Ok(first_row::<Count>(&results, i)?.map_or(0, |c| c.n))
    };
    swept.rate_limit_entries_deleted += count(0)?;
    swept.signup_requests_deleted = count(1)?;
    swept.mail_deleted += count(2)?;
    Ok(swept)
}
