//! `POST /api/auth/reset-password`: `{token, password}`. The token is spent,
//! the password replaced, the lockout cleared and every session of the user
//! ended, all in one statement; then audited. An unknown, used or expired
//! token is a `400` on `token`.

use serde::{Deserialize, Serialize};

use crate::audit::{self, EventType};
use crate::auth::{password, policy};
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::model::{Scope, password_reset};
use crate::platform::Platform;
use crate::ratelimit::Class;
use crate::request::Rq;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    token: String,
    password: String,
}

/// The answer of a reset.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PasswordReset {
    password_reset: bool,
}

super::methods! {
    POST => reset,
}

fn invalid_token() -> ApiError {
    ApiError::invalid(
        "token",
        "The reset link is invalid or has expired; ask for a new one",
    )
}

async fn reset<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let input: Input = rq.json(ctx)?;
    let mut problems = Vec::new();
    let token_ok = input.token.len() == 46 && input.token.starts_with("pr_");
    if !token_ok {
        problems.push(FieldError::new(
            "token",
            "The reset link is invalid or has expired; ask for a new one",
        ));
    }
    if let Err(message) = policy::check(&input.password) {
        problems.push(FieldError::new("password", message));
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    crate::ratelimit::check(
        ctx,
        rq,
        Class::Auth,
        &format!("reset:{}", rq.client_key()),
        None,
    )
    .await?;
    let hash =
        password::hash(&input.password, ctx.random_bytes::<16>()).map_err(ApiError::internal)?;
    let token_hash = crate::auth::session::token_hash(&input.token);
    let db = ctx.db();
    let reset = password_reset::use_reset_token(&db, &token_hash, &hash).await?;
    let reset = reset.ok_or_else(invalid_token)?;
    let event = audit::Event {
        organization_id: Some(reset.organization_id),
        user_id: Some(reset.id),
        record_id: Some(reset.id),
        ..audit::Event::new(ctx.new_uuid(), EventType::AuthPasswordReset)
    };
    Scope::account(reset.organization_id)
        .batch(&db, vec![event.insert(rq)?])
        .await?;
    Reply::ok(PasswordReset {
        password_reset: true,
    })
}
