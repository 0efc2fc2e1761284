//! Outgoing e-mail. Every message is first a row of `email_outbox`, written
//! in the same transaction as what caused it, its body sealed (AES-256-GCM
//! under `ENCRYPTION_KEYS`, the message id as associated data): a reset or
//! invitation link is never in the database in clear. Nothing is sent on a
//! request's path (so no answer's timing says whether an account exists):
//! the mail sender, a scheduled job ([`send_due`]), claims due messages of
//! every organization, posts each to the HTTP mail provider
//! (`MAIL_PROVIDER_URL`, `{from, to, subject, text}`, `Authorization:
//! Bearer MAIL_PROVIDER_TOKEN`, within [`PROVIDER_TIMEOUT`]) and records the
//! outcome: sent (the body is dropped), or the error and the next attempt
//! after a backoff (1, 2, 4 … 60 minutes; ten attempts at most). A provider
//! that cannot be reached (no answer in time, no connection) ends the run:
//! the other claimed messages are `deferred` to a later one.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, header};
use serde::Serialize;
use serde_json::json;

use crate::ctx::Ctx;
use crate::db::{BatchOptions, Statement};
use crate::error::ApiError;
use crate::model::{Scope, email};
use crate::platform::Platform;

/// How long the provider has to accept a message.
pub const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

/// Messages one run of the sender handles at most.
pub const BATCH: i64 = 50;

/// One message to queue.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: uuid::Uuid,
    pub to: String,
    pub subject: String,
    pub text: String,
}

/// The associated data binding a sealed body to its message.
pub fn sealing_context(id: uuid::Uuid) -> Vec<u8> {
    format!("antevus:mail:{id}").into_bytes()
}

/// `message`'s body sealed for its row.
pub fn seal<P: Platform>(ctx: &Ctx<P>, message: &Message) -> Result<String, ApiError> {
    Ok(ctx.config.sealing_keys()?.seal(
        message.text.as_bytes(),
        &sealing_context(message.id),
        ctx.random_bytes::<12>(),
    ))
}

/// The `INSERT` queueing `message` (its body sealed), to run in the
/// caller's batch.
pub fn queue<P: Platform>(
    ctx: &Ctx<P>,
    scope: &Scope,
    template: &str,
    message: &Message,
) -> Result<Statement, ApiError> {
    Ok(email::queue(
        scope,
        template,
        message.id,
        &message.to,
        &message.subject,
        &seal(ctx, message)?,
    ))
}

/// What one run of the sender did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = MailSent))]
#[serde(rename_all = "camelCase")]
pub struct Sent {
    pub claimed: usize,
    pub sent: usize,
    pub failed: usize,
    /// Claimed but not tried: the provider could not be reached (no answer
    /// within [`PROVIDER_TIMEOUT`], no connection), so the run stopped;
    /// they are tried once their five-minute claim has passed.
    pub deferred: usize,
}

/// Why a message was not delivered.
enum Undelivered {
    /// This message: the provider refused it, or its body cannot be opened.
    Message(String),
    /// The provider: no answer in time, or no connection.
    Provider(String),
}

/// The wait before attempt `attempts + 1` after a failure: one minute,
/// doubling, at most an hour.
pub fn backoff_secs(attempts: i32) -> i64 {
    let doublings = u32::try_from(attempts.clamp(0, 6)).unwrap_or(0);
    (60_i64 << doublings).min(3600)
}

/// Sends up to [`BATCH`] due messages (the mail sender's run). Without a
/// provider configured nothing is claimed: mail waits in the outbox.
pub async fn send_due<P: Platform>(ctx: &Ctx<P>) -> Result<Sent, ApiError> {
    let mail = ctx.config.mail()?;
    let Some(url) = mail.provider_url.as_deref() else {
        return Ok(Sent::default());
    };
    let keys = ctx.config.sealing_keys()?;
    let db = ctx.db();
    let claimed = email::claim_due(&db, BATCH).await?;
    let mut outcome = Sent {
        claimed: claimed.len(),
        ..Sent::default()
    };
    let total = claimed.len();
    for (tried, queued) in claimed.into_iter().enumerate() {
        let text = match (&queued.body_sealed, &queued.body_text) {
            (Some(sealed), _) => keys
                .open(sealed, &sealing_context(queued.id))
                .map_err(|e| e.to_string())
                .and_then(|bytes| String::from_utf8(bytes).map_err(|e| e.to_string())),
            (None, Some(text)) => Ok(text.clone()),
            (None, None) => Err("the message has no body".to_owned()),
        };
        let delivered = match text {
            Ok(text) => {
                let body = json!({ "from": mail.from, "to": queued.to_address, "subject": queued.subject, "text": text });
                post(ctx, url, mail.provider_token.as_ref(), body.to_string()).await
            }
            Err(e) => Err(Undelivered::Message(format!(
                "cannot open the sealed body: {e}"
            ))),
        };
        let (record, unreachable) = match &delivered {
            Ok(()) => {
                outcome.sent += 1;
                (email::record_delivery(queued.id, None, 0), false)
            }
            Err(Undelivered::Message(error) | Undelivered::Provider(error)) => {
                outcome.failed += 1;
                tracing::warn!(message_id = %queued.id, error = %error, "e-mail delivery failed; it will be retried");
                (
                    email::record_delivery(queued.id, Some(error), backoff_secs(queued.attempts)),
                    matches!(delivered, Err(Undelivered::Provider(_))),
                )
            }
        };
        db.batch(vec![record], BatchOptions::default()).await?;
        if unreachable {
            // Each further message would wait as long: the rest wait for
            // the next run after their claim.
            outcome.deferred = total - tried - 1;
            break;
        }
    }
    Ok(outcome)
}

/// Posts one message to the provider, within [`PROVIDER_TIMEOUT`].
async fn post<P: Platform>(
    ctx: &Ctx<P>,
    url: &str,
    token: Option<&crate::config::Secret>,
    body: String,
) -> Result<(), Undelivered> {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(url)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {}", token.expose()));
    }
    let request = builder
        .body(Bytes::from(body))
        .map_err(|e| Undelivered::Provider(e.to_string()))?;
    match ctx.fetch_within(request, PROVIDER_TIMEOUT).await {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(Undelivered::Message(format!(
            "provider answered {}",
            response.status().as_u16()
        ))),
        Err(e) => Err(Undelivered::Provider(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_from_a_minute_to_an_hour() {
        let waits: Vec<i64> = (0..9).map(backoff_secs).collect();
        assert_eq!(waits, [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
    }
}
