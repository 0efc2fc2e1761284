//! `webhooks` and `webhook_deliveries`: the organization's endpoints (their
//! secrets sealed) and the outbox of deliveries, one per event and
//! endpoint, queued by the statement that writes the event
//! (`audit_event`), claimed by the delivery job and recorded attempt by
//! attempt.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Scope;
use super::page::Cursor;
use crate::db::{Db, DbError, Statement, statement};
use crate::domain::Timestamp;
use crate::domain::roles::{Permission, Role};
use crate::error::ApiError;
use crate::params;
use crate::platform::Platform;

/// A sealed secret as stored: the sealing key's id and the nonce and
/// ciphertext, hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecret {
    pub key_id: String,
    pub ciphertext_hex: String,
}

pub const COLUMNS: &str = "id, url, events, description, is_active AS enabled, disabled_reason, disabled_at, \
     failing_since, last_delivered_at, previous_secret_expires_at AS previous_secret_until, \
     created_at, updated_at, version, user_id AS created_by";

/// An endpoint as the API shows it (never its secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(as = Webhook, rename_all = "camelCase")
)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct Webhook {
    pub id: uuid::Uuid,
    /// Where deliveries are posted (https, a public address).
    pub url: String,
    /// The event types it is sent (`docs/EVENTS.md`).
    pub events: Vec<String>,
    pub description: String,
    /// `false`: nothing is sent to it (disabled by someone, or by the
    /// delivery job: `disabledReason`).
    pub enabled: bool,
    /// Why the delivery job disabled it: `gone` (it answered 410) or
    /// `failing` (every delivery failed for five days).
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<Timestamp>,
    /// Since when its deliveries fail (none: the last one succeeded).
    pub failing_since: Option<Timestamp>,
    pub last_delivered_at: Option<Timestamp>,
    /// Until when the secret before the last rotation still signs too.
    pub previous_secret_until: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The version `If-Match` names (also the `ETag`).
    pub version: i32,
    pub created_by: uuid::Uuid,
}

/// The organization's endpoints, newest first.
pub async fn list<P: Platform>(db: &Db<'_, P>, scope: &Scope) -> Result<Vec<Webhook>, DbError> {
    scope
        .fetch_all(
            db,
            statement(
                format!(
                    "SELECT {COLUMNS} FROM webhooks WHERE organization_id = $1 \
                     ORDER BY created_at DESC, id DESC"
                ),
                params![scope.organization_id()],
            ),
        )
        .await
}

/// Endpoint `id` of the organization; 404 when it has none such (another
/// organization's included).
pub async fn get<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    id: uuid::Uuid,
) -> Result<Webhook, ApiError> {
    let found: Option<Webhook> = scope
        .fetch_optional(
            db,
            statement(
                format!("SELECT {COLUMNS} FROM webhooks WHERE id = $1 AND organization_id = $2"),
                params![id, scope.organization_id()],
            ),
        )
        .await?;
    found.ok_or(ApiError::NotFound)
}

/// A new endpoint.
pub struct NewWebhook<'a> {
    pub id: uuid::Uuid,
    pub user_id: uuid::Uuid,
    pub url: &'a str,
    pub events: &'a [String],
    pub description: &'a str,
    pub enabled: bool,
    pub secret: &'a SealedSecret,
}

/// Holds the organization's endpoints for the rest of the transaction, so
/// two registrations at once cannot both take the last place under
/// [`insert`]'s limit.
pub fn lock_endpoints(scope: &Scope) -> Statement {
    statement(
        "SELECT pg_advisory_xact_lock(hashtextextended('webhooks:' || $1::text, 0)) IS NULL AS held",
        params![scope.organization_id()],
    )
}

/// Stores `new` if the organization has fewer than `most` endpoints
/// (after [`lock_endpoints`]); returns it as shown (no row: it has `most`).
pub fn insert(scope: &Scope, new: &NewWebhook<'_>, most: i64) -> Statement {
    statement(
        format!(
            "INSERT INTO webhooks (id, organization_id, user_id, url, events, description, is_active, \
                                   secret_ciphertext, secret_key_id) \
             SELECT $1, $2, $3, $4, $5::jsonb, $6, $7, decode($8, 'hex'), $9 \
              WHERE (SELECT count(*) FROM webhooks WHERE organization_id = $2) < $10 \
             RETURNING {COLUMNS}"
        ),
        params![
            new.id,
            scope.organization_id(),
            new.user_id,
            new.url,
            Value::from(new.events.to_vec()),
            new.description,
            new.enabled,
            new.secret.ciphertext_hex,
            new.secret.key_id,
            most,
        ],
    )
}

/// The fields of an update (each `None` left as it is).
pub struct Changes<'a> {
    pub url: Option<&'a str>,
    pub events: Option<&'a [String]>,
    pub description: Option<&'a str>,
    pub enabled: Option<bool>,
}

/// Updates endpoint `id` if it is at `version`; returns it as shown (no row:
/// it changed meanwhile). Enabling it again clears why it was disabled and
/// its failing streak; so does a new URL (the streak was the old one's).
pub fn update(scope: &Scope, id: uuid::Uuid, version: i32, changes: &Changes<'_>) -> Statement {
    statement(
        format!(
            "UPDATE webhooks SET url = coalesce($4, url), events = coalesce($5::jsonb, events), \
                    description = coalesce($6, description), is_active = coalesce($7, is_active), \
                    disabled_reason = CASE WHEN $7::boolean THEN NULL ELSE disabled_reason END, \
                    disabled_at = CASE WHEN $7::boolean THEN NULL ELSE disabled_at END, \
                    failing_since = CASE WHEN $7::boolean OR $4::text IS DISTINCT FROM NULL AND $4::text <> url \
                                         THEN NULL ELSE failing_since END, \
                    version = version + 1, updated_at = now() \
              WHERE id = $1 AND organization_id = $2 AND version = $3 RETURNING {COLUMNS}"
        ),
        params![
            id,
            scope.organization_id(),
            version,
            changes.url,
            changes.events.map(|e| Value::from(e.to_vec())),
            changes.description,
            changes.enabled,
        ],
    )
}

/// Deletes endpoint `id` and its deliveries; returns `id`, `url`.
pub fn delete(scope: &Scope, id: uuid::Uuid) -> Statement {
    statement(
        "DELETE FROM webhooks WHERE id = $1 AND organization_id = $2 RETURNING id, url",
        params![id, scope.organization_id()],
    )
}

/// One attempt at a delivery, as stored in its log.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(as = WebhookAttempt)
)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub at: Timestamp,
    /// The endpoint's HTTP status; none when it did not answer.
    pub status_code: Option<u16>,
    /// From sending to the answer's head (or to giving up).
    pub duration_ms: u64,
    /// Why it failed, when it did (no answer, a redirect, a refused address).
    pub error: Option<String>,
    /// The start of the answer's body (at most 1 KiB of text).
    pub response_excerpt: Option<String>,
}

pub const DELIVERY_COLUMNS: &str = "id, event_id, event_type, status, attempts, status_code, response AS attempt_log, \
     next_attempt_at, delivered_at, last_attempt_at, created_at";

/// A delivery as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(as = WebhookDelivery, rename_all = "camelCase")
)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct Delivery {
    pub id: uuid::Uuid,
    /// The event's id: the `webhook-id` of every attempt.
    pub event_id: uuid::Uuid,
    pub event_type: String,
    /// `pending` (to be tried, or tried again at `nextAttemptAt`),
    /// `delivered`, `failed` (every attempt of the schedule failed) or
    /// `cancelled` (the endpoint was disabled first).
    pub status: String,
    pub attempts: i32,
    /// The last attempt's HTTP status.
    pub status_code: Option<i32>,
    /// Every attempt, oldest first.
    pub attempt_log: Vec<Attempt>,
    pub next_attempt_at: Option<Timestamp>,
    pub delivered_at: Option<Timestamp>,
    pub last_attempt_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

/// Endpoint `webhook_id`'s deliveries, newest first, after `after`.
pub async fn deliveries<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    webhook_id: uuid::Uuid,
    status: Option<&str>,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<Vec<Delivery>, DbError> {
    scope
        .fetch_all(
            db,
            statement(
                format!(
                    "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries \
                      WHERE organization_id = $1 AND webhook_id = $2 \
                        AND ($3::text IS NULL OR status = $3) \
                        AND ($4::timestamptz IS NULL OR (created_at, id) < ($4::timestamptz, $5::uuid)) \
                      ORDER BY created_at DESC, id DESC LIMIT $6"
                ),
                params![
                    scope.organization_id(),
                    webhook_id,
                    status,
                    after.map(|c| c.created_at),
                    after.map(|c| c.id),
                    limit,
                ],
            ),
        )
        .await
}

/// A delivery claimed for an attempt, with its endpoint's URL and secrets.
#[derive(Debug, Clone, Deserialize)]
pub struct Claimed {
    pub id: uuid::Uuid,
    pub organization_id: uuid::Uuid,
    pub webhook_id: uuid::Uuid,
    pub event_id: uuid::Uuid,
    pub event_type: String,
    pub payload: Value,
    /// Attempts before this one.
    pub attempts: i32,
    /// The claim's token: only its holder records the attempt.
    pub lease: uuid::Uuid,
    pub url: String,
    /// Hex.
    pub secret_ciphertext: String,
    pub secret_key_id: String,
    pub previous_secret_ciphertext: Option<String>,
    pub previous_secret_key_id: Option<String>,
    pub previous_secret_expires_at: Option<Timestamp>,
    pub failing_since: Option<Timestamp>,
}

/// Claims up to `limit` due deliveries of every organization for
/// `lease_secs`, each under a new lease, through migration V27's
/// `SECURITY DEFINER` function (the delivery job is the system's).
pub async fn claim_due<P: Platform>(
    db: &Db<'_, P>,
    limit: i64,
    lease_secs: i64,
) -> Result<Vec<Claimed>, DbError> {
    db.fetch_all(
        "SELECT id, organization_id, webhook_id, event_id, event_type, payload, attempts, lease, url, \
                encode(secret_ciphertext, 'hex') AS secret_ciphertext, secret_key_id, \
                encode(previous_secret_ciphertext, 'hex') AS previous_secret_ciphertext, \
                previous_secret_key_id, previous_secret_expires_at, failing_since \
           FROM claim_due_webhook_deliveries($1::int, $2::int)",
        params![limit as i32, lease_secs as i32],
    )
    .await
}

/// What became of a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Delivered,
    /// Tried again in this many milliseconds.
    RetryIn(i64),
    /// The schedule is spent.
    GaveUp,
}

/// Records `attempt` of delivery `id` if `lease` still holds it (its log
/// keeps the newest `keep` attempts) and what comes next, ending the lease;
/// and the endpoint's streak: a success clears it, a failure starts it if
/// none is running. Returns the endpoint's id (no row: another claim took
/// the delivery over, and nothing changed).
pub fn record_attempt(
    scope: &Scope,
    id: uuid::Uuid,
    lease: uuid::Uuid,
    attempt: &Attempt,
    next: Next,
    keep: usize,
) -> Statement {
    let (status, retry_ms) = match next {
        Next::Delivered => ("delivered", None),
        Next::RetryIn(ms) => ("pending", Some(ms)),
        Next::GaveUp => ("failed", None),
    };
    statement(
        "WITH recorded AS (UPDATE webhook_deliveries SET attempts = attempts + 1, status = $3::text, \
                status_code = $4, last_attempt_at = $5::timestamptz, leased_until = NULL, \
                response = (SELECT coalesce(jsonb_agg(a ORDER BY n), '[]') FROM \
                    (SELECT a, n FROM jsonb_array_elements(response || jsonb_build_array($6::jsonb)) \
                       WITH ORDINALITY AS t(a, n) ORDER BY n DESC LIMIT $7) kept), \
                delivered_at = CASE WHEN $3::text = 'delivered' THEN now() END, \
                next_attempt_at = CASE WHEN $8::bigint IS NULL THEN NULL \
                                       ELSE now() + make_interval(secs => $8::bigint / 1000.0) END \
          WHERE id = $1 AND organization_id = $2 AND lease = $9 \
          RETURNING webhook_id) \
         UPDATE webhooks w SET \
                failing_since = CASE WHEN $3::text = 'delivered' THEN NULL ELSE coalesce(w.failing_since, now()) END, \
                last_delivered_at = CASE WHEN $3::text = 'delivered' THEN now() ELSE w.last_delivered_at END \
           FROM recorded r WHERE w.id = r.webhook_id AND w.organization_id = $2 RETURNING w.id",
        params![
            id,
            scope.organization_id(),
            status,
            attempt.status_code.map(i32::from),
            attempt.at.get(),
            serde_json::to_value(attempt).unwrap_or(Value::Null),
            keep as i64,
            retry_ms,
            lease,
        ],
    )
}

/// Disables endpoint `id` for `reason` (`gone`, `failing`) if it is
/// enabled and the attempt at delivery `delivery_id` under `lease` was
/// recorded (earlier in the transaction), returning `id`; its pending
/// deliveries are cancelled by [`cancel_pending`].
pub fn disable(
    scope: &Scope,
    id: uuid::Uuid,
    reason: &str,
    delivery_id: uuid::Uuid,
    lease: uuid::Uuid,
) -> Statement {
    statement(
        "UPDATE webhooks SET is_active = false, disabled_reason = $3, disabled_at = now(), \
                version = version + 1, updated_at = now() \
          WHERE id = $1 AND organization_id = $2 AND is_active \
            AND EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.id = $4 AND d.organization_id = $2 \
                          AND d.lease = $5 AND d.leased_until IS NULL) \
          RETURNING id",
        params![id, scope.organization_id(), reason, delivery_id, lease],
    )
}

/// Cancels endpoint `id`'s pending deliveries if it was disabled in this
/// transaction; those another attempt holds are left to it (they wait
/// for the endpoint to be enabled again).
pub fn cancel_pending(scope: &Scope, id: uuid::Uuid) -> Statement {
    statement(
        "UPDATE webhook_deliveries SET status = 'cancelled', next_attempt_at = NULL \
          WHERE webhook_id = $1 AND organization_id = $2 AND status = 'pending' \
            AND (leased_until IS NULL OR leased_until <= now()) \
            AND EXISTS (SELECT 1 FROM webhooks w WHERE w.id = $1 AND w.organization_id = $2 \
                          AND NOT w.is_active AND w.disabled_at = now())",
        params![id, scope.organization_id()],
    )
}

/// The e-mail addresses of the organization's active users who manage
/// its webhooks (`webhooks:manage`: they are told when the delivery job
/// disables an endpoint).
pub async fn managers<P: Platform>(db: &Db<'_, P>, scope: &Scope) -> Result<Vec<String>, DbError> {
    #[derive(Deserialize)]
    struct Manager {
        email: String,
    }
    let roles: Vec<&str> = Role::ALL
        .iter()
        .filter(|r| r.can(Permission::WebhooksManage))
        .map(|r| r.as_str())
        .collect();
    let managers: Vec<Manager> = scope
        .fetch_all(
            db,
            statement(
                "SELECT email FROM users WHERE organization_id = $1 AND is_active \
                    AND role IN (SELECT jsonb_array_elements_text($2::jsonb)) ORDER BY email",
                params![scope.organization_id(), Value::from(roles)],
            ),
        )
        .await?;
    Ok(managers.into_iter().map(|m| m.email).collect())
}

/// Queues message `id` (its body sealed) to `to` if endpoint `webhook_id`
/// was disabled in this transaction (after [`disable`]).
pub fn tell_if_disabled(
    scope: &Scope,
    webhook_id: uuid::Uuid,
    id: uuid::Uuid,
    to: &str,
    subject: &str,
    body_sealed: &str,
) -> Statement {
    statement(
        "INSERT INTO email_outbox (id, organization_id, to_address, template, subject, body_sealed) \
         SELECT $1, $2, $3, 'webhook_disabled', $4, $5 \
          WHERE EXISTS (SELECT 1 FROM webhooks w WHERE w.id = $6 AND w.organization_id = $2 \
                          AND NOT w.is_active AND w.disabled_at = now())",
        params![
            id,
            scope.organization_id(),
            to,
            subject,
            body_sealed,
            webhook_id
        ],
    )
}

/// The columns of a claimed delivery, from `claimed c` joined with its
/// endpoint `w`.
const CLAIMED: &str = "c.id, c.organization_id, c.webhook_id, c.event_id, c.event_type, c.payload, c.attempts, c.lease, \
     w.url, encode(w.secret_ciphertext, 'hex') AS secret_ciphertext, w.secret_key_id, \
     encode(w.previous_secret_ciphertext, 'hex') AS previous_secret_ciphertext, \
     w.previous_secret_key_id, w.previous_secret_expires_at, w.failing_since";

/// Claims delivery `id` of endpoint `webhook_id` for an attempt now (sent
/// again by someone, or a test) under a new lease, for `lease_secs`;
/// `None` when there is no such delivery or an attempt at it is under way
/// ([`delivery`] tells which).
pub async fn claim<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    webhook_id: uuid::Uuid,
    id: uuid::Uuid,
    lease_secs: i64,
) -> Result<Option<Claimed>, DbError> {
    scope
        .fetch_optional(
            db,
            statement(
                format!(
                    "WITH held AS (SELECT d.id FROM webhook_deliveries d \
                       WHERE d.id = $1 AND d.webhook_id = $2 AND d.organization_id = $3 \
                         AND (d.leased_until IS NULL OR d.leased_until <= now()) \
                       FOR UPDATE SKIP LOCKED), \
                     claimed AS (UPDATE webhook_deliveries d SET lease = gen_random_uuid(), \
                         leased_until = now() + make_interval(secs => $4) \
                       FROM held WHERE d.id = held.id RETURNING d.*) \
                     SELECT {CLAIMED} FROM claimed c \
                       JOIN webhooks w ON w.organization_id = c.organization_id AND w.id = c.webhook_id"
                ),
                params![id, webhook_id, scope.organization_id(), lease_secs],
            ),
        )
        .await
}

/// Delivery `id` of endpoint `webhook_id`, if the organization has it.
pub async fn delivery<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    webhook_id: uuid::Uuid,
    id: uuid::Uuid,
) -> Result<Option<Delivery>, DbError> {
    scope
        .fetch_optional(
            db,
            statement(
                format!(
                    "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries \
                      WHERE id = $1 AND webhook_id = $2 AND organization_id = $3"
                ),
                params![id, webhook_id, scope.organization_id()],
            ),
        )
        .await
}

/// Queues a test event (`payload`, its type `webhook.test`) for endpoint
/// `webhook_id` alone, derived from audit event `audit_event_id` (stored
/// earlier in the batch); the delivery is not due (the test route sends
/// it itself).
pub fn queue_test(
    scope: &Scope,
    webhook_id: uuid::Uuid,
    audit_event_id: uuid::Uuid,
    event_id: uuid::Uuid,
    delivery_id: uuid::Uuid,
    payload: &Value,
) -> Statement {
    statement(
        "WITH published AS (INSERT INTO events (id, organization_id, event_type, version, audit_event_id, data, occurred_at) \
           SELECT $3, a.organization_id, $5::jsonb ->> 'type', 1, a.id, $5::jsonb -> 'data', a.created_at \
           FROM audit_events a WHERE a.id = $2 AND a.organization_id = $6 RETURNING id, organization_id, event_type) \
         INSERT INTO webhook_deliveries (id, organization_id, webhook_id, event_id, event_type, payload, next_attempt_at) \
           SELECT $4, p.organization_id, $1, p.id, p.event_type, $5::jsonb, NULL FROM published p RETURNING id",
        params![
            webhook_id,
            audit_event_id,
            event_id,
            delivery_id,
            payload.clone(),
            scope.organization_id(),
        ],
    )
}

/// Replaces endpoint `id`'s secret by `sealed`, the current one signing
/// too for `hours`; returns it as shown.
pub fn rotate_secret(
    scope: &Scope,
    id: uuid::Uuid,
    sealed: &SealedSecret,
    hours: i64,
) -> Statement {
    statement(
        format!(
            "UPDATE webhooks SET previous_secret_ciphertext = secret_ciphertext, \
                    previous_secret_key_id = secret_key_id, \
                    previous_secret_expires_at = now() + make_interval(hours => $5::int), \
                    secret_ciphertext = decode($3, 'hex'), secret_key_id = $4, \
                    version = version + 1, updated_at = now() \
              WHERE id = $1 AND organization_id = $2 RETURNING {COLUMNS}"
        ),
        params![
            id,
            scope.organization_id(),
            sealed.ciphertext_hex,
            sealed.key_id,
            hours as i32
        ],
    )
}

/// Queues endpoint `id`'s failed and cancelled deliveries since `since`
/// again, each with the whole schedule (test events excepted); returns
/// their ids.
pub fn recover(scope: &Scope, id: uuid::Uuid, since: time::OffsetDateTime) -> Statement {
    statement(
        "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = now() \
          WHERE webhook_id = $1 AND organization_id = $2 AND status IN ('failed', 'cancelled') \
            AND created_at >= $3::timestamptz AND event_type <> 'webhook.test' RETURNING id",
        params![id, scope.organization_id(), since],
    )
}
