//! `POST /api/auth/signup/confirm`: `{token, password}`, the link a signup
//! request mailed to its address and the password given with the request
//! (a link followed by someone who did not ask creates nothing: they do not
//! know it). Creates the organization and its first admin
//! (the address is theirs: they read mail at it) with its record, in one
//! transaction, and spends the request; 201 with the user and organization,
//! the client then logs in. A spent, expired or unknown token is `400`; an
//! address that took an account meanwhile (an accepted invitation) is
//! `409`: only the address's owner holds the link, so this tells nobody
//! else anything.

use serde::Deserialize;
use serde_json::json;

use crate::audit::{self, EventType};
use crate::auth::password;
use crate::ctx::Ctx;
use crate::domain::roles::Role;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::model::{Scope, signup_request, user};
use crate::platform::Platform;
use crate::ratelimit::Class;
use crate::request::Rq;

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = SignupConfirmInput))]
#[serde(deny_unknown_fields)]
struct Input {
    /// The token of the mailed link (`sg_...`).
    token: String,
    /// The password given with the signup request.
    password: String,
}

super::methods! {
    POST => confirm,
}

/// A URL-safe organization slug from its name, with a random suffix.
fn slug(name: &str, suffix: [u8; 3]) -> String {
    let mut base: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    base.truncate(48);
    let base = base.trim_end_matches('-');
    let base = if base.is_empty() { "lab" } else { base };
    format!("{base}-{}", hex::encode(suffix))
}

/// Confirm a signup: create the organization
///
/// Public (the mailed link and the password given with the request are
/// the credentials); rate limited (authentication class) per client
/// address. Creates the organization and its first user, an `ADMIN`, and
/// spends the request, in one transaction: `201` with the user and
/// organization (then sign in). A spent, expired or unknown token is `400`
/// on `token`, a wrong password `400` on `password`; an address that got
/// an account meanwhile (an accepted invitation) is `409`. Audited
/// (`USER_SIGNED_UP`).
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/auth/signup/confirm", security(()),
    request_body = Input,
    responses(
        (status = 201, description = "The organization and its admin exist", body = super::signing_in::SignedUp),
        (status = 400, description = "An invalid or expired link, or not the password of the request (`VALIDATION_ERROR`)"),
        (status = 409, description = "The address has an account meanwhile"),
        (status = 429, description = "Too many requests (`RATE_LIMIT_EXCEEDED`)"),
    )))]
async fn confirm<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let input: Input = rq.json(ctx)?;
    let invalid =
        || ApiError::invalid("token", "The link is invalid or has expired; sign up again");
    if input.token.len() != 46 || !input.token.starts_with("sg_") {
        return Err(invalid());
    }
    crate::ratelimit::check(
        ctx,
        rq,
        Class::Auth,
        &format!("signup:{}", rq.client_key()),
        None,
    )
    .await?;
    let db = ctx.db();
    let token_hash = crate::auth::session::token_hash(&input.token);
    // The request names what its event records; then the organization,
    // its admin and the event in one statement's transaction: a request
    // spent meanwhile creates nothing and records nothing.
    let Some(requested) = signup_request::signup_request_for(&db, &token_hash).await? else {
        password::verify_dummy(&input.password);
        return Err(invalid());
    };
    if !password::verify(&input.password, &requested.password_hash) {
        return Err(ApiError::invalid(
            "password",
            "Give the password you chose when you signed up",
        ));
    }
    let scope = Scope::account(ctx.new_uuid());
    let user_id = ctx.new_uuid();
    let event = audit::Event {
        organization_id: Some(scope.organization_id()),
        user_id: Some(user_id),
        action: "Organization created",
        record_id: Some(user_id),
        new_values: Some(json!({
            "email": requested.email,
            "role": Role::Admin.as_str(),
            "name": requested.name,
            "organizationName": requested.organization_name,
        })),
        ..audit::Event::new(ctx.new_uuid(), EventType::UserSignedUp)
    };
    let create = signup_request::confirm_signup(
        &token_hash,
        scope.organization_id(),
        &slug(&requested.organization_name, ctx.random_bytes::<3>()),
        user_id,
    );
    let joined: user::Joined = scope
        .fetch_optional(&db, event.record_change(rq, create)?)
        .await
        .map_err(user::email_taken)?
        .ok_or_else(invalid)?;
    Reply::created(super::signing_in::SignedUp::new(joined, requested.name))
}

#[cfg(test)]
mod tests {
    use super::slug;

    #[test]
    fn slugs_are_url_safe() {
        assert_eq!(
            slug("Genomics Core — Boston!", [1, 2, 3]),
            "genomics-core-boston-010203"
        );
        assert_eq!(slug("***", [0, 0, 1]), "lab-000001");
        assert!(slug(&"x".repeat(300), [0; 3]).len() <= 63);
    }
}
