//! `GET /api/audit/events` (`audit:view`): the organization's audit trail,
//! newest first. Filters: `userId`, `eventType`, `severity`, `outcome`,
//! `recordType` and `recordId`, `from` / `to` (RFC 3339), `q` (text in the
//! action, case-insensitive); `limit` and an opaque `cursor` (keyset on the
//! chain's sequence). Each event shows its chain position, hash and key id.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::model::page;
use crate::model::page::Page;
use crate::params;
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    GET => list,
}

const SEVERITIES: [&str; 4] = ["INFO", "WARNING", "ERROR", "CRITICAL"];
const OUTCOMES: [&str; 3] = ["SUCCESS", "FAILURE", "DENIED"];

/// The query of the audit routes: filters, plus `limit`/`cursor` (events)
/// or `format`/`after` (export).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct AuditQuery {
    pub(super) format: Option<String>,
    pub(super) after: Option<String>,
    user_id: Option<String>,
    event_type: Option<String>,
    severity: Option<String>,
    outcome: Option<String>,
    record_type: Option<String>,
    record_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    q: Option<String>,
    pub(super) limit: Option<String>,
    pub(super) cursor: Option<String>,
}

/// The filters both audit routes take.
pub(super) struct Filters {
    user_id: Option<uuid::Uuid>,
    event_type: Option<String>,
    severity: Option<String>,
    outcome: Option<String>,
    record_type: Option<String>,
    record_id: Option<uuid::Uuid>,
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
    text: Option<String>,
}

/// The filters as SQL over `audit_events`: `$1` the chain, `$2..=$10` the
/// filters ([`Filters::params`]).
pub(super) const FILTER_SQL: &str = "chain_id = $1 \
       AND ($2::uuid IS NULL OR user_id = $2) \
       AND ($3::text IS NULL OR event_type = $3) \
       AND ($4::text IS NULL OR severity = $4) \
       AND ($5::text IS NULL OR outcome = $5) \
       AND ($6::text IS NULL OR record_type = $6) \
       AND ($7::uuid IS NULL OR record_id = $7) \
       AND ($8::timestamptz IS NULL OR created_at >= $8) \
       AND ($9::timestamptz IS NULL OR created_at <= $9) \
       AND ($10::text IS NULL OR action ILIKE $10)";

impl Filters {
    pub(super) fn parse(query: &AuditQuery, problems: &mut Vec<FieldError>) -> Filters {
        let from = crate::request::time_field("from", query.from.as_deref(), problems);
        let to = crate::request::time_field("to", query.to.as_deref(), problems);
        if let (Some(f), Some(t)) = (from, to)
            && f > t
        {
            problems.push(FieldError::new("to", "Must not be before from"));
        }
        Filters {
            user_id: crate::request::uuid_field("userId", query.user_id.as_deref(), problems),
            record_id: crate::request::uuid_field("recordId", query.record_id.as_deref(), problems),
            severity: one_of("severity", query.severity.as_deref(), &SEVERITIES, problems),
            outcome: one_of("outcome", query.outcome.as_deref(), &OUTCOMES, problems),
            event_type: short_text("eventType", query.event_type.clone(), 100, problems),
            record_type: short_text("recordType", query.record_type.clone(), 100, problems),
            text: short_text("q", query.q.clone(), 200, problems),
            from,
            to,
        }
    }

    /// `$1..=$10` of [`FILTER_SQL`].
    pub(super) fn params(&self, chain_id: uuid::Uuid) -> Vec<Value> {
        params![
            chain_id,
            self.user_id,
            self.event_type,
            self.severity,
            self.outcome,
            self.record_type,
            self.record_id,
            self.from,
            self.to,
            self.text.as_deref().map(contains_pattern),
        ]
    }

    /// The filters given, for an export's manifest.
    pub(super) fn describe(&self) -> Value {
        let time = |t: &Option<OffsetDateTime>| t.and_then(|t| t.format(&Rfc3339).ok());
        let mut out = serde_json::Map::new();
        let mut put = |name: &str, value: Option<String>| {
            if let Some(value) = value {
                out.insert(name.to_owned(), Value::String(value));
            }
        };
        put("userId", self.user_id.map(|u| u.to_string()));
        put("eventType", self.event_type.clone());
        put("severity", self.severity.clone());
        put("outcome", self.outcome.clone());
        put("recordType", self.record_type.clone());
        put("recordId", self.record_id.map(|u| u.to_string()));
        put("from", time(&self.from));
        put("to", time(&self.to));
        put("q", self.text.clone());
        Value::Object(out)
    }
}

/// An audit event as auditors read it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all(serialize = "camelCase"))]
struct EventView {
    id: uuid::Uuid,
    sequence: i64,
    event_type: String,
    severity: String,
    action: String,
    outcome: String,
    user_id: Option<uuid::Uuid>,
    record_type: Option<String>,
    record_id: Option<uuid::Uuid>,
    old_values: Option<Value>,
    new_values: Option<Value>,
    reason: Option<String>,
    metadata: Value,
    ip_address: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    hash: String,
    key_id: String,
}

fn one_of(
    field: &str,
    raw: Option<&str>,
    allowed: &[&str],
    problems: &mut Vec<FieldError>,
) -> Option<String> {
    raw.and_then(|value| {
        if allowed.contains(&value) {
            Some(value.to_owned())
        } else {
            problems.push(FieldError::new(
                field,
                format!("Must be one of: {}", allowed.join(", ")),
            ));
            None
        }
    })
}

fn short_text(
    field: &str,
    raw: Option<String>,
    max: usize,
    problems: &mut Vec<FieldError>,
) -> Option<String> {
    raw.filter(|s| !s.is_empty()).and_then(|s| {
        if s.chars().count() > max {
            problems.push(FieldError::new(
                field,
                format!("Must be at most {max} characters"),
            ));
            None
        } else {
            Some(s)
        }
    })
}

/// `text` as a LIKE pattern matching it literally anywhere.
fn contains_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// Keyset position: the sequence of the last event shown.
struct After(i64);

impl page::Position for After {
    fn encode(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("s|{}", self.0))
    }
}

fn after(raw: Option<&str>, problems: &mut Vec<FieldError>) -> Option<i64> {
    use base64::Engine as _;
    raw.and_then(|raw| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(raw)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|t| t.strip_prefix("s|").and_then(|n| n.parse::<i64>().ok()))
            .or_else(|| {
                problems.push(FieldError::new("cursor", "Invalid cursor"));
                None
            })
    })
}

async fn list<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::AuditView)?;
    let query: AuditQuery = rq.query()?;
    let mut problems = Vec::new();
    let filters = Filters::parse(&query, &mut problems);
    for (field, given) in [("format", &query.format), ("after", &query.after)] {
        if given.is_some() {
            problems.push(FieldError::new(field, "Only for /api/audit/export"));
        }
    }
    let limit = page::limit(query.limit.as_deref(), &mut problems);
    let cursor = after(query.cursor.as_deref(), &mut problems);
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let mut values = filters.params(principal.organization_id);
    values.extend(params![cursor, limit + 1]);
    let mut items: Vec<EventView> = ctx
        .db()
        .fetch_all(
            &format!(
                "SELECT id, sequence, event_type, severity, action, outcome, user_id, record_type, record_id, \
                   old_values, new_values, reason, metadata, host(ip_address) AS ip_address, user_agent, request_id, \
                   created_at, encode(hash, 'hex') AS hash, key_id \
                 FROM audit_events WHERE {FILTER_SQL} AND ($11::int8 IS NULL OR sequence < $11) \
                 ORDER BY sequence DESC LIMIT $12"
            ),
            values,
        )
        .await?;
    let next_cursor = page::finish(&mut items, limit, |last| After(last.sequence));
    Reply::ok(Page { items, next_cursor })
}
