//! `/api/v1/users` (`users:manage`): `GET` lists the organization's users,
//! `POST` invites someone: `{email, role, name?}` -> an invitation whose
//! single-use link (7 days) is e-mailed through `email_outbox`. Only a
//! super admin may invite a super admin.

use crate::domain::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{self, EventType};
use crate::auth::{self, Permission, Role};
use crate::ctx::Ctx;
use crate::domain::Email;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::model::page::Items;
use crate::model::{invitation, rows, user};
use crate::platform::Platform;
use crate::request::Rq;

/// Lifetime of an invitation.
pub const INVITATION_TTL_DAYS: i64 = 7;

super::methods! {
    GET => list,
    POST => invite,
}

/// List the organization's users
///
/// Requires `users:manage`. All of them in one answer, oldest first.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/v1/users",
    responses((status = 200, description = "The users", body = Items<user::User>))))]
async fn list<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::UsersManage)?;
    let items = user::list(&ctx.db(), &principal.scope()).await?;
    Reply::ok(Items { items })
}

/// An invitation as its sender sees it (the link went by e-mail).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Invitation))]
#[serde(rename_all = "camelCase")]
struct Invited {
    id: uuid::Uuid,
    email: String,
    role: Role,
    expires_at: Timestamp,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
struct InviteInput {
    email: String,
    /// The role the account gets when it accepts.
    #[cfg_attr(feature = "openapi", schema(value_type = Role))]
    role: String,
    /// Only to greet them in the mail (they give their own at signup).
    name: Option<String>,
}

/// A new invitation token (`in_` + 256 random bits) and its stored hash.
pub fn new_invitation_token(random: [u8; 32]) -> (String, String) {
    use base64::Engine as _;
    let token = format!(
        "in_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
    );
    let hash = crate::auth::session::token_hash(&token);
    (token, hash)
}

/// Invite someone to the organization
///
/// Requires `users:manage`; only a super admin may invite a super admin.
/// Creates an invitation with the role and mails its single-use link
/// (valid 7 days) to the address; they accept it at `POST
/// /api/auth/signup` with `invitationToken`. An address that already has
/// an account is `409`. Audited (`USER_INVITED`).
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/v1/users",
    request_body = InviteInput,
    responses(
        (status = 201, description = "The invitation is created and mailed", body = Invited),
        (status = 400, description = "Not an e-mail address or not a role, or a super admin invited by someone else (`VALIDATION_ERROR`)"),
        (status = 409, description = "A user with this e-mail already exists"),
    )))]
async fn invite<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::UsersManage)?;
    let input: InviteInput = rq.json(ctx)?;
    let mut problems = Vec::new();
    let email = Email::parse(&input.email)
        .map_err(|m| problems.push(FieldError::new("email", m)))
        .ok();
    let role = Role::parse(&input.role);
    match role {
        None => problems.push(FieldError::new("role", "Not a role")),
        Some(Role::SuperAdmin) if principal.role != Role::SuperAdmin => problems.push(
            FieldError::new("role", "Only a super admin may invite a super admin"),
        ),
        Some(_) => {}
    }
    let (Some(email), Some(role), true) = (email, role, problems.is_empty()) else {
        return Err(ApiError::Validation(problems));
    };
    let id = ctx.new_uuid();
    let (token, hash) = new_invitation_token(ctx.random_bytes::<32>());
    let greeting = input
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or("there");
    let link = format!("{}/signup?invitation={token}", ctx.config.mail()?.app_url);
    let body = format!(
        "Hello {greeting},\n\nYou have been invited to join a laboratory on Antevus as {}.\n\
         Open this link within {INVITATION_TTL_DAYS} days to create your account:\n\n{link}\n",
        role.as_str()
    );
    let event = audit::Event {
        organization_id: Some(principal.organization_id),
        user_id: Some(principal.user_id),
        record_id: Some(id),
        new_values: Some(json!({ "email": email.as_str(), "role": role })),
        ..audit::Event::new(ctx.new_uuid(), EventType::UserInvited)
    };
    let scope = principal.scope();
    // Refuse an address that already has an account (409), in the same statement.
    let insert = invitation::insert(
        &scope,
        &invitation::NewInvitation {
            id,
            email: email.as_str(),
            role,
            token_hash: &hash,
            invited_by: principal.user_id,
            ttl_days: INVITATION_TTL_DAYS,
        },
    );
    let message = crate::mail::Message {
        id: ctx.new_uuid(),
        to: email.as_str().to_owned(),
        subject: "You are invited to Antevus".to_owned(),
        text: body,
    };
    // Queued only if the invitation was created.
    let mail = invitation::queue_mail(
        &scope,
        id,
        message.id,
        &message.to,
        &message.subject,
        &crate::mail::seal(ctx, &message)?,
    );
    let results = scope
        .batch(&ctx.db(), vec![event.insert_after(rq, insert)?, mail])
        .await?;
    let created = !rows::<serde_json::Value>(&results, 0)?.is_empty();
    if !created {
        return Err(ApiError::Conflict {
            message: "A user with this e-mail already exists".into(),
            details: vec![FieldError::new("email", "Already has an account")],
        });
    }
    let row = invitation::load(&ctx.db(), &scope, id).await?;
    let row = row.ok_or_else(|| ApiError::internal("invitation vanished"))?;
    Reply::created(Invited {
        id: row.id,
        email: email.as_str().to_owned(),
        role,
        expires_at: row.expires_at,
    })
}
