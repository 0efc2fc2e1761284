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
//!
//! One request walks at most `limit` events ([`MAX_WALK`] by default and at
//! most): a longer chain answers `complete: false` with a `resume` cursor
//! (signed, bound to the organization, valid [`RESUME_TTL_SECS`]), and
//! `?resume=<cursor>` goes on exactly where it stopped (from the hash it
//! reached), until the answer is complete; `verified` is true only then.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::audit::chain;
use crate::audit::verify::{self, Break, Range, Resume, Step, Verification};
use crate::auth::{self, Permission};
use crate::config::{AuditKeys, SigningKey};
use crate::ctx::Ctx;
use crate::domain::Timestamp;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::model::audit_event;
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    GET => verify,
}

/// Most events one request walks (about 2 s of signature checks on one
/// core; the README's benchmark).
pub const MAX_WALK: u64 = 20_000;
/// How long a resume cursor stays good: a walk goes on from where it
/// stopped only while that is recent.
pub const RESUME_TTL_SECS: i64 = 3_600;

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
struct Query {
    /// The first sequence to verify (default: the chain's start); not with
    /// `resume`.
    #[cfg_attr(feature = "openapi", param(value_type = Option<i64>, minimum = 1))]
    from: Option<String>,
    /// The last sequence to verify (default: the chain's head), not below
    /// `from`; not with `resume`.
    #[cfg_attr(feature = "openapi", param(value_type = Option<i64>, minimum = 1))]
    to: Option<String>,
    /// Most events this request walks (default and at most 20000).
    #[cfg_attr(feature = "openapi", param(value_type = Option<i64>, minimum = 1, maximum = 20000))]
    limit: Option<String>,
    /// The `resume` cursor of an incomplete answer: goes on exactly where
    /// that walk stopped, with its range. Signed, bound to the
    /// organization, valid an hour.
    resume: Option<String>,
}

/// What a resume cursor carries, signed with the audit key.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Cursor {
    resume: Resume,
    kid: String,
    /// Unix seconds.
    issued_at: i64,
}

/// What a cursor's signature covers: its JSON, under a tag no other
/// signed message starts with.
fn cursor_message(json: &[u8]) -> Vec<u8> {
    let mut message = b"antevus.audit.verify-resume.v1\n".to_vec();
    message.extend_from_slice(json);
    message
}

/// `base64url(JSON).hex(signature)`.
fn seal_cursor(resume: Resume, key: &SigningKey, now: i64) -> Result<String, ApiError> {
    let cursor = Cursor {
        resume,
        kid: key.kid.clone(),
        issued_at: now,
    };
    let json = serde_json::to_vec(&cursor).map_err(ApiError::internal)?;
    let signature = chain::sign(key, &cursor_message(&json));
    Ok(format!(
        "{}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&json),
        hex::encode(signature)
    ))
}

/// The resume point of `raw`, when it is a cursor this deployment signed
/// for `chain_id` within [`RESUME_TTL_SECS`] of `now`.
fn open_cursor(
    raw: &str,
    keys: &AuditKeys,
    chain_id: uuid::Uuid,
    now: time::OffsetDateTime,
) -> Result<Resume, ApiError> {
    let bad = || ApiError::invalid("resume", "Not a resume cursor of this organization's walk");
    let (json, signature) = raw.split_once('.').ok_or_else(bad)?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(json)
        .map_err(|_| bad())?;
    let signature = hex::decode(signature).map_err(|_| bad())?;
    let cursor: Cursor = serde_json::from_slice(&json).map_err(|_| bad())?;
    let issued = time::OffsetDateTime::from_unix_timestamp(cursor.issued_at).map_err(|_| bad())?;
    if !chain::verify_by(
        keys,
        &cursor.kid,
        &cursor_message(&json),
        &signature,
        issued,
    ) || cursor.resume.chain_id != chain_id
    {
        return Err(bad());
    }
    if now.unix_timestamp() - cursor.issued_at > RESUME_TTL_SECS {
        return Err(ApiError::invalid(
            "resume",
            "The cursor is over an hour old; start the walk again",
        ));
    }
    Ok(cursor.resume)
}

/// A signed checkpoint of the chain: its head at a time, signed.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
struct CheckpointView {
    sequence: i64,
    hash: String,
    created_at: Timestamp,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ChainVerification))]
#[serde(rename_all = "camelCase")]
struct Report {
    /// The organization whose chain this is.
    chain_id: uuid::Uuid,
    /// The whole range asked for verifies: no break, and the walk is
    /// complete.
    verified: bool,
    /// The first sequence the walk (begun with the first request) checked.
    from_sequence: i64,
    /// The last sequence verified (0 for an empty chain).
    verified_to_sequence: i64,
    /// Events verified so far (across resumed requests).
    events: u64,
    /// Events recorded before signing existed: chained, not signed.
    legacy_events: u64,
    /// The hash of the last event, hex, once a walk without a break
    /// reached it.
    head_hash: Option<String>,
    /// Signed checkpoints checked against the walk.
    checkpoints_checked: usize,
    latest_checkpoint: Option<CheckpointView>,
    /// The first break, if any.
    failure: Option<Break>,
    /// Whether the walk reached the end of what was asked (else `resume`
    /// goes on).
    complete: bool,
    /// The cursor to go on with (`?resume=`), while not complete.
    resume: Option<String>,
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

/// `limit`: 1 to [`MAX_WALK`].
fn limit(raw: Option<&str>) -> Result<u64, ApiError> {
    match raw.map(str::parse::<u64>) {
        None => Ok(MAX_WALK),
        Some(Ok(n)) if (1..=MAX_WALK).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::invalid(
            "limit",
            format!("Must be 1 to {MAX_WALK} events"),
        )),
    }
}

/// Verify the organization's audit chain
///
/// Requires `audit:view`. Walks the chain (or the sequences `from` to
/// `to`) and reports either verified up to a sequence with the head's
/// hash, or the first break and why: `missing`, `reordered`, `modified`,
/// `bad_signature`, `unknown_key`, `truncated`, `checkpoint_mismatch`. A
/// whole-chain walk that verifies records a signed checkpoint of the head.
///
/// One request walks at most `limit` events: a longer walk answers
/// `complete: false` with a `resume` cursor (signed, valid an hour), and
/// `?resume=<cursor>` (without `from` or `to`) goes on where it stopped,
/// until the answer is complete; `verified` is true only then. A cursor of
/// another organization, a forged or an expired one is 400.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/audit/verify",
    params(Query),
    responses((status = 200, description = "What the walk found (a break is a 200 too: see `failure`)", body = Report))))]
async fn verify<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::AuditView)?;
    let query: Query = rq.query()?;
    let budget = limit(query.limit.as_deref())?;
    let scope = principal.scope();
    let chain_id = scope.organization_id();
    let keys = ctx.config.audit_keys()?;
    let step = match &query.resume {
        Some(raw) => {
            if query.from.is_some() || query.to.is_some() {
                return Err(ApiError::invalid(
                    "resume",
                    "A resumed walk keeps its range: send resume without from or to",
                ));
            }
            Step::Resume(open_cursor(raw, keys, chain_id, ctx.now())?)
        }
        None => Step::Start(range(&query)?),
    };
    let range = match &step {
        Step::Start(range) => *range,
        Step::Resume(resume) => resume.range,
    };
    let db = ctx.db();
    let Verification {
        walk,
        failure,
        resume,
        checkpoints_checked,
        checkpoints,
    } = verify::walk(&db, &scope, keys, step, Some(budget)).await?;
    let last = walk.last();
    let complete = resume.is_none();
    // A verified whole chain gets a signed checkpoint of its head.
    if failure.is_none()
        && complete
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
    let resume = match resume {
        Some(resume) => Some(seal_cursor(
            resume,
            rq.audit_key()?,
            ctx.now().unix_timestamp(),
        )?),
        None => None,
    };
    Reply::ok(Report {
        chain_id,
        verified: failure.is_none() && complete,
        from_sequence: walk.first,
        verified_to_sequence: failure.as_ref().map_or(last, |f| f.sequence - 1),
        events: walk.events,
        legacy_events: walk.legacy,
        // The head's hash once the walk reached it, not where a part stopped.
        head_hash: match (&failure, complete) {
            (None, true) => walk.previous.as_ref().map(hex::encode),
            _ => None,
        },
        checkpoints_checked,
        latest_checkpoint: latest,
        failure,
        complete,
        resume,
    })
}
