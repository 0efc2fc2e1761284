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
///
/// As parameters it describes the filters only: each route names the
/// parameters of its own.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuditQuery {
    #[cfg_attr(feature = "openapi", param(ignore))]
    pub format: Option<String>,
    #[cfg_attr(feature = "openapi", param(ignore))]
    pub after: Option<String>,
    /// Only the events of this user.
    #[cfg_attr(feature = "openapi", param(value_type = Option<uuid::Uuid>))]
    user_id: Option<String>,
    /// Only events of this type (e.g. `RUN_STARTED`), at most 100
    /// characters.
    event_type: Option<String>,
    #[cfg_attr(feature = "openapi", param(value_type = Option<crate::audit::Severity>))]
    severity: Option<String>,
    #[cfg_attr(feature = "openapi", param(value_type = Option<crate::audit::Outcome>))]
    outcome: Option<String>,
    /// Only events about records of this type, at most 100 characters.
    record_type: Option<String>,
    /// Only events about this record.
    #[cfg_attr(feature = "openapi", param(value_type = Option<uuid::Uuid>))]
    record_id: Option<String>,
    /// Only events recorded at or after this instant (RFC 3339).
    #[cfg_attr(feature = "openapi", param(value_type = Option<String>, format = DateTime))]
    from: Option<String>,
    /// Only events recorded at or before this instant (RFC 3339), not
    /// before `from`.
    #[cfg_attr(feature = "openapi", param(value_type = Option<String>, format = DateTime))]
    to: Option<String>,
    /// Text in the action, matched literally and case-insensitively, at
    /// most 200 characters.
    q: Option<String>,
    #[cfg_attr(feature = "openapi", param(ignore))]
    pub limit: Option<String>,
    #[cfg_attr(feature = "openapi", param(ignore))]
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
