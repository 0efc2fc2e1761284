//! `POST /api/auth/login`: e-mail + password -> access token + refresh token.
//!
//! Unknown e-mail, wrong password, locked and deactivated accounts all give
//! the same `401 AUTH_INVALID_CREDENTIALS`, after the same argon2id work (a
//! dummy hash is verified when the e-mail is unknown). After
//! [`MAX_FAILED_LOGINS`] failures in a row the account is locked for
//! [`LOCKOUT_MINUTES`] minutes (then unlocks by itself), and the lock is
//! audited. A success opens a session family (see `auth::session`).

use serde::Deserialize;
use serde_json::json;

use crate::audit::{self, EventType, RecordType};
use crate::auth::session::{
    LOCKOUT_MINUTES, MAX_FAILED_LOGINS, SESSION_TTL_SECS, new_refresh_token,
};
use crate::auth::tokens::{TokenUser, token_reply};
use crate::auth::{Role, password};
use crate::ctx::Ctx;
use crate::domain::Email;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::model::{self, Scope, user};
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
            count_failure(ctx, rq, &user).await?;
        } else {
            record_failure(ctx, rq, Some(user.organization_id), Some(user.id), reason).await?;
        }
        return Err(ApiError::InvalidCredentials);
    };

    // The account names its organization: from here on, queries are
    // confined to it.
    let scope = Scope::account(user.organization_id);
    let family = ctx.new_uuid();
    let (refresh_token, refresh_hash) = new_refresh_token(ctx.random_bytes::<32>());
    let event = audit::Event {
        organization_id: Some(user.organization_id),
        user_id: Some(user.id),
        record_id: Some(family),
        ..audit::Event::new(ctx.new_uuid(), EventType::AuthLoginSuccess)
    };
    let client = model::session::Client {
        ip: rq.client_ip().map(|ip| ip.to_string()),
        user_agent: rq.user_agent(),
    };
    scope
        .batch(
            &db,
            vec![
                user::record_login(&scope, user.id),
                model::session::open(
                    &scope,
                    family,
                    user.id,
                    &refresh_hash,
                    &client,
                    SESSION_TTL_SECS,
                ),
                event.insert(rq)?,
            ],
        )
        .await?;

    let user = TokenUser {
        id: user.id,
        organization_id: user.organization_id,
        email: user.email,
        name: user.name,
        role,
    };
    token_reply(ctx, user, family, refresh_token, SESSION_TTL_SECS)
}

/// Records a wrong password and counts it, in one transaction; the failure
/// that reaches the threshold locks the account for a while, and the lock
/// is recorded by the same statement that sets it.
async fn count_failure<P: Platform>(
    ctx: &Ctx<P>,
    rq: &Rq,
    user: &user::Account,
) -> Result<(), ApiError> {
    let scope = Scope::account(user.organization_id);
    let locked = audit::Event {
        organization_id: Some(user.organization_id),
        user_id: Some(user.id),
        record_id: Some(user.id),
        metadata: json!({ "failedAttempts": MAX_FAILED_LOGINS, "lockedForMinutes": LOCKOUT_MINUTES }),
        ..audit::Event::new(ctx.new_uuid(), EventType::AuthAccountLocked)
    };
    let count = user::count_failed_login(&scope, user.id, MAX_FAILED_LOGINS, LOCKOUT_MINUTES);
    scope
        .batch(
            &ctx.db(),
            vec![
                failure_event(
                    ctx,
                    Some(user.organization_id),
                    Some(user.id),
                    "wrong password",
                )
                .insert(rq)?,
                locked.record_change_where(rq, count, "locked_now")?,
            ],
        )
        .await?;
    Ok(())
}

/// The record of a failed login.
fn failure_event<P: Platform>(
    ctx: &Ctx<P>,
    organization_id: Option<uuid::Uuid>,
    user_id: Option<uuid::Uuid>,
    reason: &str,
) -> audit::Event<'static> {
    audit::Event {
        organization_id,
        user_id,
        record_type: user_id.map(|_| RecordType::User),
        record_id: user_id,
        metadata: json!({ "reason": reason }),
        ..audit::Event::new(ctx.new_uuid(), EventType::AuthLoginFailure)
    }
}

async fn record_failure<P: Platform>(
    ctx: &Ctx<P>,
    rq: &Rq,
    organization_id: Option<uuid::Uuid>,
    user_id: Option<uuid::Uuid>,
    reason: &str,
) -> Result<(), ApiError> {
    audit::store(
        ctx,
        rq,
        &failure_event(ctx, organization_id, user_id, reason),
    )
    .await?;
    Ok(())
}
