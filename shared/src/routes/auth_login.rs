//! `POST /api/auth/login`: e-mail + password -> access token + refresh token.
//!
//! Unknown e-mail, wrong password, locked and deactivated accounts all give
//! the same `401 AUTH_INVALID_CREDENTIALS`, after the same argon2id work (a
//! dummy hash is verified when the e-mail is unknown). After
//! [`MAX_FAILED_LOGINS`] failures in a row the account is locked for
//! [`LOCKOUT_MINUTES`] minutes (then unlocks by itself), and the lock is
//! audited. A success opens a session family (see `auth::session`).

use http::header;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{self, Outcome};
use crate::auth::session::{
    self, LOCKOUT_MINUTES, MAX_FAILED_LOGINS, SESSION_TTL_SECS, new_refresh_token,
};
use crate::auth::{Role, jwt, password};
use crate::ctx::Ctx;
use crate::db::{BatchOptions, statement};
use crate::domain::Email;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::params;
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

#[derive(Deserialize)]
struct UserRow {
    id: uuid::Uuid,
    organization_id: uuid::Uuid,
    email: String,
    name: String,
    role: String,
    password_hash: String,
    is_active: bool,
    locked: bool,
}

/// The user part of login and refresh replies.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TokenUser {
    pub id: uuid::Uuid,
    pub organization_id: uuid::Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
}

/// What login and refresh return.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TokenReply {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub refresh_token: String,
    pub refresh_expires_in: i64,
    pub user: TokenUser,
}

super::methods! {
    POST => login,
}

/// Signs an access token for `user` in session family `sid`.
pub(crate) fn access_token<P: Platform>(
    ctx: &Ctx<P>,
    user: &TokenUser,
    sid: uuid::Uuid,
) -> Result<String, ApiError> {
    let claims = jwt::AccessClaims {
        iss: ctx.config.tokens()?.issuer.clone(),
        aud: ctx.config.tokens()?.audience.clone(),
        sub: user.id,
        org: user.organization_id,
        role: user.role.as_str().to_owned(),
        sid,
        jti: ctx.new_uuid(),
    };
    jwt::sign(
        &ctx.config.tokens()?.keys,
        &claims,
        ctx.now(),
        ctx.config.tokens()?.access_ttl_secs,
    )
    .map_err(ApiError::internal)
}

/// The reply of login and refresh, with the refresh cookie for browsers.
pub(crate) fn token_reply<P: Platform>(
    ctx: &Ctx<P>,
    user: TokenUser,
    sid: uuid::Uuid,
    refresh_token: String,
    refresh_expires_in: i64,
) -> Result<Reply, ApiError> {
    let access_token = access_token(ctx, &user, sid)?;
    let cookie = session::refresh_cookie(&refresh_token, refresh_expires_in);
    Ok(Reply::ok(TokenReply {
        access_token,
        token_type: "Bearer",
        expires_in: ctx.config.tokens()?.access_ttl_secs,
        refresh_token,
        refresh_expires_in,
        user,
    })?
    .header(header::SET_COOKIE, cookie))
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
    let user: Option<UserRow> = db
        .fetch_optional(
            "SELECT id, organization_id, email, name, role, password_hash, is_active, \
             coalesce(account_locked_until > now(), false) AS locked FROM users WHERE email = $1",
            params![email.as_str()],
        )
        .await?;

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
        record_failure(ctx, rq, Some(user.organization_id), Some(user.id), reason).await?;
        if reason == "wrong password" {
            count_failure(ctx, rq, &user).await?;
        }
        return Err(ApiError::InvalidCredentials);
    };

    let family = ctx.new_uuid();
    let (refresh_token, refresh_hash) = new_refresh_token(ctx.random_bytes::<32>());
    let event = audit::Event {
        id: ctx.new_uuid(),
        organization_id: Some(user.organization_id),
        user_id: Some(user.id),
        event_type: "AUTH_LOGIN_SUCCESS",
        severity: "INFO",
        action: "User logged in",
        outcome: Outcome::Success,
        record_type: Some("session"),
        record_id: Some(family),
        old_values: None,
        new_values: None,
        metadata: json!({}),
        reason: None,
    };
    db.batch(
        vec![
            statement(
                "UPDATE users SET last_login_at = now(), failed_login_attempts = 0, account_locked_until = NULL \
                 WHERE id = $1",
                params![user.id],
            ),
            statement(
                "INSERT INTO sessions (id, organization_id, user_id, token_hash, family_id, ip_address, user_agent, expires_at) \
                 VALUES ($1, $2, $3, $4::text::bytea, $1, $5::inet, $6, now() + make_interval(secs => $7))",
                params![
                    family,
                    user.organization_id,
                    user.id,
                    refresh_hash,
                    rq.client_ip().map(|ip| ip.to_string()),
                    rq.user_agent(),
                    SESSION_TTL_SECS,
                ],
            ),
            event.insert(rq),
        ],
        BatchOptions::default(),
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

/// Counts a wrong password; the failure that reaches the threshold locks
/// the account for a while and is audited.
async fn count_failure<P: Platform>(ctx: &Ctx<P>, rq: &Rq, user: &UserRow) -> Result<(), ApiError> {
    #[derive(Deserialize)]
    struct Counted {
        locked_now: bool,
    }
    let counted: Option<Counted> = ctx
        .db()
        .fetch_optional(
            "UPDATE users SET \
               failed_login_attempts = CASE WHEN failed_login_attempts + 1 >= $2 THEN 0 ELSE failed_login_attempts + 1 END, \
               account_locked_until = CASE WHEN failed_login_attempts + 1 >= $2 \
                                           THEN now() + make_interval(mins => $3) ELSE account_locked_until END \
             WHERE id = $1 RETURNING coalesce(account_locked_until > now(), false) AS locked_now",
            params![user.id, MAX_FAILED_LOGINS, LOCKOUT_MINUTES],
        )
        .await?;
    if counted.is_some_and(|c| c.locked_now) {
        let event = audit::Event {
            id: ctx.new_uuid(),
            organization_id: Some(user.organization_id),
            user_id: Some(user.id),
            event_type: "AUTH_ACCOUNT_LOCKED",
            severity: "WARNING",
            action: "Account locked after repeated failed logins",
            outcome: Outcome::Denied,
            record_type: Some("user"),
            record_id: Some(user.id),
            old_values: None,
            new_values: None,
            metadata: json!({ "failedAttempts": MAX_FAILED_LOGINS, "lockedForMinutes": LOCKOUT_MINUTES }),
            reason: None,
        };
        ctx.db()
            .batch(vec![event.insert(rq)], BatchOptions::default())
            .await?;
    }
    Ok(())
}

async fn record_failure<P: Platform>(
    ctx: &Ctx<P>,
    rq: &Rq,
    organization_id: Option<uuid::Uuid>,
    user_id: Option<uuid::Uuid>,
    reason: &str,
) -> Result<(), ApiError> {
    let event = audit::Event {
        id: ctx.new_uuid(),
        organization_id,
        user_id,
        event_type: "AUTH_LOGIN_FAILURE",
        severity: "WARNING",
        action: "Failed login attempt",
        outcome: Outcome::Failure,
        record_type: user_id.map(|_| "user"),
        record_id: user_id,
        old_values: None,
        new_values: None,
        metadata: json!({ "reason": reason }),
        reason: None,
    };
    ctx.db()
        .batch(vec![event.insert(rq)], BatchOptions::default())
        .await?;
    Ok(())
}
