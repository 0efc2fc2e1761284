//! Verifying an organization's audit chain: each event against the one
//! before it, the signatures in batches, the chain's start against the
//! checkpoint retention left, its end against the recorded head, and every
//! signed checkpoint against what was walked. `GET /api/audit/verify`
//! reports it; the retention job verifies what it is about to checkpoint
//! and purge before it signs anything.
//!
//! A walk may be given a budget of events: it stops there and hands back a
//! [`Resume`] point, which the API signs into a cursor, and a later walk
//! goes on from it (the hash it stopped at) as if it had never stopped, so
//! a chain of any length is verified whole in requests of bounded work.

use crate::audit::chain;
use crate::audit::export::ExportedEvent;
use crate::config::AuditKeys;
use crate::db::Db;
use crate::error::ApiError;
use crate::model::Scope;
use crate::model::audit_event::{self, Checkpoint, Link};
use crate::platform::Platform;
use serde::Serialize;

/// Events fetched per query at most.
const PAGE: i64 = 1_000;
/// About how many bytes of events one query fetches (at least one event,
/// each at most [`crate::audit::MAX_VALUES_BYTES`] per value): well under
/// the SQL proxy's 10 MiB reply cap, whatever the events hold.
pub const PAGE_BYTES: i64 = 4 * 1024 * 1024;

/// Whether one of `keys` signed `checkpoint` of `chain_id`.
pub fn signed(checkpoint: &Checkpoint, chain_id: uuid::Uuid, keys: &AuditKeys) -> bool {
    chain::verify_by(
        keys,
        &checkpoint.key_id,
        &chain::checkpoint_message(chain_id, checkpoint.sequence, &unhex(&checkpoint.hash)),
        &unhex(&checkpoint.signature),
        checkpoint.created_at.get(),
    )
}

/// Where and why the chain breaks.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Break {
    /// The first sequence that does not verify.
    pub sequence: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = BreakReason))]
    pub reason: &'static str,
    /// What was found, in words.
    pub detail: String,
}

/// Why a chain breaks (the document's name for [`Break::reason`]).
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
enum BreakReason {
    /// A sequence number is absent, or the chain ends before its head.
    Missing,
    /// An event does not follow the one before it.
    Reordered,
    /// Its fields or chain hash no longer match.
    Modified,
    BadSignature,
    /// Signed with a key this deployment does not know.
    UnknownKey,
    /// A signed checkpoint names events that are gone.
    Truncated,
    /// The chain was rewritten behind a signed checkpoint.
    CheckpointMismatch,
}

pub fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text).unwrap_or_default()
}

/// Checks one event against the hash before it: a break, or the event's
/// signature to verify with the page's others (none for an unsigned
/// legacy event).
fn check(
    row: &ExportedEvent,
    expected: i64,
    previous: Option<&[u8]>,
    keys: &AuditKeys,
) -> Result<Option<chain::Pending>, Break> {
    let fail = |reason, detail: String| {
        Err(Break {
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
        return Ok(None);
    }
    if row.content().map(|c| c.hash().to_vec()).ok() != Some(content_hash.clone()) {
        return fail(
            "modified",
            format!("Event {expected}'s recorded fields differ from what was signed"),
        );
    }
    if !chain::knows(keys, &row.key_id) {
        return fail(
            "unknown_key",
            format!("Event {expected} is signed with unknown key {}", row.key_id),
        );
    }
    Ok(Some(chain::Pending {
        kid: row.key_id.clone(),
        message: content_hash,
        signature: row.signature.as_deref().map(unhex).unwrap_or_default(),
        // Unparseable, it already failed the content check above.
        signed_at: row
            .recorded_at()
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
    }))
}

/// The sequences to verify (`None`: from the chain's start, to its head).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Range {
    pub from: Option<i64>,
    pub to: Option<i64>,
}

impl Range {
    pub fn whole(&self) -> bool {
        self.from.is_none() && self.to.is_none()
    }

    /// The first sequence to walk: `from`, or the chain's start, which
    /// retention may have moved past its `horizon`.
    pub fn first(&self, horizon: Option<&Link>) -> Result<i64, ApiError> {
        match (self.from, horizon) {
            (Some(f), Some(h)) if f <= h.sequence => Err(ApiError::invalid(
                "from",
                format!(
                    "Events up to {} were removed by retention; start at {} or later",
                    h.sequence,
                    h.sequence + 1
                ),
            )),
            (Some(f), _) => Ok(f),
            (None, h) => Ok(h.map_or(1, |h| h.sequence + 1)),
        }
    }
}

/// Where a walk with a budget stopped, to go on from: the range asked
/// for, where the walk began and its tallies, and the next sequence with
/// the hash it must follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resume {
    pub chain_id: uuid::Uuid,
    pub range: Range,
    pub first: i64,
    pub next: i64,
    /// The hash of event `next - 1`, hex.
    pub previous: String,
    pub events: u64,
    pub legacy: u64,
    pub checkpoints_checked: usize,
}

/// A walk along the chain from its first sequence.
pub struct Walk {
    pub first: i64,
    /// The next sequence expected: one past the last that verified.
    expected: i64,
    /// The hash of the last event that verified.
    pub previous: Option<Vec<u8>>,
    pub events: u64,
    pub legacy: u64,
    /// The hashes of the events checkpoints name, as walked.
    at_checkpoints: Vec<(i64, Vec<u8>)>,
}

impl Walk {
    pub fn new(first: i64) -> Self {
        Self {
            first,
            expected: first,
            previous: None,
            events: 0,
            legacy: 0,
            at_checkpoints: Vec::new(),
        }
    }

    pub fn last(&self) -> i64 {
        self.expected - 1
    }

    /// The walk as it stood at `resume`.
    fn resumed(resume: &Resume) -> Self {
        Self {
            first: resume.first,
            expected: resume.next,
            previous: Some(unhex(&resume.previous)),
            events: resume.events,
            legacy: resume.legacy,
            at_checkpoints: Vec::new(),
        }
    }

    /// Walks a page at a time up to `to` (or the end); the first break.
    pub async fn run<P: Platform>(
        &mut self,
        db: &crate::db::Db<'_, P>,
        scope: &crate::model::Scope,
        to: Option<i64>,
        checkpoints: &[Checkpoint],
        keys: &AuditKeys,
    ) -> Result<Option<Break>, ApiError> {
        loop {
            let rows: Vec<ExportedEvent> =
                audit_event::chain_page(db, scope, self.expected, to, PAGE, PAGE_BYTES).await?;
            if rows.is_empty() {
                return Ok(None);
            }
            // The page's structure first, up to its first break; then the
            // signatures before that break, as one batch.
            let mut broken: Option<(usize, Break)> = None;
            // The signatures to check, and the row of each.
            let (mut signed, mut pending) = (Vec::new(), Vec::new());
            let mut previous = self.previous.clone();
            for (i, row) in rows.iter().enumerate() {
                match check(row, self.expected + i as i64, previous.as_deref(), keys) {
                    Err(at) => {
                        broken = Some((i, at));
                        break;
                    }
                    Ok(None) => {}
                    Ok(Some(signature)) => {
                        signed.push(i);
                        pending.push(signature);
                    }
                }
                previous = Some(unhex(&row.hash));
            }
            if let Some(bad) = chain::first_unverified(keys, &pending) {
                let i = signed[bad];
                if broken.as_ref().is_none_or(|(at, _)| i < *at) {
                    let sequence = self.expected + i as i64;
                    broken = Some((
                        i,
                        Break {
                            sequence,
                            reason: "bad_signature",
                            detail: format!("Event {sequence}'s signature does not verify"),
                        },
                    ));
                }
            }
            let good = broken.as_ref().map_or(rows.len(), |(at, _)| *at);
            for row in &rows[..good] {
                if row.key_id == chain::LEGACY_KEY_ID {
                    self.legacy += 1;
                }
                let hash = unhex(&row.hash);
                if checkpoints.iter().any(|c| c.sequence == row.sequence) {
                    self.at_checkpoints.push((row.sequence, hash.clone()));
                }
                self.previous = Some(hash);
                self.expected += 1;
                self.events += 1;
            }
            if let Some((_, at)) = broken {
                return Ok(Some(at));
            }
        }
    }

    /// The end of the chain: the head vouches for it.
    pub fn check_end(&self, head: Option<&Link>, to: Option<i64>) -> Option<Break> {
        let last = self.last();
        if to.is_some_and(|t| t <= last) {
            return None;
        }
        let head_sequence = head.map_or(0, |h| h.sequence);
        let wanted_end = to.map_or(head_sequence, |t| t.min(head_sequence));
        if wanted_end > last {
            return Some(Break {
                sequence: last + 1,
                reason: "missing",
                detail: format!(
                    "The chain's head is event {head_sequence}, but events after {last} are gone"
                ),
            });
        }
        match head {
            Some(head)
                if head.sequence == last
                    && last > 0
                    && self.previous.as_deref() != Some(unhex(&head.hash).as_slice()) =>
            {
                Some(Break {
                    sequence: last,
                    reason: "modified",
                    detail: format!("Event {last} differs from the chain's recorded head"),
                })
            }
            _ => None,
        }
    }

    /// The signed checkpoints from `from` to `to` (or beyond the end)
    /// vouch for what was walked: the number that did, and the first that
    /// did not.
    pub fn check_checkpoints(
        &self,
        from: i64,
        to: Option<i64>,
        checkpoints: &[Checkpoint],
        chain_id: uuid::Uuid,
        keys: &AuditKeys,
    ) -> (usize, Option<Break>) {
        let last = self.last();
        let in_range = checkpoints
            .iter()
            .filter(|c| c.sequence >= from && to.is_none_or(|t| c.sequence <= t));
        let mut checked = 0;
        for checkpoint in in_range {
            let broken = |sequence, reason, detail| {
                (
                    checked,
                    Some(Break {
                        sequence,
                        reason,
                        detail,
                    }),
                )
            };
            if !signed(checkpoint, chain_id, keys) {
                return broken(
                    checkpoint.sequence,
                    "bad_signature",
                    format!(
                        "The checkpoint at event {} does not verify",
                        checkpoint.sequence
                    ),
                );
            }
            if checkpoint.sequence > last {
                return broken(
                    last + 1,
                    "truncated",
                    format!(
                        "A checkpoint signed at {} vouches for event {}, but the chain ends at {last}",
                        checkpoint.created_at, checkpoint.sequence
                    ),
                );
            }
            let walked = self
                .at_checkpoints
                .iter()
                .find(|(s, _)| *s == checkpoint.sequence)
                .map(|(_, h)| h.as_slice());
            if walked != Some(unhex(&checkpoint.hash).as_slice()) {
                return broken(
                    checkpoint.sequence,
                    "checkpoint_mismatch",
                    format!(
                        "Event {} differs from the one a checkpoint signed at {} vouches for",
                        checkpoint.sequence, checkpoint.created_at
                    ),
                );
            }
            checked += 1;
        }
        (checked, None)
    }
}

/// A chain that starts after a retention horizon needs a signed checkpoint
/// at that horizon.
pub fn check_start(
    horizon: &Link,
    first: i64,
    checkpoints: &[Checkpoint],
    chain_id: uuid::Uuid,
    keys: &AuditKeys,
) -> Option<Break> {
    let vouched = checkpoints.iter().any(|c| {
        c.sequence == horizon.sequence && c.hash == horizon.hash && signed(c, chain_id, keys)
    });
    (!vouched).then(|| Break {
        sequence: first,
        reason: "missing",
        detail: format!(
            "The chain starts after event {} (retention), but no signed checkpoint vouches for that start",
            horizon.sequence
        ),
    })
}

/// What a walk of `range` found.
pub struct Verification {
    pub walk: Walk,
    pub failure: Option<Break>,
    /// Where the walk stopped at its budget short of the range's end (no
    /// failure so far): go on from here.
    pub resume: Option<Resume>,
    /// The signed checkpoints in range that vouched for the walk.
    pub checkpoints_checked: usize,
    /// The chain's checkpoints from the one before the walk's first event
    /// (the retention horizon's) to the range's end, oldest first.
    pub checkpoints: Vec<Checkpoint>,
}

/// Verifies `range` of `scope`'s chain (see the module docs), whole.
pub async fn verify<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    keys: &AuditKeys,
    range: &Range,
) -> Result<Verification, ApiError> {
    walk(db, scope, keys, Step::Start(*range), None).await
}

/// Where a walk starts: at the beginning of a range, or where an earlier
/// one stopped.
pub enum Step {
    Start(Range),
    Resume(Resume),
}

/// Walks from `step` for at most `budget` events (`None`: to the end).
/// A walk that resumes checks what its first part would have: the
/// retention horizon was checked by the walk that began, the checkpoints
/// before `next` by the walk that met them.
pub async fn walk<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    keys: &AuditKeys,
    step: Step,
    budget: Option<u64>,
) -> Result<Verification, ApiError> {
    let chain_id = scope.organization_id();
    let head = audit_event::head(db, scope).await?;
    // The retention horizon matters to a walk from the chain's start.
    let (range, mut walk, checked_before, horizon) = match &step {
        Step::Start(range) => {
            let horizon = audit_event::horizon(db, scope).await?;
            let walk = Walk::new(range.first(horizon.as_ref())?);
            (*range, walk, 0, horizon.filter(|_| range.from.is_none()))
        }
        Step::Resume(resume) => (
            resume.range,
            Walk::resumed(resume),
            resume.checkpoints_checked,
            None,
        ),
    };
    let segment_first = walk.expected;
    // This part's end: the range's, or where the budget runs out.
    let stop = budget.map(|b| segment_first.saturating_add(b.max(1) as i64 - 1));
    let to = match (range.to, stop) {
        (Some(t), Some(s)) => Some(t.min(s)),
        (t, s) => t.or(s),
    };
    // Only the checkpoints this part meets, not every one ever made.
    let mut checkpoints = audit_event::checkpoints(db, scope, segment_first - 1, to).await?;
    let mut failure = None;
    if let Some(horizon) = horizon {
        failure = check_start(&horizon, walk.first, &checkpoints, chain_id, keys);
        walk.previous = Some(unhex(&horizon.hash));
    }
    if failure.is_none() {
        failure = walk.run(db, scope, to, &checkpoints, keys).await?;
    }
    // Stopped at the budget with more of the range left: events up to the
    // head, or stored past it (a whole walk reads those too).
    let head_sequence = head.as_ref().map_or(0, |h| h.sequence);
    let wanted_end = range.to.map_or(head_sequence, |t| t.min(head_sequence));
    let at_budget = failure.is_none()
        && stop.is_some_and(|s| walk.last() == s && range.to.is_none_or(|t| s < t));
    let partial = at_budget
        && (walk.last() < wanted_end
            || !audit_event::chain_page::<ExportedEvent, P>(
                db,
                scope,
                walk.expected,
                range.to,
                1,
                1,
            )
            .await?
            .is_empty());
    if failure.is_none() && !partial {
        failure = walk.check_end(head.as_ref(), range.to);
        // Checkpoints past where this part could reach vouch for events
        // past the end.
        if let Some(t) = to
            && range.to.is_none_or(|r| r > t)
        {
            checkpoints
                .extend(audit_event::checkpoints(db, scope, t.saturating_add(1), range.to).await?);
        }
    }
    let mut checkpoints_checked = checked_before;
    if failure.is_none() {
        let (checked, broken) = walk.check_checkpoints(
            segment_first,
            if partial { to } else { range.to },
            &checkpoints,
            chain_id,
            keys,
        );
        checkpoints_checked += checked;
        failure = broken;
    }
    let resume = (partial && failure.is_none()).then(|| Resume {
        chain_id,
        range,
        first: walk.first,
        next: walk.expected,
        previous: walk
            .previous
            .as_deref()
            .map(hex::encode)
            .unwrap_or_default(),
        events: walk.events,
        legacy: walk.legacy,
        checkpoints_checked,
    });
    Ok(Verification {
        walk,
        failure,
        resume,
        checkpoints_checked,
        checkpoints,
    })
}
