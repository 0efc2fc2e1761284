//! Webhooks: the organization's endpoints and the delivery of its events
//! to them, the Standard Webhooks way ([`sign`]), only to public addresses
//! ([`target`]).
//!
//! A delivery is a row of `webhook_deliveries`, queued by the statement
//! that writes the event (so a change, its audit event, its event and its
//! deliveries commit together or not at all). The delivery job
//! ([`drain`]) claims due deliveries of every organization (`FOR UPDATE
//! SKIP LOCKED`, with a lease, so two runs never send the same one at once
//! and a run that dies leaves them to the next: at least once), posts
//! each within [`TIMEOUT`] and records the attempt. A failure is tried
//! again on [`SCHEDULE_SECS`] (with jitter; an answer's `Retry-After`
//! when later), then given up. A redirect is a failure and never followed.
//! `410 Gone` disables the endpoint at once; an endpoint whose every
//! delivery failed for [`DISABLE_AFTER_DAYS`] days is disabled too when a
//! delivery's schedule is spent (both audited as `WEBHOOK_DISABLED`, the
//! organization's webhook managers told by e-mail), its pending
//! deliveries cancelled.

pub mod sign;
pub mod target;

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt as _;
use http::{Method, Request, header};
use serde::Serialize;
use serde_json::json;

use crate::audit::events::Topic;
use crate::audit::{self, EventType};
use crate::body::Body;
use crate::ctx::Ctx;
use crate::error::{ApiError, FieldError};
use crate::mail;
use crate::model::Scope;
use crate::model::webhook::{self, Attempt, Claimed, Next, SealedSecret};
use crate::platform::{Platform, PublicAddressesOnly, within};
use crate::request::Rq;

/// How long an endpoint has to answer.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// The waits before the retries after a failed attempt: 5 s, 5 min,
/// 30 min, 2 h, 5 h, 10 h, 10 h; eight attempts in all.
pub const SCHEDULE_SECS: [i64; 7] = [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000];

/// Failing this long disables an endpoint.
pub const DISABLE_AFTER_DAYS: i64 = 5;

/// Deliveries claimed at a time, and sent at once.
pub const BATCH: i64 = 50;
pub const CONCURRENCY: usize = 10;

/// How long a claim holds a delivery: longer than a batch takes (five
/// rounds of [`CONCURRENCY`] at most [`TIMEOUT`] each).
pub const LEASE_SECS: i64 = 120;

/// The attempts a delivery's log keeps (the newest).
pub const KEEP_ATTEMPTS: usize = 20;

/// The start of an answer's body kept with its attempt.
pub const EXCERPT_BYTES: usize = 1024;

/// The type of the test event (`POST /api/v1/webhooks/:id/test`), not in
/// the catalogue: nobody subscribes to it.
pub const TEST_EVENT: &str = "webhook.test";

/// How long the secret before a rotation still signs.
pub const ROTATION_OVERLAP_HOURS: i64 = 24;

/// How far back a replay (`recover`) reaches.
pub const RECOVER_DAYS: i64 = 30;

/// The longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER_SECS: i64 = 36_000;

/// The associated data binding a sealed secret to its endpoint.
pub fn sealing_context(organization_id: uuid::Uuid, webhook_id: uuid::Uuid) -> Vec<u8> {
    format!("antevus:webhook:{organization_id}:{webhook_id}").into_bytes()
}

/// `secret` sealed for endpoint `webhook_id` of `scope`'s organization.
pub fn seal_secret<P: Platform>(
    ctx: &Ctx<P>,
    scope: &Scope,
    webhook_id: uuid::Uuid,
    secret: &str,
) -> Result<SealedSecret, ApiError> {
    let sealed = ctx.config.sealing_keys()?.seal(
        secret.as_bytes(),
        &sealing_context(scope.organization_id(), webhook_id),
        ctx.random_bytes::<12>(),
    );
    let (key_id, body) = sealed
        .split_once('.')
        .ok_or_else(|| ApiError::internal("sealed text without a key id"))?;
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| ApiError::internal("sealed text is not base64url"))?;
    Ok(SealedSecret {
        key_id: key_id.to_owned(),
        ciphertext_hex: hex::encode(bytes),
    })
}

/// Opens a secret [`seal_secret`] sealed; returns its key.
fn open_secret<P: Platform>(
    ctx: &Ctx<P>,
    organization_id: uuid::Uuid,
    webhook_id: uuid::Uuid,
    key_id: &str,
    ciphertext_hex: &str,
) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    let bytes = hex::decode(ciphertext_hex).map_err(|_| "the sealed secret is not hex")?;
    let sealed = format!(
        "{key_id}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let keys = ctx.config.sealing_keys().map_err(|e| e.to_string())?;
    let secret = keys
        .open(&sealed, &sealing_context(organization_id, webhook_id))
        .map_err(|e| e.to_string())?;
    let secret = String::from_utf8(secret).map_err(|_| "the secret is not text")?;
    sign::key_of(&secret).ok_or_else(|| "the secret is not a whsec_ secret".to_owned())
}

/// Whether the deployment allows loopback targets (development only).
pub fn allow_loopback<P: Platform>(ctx: &Ctx<P>) -> Result<bool, ApiError> {
    Ok(ctx.config.webhooks_allow_loopback()?)
}

/// Checks `raw` as an endpoint: the URL, and on a host that resolves names
/// every address its name resolves to (within [`TIMEOUT`]). A name that
/// does not resolve is accepted at registration (it may be set up later)
/// and refused when `delivering`. The error is for whoever entered it.
pub async fn check_target<P: Platform>(
    ctx: &Ctx<P>,
    raw: &str,
    delivering: bool,
) -> Result<target::Target, String> {
    let loopback = ctx
        .config
        .webhooks_allow_loopback()
        .map_err(|e| e.to_string())?;
    let target = target::check(raw, loopback)?;
    let Some(name) = target.name() else {
        return Ok(target);
    };
    let lookup = async { Ok(ctx.platform.resolve(name, target.port()).await) };
    match within(&ctx.platform, lookup, TIMEOUT).await {
        // The platform does not let a function resolve names.
        Ok(None) => {}
        Ok(Some(Ok(addresses))) => target::check_resolved(&addresses, loopback)?,
        Ok(Some(Err(e))) | Err(e) => {
            if delivering {
                return Err(format!("{name} does not resolve ({})", e.0));
            }
        }
    }
    Ok(target)
}

/// `Conflict` unless `endpoint` is enabled; `doing` says what needs it.
pub fn require_enabled(endpoint: &webhook::Webhook, doing: &str) -> Result<(), ApiError> {
    if endpoint.enabled {
        return Ok(());
    }
    Err(ApiError::Conflict {
        message: format!("The endpoint is disabled; enable it before {doing}"),
        details: Vec::new(),
    })
}

/// Most endpoints an organization may have.
pub const MAX_WEBHOOKS: i64 = 25;

/// The longest description.
pub const MAX_DESCRIPTION: usize = 500;

/// `raw` event types as an endpoint subscribes to them: at least one,
/// each catalogued (`docs/EVENTS.md`), once each, in catalogue order.
pub fn parse_events(raw: &[String]) -> Result<Vec<String>, FieldError> {
    if raw.is_empty() {
        return Err(FieldError::new(
            "events",
            "At least one event type is required",
        ));
    }
    let mut topics = Vec::new();
    for name in raw {
        match Topic::parse(name.trim()) {
            Some(topic) => topics.push(topic),
            None => {
                let known: Vec<&str> = Topic::ALL.iter().map(|t| t.as_str()).collect();
                return Err(FieldError::new(
                    "events",
                    format!("{name} is not an event type; one of: {}", known.join(", ")),
                ));
            }
        }
    }
    Ok(Topic::ALL
        .iter()
        .filter(|t| topics.contains(t))
        .map(|t| t.as_str().to_owned())
        .collect())
}

/// A description: at most [`MAX_DESCRIPTION`] characters, no control
/// characters but line breaks.
pub fn parse_description(raw: &str) -> Result<String, FieldError> {
    let text = raw.trim();
    if text.chars().count() > MAX_DESCRIPTION || text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(FieldError::new(
            "description",
            format!("Must be at most {MAX_DESCRIPTION} characters without control characters"),
        ));
    }
    Ok(text.to_owned())
}

/// What one run of the delivery job did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = WebhooksDrained))]
#[serde(rename_all = "camelCase")]
pub struct Drained {
    /// Times it claimed what was due.
    pub passes: usize,
    pub claimed: usize,
    pub delivered: usize,
    /// Attempts that failed (tried again later, or given up).
    pub failed: usize,
    /// Deliveries whose schedule is spent.
    pub gave_up: usize,
    /// Endpoints disabled (410, or five days of failures).
    pub disabled: usize,
    /// The run ended because it had made as many outbound requests as
    /// `WEBHOOK_RUN_SUBREQUESTS` allows (what is left goes in the next).
    pub stopped_at_allowance: bool,
}

/// The outbound requests one delivery may take: its post, the record of
/// its attempt, and when it disables its endpoint the lookup of whom to
/// tell.
const SUBREQUESTS_PER_DELIVERY: usize = 3;

/// Delivers what is due, claiming again each second for up to `budget`
/// (so a retry due in 5 s is sent within about a second of its time while
/// a run lasts); no budget, one pass. Where `WEBHOOK_RUN_SUBREQUESTS` is
/// set, a run makes at most that many outbound requests: each claim takes
/// only as many deliveries as the rest of the allowance can send, and the
/// run ends when it cannot claim one more.
pub async fn drain<P: Platform>(
    ctx: &Ctx<P>,
    rq: &Rq,
    budget: Duration,
) -> Result<Drained, ApiError> {
    let started = ctx.now();
    let allowance = ctx.config.webhook_run_subrequests()?.unwrap_or(usize::MAX);
    let mut used = 0usize;
    let mut drained = Drained::default();
    loop {
        // This claim, and what each delivery claimed may take.
        let room = allowance.saturating_sub(used.saturating_add(1)) / SUBREQUESTS_PER_DELIVERY;
        if room == 0 {
            drained.stopped_at_allowance = true;
            break;
        }
        let limit = BATCH.min(i64::try_from(room).unwrap_or(BATCH));
        drained.passes += 1;
        let claimed = webhook::claim_due(&ctx.db(), limit, LEASE_SECS).await?;
        used += 1 + claimed.len() * SUBREQUESTS_PER_DELIVERY;
        let full = claimed.len() as i64 == limit;
        drained.claimed += claimed.len();
        let outcomes: Vec<Result<Sent, ApiError>> = futures::stream::iter(claimed)
            .map(|claimed| {
                let scope = Scope::scheduled(claimed.organization_id);
                async move { deliver(ctx, rq, &scope, claimed, true).await }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for outcome in outcomes {
            let sent = outcome?;
            if sent.delivered {
                drained.delivered += 1;
            } else {
                drained.failed += 1;
            }
            drained.gave_up += usize::from(sent.gave_up);
            drained.disabled += usize::from(sent.disabled);
        }
        let elapsed = ctx.now() - started;
        if elapsed >= budget {
            break;
        }
        // A full batch: more is due now.
        if !full {
            ctx.platform.sleep(Duration::from_secs(1)).await;
        }
    }
    Ok(drained)
}

/// What became of one claimed delivery.
struct Sent {
    delivered: bool,
    gave_up: bool,
    disabled: bool,
    attempt: Attempt,
}

/// An attempt made on someone's request (a test, a delivery sent again).
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = WebhookAttempted))]
#[serde(rename_all = "camelCase")]
pub struct Attempted {
    pub delivery_id: uuid::Uuid,
    /// The endpoint answered 2xx.
    pub delivered: bool,
    /// The endpoint was disabled by this attempt (it answered 410).
    pub disabled: bool,
    pub attempt: Attempt,
}

/// Sends delivery `delivery_id` of endpoint `webhook_id` now, on someone's
/// request, and records the attempt; `retries`: a failure goes on with the
/// delivery's schedule (else it is `failed`). 404 when there is no such
/// delivery, 409 while an attempt at it is under way (the delivery job's,
/// or another request's).
pub async fn deliver_now<P: Platform>(
    ctx: &Ctx<P>,
    rq: &Rq,
    scope: &Scope,
    webhook_id: uuid::Uuid,
    delivery_id: uuid::Uuid,
    retries: bool,
) -> Result<Attempted, ApiError> {
    let db = ctx.db();
    let Some(claimed) = webhook::claim(&db, scope, webhook_id, delivery_id, LEASE_SECS).await?
    else {
        if webhook::delivery(&db, scope, webhook_id, delivery_id)
            .await?
            .is_none()
        {
            return Err(ApiError::NotFound);
        }
        return Err(ApiError::Conflict {
            message: "The delivery is being sent right now; look at its log in a moment".into(),
            details: Vec::new(),
        });
    };
    let sent = deliver(ctx, rq, scope, claimed, retries).await?;
    Ok(Attempted {
        delivery_id,
        delivered: sent.delivered,
        disabled: sent.disabled,
        attempt: sent.attempt,
    })
}

/// How an attempt went.
struct Answer {
    status: Option<u16>,
    error: Option<String>,
    excerpt: Option<String>,
    retry_after_secs: Option<i64>,
}

/// Sends one claimed delivery and records the attempt in `scope` (its
/// organization's), if the claim's lease is still its own (else someone
/// else's attempt has taken over, and this one changes nothing);
/// `retries`: a failure is tried again on the schedule (a test event is
/// never).
async fn deliver<P: Platform>(
    ctx: &Ctx<P>,
    rq: &Rq,
    scope: &Scope,
    claimed: Claimed,
    retries: bool,
) -> Result<Sent, ApiError> {
    let retries = retries && claimed.event_type != TEST_EVENT;
    let at = ctx.now();
    let answer = attempt(ctx, &claimed, at).await;
    let duration_ms = u64::try_from((ctx.now() - at).whole_milliseconds()).unwrap_or(0);
    let delivered = answer.status.is_some_and(|s| (200..300).contains(&s));
    let gone = answer.status == Some(410);
    let tried = claimed.attempts + 1;
    let next = if delivered {
        Next::Delivered
    } else if gone || !retries {
        Next::GaveUp
    } else {
        match SCHEDULE_SECS.get(usize::try_from(claimed.attempts).unwrap_or(usize::MAX)) {
            None => Next::GaveUp,
            Some(wait) => {
                let wait_ms = jittered(ctx, *wait * 1000);
                let asked_ms = answer
                    .retry_after_secs
                    .map(|s| s.clamp(0, MAX_RETRY_AFTER_SECS) * 1000)
                    .unwrap_or(0);
                Next::RetryIn(wait_ms.max(asked_ms))
            }
        }
    };
    if !delivered {
        tracing::warn!(delivery = %claimed.id, webhook = %claimed.webhook_id, attempt = tried,
            status = ?answer.status, error = ?answer.error, "webhook delivery failed");
    }
    let record = Attempt {
        at: at.into(),
        status_code: answer.status,
        duration_ms,
        error: answer.error,
        response_excerpt: answer.excerpt,
    };
    let mut statements = vec![webhook::record_attempt(
        scope,
        claimed.id,
        claimed.lease,
        &record,
        next,
        KEEP_ATTEMPTS,
    )];
    // Five days of failures disable the endpoint when a delivery's
    // schedule is spent (so every delivery had its whole schedule).
    let failing_too_long = next == Next::GaveUp
        && claimed
            .failing_since
            .is_some_and(|since| (at - since.get()).whole_days() >= DISABLE_AFTER_DAYS);
    let disable = if gone {
        Some("gone")
    } else if failing_too_long {
        Some("failing")
    } else {
        None
    };
    if let Some(reason) = disable {
        let event = audit::Event {
            organization_id: Some(claimed.organization_id),
            record_id: Some(claimed.webhook_id),
            new_values: Some(json!({ "enabled": false, "disabledReason": reason })),
            metadata: json!({
                "url": target::audit_form(&claimed.url),
                "deliveryId": claimed.id,
                "statusCode": answer.status,
                "failingSince": claimed.failing_since,
            }),
            ..audit::Event::new(ctx.new_uuid(), EventType::WebhookDisabled)
        };
        let change = webhook::disable(scope, claimed.webhook_id, reason, claimed.id, claimed.lease);
        statements.push(event.record_change(rq, change)?);
        statements.push(webhook::cancel_pending(scope, claimed.webhook_id));
        for to in webhook::managers(&ctx.db(), scope).await? {
            let message = disabled_mail(ctx, &claimed, reason, to);
            statements.push(webhook::tell_if_disabled(
                scope,
                claimed.webhook_id,
                message.id,
                &message.to,
                &message.subject,
                &mail::seal(ctx, &message)?,
            ));
        }
    }
    let results = scope.batch(&ctx.db(), statements).await?;
    let changed = |i: usize| results.get(i).is_some_and(|r| !r.rows.is_empty());
    if !changed(0) {
        tracing::info!(delivery = %claimed.id, "webhook attempt not recorded: another attempt took the delivery over");
    }
    Ok(Sent {
        delivered,
        gave_up: next == Next::GaveUp,
        disabled: disable.is_some() && changed(1),
        attempt: record,
    })
}

/// The message telling `to` (who manages webhooks) that the delivery job disabled
/// `claimed`'s endpoint, and what to do about it.
fn disabled_mail<P: Platform>(
    ctx: &Ctx<P>,
    claimed: &Claimed,
    reason: &str,
    to: String,
) -> mail::Message {
    let endpoint = target::audit_form(&claimed.url);
    let why = match reason {
        "gone" => "it answered 410 Gone, which says it is no longer there".to_owned(),
        _ => format!(
            "every delivery to it has failed for {DISABLE_AFTER_DAYS} days, since {}",
            claimed
                .failing_since
                .map_or_else(|| "then".to_owned(), |t| t.to_string())
        ),
    };
    let id = claimed.webhook_id;
    mail::Message {
        id: ctx.new_uuid(),
        to,
        subject: "A webhook endpoint was disabled".into(),
        text: format!(
            "The webhook endpoint {endpoint} (id {id}) was disabled by the delivery job: {why}.\n\n\
             Nothing more is sent to it, and its pending deliveries were cancelled. \
             Once it works again, enable it (PUT /api/v1/webhooks/{id} with \"enabled\": true) \
             and replay what it missed (POST /api/v1/webhooks/{id}/recover with the time since \
             when).\n"
        ),
    }
}

/// `ms` give or take a tenth, so retries of many deliveries spread out.
fn jittered<P: Platform>(ctx: &Ctx<P>, ms: i64) -> i64 {
    let [r0, r1] = ctx.random_bytes::<2>();
    let unit = f64::from(u16::from_le_bytes([r0, r1])) / f64::from(u16::MAX); // 0..=1
    let factor = 0.9 + 0.2 * unit;
    (ms as f64 * factor).round() as i64
}

/// One attempt: the target checked again, the body signed, posted, and
/// the start of the answer read, all within [`TIMEOUT`].
async fn attempt<P: Platform>(ctx: &Ctx<P>, claimed: &Claimed, at: time::OffsetDateTime) -> Answer {
    let failed = |error: String| Answer {
        status: None,
        error: Some(error),
        excerpt: None,
        retry_after_secs: None,
    };
    let target = match check_target(ctx, &claimed.url, true).await {
        Ok(target) => target,
        Err(why) => return failed(format!("the endpoint is refused: {why}")),
    };
    let mut keys = Vec::new();
    match open_secret(
        ctx,
        claimed.organization_id,
        claimed.webhook_id,
        &claimed.secret_key_id,
        &claimed.secret_ciphertext,
    ) {
        Ok(key) => keys.push(key),
        Err(why) => return failed(format!("the secret cannot be opened: {why}")),
    }
    if let (Some(ciphertext), Some(key_id), Some(until)) = (
        &claimed.previous_secret_ciphertext,
        &claimed.previous_secret_key_id,
        claimed.previous_secret_expires_at,
    ) && until > at
    {
        match open_secret(
            ctx,
            claimed.organization_id,
            claimed.webhook_id,
            key_id,
            ciphertext,
        ) {
            Ok(key) => keys.push(key),
            Err(why) => {
                tracing::error!(webhook = %claimed.webhook_id, error = %why, "the previous webhook secret cannot be opened; signing with the current one only")
            }
        }
    }
    let body = claimed.payload.to_string();
    let id = claimed.event_id.to_string();
    let allow_loopback = ctx.config.webhooks_allow_loopback().unwrap_or(false);
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(target.url.as_str())
        .extension(PublicAddressesOnly { allow_loopback })
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::USER_AGENT, "Antevus-Webhooks/1");
    for (name, value) in sign::headers(&keys, &id, at.unix_timestamp(), body.as_bytes()) {
        builder = builder.header(name, value);
    }
    let request = match builder.body(Bytes::from(body)) {
        Ok(request) => request,
        Err(e) => return failed(format!("the request cannot be built: {e}")),
    };
    // What is left of the deadline after the name's lookup.
    let left = |ctx: &Ctx<P>| {
        let spent = (ctx.now() - at).unsigned_abs();
        TIMEOUT.saturating_sub(spent)
    };
    let response = match ctx.fetch_streaming_within(request, left(ctx)).await {
        Err(e) => return failed(format!("no answer: {e}")),
        Ok(response) => response,
    };
    let status = response.status();
    let retry_after_secs = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| retry_after(v, at));
    let error = if status.is_redirection() {
        Some(format!(
            "redirects are not followed ({} to {})",
            status.as_u16(),
            response
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("nowhere")
        ))
    } else if !status.is_success() {
        Some(format!("the endpoint answered {}", status.as_u16()))
    } else {
        None
    };
    let start = within(
        &ctx.platform,
        async { Ok(read_start(response.into_body(), EXCERPT_BYTES).await) },
        left(ctx),
    )
    .await
    .unwrap_or_default();
    Answer {
        status: Some(status.as_u16()),
        error,
        excerpt: excerpt(&start),
        retry_after_secs,
    }
}

/// The first `limit` bytes of `body` (fewer if it ends first, or fails);
/// the rest is never read.
async fn read_start(body: Body, limit: usize) -> Vec<u8> {
    match body {
        Body::Full(bytes) => bytes[..bytes.len().min(limit)].to_vec(),
        Body::Stream(mut chunks) => {
            let mut start = Vec::new();
            while start.len() < limit {
                match chunks.next().await {
                    Some(Ok(chunk)) => start.extend_from_slice(&chunk),
                    Some(Err(_)) | None => break,
                }
            }
            start.truncate(limit);
            start
        }
    }
}

/// The start of `body` as text (at most [`EXCERPT_BYTES`], cut at a
/// character), none when empty.
fn excerpt(body: &[u8]) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(EXCERPT_BYTES)]);
    let text: String = text
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect();
    Some(text.trim_end_matches('\u{fffd}').to_owned())
}

/// `Retry-After`: seconds, or an HTTP date (seconds from `now`).
fn retry_after(value: &str, now: time::OffsetDateTime) -> Option<i64> {
    if let Ok(secs) = value.trim().parse::<i64>() {
        return Some(secs.max(0));
    }
    let when =
        time::OffsetDateTime::parse(value.trim(), &time::format_description::well_known::Rfc2822)
            .ok()?;
    Some((when - now).whole_seconds().max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = time::macros::datetime!(2026-12-03 12:00:00 UTC);
        assert_eq!(retry_after("120", now), Some(120));
        assert_eq!(retry_after("Thu, 03 Dec 2026 12:10:00 GMT", now), Some(600));
        assert_eq!(retry_after("Thu, 03 Dec 2026 11:00:00 GMT", now), Some(0));
        assert_eq!(retry_after("soon", now), None);
    }

    #[test]
    fn excerpts_are_capped_text() {
        assert_eq!(excerpt(b""), None);
        assert_eq!(excerpt(b"ok\x00\x07"), Some("ok".into()));
        let long = "é".repeat(EXCERPT_BYTES);
        let cut = excerpt(long.as_bytes()).expect("an excerpt");
        assert!(cut.len() <= EXCERPT_BYTES && cut.chars().all(|c| c == 'é'));
    }

    #[test]
    fn the_schedule_is_the_issues() {
        let total: i64 = SCHEDULE_SECS.iter().sum();
        assert_eq!(SCHEDULE_SECS.len() + 1, 8);
        assert_eq!(total, 5 + 300 + 1_800 + 7_200 + 18_000 + 36_000 + 36_000);
    }
}
