//! `GET /api/audit/verify` (`audit:view`): walks the caller's
//! organization's audit chain (or `?from=&to=` sequences) and reports either
//! "verified up to sequence N, head hash H" or the first broken position and
//! why: `missing` (a sequence number is absent, or the chain ends before its
//! head), `reordered` (an event does not follow the one before it),
//! `modified` (its fields or chain hash no longer match), `bad_signature`,
//! `unknown_key`, `truncated` (a signed checkpoint names events that are
//! gone), `checkpoint_mismatch` (the chain was rewritten behind a signed
//! checkpoint). A whole-chain walk that verifies records a signed checkpoint
//! of the head.

use crate::domain::Timestamp;
use serde::{Deserialize, Serialize};

use crate::audit::chain;
use crate::audit::verify::{self, Break, Range, Verification};
use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::model::audit_event;
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    GET => verify,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Query {
    from: Option<String>,
    to: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CheckpointView {
    sequence: i64,
    hash: String,
    created_at: Timestamp,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    chain_id: uuid::Uuid,
    verified: bool,
    from_sequence: i64,
    /// The last sequence verified (0 for an empty chain).
    verified_to_sequence: i64,
    events: u64,
    /// Events recorded before signing existed: chained, not signed.
    legacy_events: u64,
    head_hash: Option<String>,
    checkpoints_checked: usize,
    latest_checkpoint: Option<CheckpointView>,
    failure: Option<Break>,
}

fn sequence(field: &str, raw: Option<&str>, problems: &mut Vec<FieldError>) -> Option<i64> {
    raw.and_then(|raw| match raw.parse::<i64>() {
        Ok(n) if n >= 1 => Some(n),
        _ => {
            problems.push(FieldError::new(
                field,
                "Must be a sequence number (1 or more)",
            ));
            None
        }
    })
}

/// The sequences asked for: `?from=&to=`, each 1 or more, `from <= to`.
fn range(query: &Query) -> Result<Range, ApiError> {
    let mut problems = Vec::new();
    let from = sequence("from", query.from.as_deref(), &mut problems);
    let to = sequence("to", query.to.as_deref(), &mut problems);
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        problems.push(FieldError::new("to", "Must not be below from"));
    }
    if problems.is_empty() {
        Ok(Range { from, to })
    } else {
        Err(ApiError::Validation(problems))
    }
}

async fn verify<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::AuditView)?;
    let range = range(&rq.query()?)?;
    let scope = principal.scope();
    let chain_id = scope.organization_id();
    let keys = ctx.config.audit_keys()?;
    let db = ctx.db();
    let Verification {
        walk,
        failure,
        checkpoints_checked,
        checkpoints,
    } = verify::verify(&db, &scope, keys, &range).await?;
    let last = walk.last();
    // A verified whole chain gets a signed checkpoint of its head.
    if failure.is_none()
        && range.whole()
        && last > 0
        && checkpoints.last().is_none_or(|c| c.sequence < last)
        && let Some(hash) = walk.previous.as_ref()
    {
        let key = rq.audit_key()?;
        let signature = chain::sign(key, &chain::checkpoint_message(chain_id, last, hash));
        let checkpoint = audit_event::NewCheckpoint {
            id: ctx.new_uuid(),
            sequence: last,
            hash,
            signature: &signature,
            key_id: &key.kid,
        };
        scope
            .execute(&db, audit_event::insert_checkpoint(&scope, &checkpoint))
            .await?;
    }
    let latest = audit_event::latest_checkpoint(&db, &scope)
        .await?
        .map(|c| CheckpointView {
            sequence: c.sequence,
            hash: c.hash,
            created_at: c.created_at,
        });
    Reply::ok(Report {
        chain_id,
        verified: failure.is_none(),
        from_sequence: walk.first,
        verified_to_sequence: failure.as_ref().map_or(last, |f| f.sequence - 1),
        events: walk.events,
        legacy_events: walk.legacy,
        head_hash: match failure {
            None => walk.previous.as_ref().map(hex::encode),
            Some(_) => None,
        },
        checkpoints_checked,
        latest_checkpoint: latest,
        failure,
    })
}
