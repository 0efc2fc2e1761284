//! `POST /api/auth/forgot-password`: `{email}` -> 202, the same answer
//! whether or not the account exists. For an active account a single-use
//! reset token (`pr_` + 256 random bits, stored hashed, 30 minutes) is
//! created and an e-mail with the reset link is queued in `email_outbox`.

use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{self, EventType, Outcome, RecordType};
use crate::ctx::Ctx;
use crate::db::BatchOptions;
use crate::domain::Email;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::model::{Scope, password_reset, user};
use crate::platform::Platform;
use crate::ratelimit::Class;
use crate::request::Rq;

/// Lifetime of a reset token.
pub const RESET_TTL_MINUTES: i64 = 30;

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ForgotPasswordInput))]
#[serde(deny_unknown_fields)]
struct Input {
    email: String,
}

/// The answer, the same whether or not the account exists.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ForgotPasswordAccepted))]
struct Accepted {
    message: &'static str,
}

super::methods! {
    POST => forgot,
}

/// A reset token and its stored hash.
pub fn new_reset_token(random: [u8; 32]) -> (String, String) {
    use base64::Engine as _;
    let token = format!(
        "pr_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
    );
    let hash = crate::auth::session::token_hash(&token);
    (token, hash)
}

/// Ask for a password reset link
///
/// Public; rate limited (authentication class) per client address.
/// Always `202` with the same answer, whether or not an account exists for
/// the address. For an active account a single-use reset link (valid 30
/// minutes, for `POST /api/auth/reset-password`) is e-mailed. Audited
/// (`AUTH_PASSWORD_RESET_REQUESTED`, with whether an account was found).
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/auth/forgot-password", security(()),
    request_body = Input,
    responses(
        (status = 202, description = "Accepted; a link is mailed if the account exists", body = Accepted),
        (status = 400, description = "Not an e-mail address (`VALIDATION_ERROR`)"),
        (status = 429, description = "Too many requests (`RATE_LIMIT_EXCEEDED`)"),
    )))]
async fn forgot<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let input: Input = rq.json(ctx)?;
    let email = Email::parse(&input.email).map_err(|m| ApiError::invalid("email", m))?;
    crate::ratelimit::check(
        ctx,
        rq,
        Class::Auth,
        &format!("forgot:{}", rq.client_key()),
        None,
    )
    .await?;
    let db = ctx.db();
    let account = user::account_for_reset(&db, email.as_str()).await?;
    // A found account names its organization.
    let scope = account
        .as_ref()
        .map(|account| Scope::account(account.organization_id));
    let (token, hash) = new_reset_token(ctx.random_bytes::<32>());
    let mut statements = Vec::new();
    let event = audit::Event {
        organization_id: account.as_ref().map(|a| a.organization_id),
        user_id: account.as_ref().map(|a| a.id),
        outcome: if account.is_some() {
            Outcome::Success
        } else {
            Outcome::Failure
        },
        record_type: account.as_ref().map(|_| RecordType::User),
        record_id: account.as_ref().map(|a| a.id),
        metadata: json!({ "accountFound": account.is_some() }),
        ..audit::Event::new(ctx.new_uuid(), EventType::AuthPasswordResetRequested)
    };
    statements.push(event.insert(rq)?);
    if let (Some(account), Some(scope)) = (&account, &scope) {
        let link = format!(
            "{}/reset-password?token={token}",
            ctx.config.mail()?.app_url
        );
        let body = format!(
            "Hello {},\n\nSomeone (hopefully you) asked to reset your Antevus password.\n\
             Open this link within {RESET_TTL_MINUTES} minutes to choose a new one:\n\n{link}\n\n\
             If you did not ask, ignore this message; your password stays as it is.\n",
            account.name
        );
        statements.push(password_reset::insert(
            scope,
            account.id,
            &hash,
            rq.client_ip().map(|ip| ip.to_string()),
            RESET_TTL_MINUTES,
        ));
        let message = crate::mail::Message {
            id: ctx.new_uuid(),
            to: email.as_str().to_owned(),
            subject: "Reset your Antevus password".to_owned(),
            text: body,
        };
        statements.push(crate::mail::queue(ctx, scope, "password_reset", &message)?);
    }
    // The mail sender (a scheduled job) sends it: nothing on this path
    // takes longer when the account exists.
    match &scope {
        Some(scope) => scope.batch(&db, statements).await?,
        // No account: only the event, on the system chain.
        None => db.batch(statements, BatchOptions::default()).await?,
    };
    Reply::with_status(
        StatusCode::ACCEPTED,
        Accepted {
            message: "If an account exists for this e-mail, a reset link is on its way",
        },
    )
}
