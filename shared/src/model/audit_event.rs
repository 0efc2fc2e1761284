//! `audit_events`: the trail's rows. Events are built, hashed and signed by
//! `crate::audit`; the statements that store them are here. The database's
//! insert trigger puts each on its organization's chain (migration V8). An
//! event names its own organization (none for the system chain), so these
//! builders take no scope.

use serde_json::Value;

use crate::db::{Statement, statement};

pub const COLUMNS: &str = "id, organization_id, user_id, event_type, severity, action, outcome, record_type, \
                       record_id, old_values, new_values, metadata, ip_address, user_agent, request_id, reason, \
                       created_at, content_hash, signature, key_id, session_id";

/// The value expressions of the event's columns, the first parameter being
/// `$first`.
fn placeholders(first: usize) -> String {
    let forms = [
        "{}",
        "{}",
        "{}",
        "{}",
        "{}",
        "{}",
        "{}",
        "{}",
        "{}",
        "{}::jsonb",
        "{}::jsonb",
        "{}::jsonb",
        "{}::inet",
        "{}",
        "{}",
        "{}",
        "{}::timestamptz",
        "decode({}, 'hex')",
        "decode({}, 'hex')",
        "{}",
        "{}",
    ];
    forms
        .iter()
        .enumerate()
        .map(|(i, form)| form.replace("{}", &format!("${}", first + i)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Stores one event (`values` in the order of [`COLUMNS`]).
pub fn insert(values: Vec<Value>) -> Statement {
    statement(
        format!(
            "INSERT INTO audit_events ({COLUMNS}) VALUES ({})",
            placeholders(1)
        ),
        values,
    )
}

/// Makes `change` and stores the event only if it changed a row; returns
/// the changed rows.
pub fn insert_if_changed(change: Statement, values: Vec<Value>) -> Statement {
    let offset = change.params.len();
    let mut params = change.params;
    params.extend(values);
    statement(
        format!(
            "WITH changed AS ({}), recorded AS (INSERT INTO audit_events ({COLUMNS}) SELECT {} \
             WHERE EXISTS (SELECT 1 FROM changed)) SELECT * FROM changed",
            change.query,
            placeholders(offset + 1)
        ),
        params,
    )
}

/// Makes `change` and stores the event once per changed row (its
/// `record_id` from the row); returns the `record_id`s.
pub fn insert_per_change(change: Statement, values: Vec<Value>) -> Statement {
    let offset = change.params.len();
    let mut params = change.params;
    params.extend(values);
    statement(
        format!(
            "WITH changed AS ({}) INSERT INTO audit_events ({COLUMNS}) SELECT {} FROM changed RETURNING record_id",
            change.query,
            placeholders(offset + 1)
        ),
        params,
    )
}
