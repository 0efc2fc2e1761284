//! `email_outbox`: every outgoing message, written (its body sealed) in
//! the transaction that caused it; the mail sender (`crate::mail`, a
//! scheduled job) claims, sends and records it.

use serde::Deserialize;

use crate::db::{Db, DbError, Statement, statement};
use crate::params;
use crate::platform::Platform;

use super::Scope;

/// Queues a message of `scope`'s organization; `body_sealed` is its text
/// sealed for its id.
pub fn queue(
    scope: &Scope,
    template: &str,
    id: uuid::Uuid,
    to: &str,
    subject: &str,
    body_sealed: &str,
) -> Statement {
    statement(
        "INSERT INTO email_outbox (id, organization_id, to_address, template, subject, body_sealed) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        params![
            id,
            scope.organization_id(),
            to,
            template,
            subject,
            body_sealed
        ],
    )
}

/// A message claimed for sending.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Claimed {
    pub id: uuid::Uuid,
    pub organization_id: uuid::Uuid,
}

/// Claims up to `limit` due messages of every organization for five
/// minutes, through migration V18's `SECURITY DEFINER` function (the mail
/// sender is the system's, of no organization).
pub async fn claim_due<P: Platform>(db: &Db<'_, P>, limit: i64) -> Result<Vec<Claimed>, DbError> {
    db.fetch_all(
        "SELECT * FROM claim_due_mail($1::int)",
        params![limit as i32],
    )
    .await
}

/// A queued message, as the sender reads it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Queued {
    pub id: uuid::Uuid,
    pub to_address: String,
    pub subject: String,
    pub body_sealed: Option<String>,
    /// Queued before bodies were sealed.
    pub body_text: Option<String>,
    pub attempts: i32,
}

/// Message `id` of `scope`'s organization, if still unsent.
pub async fn unsent<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    id: uuid::Uuid,
) -> Result<Option<Queued>, DbError> {
    scope
        .fetch_optional(
            db,
            statement(
                "SELECT id, to_address AS \"toAddress\", subject, body_sealed AS \"bodySealed\", \
                        body_text AS \"bodyText\", attempts \
                 FROM email_outbox WHERE id = $1 AND organization_id = $2 AND sent_at IS NULL",
                params![id, scope.organization_id()],
            ),
        )
        .await
}

/// Message `id` was delivered: sent now, and its body (its link) kept no
/// longer.
pub fn record_sent(scope: &Scope, id: uuid::Uuid) -> Statement {
    statement(
        "UPDATE email_outbox SET sent_at = now(), attempts = attempts + 1, last_error = NULL, \
           body_sealed = NULL, body_text = NULL \
         WHERE id = $1 AND organization_id = $2",
        params![id, scope.organization_id()],
    )
}

/// A failed delivery of message `id`: counted, the error kept, the next
/// attempt after `retry_in_secs`.
pub fn record_failure(scope: &Scope, id: uuid::Uuid, error: &str, retry_in_secs: i64) -> Statement {
    statement(
        "UPDATE email_outbox SET attempts = attempts + 1, last_error = $3, \
           next_attempt_at = now() + make_interval(secs => $4) \
         WHERE id = $1 AND organization_id = $2",
        params![
            id,
            scope.organization_id(),
            error.chars().take(500).collect::<String>(),
            retry_in_secs as f64
        ],
    )
}

/// Deletes the organization's messages sent more than `days` ago (their
/// bodies went when they were sent); returns `n`, how many.
pub fn purge_sent(scope: &Scope, days: i64) -> Statement {
    statement(
        "WITH gone AS (DELETE FROM email_outbox WHERE organization_id = $1 \
           AND sent_at < now() - make_interval(days => $2::int) RETURNING 1) \
         SELECT count(*) AS n FROM gone",
        params![scope.organization_id(), days as i32],
    )
}
