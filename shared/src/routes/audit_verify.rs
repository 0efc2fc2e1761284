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
use crate::audit::export::ExportedEvent;
use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::model::audit_event::{self, Checkpoint};
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    GET => verify,
}

/// Events fetched per query (well under the proxy's reply cap).
const PAGE: i64 = 1_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Query {
    from: Option<String>,
    to: Option<String>,
}

/// Whether one of `keys` signed `checkpoint` of `chain_id`.
fn signed(checkpoint: &Checkpoint, chain_id: uuid::Uuid, keys: &[crate::config::HmacKey]) -> bool {
    chain::verify_by(
        keys,
        &checkpoint.key_id,
        &chain::checkpoint_message(chain_id, checkpoint.sequence, &unhex(&checkpoint.hash)),
        &unhex(&checkpoint.signature),
    )
}

/// Where and why the chain breaks.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Break {
    pub sequence: i64,
    pub reason: &'static str,
    pub detail: String,
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

fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text).unwrap_or_default()
}

/// Checks one event against the hash before it; `None` when it holds.
fn check(
    row: &ExportedEvent,
    expected: i64,
    previous: Option<&[u8]>,
    keys: &[crate::config::HmacKey],
) -> Option<Break> {
    let fail = |reason, detail: String| {
        Some(Break {
            sequence: expected,
            reason,
            detail,
        })
    };
    if row.sequence != expected {
        return fail(
            "missing",
            format!(
                "Event {expected} is missing; the next stored event is {}",
                row.sequence
            ),
        );
    }
    let previous_hash = unhex(&row.previous_hash);
    match previous {
        Some(previous) if previous != previous_hash.as_slice() => {
            return fail(
                "reordered",
                format!(
                    "Event {expected} does not follow event {} (previous hash differs)",
                    expected - 1
                ),
            );
        }
        None if expected == 1 && previous_hash != [0u8; 32] => {
            return fail("reordered", "Event 1 does not start the chain".to_owned());
        }
        _ => {}
    }
    let content_hash = unhex(&row.content_hash);
    if chain::link(&previous_hash, row.sequence, &content_hash)[..] != unhex(&row.hash)[..] {
        return fail(
            "modified",
            format!("Event {expected}'s chain hash does not match its content hash"),
        );
    }
    if row.key_id == chain::LEGACY_KEY_ID {
        return None;
    }
    if row.content().map(|c| c.hash().to_vec()).ok() != Some(content_hash.clone()) {
        return fail(
            "modified",
            format!("Event {expected}'s recorded fields differ from what was signed"),
        );
    }
    let Some(key) = keys.iter().find(|k| k.kid == row.key_id) else {
        return fail(
            "unknown_key",
            format!("Event {expected} is signed with unknown key {}", row.key_id),
        );
    };
    let signature = row.signature.as_deref().map(unhex).unwrap_or_default();
    if !chain::verify(key, &content_hash, &signature) {
        return fail(
            "bad_signature",
            format!("Event {expected}'s signature does not verify"),
        );
    }
    None
}

async fn verify<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::AuditView)?;
    let query: Query = rq.query()?;
    let mut problems = Vec::new();
    let from = sequence("from", query.from.as_deref(), &mut problems);
    let to = sequence("to", query.to.as_deref(), &mut problems);
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        problems.push(FieldError::new("to", "Must not be below from"));
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let scope = principal.scope();
    let chain_id = scope.organization_id();
    let keys = &ctx.config.audit_keys()?;
    let db = ctx.db();
    let checkpoints = audit_event::checkpoints(&db, &scope).await?;
    let head = audit_event::head(&db, &scope).await?;

    // Retention may have removed the chain's start; it then begins after a
    // horizon that a signed checkpoint must vouch for.
    let horizon = audit_event::horizon(&db, &scope).await?;
    if let (Some(f), Some(h)) = (from, &horizon)
        && f <= h.sequence
    {
        return Err(ApiError::invalid(
            "from",
            format!(
                "Events up to {} were removed by retention; start at {} or later",
                h.sequence,
                h.sequence + 1
            ),
        ));
    }
    let first = from.unwrap_or(horizon.as_ref().map_or(1, |h| h.sequence + 1));
    let mut expected = first;
    let mut previous: Option<Vec<u8>> = None;
    let mut failure: Option<Break> = None;
    if let (None, Some(h)) = (from, &horizon) {
        let vouched = checkpoints
            .iter()
            .any(|c| c.sequence == h.sequence && c.hash == h.hash && signed(c, chain_id, keys));
        if !vouched {
            failure = Some(Break {
                sequence: first,
                reason: "missing",
                detail: format!(
                    "The chain starts after event {} (retention), but no signed checkpoint vouches for that start",
                    h.sequence
                ),
            });
        }
        previous = Some(unhex(&h.hash));
    }
    let mut events = 0u64;
    let mut legacy = 0u64;
    // The hashes of the events checkpoints name, as walked.
    let mut at_checkpoints: Vec<(i64, Vec<u8>)> = Vec::new();
    'walk: while failure.is_none() {
        let rows: Vec<ExportedEvent> =
            audit_event::chain_page(&db, &scope, expected, to, PAGE).await?;
        let fetched = rows.len();
        for row in &rows {
            if let Some(broken) = check(row, expected, previous.as_deref(), keys) {
                failure = Some(broken);
                break 'walk;
            }
            if row.key_id == chain::LEGACY_KEY_ID {
                legacy += 1;
            }
            let hash = unhex(&row.hash);
            if checkpoints.iter().any(|c| c.sequence == row.sequence) {
                at_checkpoints.push((row.sequence, hash.clone()));
            }
            previous = Some(hash);
            expected += 1;
            events += 1;
        }
        if (fetched as i64) < PAGE {
            break;
        }
    }
    let last = expected - 1;

    // The end of the chain: the head and the checkpoints vouch for it.
    if failure.is_none() && to.is_none_or(|t| t > last) {
        let head_sequence = head.as_ref().map_or(0, |h| h.sequence);
        let wanted_end = to.map_or(head_sequence, |t| t.min(head_sequence));
        if wanted_end > last {
            failure = Some(Break {
                sequence: last + 1,
                reason: "missing",
                detail: format!(
                    "The chain's head is event {head_sequence}, but events after {last} are gone"
                ),
            });
        } else if let Some(head) = head.as_ref().filter(|h| h.sequence == last && last > 0)
            && previous.as_deref() != Some(unhex(&head.hash).as_slice())
        {
            failure = Some(Break {
                sequence: last,
                reason: "modified",
                detail: format!("Event {last} differs from the chain's recorded head"),
            });
        }
    }
    let mut checked = 0;
    if failure.is_none() {
        for checkpoint in &checkpoints {
            let in_range =
                checkpoint.sequence >= first && to.is_none_or(|t| checkpoint.sequence <= t);
            if !in_range {
                continue;
            }
            if !signed(checkpoint, chain_id, keys) {
                failure = Some(Break {
                    sequence: checkpoint.sequence,
                    reason: "bad_signature",
                    detail: format!(
                        "The checkpoint at event {} does not verify",
                        checkpoint.sequence
                    ),
                });
                break;
            }
            if checkpoint.sequence > last {
                failure = Some(Break {
                    sequence: last + 1,
                    reason: "truncated",
                    detail: format!(
                        "A checkpoint signed at {} vouches for event {}, but the chain ends at {last}",
                        checkpoint.created_at, checkpoint.sequence
                    ),
                });
                break;
            }
            let walked = at_checkpoints
                .iter()
                .find(|(s, _)| *s == checkpoint.sequence)
                .map(|(_, h)| h.as_slice());
            if walked != Some(unhex(&checkpoint.hash).as_slice()) {
                failure = Some(Break {
                    sequence: checkpoint.sequence,
                    reason: "checkpoint_mismatch",
                    detail: format!(
                        "Event {} differs from the one a checkpoint signed at {} vouches for",
                        checkpoint.sequence, checkpoint.created_at
                    ),
                });
                break;
            }
            checked += 1;
        }
    }

    // A verified whole chain gets a signed checkpoint of its head.
    let head_hash = previous.as_ref().map(hex::encode);
    let whole = from.is_none() && to.is_none();
    if failure.is_none()
        && whole
        && last > 0
        && checkpoints.last().is_none_or(|c| c.sequence < last)
        && let (Some(key), Some(hash)) = (keys.first(), previous.as_ref())
    {
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
        from_sequence: first,
        verified_to_sequence: match &failure {
            Some(f) => f.sequence - 1,
            None => last,
        },
        events,
        legacy_events: legacy,
        head_hash: if failure.is_none() { head_hash } else { None },
        checkpoints_checked: checked,
        latest_checkpoint: latest,
        failure,
    })
}
