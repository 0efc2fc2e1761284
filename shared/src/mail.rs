//! Outgoing e-mail. Every message is first a row of `email_outbox` (written
//! in the same transaction as what caused it). When `MAIL_PROVIDER_URL` is
//! configured, [`deliver`] then posts it to that HTTP mail provider as JSON
//! (`{from, to, subject, text}`, `Authorization: Bearer MAIL_PROVIDER_TOKEN`)
//! and records the outcome on the row. A failed delivery never fails the
//! request: the row stays unsent, with `attempts` and `last_error`, for a
//! later retry.

use bytes::Bytes;
use http::{Method, Request, header};
use serde_json::json;

use crate::ctx::Ctx;
use crate::db::Statement;
use crate::model::{Scope, email};
use crate::platform::Platform;

/// One queued message, as written to `email_outbox`.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: uuid::Uuid,
    pub to: String,
    pub subject: String,
    pub text: String,
}

/// The `INSERT` queueing `message`, to run in the caller's batch.
pub fn queue(scope: &Scope, template: &str, message: &Message) -> Statement {
    email::queue(
        scope,
        template,
        message.id,
        &message.to,
        &message.subject,
        &message.text,
    )
}

/// Delivers `scope`'s queued messages through the configured provider, if
/// any.
pub async fn deliver<P: Platform>(ctx: &Ctx<P>, scope: &Scope, messages: &[Message]) {
    let Ok(mail) = ctx.config.mail() else {
        tracing::error!("mail settings are broken; messages stay in the outbox");
        return;
    };
    let Some(url) = mail.provider_url.as_deref() else {
        return;
    };
    for message in messages {
        let body = json!({
            "from": mail.from,
            "to": message.to,
            "subject": message.subject,
            "text": message.text,
        });
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(url)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(token) = &mail.provider_token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {}", token.expose()));
        }
        let outcome = match builder.body(Bytes::from(body.to_string())) {
            Ok(request) => match ctx.platform.fetch(request).await {
                Ok(response) if response.status().is_success() => Ok(()),
                Ok(response) => Err(format!("provider answered {}", response.status().as_u16())),
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e.to_string()),
        };
        if let Err(error) = &outcome {
            tracing::warn!(message_id = %message.id, error = %error, "e-mail delivery failed; it stays queued");
        }
        let record = email::record_delivery(
            scope,
            message.id,
            outcome.as_ref().err().map(String::as_str),
        );
        if let Err(e) = scope.execute(&ctx.db(), record).await {
            tracing::warn!(message_id = %message.id, error = %e, "could not record the delivery outcome");
        }
    }
}
