//! `POST /api/v1/jobs/retention`: retention on a schedule (hourly), a
//! scheduled job. Each tick claims [`BATCH`] organizations at a time whose
//! last run is more than [`EVERY_HOURS`] old, leased for [`LEASE_SECS`],
//! and runs [`crate::retention`] for each, recorded as the schedule's
//! (`RETENTION_RUN`, no user); it claims more while it has run less than
//! [`TICK_SECS`], so how many organizations a day it serves is bounded by
//! the work, not by a batch size. A run that finished marks its
//! organization run; one whose expired chain does not verify keeps
//! everything, is counted as failed and also waits for the next period; a
//! run that failed otherwise (the database, storage) keeps its lease until
//! it is over and is taken again by a later tick. Then it sweeps
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

/// Organizations claimed at a time.
pub const BATCH: i64 = 25;

/// A tick claims no more once it has run this long (a Workers cron run may
/// take 15 minutes of wall time; this leaves most of it).
pub const TICK_SECS: i64 = 60;

/// How long a claim holds an organization: longer than a batch's runs
/// (one after another, each verifying its expired chain), so only a run
/// that died loses it.
pub const LEASE_SECS: i64 = 3_600;

/// How often each organization's retention runs.
pub const EVERY_HOURS: i64 = 20;

/// What one tick did.
#[derive(Debug, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Swept {
    /// Organizations whose retention ran.
    pub organizations: usize,
    /// Organizations whose retention refused or failed (see the log).
    pub failed: usize,
    /// Batches claimed.
    pub batches: usize,
    /// Audit events removed, all organizations together.
    pub audit_events_removed: i64,
    /// Run data files whose bytes were removed.
    pub run_data_purged: usize,
    /// Idle rate-limit entries deleted (the organizations' and those keyed
    /// by address).
    pub rate_limit_entries_deleted: i64,
    /// Expired signup requests deleted.
    pub signup_requests_deleted: i64,
    /// E-mail deleted (the organizations' sent mail and the mail of no
    /// organization).
    pub mail_deleted: i64,
    /// Published events deleted (with their webhook deliveries).
    pub events_deleted: i64,
}

super::methods! {
    POST => tick,
}

/// Run retention on schedule (scheduled job)
///
/// A scheduled job, hourly. Claims organizations 25 at a time whose
/// retention last ran more than 20 hours ago (leased for an hour) and runs
/// retention for each, as `POST /api/v1/retention/run` does, recorded as
/// the schedule's (`RETENTION_RUN`, no user); it claims more while it has
/// run less than a minute. An organization whose expired chain does not
/// verify keeps everything, counts as failed and waits for the next
/// period; one that failed otherwise is taken again once its lease is
/// over. Then it sweeps what belongs to no organization: idle rate-limit
/// state keyed by address, expired signup requests, the mail of no
/// organization. On Workers a cron trigger runs it; elsewhere a scheduler
/// posts here with the scheduler's key.
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/v1/jobs/retention",
    security(("schedulerKey" = [])),
    responses((status = 200, description = "What this tick did", body = Swept))))]
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
    let started = ctx.now();
    while (ctx.now() - started).whole_seconds() < TICK_SECS {
        let claimed =
            organization::claim_retention_due(&db, BATCH, EVERY_HOURS, LEASE_SECS).await?;
        if claimed.is_empty() {
            break;
        }
        swept.batches += 1;
        for claimed in claimed {
            let scope = Scope::scheduled(claimed.id);
            let finished = match retention::run(ctx, rq, &scope, By::Schedule, s3).await {
                Ok(outcome) => {
                    swept.organizations += 1;
                    swept.audit_events_removed += outcome.audit_events_removed;
                    swept.run_data_purged += outcome.run_data_purged;
                    swept.rate_limit_entries_deleted += outcome.rate_limit_entries_deleted;
                    swept.mail_deleted += outcome.mail_deleted;
                    swept.events_deleted += outcome.events_deleted;
                    true
                }
                // The chain does not verify: nothing more to do until
                // someone looks (GET /api/audit/verify says where).
                Err(error) if retention::is_refusal(&error) => {
                    swept.failed += 1;
                    tracing::error!(organization = %claimed.id, error = %error, "scheduled retention refused for this organization");
                    true
                }
                Err(error) => {
                    swept.failed += 1;
                    tracing::error!(organization = %claimed.id, error = %error, "scheduled retention failed for this organization; taken again when its lease is over");
                    false
                }
            };
            if finished {
                db.batch(
                    vec![organization::finish_retention(claimed.id)],
                    BatchOptions::default(),
                )
                .await?;
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
