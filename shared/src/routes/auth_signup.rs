//! `POST /api/auth/signup`: either accept an invitation
//! (`{invitationToken, name, password}`: the account joins the inviting
//! organization with the invited role) or open a new organization whose
//! first user is its admin (`{organizationName, email, name, password}`).
//! 201 with the user and organization; the client then logs in.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{self, EventType};
use crate::auth::{password, policy};
use crate::ctx::Ctx;
use crate::domain::Email;
use crate::domain::roles::Role;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::model::{Scope, first_row, invitation, organization, user};
use crate::platform::Platform;
use crate::ratelimit::Class;
use crate::request::Rq;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Input {
    invitation_token: Option<String>,
    organization_name: Option<String>,
    email: Option<String>,
    name: String,
    password: String,
}

/// The account just created.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SignedUp {
    user: NewUser,
    organization_id: uuid::Uuid,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NewUser {
    id: uuid::Uuid,
    email: String,
    name: String,
    role: String,
}

super::methods! {
    POST => signup,
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
        // A new organization: the account opened here is its first admin.
        let scope = Scope::account(ctx.new_uuid());
        let slug = slug(&organization_name, ctx.random_bytes::<3>());
        let event = signed_up(
            scope.organization_id(),
            email.as_str(),
            Role::Admin.as_str(),
            "Organization created",
        );
        let results = scope
            .batch(
                &db,
                vec![
                    organization::insert(&scope, &organization_name, &slug),
                    user::insert_admin(&scope, user_id, email.as_str(), &hash, &name),
                    event.insert(rq)?,
                ],
            )
            .await
            .map_err(user::email_taken)?;
        first_row(&results, 1)?.ok_or_else(|| ApiError::internal("signup inserted no user"))?
    };
    Reply::created(SignedUp {
        user: NewUser {
            id: joined.user_id,
            email: joined.email,
            name,
            role: joined.role,
        },
        organization_id: joined.organization_id,
    })
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
