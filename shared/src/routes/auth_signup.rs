//! `POST /api/auth/signup`: either accept an invitation
//! (`{invitationToken, name, password}`: the account joins the inviting
//! organization with the invited role; 201 with the user and organization,
//! the client then logs in) or ask to open a new organization whose first
//! user is its admin (`{organizationName, email, name, password}`).
//!
//! Asking is `202` with the same answer whether or not the address has an
//! account, and nothing on the path takes longer either way: for a new
//! address the request is kept (`signup_requests`) and a link to confirm
//! it is mailed (`sg_` + 256 random bits, stored hashed, 24 hours;
//! `POST /api/auth/signup/confirm` creates the organization); an address
//! with an account is told so by mail instead. Nobody can hold an address
//! they cannot read mail at.

use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{self, EventType};
use crate::auth::{password, policy};
use crate::ctx::Ctx;
use crate::db::BatchOptions;
use crate::domain::Email;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::model::{Scope, invitation, signup_request, user};
use crate::platform::Platform;
use crate::ratelimit::Class;
use crate::request::Rq;

/// Either `invitationToken` (accepting an invitation) or
/// `organizationName` and `email` (asking for a new organization), with
/// `name` and `password`.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = SignupInput))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Input {
    /// The token of the mailed invitation (`in_...`).
    invitation_token: Option<String>,
    /// A new organization's name, 1 to 255 characters.
    organization_name: Option<String>,
    /// A new organization's first user's address (an invitation names its own).
    email: Option<String>,
    /// The user's name, 1 to 255 characters.
    name: String,
    /// 8 to 128 characters, not a common one.
    password: String,
}

/// The answer to a request for a new organization, whatever exists.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = SignupRequested))]
struct Requested {
    message: &'static str,
}

super::methods! {
    POST => signup,
}

/// How long a signup's confirmation link lives.
pub const CONFIRMATION_TTL_HOURS: i64 = 24;

/// Sign up: accept an invitation, or ask for a new organization
///
/// Public; rate limited (authentication class) per client address, and a
/// request for a new organization also per e-mail address.
///
/// - `{invitationToken, name, password}`: the account joins the inviting
///   organization with the invited role: `201` with the user and
///   organization (then sign in). An invalid, used or expired invitation is
///   `400` on `invitationToken`; an address that has an account meanwhile
///   is `409`. Audited (`USER_SIGNED_UP`).
/// - `{organizationName, email, name, password}`: `202`, the same answer
///   whether or not the address has an account. A new address is mailed a
///   link (valid 24 hours) for `POST /api/auth/signup/confirm`, which
///   creates the organization with this user as its admin; an address with
///   an account is told so by mail instead.
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/auth/signup", security(()),
    request_body = Input,
    responses(
        (status = 201, description = "Invitation accepted: the account exists", body = super::signing_in::SignedUp),
        (status = 202, description = "New organization asked for: the next step is mailed to the address", body = Requested),
        (status = 400, description = "A malformed field, an invalid invitation, or neither or both forms (`VALIDATION_ERROR`)"),
        (status = 409, description = "The invited address already has an account"),
        (status = 429, description = "Too many requests (`RATE_LIMIT_EXCEEDED`)"),
    )))]
async fn signup<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let input: Input = rq.json(ctx)?;
    let mut problems = Vec::new();
    let name = input.name.trim().to_owned();
    if name.is_empty() || !crate::domain::printable_within(&name, 255) {
        problems.push(FieldError::new("name", "Must be 1 to 255 characters"));
    }
    if let Err(message) = policy::check(&input.password) {
        problems.push(FieldError::new("password", message));
    }
    match (
        &input.invitation_token,
        &input.organization_name,
        &input.email,
    ) {
        (Some(token), None, None) if token.len() == 46 && token.starts_with("in_") => {}
        (Some(_), None, None) => problems.push(FieldError::new(
            "invitationToken",
            "The invitation is invalid or has expired",
        )),
        (None, Some(org), Some(_)) if org.trim().is_empty() || org.trim().chars().count() > 255 => {
            problems.push(FieldError::new(
                "organizationName",
                "Must be 1 to 255 characters",
            ))
        }
        (None, Some(_), Some(_)) => {}
        _ => problems.push(FieldError::new(
            "body",
            "Give either invitationToken, or organizationName and email",
        )),
    }
    let email = match &input.email {
        Some(raw) => Email::parse(raw)
            .map_err(|m| problems.push(FieldError::new("email", m)))
            .ok(),
        None => None,
    };
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    crate::ratelimit::check(
        ctx,
        rq,
        Class::Auth,
        &format!("signup:{}", rq.client_key()),
        None,
    )
    .await?;
    let hash =
        password::hash(&input.password, ctx.random_bytes::<16>()).map_err(ApiError::internal)?;
    let user_id = ctx.new_uuid();
    let db = ctx.db();

    // The account and its record in one transaction.
    let signed_up = |organization_id, email: &str, role: &str, action| audit::Event {
        organization_id: Some(organization_id),
        user_id: Some(user_id),
        action,
        record_id: Some(user_id),
        new_values: Some(json!({ "email": email, "role": role, "name": name })),
        ..audit::Event::new(ctx.new_uuid(), EventType::UserSignedUp)
    };
    let joined: user::Joined = if let Some(token) = &input.invitation_token {
        let invalid = || {
            ApiError::invalid(
                "invitationToken",
                "The invitation is invalid or has expired",
            )
        };
        let token_hash = crate::auth::session::token_hash(token);
        // The invitation names the organization (its event's); then the
        // account and its record in one statement: an invitation spent
        // meanwhile creates nothing and records nothing.
        let invited = invitation::invitation_for(&db, &token_hash)
            .await?
            .ok_or_else(invalid)?;
        let event = signed_up(
            invited.organization_id,
            &invited.email,
            &invited.role,
            "Invitation accepted",
        );
        let accept = invitation::accept(&token_hash, user_id, &hash, &name);
        Scope::account(invited.organization_id)
            .fetch_optional(&db, event.record_change(rq, accept)?)
            .await
            .map_err(user::email_taken)?
            .ok_or_else(invalid)?
    } else {
        let email = email.ok_or_else(|| ApiError::invalid("email", "E-mail is required"))?;
        let organization_name = input
            .organization_name
            .as_deref()
            .unwrap_or_default()
            .trim()
            .to_owned();
        // Mail goes to an address the asker names: each address gets the
        // authentication limit of its own (the same answer either way).
        crate::ratelimit::check(
            ctx,
            rq,
            Class::Auth,
            &format!("signup-to:{}", email.as_str()),
            None,
        )
        .await?;
        return request(ctx, &email, &organization_name, &name, &hash).await;
    };
    Reply::created(super::signing_in::SignedUp::new(joined, name))
}

/// A request to open an organization: a confirmation link to a new
/// address, a note to one that has an account; the same answer.
async fn request<P: Platform>(
    ctx: &Ctx<P>,
    email: &Email,
    organization_name: &str,
    name: &str,
    password_hash: &str,
) -> Result<Reply, ApiError> {
    let db = ctx.db();
    let app_url = &ctx.config.mail()?.app_url;
    let holder = user::account_for_reset(&db, email.as_str()).await?;
    let mail_id = ctx.new_uuid();
    match holder {
        Some(holder) => {
            let message = crate::mail::Message {
                id: mail_id,
                to: email.as_str().to_owned(),
                subject: "You already have an Antevus account".to_owned(),
                // Nothing the asker wrote goes to the address's holder.
                text: format!(
                    "Hello {},\n\nSomeone (hopefully you) asked to open a new Antevus organization \
                     with this address. It already has an account, so nothing was created.\n\n\
                     Sign in: {app_url}/sign-in\nForgot your password: {app_url}/forgot-password\n\n\
                     If you did not ask, ignore this message.\n",
                    holder.name
                ),
            };
            let scope = Scope::account(holder.organization_id);
            scope
                .batch(
                    &db,
                    vec![crate::mail::queue(
                        ctx,
                        &scope,
                        "signup_existing",
                        &message,
                    )?],
                )
                .await?;
        }
        None => {
            let (token, token_hash) = new_confirmation_token(ctx.random_bytes::<32>());
            let message = crate::mail::Message {
                id: mail_id,
                to: email.as_str().to_owned(),
                subject: "Confirm your address to open your Antevus organization".to_owned(),
                text: format!(
                    "Hello {name},\n\nTo open \"{organization_name}\" on Antevus, confirm this address \
                     within {CONFIRMATION_TTL_HOURS} hours:\n\n{app_url}/signup/confirm?token={token}\n\n\
                     If you did not ask, ignore this message; nothing is created.\n"
                ),
            };
            let request = signup_request::request_signup(&signup_request::NewRequest {
                id: ctx.new_uuid(),
                email: email.as_str(),
                organization_name,
                name,
                password_hash,
                token_hash: &token_hash,
                ttl_hours: CONFIRMATION_TTL_HOURS,
                mail_id,
                subject: &message.subject,
                body_sealed: &crate::mail::seal(ctx, &message)?,
            });
            db.batch(vec![request], BatchOptions::default()).await?;
        }
    }
    Reply::with_status(
        StatusCode::ACCEPTED,
        Requested {
            message: "Check your e-mail: the next step is on its way to this address",
        },
    )
}

/// A signup's confirmation token and its stored hash.
pub fn new_confirmation_token(random: [u8; 32]) -> (String, String) {
    use base64::Engine as _;
    let token = format!(
        "sg_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
    );
    let hash = crate::auth::session::token_hash(&token);
    (token, hash)
}

#[cfg(test)]
mod tests {
    use super::new_confirmation_token;

    #[test]
    fn confirmation_tokens_are_prefixed_and_stored_hashed() {
        let (token, hash) = new_confirmation_token([7; 32]);
        assert!(token.starts_with("sg_") && token.len() == 46, "{token}");
        assert!(!hash.contains(&token[3..]));
    }
}
