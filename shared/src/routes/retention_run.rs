//! `POST /api/v1/retention/run` (`users:manage`): the retention job for the
//! caller's organization, meant to be called on a schedule (a Workers Cron
//! Trigger or any scheduler, with an API key of an administrator). Periods
//! come from [`crate::config::RetentionConfig`]:
//!
//! - audit events older than the audit period leave from the start of the
//!   organization's chain: a signed checkpoint names the last one to go,
//!   then the database's `audit_retention_purge` removes them (refusing
//!   anything younger than seven years) and records the chain's new start;
//! - run data older than its period loses its bytes (PostgreSQL chunks or
//!   the object in storage); its record (name, size, digest) stays;
//! - ended sessions and idle rate-limit state are deleted.
//!
//! Every run of the job is audited (`RETENTION_RUN`) with what it removed.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{self, chain};
use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::db::statement;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::params;
use crate::platform::Platform;
use crate::request::Rq;
use crate::storage::Backend;

super::methods! {
    POST => run,
}

/// Run data files handled per run of the job.
const RUN_DATA_BATCH: i64 = 100;

#[derive(Deserialize)]
struct Candidate {
    sequence: i64,
    hash: String,
}

#[derive(Deserialize)]
struct Expired {
    run_id: uuid::Uuid,
    backend: Backend,
    object_key: Option<String>,
}

#[derive(Deserialize)]
struct Count {
    n: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Outcome {
    policy: crate::config::RetentionConfig,
    audit_events_removed: i64,
    audit_chain_starts_after: Option<i64>,
    run_data_purged: usize,
    sessions_deleted: i64,
    rate_limit_entries_deleted: i64,
}

async fn run<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::UsersManage)?;
    let policy = *ctx.config.retention()?;
    let org = principal.organization_id;
    let db = ctx.db();
    let key = rq.audit_key();

    // Audit events: the last event of the expired prefix (never the head).
    let candidate: Option<Candidate> = db
        .fetch_optional(
            "SELECT sequence, encode(hash, 'hex') AS hash FROM audit_events \
             WHERE chain_id = $1 \
               AND sequence < (SELECT sequence FROM audit_chain_heads WHERE chain_id = $1) \
               AND sequence > coalesce((SELECT sequence FROM audit_retention_horizons WHERE chain_id = $1), 0) \
               AND sequence < coalesce((SELECT min(sequence) FROM audit_events WHERE chain_id = $1 \
                                          AND created_at >= now() - make_interval(days => $2::int)), \
                                       9223372036854775807) \
             ORDER BY sequence DESC LIMIT 1",
            params![org, policy.audit_days as i32],
        )
        .await?;
    let mut removed = 0;
    let mut horizon = None;
    if let Some(candidate) = candidate {
        let hash = hex::decode(&candidate.hash).map_err(ApiError::internal)?;
        let signature = chain::sign(
            key,
            &chain::checkpoint_message(org, candidate.sequence, &hash),
        );
        let results = db
            .batch(
                vec![
                    statement(
                        "INSERT INTO audit_checkpoints (id, organization_id, chain_id, sequence, hash, signature, key_id) \
                         VALUES ($1, $2, $2, $3, decode($4, 'hex'), decode($5, 'hex'), $6) \
                         ON CONFLICT (chain_id, sequence) DO NOTHING",
                        params![
                            ctx.new_uuid(),
                            org,
                            candidate.sequence,
                            candidate.hash,
                            hex::encode(signature),
                            key.kid
                        ],
                    ),
                    statement(
                        "SELECT audit_retention_purge($1, $2::int, $3) AS n",
                        params![org, policy.audit_days as i32, candidate.sequence],
                    ),
                ],
                Default::default(),
            )
            .await?;
        removed = results
            .get(1)
            .map(|r| r.decode::<Count>())
            .transpose()
            .map_err(ApiError::internal)?
            .and_then(|rows| rows.into_iter().next())
            .map_or(0, |c| c.n);
        if removed > 0 {
            horizon = Some(candidate.sequence);
        }
    }

    // Run data: bytes go, records stay.
    let expired: Vec<Expired> = db
        .fetch_all(
            "SELECT run_id, backend, object_key FROM run_data \
             WHERE organization_id = $1 AND status = 'complete' \
               AND completed_at < now() - make_interval(days => $2::int) \
             ORDER BY completed_at LIMIT $3",
            params![org, policy.run_data_days as i32, RUN_DATA_BATCH],
        )
        .await?;
    let mut purged = Vec::new();
    for file in &expired {
        if file.backend == Backend::S3 {
            let (Some(store), Some(key)) = (&ctx.config.storage()?.s3, file.object_key.as_deref())
            else {
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
    let purged_json = serde_json::to_value(&purged).map_err(ApiError::internal)?;
    let event = audit::Event::by(
        ctx.new_uuid(),
        &principal,
        "RETENTION_RUN",
        "Retention job ran",
        ("retention", org),
    );
    let results = db
        .batch(
            vec![
                statement(
                    "DELETE FROM run_data_chunks WHERE organization_id = $1 \
                       AND run_id IN (SELECT value::uuid FROM jsonb_array_elements_text($2::jsonb))",
                    params![org, purged_json],
                ),
                statement(
                    "UPDATE run_data SET status = 'purged', purged_at = now(), hash_state = NULL \
                     WHERE organization_id = $1 AND run_id IN (SELECT value::uuid FROM jsonb_array_elements_text($2::jsonb))",
                    params![org, purged_json],
                ),
                statement(
                    "WITH gone AS (DELETE FROM sessions WHERE organization_id = $1 \
                       AND (expires_at < now() - make_interval(days => $2::int) \
                            OR revoked_at < now() - make_interval(days => $2::int)) RETURNING 1) \
                     SELECT count(*) AS n FROM gone",
                    params![org, policy.sessions_days as i32],
                ),
                statement(
                    "WITH gone AS (DELETE FROM rate_limits \
                       WHERE tat < now() - make_interval(hours => $1::int) \
                         AND coalesce(blocked_until < now(), true) RETURNING 1) \
                     SELECT count(*) AS n FROM gone",
                    params![policy.rate_limits_hours as i32],
                ),
            ],
            Default::default(),
        )
        .await?;
    let count = |i: usize| -> Result<i64, ApiError> {
        Ok(results
            .get(i)
            .map(|r| r.decode::<Count>())
            .transpose()
            .map_err(ApiError::internal)?
            .and_then(|rows| rows.into_iter().next())
            .map_or(0, |c| c.n))
    };
    let outcome = Outcome {
        policy,
        audit_events_removed: removed,
        audit_chain_starts_after: horizon,
        run_data_purged: purged.len(),
        sessions_deleted: count(2)?,
        rate_limit_entries_deleted: count(3)?,
    };
    // The job's own record, after what it removed.
    let recorded = audit::Event {
        new_values: Some(json!({
            "auditEventsRemoved": outcome.audit_events_removed,
            "auditChainStartsAfter": outcome.audit_chain_starts_after,
            "runDataPurged": purged,
            "sessionsDeleted": outcome.sessions_deleted,
            "rateLimitEntriesDeleted": outcome.rate_limit_entries_deleted,
            "policy": policy,
        })),
        ..event
    };
    db.batch(vec![recorded.insert(rq)], Default::default())
        .await?;
    Reply::ok(outcome)
}
