//! `email_outbox`: every outgoing message, written in the transaction that
//! caused it; `crate::mail` delivers it.

use crate::db::{Statement, statement};
use crate::params;

use super::Scope;

/// Queues a message of `scope`'s organization.
pub fn queue(
    scope: &Scope,
    template: &str,
    id: uuid::Uuid,
    to: &str,
    subject: &str,
    text: &str,
) -> Statement {
    statement(
        "INSERT INTO email_outbox (id, organization_id, to_address, template, subject, body_text) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        params![id, scope.organization_id(), to, template, subject, text],
    )
}

/// Records a delivery attempt of `scope`'s message `id`: sent, or the
/// error.
pub fn record_delivery(scope: &Scope, id: uuid::Uuid, error: Option<&str>) -> Statement {
    match error {
        None => statement(
            "UPDATE email_outbox SET sent_at = now(), attempts = attempts + 1, last_error = NULL \
             WHERE id = $1 AND organization_id = $2",
            params![id, scope.organization_id()],
        ),
        Some(error) => statement(
            "UPDATE email_outbox SET attempts = attempts + 1, last_error = $3 \
             WHERE id = $1 AND organization_id = $2",
            params![
                id,
                scope.organization_id(),
                error.chars().take(500).collect::<String>()
            ],
        ),
    }
}
