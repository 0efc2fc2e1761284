//! `POST /api/auth/login`: e-mail + password -> access token + refresh token.
//!
//! Unknown e-mail, wrong password, locked and deactivated accounts all give
//! the same `401 AUTH_INVALID_CREDENTIALS`, after the same argon2id work (a
//! dummy hash is verified when the e-mail is unknown). After
//! [`MAX_FAILED_LOGINS`] failures in a row the account is locked for
//! [`LOCKOUT_MINUTES`] minutes (then unlocks by itself), and the lock is
//! audited. A success opens a session family (see `auth::session`), unless
//! the account has a second factor, or its role must have one: then the
//! answer is a short-lived challenge (`mfaRequired`), and the session opens
//! at `POST /api/auth/mfa/verify` (or, to enrol first, `/api/auth/mfa/enroll`
//! and `/confirm`).

use serde::Deserialize;
use serde_json::json;

use super::signing_in;
use crate::audit::{self, EventType};
use crate::auth::mfa::{self, Purpose};
use crate::auth::{Role, password};
use crate::ctx::Ctx;
use crate::domain::Email;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::model::{Scope, second_factor, user};
use crate::platform::Platform;
use crate::ratelimit::Class;
use crate::request::Rq;

/// Longest password accepted (argon2 has no limit; this bounds the work).
pub const MAX_PASSWORD_CHARS: usize = 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginInput {
    email: String,
    password: String,
}

super::methods! {
    POST => login,
}

async fn login<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let input: LoginInput = rq.json(ctx)?;
    let mut problems = Vec::new();
    let email = Email::parse(&input.email)
        .map_err(|m| problems.push(FieldError::new("email", m)))
        .ok();
    if input.password.is_empty() {
        problems.push(FieldError::new("password", "Password is required"));
    } else if input.password.chars().count() > MAX_PASSWORD_CHARS {
        problems.push(FieldError::new(
            "password",
            format!("Password must be at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    let email = match email {
        Some(email) if problems.is_empty() => email,
        _ => return Err(ApiError::Validation(problems)),
    };
    // Per client address and account: brute force on one account is slowed
    // here and stopped by the lockout; a lab behind one address is not.
    crate::ratelimit::check(
        ctx,
        rq,
        Class::Auth,
        &format!("login:{}:{}", rq.client_key(), email.as_str()),
        None,
    )
    .await?;

    let db = ctx.db();
    let user = user::account_for_login(&db, email.as_str()).await?;

    let Some(user) = user else {
        password::verify_dummy(&input.password);
        record_failure(ctx, rq, None, None, "unknown e-mail").await?;
        return Err(ApiError::InvalidCredentials);
    };
    // Verify even when locked or inactive: every refusal costs the same.
    let verified = password::verify(&input.password, &user.password_hash);
    let role = Role::parse(&user.role);
    let (true, true, false, Some(role)) = (verified, user.is_active, user.locked, role) else {
        let reason = if user.locked {
            "account locked"
        } else if !verified {
            "wrong password"
        } else {
            "account inactive"
        };
        if reason == "wrong password" {
            let failure =
                signing_in::failure_event(ctx, Some(user.organization_id), Some(user.id), reason);
            signing_in::count_failure(ctx, rq, &user, failure).await?;
        } else {
            record_failure(ctx, rq, Some(user.organization_id), Some(user.id), reason).await?;
        }
        return Err(ApiError::InvalidCredentials);
    };

    // The account names its organization: from here on, queries are
    // confined to it. An account with a second factor, or whose role the
    // organization requires one for, gets a challenge, not a session.
    let scope = Scope::account(user.organization_id);
    let standing = second_factor::standing(&db, &scope, user.id, role.as_str()).await?;
    let purpose = if standing.has_factor {
        Some(Purpose::Verify)
    } else if standing.required {
        Some(Purpose::Enroll)
    } else {
        None
    };
    if let Some(purpose) = purpose {
        let challenge = mfa::challenge(ctx, user.id, user.organization_id, purpose)?;
        let event = audit::Event {
            organization_id: Some(user.organization_id),
            user_id: Some(user.id),
            record_id: Some(user.id),
            metadata: json!({ "purpose": purpose.as_str() }),
            ..audit::Event::new(ctx.new_uuid(), EventType::AuthMfaRequired)
        };
        scope.batch(&db, vec![event.insert(rq)?]).await?;
        return Reply::ok(SecondStep {
            mfa_required: true,
            purpose: purpose.as_str(),
            challenge_token: challenge,
            challenge_expires_in: mfa::CHALLENGE_TTL_SECS,
            methods: match purpose {
                Purpose::Verify => &["totp", "recovery_code"],
                Purpose::Enroll => &["enroll"],
            },
        });
    }
    signing_in::token_reply(ctx, rq, &user, role, json!({}), None).await
}

/// What the password step answers when a second factor is due: no
/// session, a challenge for `POST /api/auth/mfa/verify` (or, to enrol,
/// `/api/auth/mfa/enroll` and `/confirm`).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct SecondStep {
    mfa_required: bool,
    /// `verify` or `enroll`.
    purpose: &'static str,
    challenge_token: String,
    challenge_expires_in: i64,
    methods: &'static [&'static str],
}

async fn record_failure<P: Platform>(
    ctx: &Ctx<P>,
    rq: &Rq,
    organization_id: Option<uuid::Uuid>,
    user_id: Option<uuid::Uuid>,
    reason: &str,
) -> Result<(), ApiError> {
    let event = signing_in::failure_event(ctx, organization_id, user_id, reason);
    audit::store(ctx, rq, &event).await?;
    Ok(())
}
