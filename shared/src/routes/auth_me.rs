//! `GET /api/auth/me`: the caller, their organization and their permissions.

use crate::domain::Timestamp;
use serde::Serialize;

use crate::auth::{self, Permission, Role};
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::model::user;
use crate::platform::Platform;
use crate::request::Rq;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Organization {
    id: uuid::Uuid,
    name: String,
    slug: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Me {
    id: uuid::Uuid,
    email: String,
    name: String,
    department: Option<String>,
    role: Role,
    permissions: &'static [Permission],
    last_login_at: Option<Timestamp>,
    organization: Organization,
    session_id: Option<uuid::Uuid>,
    api_key_id: Option<uuid::Uuid>,
}

super::methods! {
    GET => me,
}

async fn me<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    let row = user::with_organization(&ctx.db(), &principal.scope(), principal.user_id)
        .await?
        .ok_or(ApiError::TokenInvalid("session ended"))?;
    Reply::ok(Me {
        id: row.id,
        email: row.email,
        name: row.name,
        department: row.department,
        role: principal.role,
        permissions: principal.role.permissions(),
        last_login_at: row.last_login_at,
        organization: Organization {
            id: row.organization_id,
            name: row.organization_name,
            slug: row.organization_slug,
        },
        session_id: principal.session_id,
        api_key_id: principal.api_key_id,
    })
}
