//! The query of the audit routes (`/api/audit/events`, `/api/audit/export`):
//! the filters both take, parsed into `model::audit_event::Filters`, and
//! the cursor of the list.

use base64::Engine as _;
use serde::Deserialize;

use crate::error::FieldError;
use crate::model::audit_event::Filters;
use crate::model::page;

const SEVERITIES: [&str; 4] = ["INFO", "WARNING", "ERROR", "CRITICAL"];
const OUTCOMES: [&str; 3] = ["SUCCESS", "FAILURE", "DENIED"];

/// The query of the audit routes: filters, plus `limit`/`cursor` (events)
/// or `format`/`after` (export).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuditQuery {
    pub format: Option<String>,
    pub after: Option<String>,
    user_id: Option<String>,
    event_type: Option<String>,
    severity: Option<String>,
    outcome: Option<String>,
    record_type: Option<String>,
    record_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    q: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

impl AuditQuery {
    /// The filters, each problem noted in `problems`.
    pub fn filters(&self, problems: &mut Vec<FieldError>) -> Filters {
        let from = crate::request::time_field("from", self.from.as_deref(), problems);
        let to = crate::request::time_field("to", self.to.as_deref(), problems);
        if let (Some(f), Some(t)) = (from, to)
            && f > t
        {
            problems.push(FieldError::new("to", "Must not be before from"));
        }
        Filters {
            user_id: crate::request::uuid_field("userId", self.user_id.as_deref(), problems),
            record_id: crate::request::uuid_field("recordId", self.record_id.as_deref(), problems),
            severity: one_of("severity", self.severity.as_deref(), &SEVERITIES, problems),
            outcome: one_of("outcome", self.outcome.as_deref(), &OUTCOMES, problems),
            event_type: short_text("eventType", self.event_type.clone(), 100, problems),
            record_type: short_text("recordType", self.record_type.clone(), 100, problems),
            text: short_text("q", self.q.clone(), 200, problems),
            from,
            to,
        }
    }
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

/// The list's keyset position: the sequence of the last event shown.
pub struct After(pub i64);

impl page::Position for After {
    fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("s|{}", self.0))
    }
}

/// Parses the list's `cursor`.
pub fn after(raw: Option<&str>, problems: &mut Vec<FieldError>) -> Option<i64> {
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
