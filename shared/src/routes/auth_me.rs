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
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(as = MeOrganization)
)]
#[serde(rename_all = "camelCase")]
struct Organization {
    id: uuid::Uuid,
    name: String,
    slug: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
struct Me {
    id: uuid::Uuid,
    email: String,
    name: String,
    department: Option<String>,
    /// The role in force now.
    role: Role,
    /// The role's permissions (an API key may use only its own scopes of
    /// them, which are not listed here).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Permission>))]
    permissions: &'static [Permission],
    last_login_at: Option<Timestamp>,
    organization: Organization,
    /// The session (login) of the access token; none for an API key.
    session_id: Option<uuid::Uuid>,
    /// The API key used; none for an access token.
    api_key_id: Option<uuid::Uuid>,
}

super::methods! {
    GET => me,
}

/// The caller, their organization and permissions
///
/// Any signed-in user or API key. `permissions` are the role's (an API
/// key may do only its own scopes of them); `sessionId` names the login of
/// an access token, `apiKeyId` the key used.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/auth/me",
    responses((status = 200, description = "Who is calling", body = Me))))]
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
