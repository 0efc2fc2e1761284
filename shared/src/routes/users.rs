//! `/api/v1/users` (`users:manage`): `GET` lists the organization's users,
//! `POST` invites someone: `{email, role, name?}` -> an invitation whose
//! single-use link (7 days) is e-mailed through `email_outbox`. Only a
//! super admin may invite a super admin.

use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use crate::audit::{self, Outcome};
use crate::auth::{self, Permission, Role};
use crate::ctx::Ctx;
use crate::db::{BatchOptions, statement};
use crate::domain::Email;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::params;
use crate::platform::Platform;
use crate::request::Rq;

/// Lifetime of an invitation.
pub const INVITATION_TTL_DAYS: i64 = 7;

/// A user as admins see them.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct UserView {
    pub id: uuid::Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub department: Option<String>,
    pub is_active: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_login_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

pub const USER_COLUMNS: &str =
    "id, email, name, role, department, is_active, last_login_at, created_at";

super::methods! {
    GET => list,
    POST => invite,
}

async fn list<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::UsersManage)?;
    let users: Vec<UserView> = ctx
        .db()
        .fetch_all(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE organization_id = $1 ORDER BY created_at, id"),
            params![principal.organization_id],
        )
        .await?;
    Reply::ok(json!({ "items": users }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InviteInput {
    email: String,
    role: String,
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
        id: ctx.new_uuid(),
        organization_id: Some(principal.organization_id),
        user_id: Some(principal.user_id),
        event_type: "USER_INVITED",
        severity: "INFO",
        action: "User invited",
        outcome: Outcome::Success,
        record_type: Some("invitation"),
        record_id: Some(id),
        old_values: None,
        new_values: Some(json!({ "email": email.as_str(), "role": role })),
        metadata: json!({}),
        reason: None,
    };
    // Refuse an address that already has an account (409), in the same statement.
    let insert = statement(
        "INSERT INTO invitations (id, organization_id, email, role, token_hash, invited_by, expires_at) \
         SELECT $1, $2, $3, $4, $5::text::bytea, $6, now() + make_interval(days => $7) \
         WHERE NOT EXISTS (SELECT 1 FROM users WHERE email = $3) \
         RETURNING id, expires_at",
        params![
            id,
            principal.organization_id,
            email.as_str(),
            role.as_str(),
            hash,
            principal.user_id,
            INVITATION_TTL_DAYS
        ],
    );
    let message = crate::mail::Message {
        id: ctx.new_uuid(),
        to: email.as_str().to_owned(),
        subject: "You are invited to Antevus".to_owned(),
        text: body,
    };
    // Queued only if the invitation was created.
    let mail = statement(
        "INSERT INTO email_outbox (id, organization_id, to_address, template, subject, body_text) \
         SELECT $5, $1, $2, 'invitation', $6, $3 FROM invitations WHERE id = $4",
        params![
            principal.organization_id,
            message.to,
            message.text,
            id,
            message.id,
            message.subject
        ],
    );
    #[derive(Deserialize)]
    struct Created {
        id: uuid::Uuid,
        #[serde(with = "time::serde::rfc3339")]
        expires_at: OffsetDateTime,
    }
    let results = ctx
        .db()
        .batch(
            vec![event.insert_after(rq, insert), mail],
            BatchOptions::default(),
        )
        .await?;
    let created = results
        .first()
        .and_then(|r| r.decode::<serde_json::Value>().ok())
        .is_some_and(|rows| !rows.is_empty());
    if !created {
        return Err(ApiError::Conflict {
            message: "A user with this e-mail already exists".into(),
            details: vec![FieldError::new("email", "Already has an account")],
        });
    }
    crate::mail::deliver(ctx, &[message]).await;
    let row: Option<Created> = ctx
        .db()
        .fetch_optional(
            "SELECT id, expires_at FROM invitations WHERE id = $1",
            params![id],
        )
        .await?;
    let row = row.ok_or_else(|| ApiError::internal("invitation vanished"))?;
    Reply::created(json!({
        "id": row.id,
        "email": email.as_str(),
        "role": role,
        "expiresAt": row.expires_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
    }))
}
