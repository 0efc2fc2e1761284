//! `POST /api/auth/login`: e-mail + password -> access token.
//!
//! Unknown e-mail, wrong password and deactivated account give the same
//! `401 AUTH_INVALID_CREDENTIALS`, after the same argon2id work (a dummy hash
//! is verified when the e-mail is unknown).

use bytes::Bytes;
use http::{Method, Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Rq;
use crate::audit::{self, Outcome};
use crate::auth::{Role, jwt, password};
use crate::db::{BatchOptions, statement};
use crate::domain::Email;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::params;
use crate::platform::{Ctx, Platform};

const METHODS: &[Method] = &[Method::POST];
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
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LoginUser {
    id: uuid::Uuid,
    organization_id: uuid::Uuid,
    email: String,
    name: String,
    role: Role,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LoginReply {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    user: LoginUser,
}

pub async fn handle<P: Platform>(ctx: &Ctx<P>, req: Request<Bytes>) -> Response<Bytes> {
    let rq = Rq::new(ctx, req);
    let result = match *rq.method() {
        Method::POST => login(ctx, &rq).await,
        _ => Err(super::method_not_allowed(METHODS)),
    };
    rq.respond(ctx, result)
}

async fn login<P: Platform>(ctx: &Ctx<P>, rq: &Rq) -> Result<Reply, ApiError> {
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

    let db = ctx.db();
    let user: Option<UserRow> = db
        .fetch_optional(
            "SELECT id, organization_id, email, name, role, password_hash, is_active FROM users WHERE email = $1",
            params![email.as_str()],
        )
        .await?;

    let Some(user) = user else {
        password::verify_dummy(&input.password);
        record_failure(ctx, rq, None, None, "unknown e-mail").await?;
        return Err(ApiError::InvalidCredentials);
    };
    let verified = password::verify(&input.password, &user.password_hash);
    let role = Role::parse(&user.role);
    let (true, true, Some(role)) = (verified, user.is_active, role) else {
        let reason = if !verified {
            "wrong password"
        } else {
            "account inactive"
        };
        record_failure(ctx, rq, Some(user.organization_id), Some(user.id), reason).await?;
        return Err(ApiError::InvalidCredentials);
    };

    let now = ctx.now();
    let claims = jwt::AccessClaims {
        iss: ctx.config.jwt_issuer.clone(),
        aud: ctx.config.jwt_audience.clone(),
        sub: user.id,
        org: user.organization_id,
        role: role.as_str().to_owned(),
        jti: ctx.new_uuid(),
    };
    let token = jwt::sign(
        &ctx.config.jwt_keys,
        &claims,
        now,
        ctx.config.access_token_ttl_secs,
    )
    .map_err(ApiError::internal)?;

    let event = audit::Event {
        id: ctx.new_uuid(),
        organization_id: Some(user.organization_id),
        user_id: Some(user.id),
        event_type: "AUTH_LOGIN_SUCCESS",
        severity: "INFO",
        action: "User logged in",
        outcome: Outcome::Success,
        record_type: Some("user"),
        record_id: Some(user.id),
        old_values: None,
        new_values: None,
        metadata: json!({ "tokenId": claims.jti }),
    };
    db.batch(
        vec![
            statement(
                "UPDATE users SET last_login_at = now(), failed_login_attempts = 0 WHERE id = $1",
                params![user.id],
            ),
            event.insert(rq),
        ],
        BatchOptions::default(),
    )
    .await?;

    Reply::ok(LoginReply {
        access_token: token,
        token_type: "Bearer",
        expires_in: ctx.config.access_token_ttl_secs,
        user: LoginUser {
            id: user.id,
            organization_id: user.organization_id,
            email: user.email,
            name: user.name,
            role,
        },
    })
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
    };
    let mut statements = vec![event.insert(rq)];
    if let Some(id) = user_id {
        statements.push(statement(
            "UPDATE users SET failed_login_attempts = failed_login_attempts + 1 WHERE id = $1",
            params![id],
        ));
    }
    ctx.db().batch(statements, BatchOptions::default()).await?;
    Ok(())
}
