//! Retention: what leaves when its period is over, for one organization at
//! a time. Periods come from [`crate::config::RetentionConfig`]:
//!
//! - audit events older than the audit period leave from the start of the
//!   organization's chain: a signed checkpoint names the last one to go,
//!   then the database's `audit_retention_purge` removes them (refusing
//!   anything younger than seven years) and records the chain's new start;
//! - run data older than its period loses its bytes (PostgreSQL chunks or
//!   the object in storage); its record (name, size, digest) stays;
//! - ended sessions, the organization's idle rate-limit state and its
//!   e-mail sent more than `RETENTION_MAIL_DAYS` ago are deleted.
//!
//! The expired part of the chain is verified before anything is signed or
//! removed; when it does not verify nothing changes (`409`).
//!
//! Every run is audited (`RETENTION_RUN`) with what it removed, as the
//! administrator who asked (`POST /api/v1/retention/run`) or as the
//! schedule (`POST /api/v1/jobs/retention`, every organization in turn).

use serde::Serialize;
use serde_json::json;

use crate::audit::{self, EventType, chain, verify};
use crate::auth::Principal;
use crate::config::S3Config;
use crate::ctx::Ctx;
use crate::error::ApiError;
use crate::model::{Count, Scope, audit_event, email, first_row, rate_limit, run_data, session};
use crate::platform::Platform;
use crate::request::Rq;
use crate::storage::Backend;

/// How a refusal because the expired part of the chain does not verify
/// begins (the scheduled job tells it from a failure that may pass).
pub const REFUSED: &str = "The audit chain does not verify";

/// Whether `err` is [`run`]'s refusal of a chain that does not verify
/// (nothing to retry until someone looks), not a failure that may pass.
pub fn is_refusal(err: &ApiError) -> bool {
    matches!(err, ApiError::Conflict { message, .. } if message.starts_with(REFUSED))
}

/// Run data files handled per run.
const RUN_DATA_BATCH: i64 = 100;

/// What one organization's run removed.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = RetentionOutcome))]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// The periods applied: `auditDays`, `runDataDays`, `sessionsDays`,
    /// `rateLimitsHours`, `mailDays`, `eventsDays`.
    pub policy: crate::config::RetentionConfig,
    /// Audit events removed from the start of the chain.
    pub audit_events_removed: i64,
    /// The chain now starts after this sequence (when events were
    /// removed); a signed checkpoint names it.
    pub audit_chain_starts_after: Option<i64>,
    /// Run data files whose bytes were removed (their records stay); at
    /// most 100 a run.
    pub run_data_purged: usize,
    /// Ended sessions deleted.
    pub sessions_deleted: i64,
    /// Idle rate-limit entries deleted.
    pub rate_limit_entries_deleted: i64,
    /// Sent e-mail deleted.
    pub mail_deleted: i64,
    /// Published events deleted, with their webhook deliveries.
    pub events_deleted: i64,
}

/// Who runs retention: the record names them.
pub enum By<'a> {
    /// An administrator of the organization.
    Caller(&'a Principal),
    /// The scheduled job, of no one.
    Schedule,
}

/// Runs retention for `scope`'s organization; `s3` is the object store its
/// run data may be in (the caller's route declares it).
pub async fn run<P: Platform>(
    ctx: &Ctx<P>,
    rq: &Rq,
    scope: &Scope,
    by: By<'_>,
    s3: Option<&S3Config>,
) -> Result<Outcome, ApiError> {
    let policy = *ctx.config.retention()?;
    let org = scope.organization_id();
    let db = ctx.db();
    let key = rq.audit_key()?;

    // Audit events: the last event of the expired prefix (never the head).
    let candidate = audit_event::expired_prefix_end(&db, scope, policy.audit_days).await?;
    let mut removed = 0;
    let mut horizon = None;
    if let Some(candidate) = candidate {
        // What is about to be vouched for and removed must verify first:
        // a rewritten old part of the chain must not get a genuine
        // checkpoint and lose its evidence.
        let range = verify::Range {
            from: None,
            to: Some(candidate.sequence),
        };
        let checked = verify::verify(&db, scope, ctx.config.audit_keys()?, &range).await?;
        if let Some(broken) = checked.failure {
            tracing::error!(
                organization = %org,
                sequence = broken.sequence,
                reason = broken.reason,
                "retention refused: the expired part of the audit chain does not verify"
            );
            return Err(ApiError::conflict(format!(
                "{REFUSED} at event {} ({}): retention removes nothing until it does; see GET /api/audit/verify",
                broken.sequence, broken.reason
            )));
        }
        if checked.walk.previous.as_deref() != hex::decode(&candidate.hash).ok().as_deref() {
            return Err(ApiError::conflict(
                "The audit chain changed while retention ran; run it again",
            ));
        }
        let hash = hex::decode(&candidate.hash).map_err(ApiError::internal)?;
        let signature = chain::sign(
            key,
            &chain::checkpoint_message(org, candidate.sequence, &hash),
        );
        let checkpoint = audit_event::NewCheckpoint {
            id: ctx.new_uuid(),
            sequence: candidate.sequence,
            hash: &hash,
            signature: &signature,
            key_id: &key.kid,
        };
        let results = scope
            .batch(
                &db,
                vec![
                    audit_event::insert_checkpoint(scope, &checkpoint),
                    audit_event::purge_through(scope, policy.audit_days, candidate.sequence),
                ],
            )
            .await?;
        removed = first_row::<Count>(&results, 1)?.map_or(0, |c| c.n);
        if removed > 0 {
            horizon = Some(candidate.sequence);
        }
    }

    // Run data: bytes go, records stay.
    let expired = run_data::expired(&db, scope, policy.run_data_days, RUN_DATA_BATCH).await?;
    let mut purged = Vec::new();
    for file in &expired {
        if file.backend == Backend::S3 {
            let (Some(store), Some(key)) = (s3, file.object_key.as_deref()) else {
                tracing::warn!(run_id = %file.run_id, "run data in object storage, which is not configured");
                continue;
            };
            if let Err(e) = store.store(&ctx.platform).delete(key).await {
                tracing::warn!(run_id = %file.run_id, error = %e, "could not delete run data; kept for the next run");
                continue;
            }
        }
        purged.push(file.run_id);
    }
    let event = match by {
        By::Caller(principal) => {
            audit::Event::by(ctx.new_uuid(), principal, EventType::RetentionRun, org)
        }
        By::Schedule => audit::Event {
            organization_id: Some(org),
            record_id: Some(org),
            action: "Retention ran on schedule",
            ..audit::Event::new(ctx.new_uuid(), EventType::RetentionRun)
        },
    };
    let mut statements = run_data::purge(scope, &purged);
    statements.push(session::purge_ended(scope, policy.sessions_days));
    statements.push(rate_limit::purge_idle(scope, policy.rate_limits_hours));
    statements.push(email::purge_sent(scope, policy.mail_days));
    statements.push(audit_event::purge_events(scope, policy.events_days));
    let results = scope.batch(&db, statements).await?;
    let count = |i: usize| -> Result<i64, ApiError> {
        Ok(first_row::<Count>(&results, i)?.map_or(0, |c| c.n))
    };
    let outcome = Outcome {
        policy,
        audit_events_removed: removed,
        audit_chain_starts_after: horizon,
        run_data_purged: purged.len(),
        sessions_deleted: count(2)?,
        rate_limit_entries_deleted: count(3)?,
        mail_deleted: count(4)?,
        events_deleted: count(5)?,
    };
    // The job's own record, after what it removed.
    let recorded = audit::Event {
        new_values: Some(json!({
            "auditEventsRemoved": outcome.audit_events_removed,
            "auditChainStartsAfter": outcome.audit_chain_starts_after,
            "runDataPurged": purged,
            "sessionsDeleted": outcome.sessions_deleted,
            "rateLimitEntriesDeleted": outcome.rate_limit_entries_deleted,
            "mailDeleted": outcome.mail_deleted,
            "eventsDeleted": outcome.events_deleted,
            "policy": policy,
        })),
        ..event
    };
    scope.batch(&db, vec![recorded.insert(rq)?]).await?;
    Ok(outcome)
}
