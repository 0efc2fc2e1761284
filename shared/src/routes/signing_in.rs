//! What the sign-in routes share (`auth-login`, `auth-mfa-*`): opening a
//! session and answering with its tokens, counting a failure toward the lockout, and who is setting up a
//! second factor. Not a route.

use serde_json::json;

use crate::audit::{self, EventType, RecordType};
use crate::auth::mfa::{self, Purpose};
use crate::auth::session::{
    LOCKOUT_MINUTES, MAX_FAILED_LOGINS, SESSION_TTL_SECS, new_refresh_token,
};
use crate::auth::tokens::{self, TokenUser};
use crate::auth::{self, Role, password};
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::model::{self, Scope, user};
use crate::platform::Platform;
use crate::ratelimit::Class;
use crate::request::Rq;

/// Opens a session for `user` (its password and any second factor
/// checked) and answers with its tokens (and `recovery_codes`, shown this
/// once, when the factor was just enrolled): the login's time, the session
/// family and `AUTH_LOGIN_SUCCESS` (with `metadata`) in one transaction.
pub async fn token_reply<P: Platform>(
    ctx: &Ctx<P>,
    rq: &Rq,
    user: &user::Account,
    role: Role,
    metadata: serde_json::Value,
    recovery_codes: Option<Vec<String>>,
) -> Result<Reply, ApiError> {
    let scope = Scope::account(user.organization_id);
    let family = ctx.new_uuid();
    let (refresh_token, refresh_hash) = new_refresh_token(ctx.random_bytes::<32>());
    let event = audit::Event {
        organization_id: Some(user.organization_id),
        user_id: Some(user.id),
        record_id: Some(family),
        metadata,
        ..audit::Event::new(ctx.new_uuid(), EventType::AuthLoginSuccess)
    };
    let client = model::session::Client {
        ip: rq.client_ip().map(|ip| ip.to_string()),
        user_agent: rq.user_agent(),
    };
    scope
        .batch(
            &ctx.db(),
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
        email: user.email.clone(),
        name: user.name.clone(),
        role,
    };
    tokens::token_reply(
        ctx,
        user,
        family,
        refresh_token,
        SESSION_TTL_SECS,
        recovery_codes,
    )
}

/// Records a wrong password (or second-factor code) and counts it, in one
/// transaction; the failure that reaches the threshold locks the account
/// for a while, and the lock is recorded by the same statement that sets
/// it.
pub async fn count_failure<P: Platform>(
    ctx: &Ctx<P>,
    rq: &Rq,
    user: &user::Account,
    failure: audit::Event<'_>,
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
                failure.insert(rq)?,
                locked.record_change_where(rq, count, "locked_now")?,
            ],
        )
        .await?;
    Ok(())
}

/// The rate limit of a signed-in user giving their password (or a code)
/// again: the authentication class, per client address and user.
pub async fn reauth_limit<P: Platform>(
    ctx: &Ctx<P>,
    rq: &mut Rq,
    scope: &Scope,
    user_id: uuid::Uuid,
) -> Result<(), ApiError> {
    crate::ratelimit::check(
        ctx,
        rq,
        Class::Auth,
        &format!("reauth:{}:{user_id}", rq.client_key()),
        Some(scope),
    )
    .await
}

/// The record of a failed login.
pub fn failure_event<P: Platform>(
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

/// What a signed-in user setting up a factor must show again.
#[derive(Clone, Copy)]
pub enum Again<'a> {
    /// Their password (the one given, if any): starting an enrolment.
    Password(Option<&'a str>),
    /// Nothing more: confirming the enrolment they started.
    Nothing,
}

/// Who is setting up a factor: the signed-in user (showing `again`) or the
/// holder of an `enroll` challenge; their account and whether they came
/// with a challenge (then confirming signs them in).
pub async fn enrolling<P: Platform>(
    ctx: &Ctx<P>,
    rq: &mut Rq,
    again: Again<'_>,
    challenge: Option<&str>,
) -> Result<(user::Account, bool), ApiError> {
    let (user_id, organization_id, by_challenge) = match challenge {
        Some(token) => {
            let claims = mfa::read_challenge(ctx, token, Purpose::Enroll)?;
            (claims.sub, claims.org, true)
        }
        None => {
            let principal = auth::authenticate(ctx, rq).await?;
            if principal.api_key_id.is_some() {
                return Err(ApiError::invalid(
                    "authorization",
                    "A second factor belongs to a person: sign in, an API key cannot set one up",
                ));
            }
            (principal.user_id, principal.organization_id, false)
        }
    };
    let scope = Scope::account(organization_id);
    let user = user::account(&ctx.db(), &scope, user_id)
        .await?
        .filter(|u| u.is_active && !u.locked)
        .ok_or(ApiError::InvalidCredentials)?;
    if let (false, Again::Password(given)) = (by_challenge, again) {
        let Some(given) = given.filter(|p| !p.is_empty()) else {
            return Err(ApiError::invalid(
                "password",
                "Give your password again to set up a second factor",
            ));
        };
        reauth_limit(ctx, rq, &scope, user.id).await?;
        if !password::verify(given, &user.password_hash) {
            let failure = failure_event(
                ctx,
                Some(user.organization_id),
                Some(user.id),
                "wrong password (second factor set-up)",
            );
            count_failure(ctx, rq, &user, failure).await?;
            return Err(ApiError::InvalidCredentials);
        }
    }
    Ok((user, by_challenge))
}
/// What a signup answers once its account exists (`auth-signup` with an
/// invitation, `auth-signup-confirm`): the user and their organization.
#[derive(serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SignedUp {
    user: NewUser,
    /// The organization the account belongs to.
    organization_id: uuid::Uuid,
}

/// The account just created.
#[derive(serde::Serialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(as = SignedUpUser)
)]
#[serde(rename_all = "camelCase")]
struct NewUser {
    id: uuid::Uuid,
    email: String,
    name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Role))]
    role: String,
}

impl SignedUp {
    pub fn new(joined: user::Joined, name: String) -> Self {
        SignedUp {
            user: NewUser {
                id: joined.user_id,
                email: joined.email,
                name,
                role: joined.role,
            },
            organization_id: joined.organization_id,
        }
    }
}
