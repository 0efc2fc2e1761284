//! Audit events, written by the system in the same transaction (batch) as
//! the change they record, each hashed and signed ([`chain`]) and put on its
//! organization's hash chain by the database.

pub mod catalogue;
pub mod chain;
pub mod events;
pub mod export;
pub mod query;
pub mod redact;
pub mod verify;

use serde_json::Value;

use crate::ctx::Ctx;
use crate::db::Statement;
use crate::error::ApiError;
use crate::model::{Scope, audit_event};
use crate::params;
use crate::platform::Platform;
use crate::request::Rq;

pub use catalogue::{EventType, Kind, Outcome, RecordType, Severity};

/// One audit event, ready to be added to a batch.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub id: uuid::Uuid,
    pub organization_id: Option<uuid::Uuid>,
    pub user_id: Option<uuid::Uuid>,
    /// A catalogued type ([`EventType`]) or a client-reported one.
    pub event_type: Kind<'a>,
    pub severity: Severity,
    /// Human-readable action.
    pub action: &'a str,
    pub outcome: Outcome,
    pub record_type: Option<RecordType>,
    pub record_id: Option<uuid::Uuid>,
    pub old_values: Option<Value>,
    pub new_values: Option<Value>,
    pub metadata: Value,
    /// Why, where the action demands a reason (deleting, changing results,
    /// changing a role).
    pub reason: Option<&'a str>,
}

impl<'a> Event<'a> {
    /// An event of `event_type` with the catalogue's severity, outcome,
    /// action and record type, nobody's and about no record yet; adjust the
    /// other fields with struct update syntax.
    pub fn new(id: uuid::Uuid, event_type: EventType) -> Event<'a> {
        Event {
            id,
            organization_id: None,
            user_id: None,
            event_type: Kind::Catalogued(event_type),
            severity: event_type.severity(),
            action: event_type.action(),
            outcome: event_type.outcome(),
            record_type: event_type.record_type(),
            record_id: None,
            old_values: None,
            new_values: None,
            metadata: serde_json::json!({}),
            reason: None,
        }
    }

    /// An event of `event_type` by `principal` about record `record_id`
    /// (of the catalogue's record type).
    pub fn by(
        id: uuid::Uuid,
        principal: &crate::auth::Principal,
        event_type: EventType,
        record_id: uuid::Uuid,
    ) -> Event<'a> {
        Event {
            organization_id: Some(principal.organization_id),
            user_id: Some(principal.user_id),
            record_id: Some(record_id),
            ..Event::new(id, event_type)
        }
    }

    fn values(&self, rq: &Rq) -> Result<Vec<serde_json::Value>, ApiError> {
        let ip = rq.client_ip().map(|ip| ip.to_string());
        let user_agent = rq.user_agent();
        let at = rq.started_at();
        let session_id = rq
            .caller()
            .and_then(|c| c.session_id)
            .map(|s| s.to_string());
        // Personal and health data never reaches the trail's metadata.
        let metadata = redact::redact(&self.metadata);
        // A value too large to page through is kept as its digest.
        let old_values = self.old_values.as_ref().map(capped);
        let new_values = self.new_values.as_ref().map(capped);
        let content = chain::Content {
            id: self.id,
            organization_id: self.organization_id,
            user_id: self.user_id,
            event_type: self.event_type.as_str(),
            severity: self.severity.as_str(),
            action: self.action,
            outcome: self.outcome.as_str(),
            record_type: self.record_type.map(RecordType::as_str),
            record_id: self.record_id,
            old_values: old_values.as_ref(),
            new_values: new_values.as_ref(),
            reason: self.reason,
            metadata: &metadata,
            ip_address: ip.as_deref(),
            user_agent: user_agent.as_deref(),
            request_id: Some(rq.id()),
            session_id: session_id.as_deref(),
            created_at_micros: (at.unix_timestamp_nanos() / 1_000) as i64,
        };
        let content_hash = content.hash();
        let key = rq.audit_key()?;
        let signature = hex::encode(chain::sign(key, &content_hash));
        let key_id = key.kid.clone();
        Ok(params![
            self.id,
            self.organization_id,
            self.user_id,
            self.event_type.as_str(),
            self.severity.as_str(),
            self.action,
            self.outcome.as_str(),
            self.record_type.map(RecordType::as_str),
            self.record_id,
            old_values,
            new_values,
            metadata,
            ip,
            user_agent,
            rq.id(),
            self.reason,
            at,
            hex::encode(content_hash),
            signature,
            key_id,
            session_id,
        ])
    }

    /// The `INSERT` for this event, carrying the request's id, client
    /// address and user agent.
    pub fn insert(&self, rq: &Rq) -> Result<Statement, ApiError> {
        Ok(audit_event::insert(self.values(rq)?, self.publications(rq)))
    }

    /// The events this one publishes ([`events::derive`]), as the
    /// statements of `model::audit_event` take them: `[{type, version,
    /// payload}]`, or none.
    fn publications(&self, rq: &Rq) -> Option<Value> {
        let published = events::derive(self, rq.started_at().into());
        if published.is_empty() {
            return None;
        }
        Some(Value::Array(
            published
                .into_iter()
                .map(|out| {
                    serde_json::json!({
                        "type": out.topic.as_str(),
                        "version": out.topic.version(),
                        "payload": out.payload,
                    })
                })
                .collect(),
        ))
    }

    /// One statement that makes `change` (a data-modifying statement with
    /// `RETURNING` of the columns the caller wants, including `id`) and
    /// records this event only if it changed a row; returns the changed rows.
    pub fn record_change(&self, rq: &Rq, change: Statement) -> Result<Statement, ApiError> {
        Ok(audit_event::insert_if_changed(
            change,
            self.values(rq)?,
            self.publications(rq),
        ))
    }

    /// [`Event::record_change`], recording the event only when a changed
    /// row's boolean column `flag` is true (`locked_now`: this failure
    /// locked the account).
    pub fn record_change_where(
        &self,
        rq: &Rq,
        change: Statement,
        flag: &'static str,
    ) -> Result<Statement, ApiError> {
        Ok(audit_event::insert_if_changed_where(
            change,
            self.values(rq)?,
            flag,
            self.publications(rq),
        ))
    }

    /// One statement that makes `change` (a data-modifying statement with
    /// `RETURNING`) and records this event only for the rows it changed: no
    /// change, no event. Returns the changed rows' `record_id`s.
    pub fn insert_after(&self, rq: &Rq, change: Statement) -> Result<Statement, ApiError> {
        Ok(audit_event::insert_per_change(
            change,
            self.values(rq)?,
            self.publications(rq),
        ))
    }
}

/// The fields of two JSON objects that differ: `(old values, new values)`,
/// for an update's audit event. Fields in `ignore` are left out.
pub fn changed_fields(old: &Value, new: &Value, ignore: &[&str]) -> (Value, Value) {
    let empty = serde_json::Map::new();
    let old = old.as_object().unwrap_or(&empty);
    let new = new.as_object().unwrap_or(&empty);
    let mut before = serde_json::Map::new();
    let mut after = serde_json::Map::new();
    for (key, value) in new {
        if ignore.contains(&key.as_str()) {
            continue;
        }
        let previous = old.get(key).unwrap_or(&Value::Null);
        if previous != value {
            before.insert(key.clone(), previous.clone());
            after.insert(key.clone(), value.clone());
        }
    }
    (Value::Object(before), Value::Object(after))
}

/// Records a refusal the audit trail must show, from the error itself: a
/// denied permission (`ACCESS_DENIED`) and a rate-limit refusal that started
/// a block (`RATE_LIMIT_BLOCKED`, once per block), with the caller the error
/// names. A failure to record is logged; the client still gets its refusal.
pub async fn record_refusal<P: Platform>(ctx: &Ctx<P>, rq: &Rq, err: &ApiError) {
    let (event_type, caller) = match err {
        ApiError::Forbidden { caller } => (EventType::AccessDenied, caller),
        ApiError::RateLimited {
            started_block: true,
            caller,
            ..
        } => (EventType::RateLimitBlocked, caller),
        _ => return,
    };
    if rq.audit_key().is_err() {
        // A route that declares no audit events holds no audit key (the
        // health check): its refusals are in its answer and the logs.
        tracing::info!(request_id = rq.id(), event = ?event_type, "refusal of a route that records no events");
        return;
    }
    let mut metadata = serde_json::json!({
        "method": rq.method().as_str(),
        "path": rq.req.uri().path(),
    });
    if event_type == EventType::AccessDenied
        && let Some(caller) = caller
        && repeated_denial(ctx, caller.organization_id, caller.user_id).await
    {
        metadata["repeatedDenials"] = DENIALS_ALERT.into();
        metadata["withinMinutes"] = DENIALS_WINDOW_MINUTES.into();
    }
    let event = Event {
        organization_id: caller.map(|c| c.organization_id),
        user_id: caller.map(|c| c.user_id),
        metadata,
        ..Event::new(ctx.new_uuid(), event_type)
    };
    if let Err(e) = store(ctx, rq, &event).await {
        tracing::warn!(request_id = rq.id(), error = %e, "could not record a refusal");
    }
}

/// Denials of one user within [`DENIALS_WINDOW_MINUTES`] that raise a
/// `security.alert` (at the one that makes them this many: once a burst).
pub const DENIALS_ALERT: i64 = 10;
pub const DENIALS_WINDOW_MINUTES: i64 = 10;

/// Whether this denial of `user_id` is the [`DENIALS_ALERT`]th within the
/// window (someone probing what they may not do). A failure to count is
/// logged and counts as no.
async fn repeated_denial<P: Platform>(
    ctx: &Ctx<P>,
    organization_id: uuid::Uuid,
    user_id: uuid::Uuid,
) -> bool {
    let scope = Scope::recorded(organization_id);
    match audit_event::recent_denials(&ctx.db(), &scope, user_id, DENIALS_WINDOW_MINUTES).await {
        Ok(before) => before + 1 == DENIALS_ALERT,
        Err(e) => {
            tracing::warn!(error = %e, "could not count a user's recent denials");
            false
        }
    }
}

/// The largest old or new values an event stores as they are (serialized):
/// the largest legitimate ones (an instrument's configuration and
/// calibration documents, 64 KiB each) fit, and a page of the chain stays
/// far under the SQL proxy's reply cap.
pub const MAX_VALUES_BYTES: usize = 256 * 1024;

/// `value`, or for one over [`MAX_VALUES_BYTES`] what stands for it in
/// the trail: `{"omitted": "too large", "bytes": n, "sha256": hex}` (the
/// event's signature covers that).
pub fn capped(value: &Value) -> Value {
    let text = value.to_string();
    if text.len() <= MAX_VALUES_BYTES {
        return value.clone();
    }
    serde_json::json!({
        "omitted": "too large",
        "bytes": text.len(),
        "sha256": hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes())),
    })
}

/// Stores `event` on its own, not with a change: in its organization's
/// scope, or on the system chain when it names none (a refusal before
/// anyone is authenticated), which needs no setting.
pub async fn store<P: Platform>(ctx: &Ctx<P>, rq: &Rq, event: &Event<'_>) -> Result<(), ApiError> {
    let statement = event.insert(rq)?;
    match event.organization_id {
        Some(organization) => Scope::recorded(organization)
            .execute(&ctx.db(), statement)
            .await
            .map(drop)
            .map_err(ApiError::from),
        None => ctx
            .db()
            .batch(vec![statement], Default::default())
            .await
            .map(drop)
            .map_err(ApiError::from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_too_large_to_page_are_kept_as_their_digest() {
        let small = json!({ "name": "Freezer" });
        assert_eq!(capped(&small), small);
        let large = json!({ "configuration": "x".repeat(MAX_VALUES_BYTES) });
        let kept = capped(&large);
        assert_eq!(kept["omitted"], "too large");
        assert_eq!(kept["bytes"], large.to_string().len());
        assert_eq!(kept["sha256"].as_str().map(str::len), Some(64));
    }
}
