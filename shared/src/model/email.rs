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

/// A message claimed for sending, with what sending it takes.
#[derive(Debug, Clone, Deserialize)]
pub struct Claimed {
    pub id: uuid::Uuid,
    /// None for a signup's confirmation (its organization does not exist yet).
    pub organization_id: Option<uuid::Uuid>,
    pub to_address: String,
    pub subject: String,
    pub body_sealed: Option<String>,
    /// Queued before bodies were sealed.
    pub body_text: Option<String>,
    pub attempts: i32,
}

/// Claims up to `limit` due messages of every organization and of none for
/// five minutes, through migration V19's `SECURITY DEFINER` function (the
/// mail sender is the system's, of no organization).
pub async fn claim_due<P: Platform>(db: &Db<'_, P>, limit: i64) -> Result<Vec<Claimed>, DbError> {
    db.fetch_all(
        "SELECT * FROM claim_due_mail($1::int)",
        params![limit as i32],
    )
    .await
}

/// The outcome of delivering message `id`, through V19's definer (a
/// message may be of no organization): `None` is sent (its body, its link,
/// kept no longer), an error is counted and kept, and the message retried
/// after `retry_in_secs`.
pub fn record_delivery(id: uuid::Uuid, error: Option<&str>, retry_in_secs: i64) -> Statement {
    statement(
        "SELECT record_mail_delivery($1, $2, $3)",
        params![id, error, retry_in_secs as f64],
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

/// Deletes the mail of no organization (signup confirmations) sent, or
/// given up on, more than `days` ago (V20's definer, for the scheduled
/// retention job); returns `n`, how many.
pub fn purge_unowned_mail(days: i64) -> Statement {
    statement(
        "SELECT purge_unowned_mail($1::int) AS n",
        params![days as i32],
    )
}
