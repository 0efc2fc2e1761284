//! `DELETE /api/auth/sessions/:id`: the caller ends one of their own
//! logins (a lost laptop, a shared terminal): its refresh tokens stop at
//! once and its access tokens on their next request. Another user's login,
//! or one already ended, is `404`. Audited.

use serde::Serialize;

use crate::audit::{self, EventType};
use crate::auth;
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::model::session;
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    DELETE => end,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
struct LoginEnded {
    id: uuid::Uuid,
    /// Whether it was the login of this request (then sign in again).
    was_current: bool,
}

#[derive(serde::Deserialize)]
struct Ended {
    #[allow(dead_code)]
    family_id: uuid::Uuid,
}

/// End one of the caller's logins
///
/// Any signed-in user, their own logins only (`404` otherwise). Ending the
/// current one is a logout without clearing the cookie. Audited
/// (`AUTH_SESSION_REVOKED`).
#[cfg_attr(feature = "openapi", utoipa::path(delete, path = "/api/auth/sessions/{id}",
    params(("id" = uuid::Uuid, Path, description = "The login (session family)")),
    responses(
        (status = 200, description = "Ended", body = LoginEnded),
        (status = 404, description = "No live login of the caller's with this id"),
    )))]
async fn end<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    let id = rq.uuid_param("id")?;
    let scope = principal.scope();
    let event = audit::Event::by(
        ctx.new_uuid(),
        &principal,
        EventType::AuthSessionRevoked,
        id,
    );
    let ended: Vec<Ended> = scope
        .fetch_all(
            &ctx.db(),
            event.record_change(
                rq,
                session::end_login_of(&scope, principal.user_id, id, session::Ending::Revoked),
            )?,
        )
        .await?;
    if ended.is_empty() {
        return Err(ApiError::NotFound);
    }
    Reply::ok(LoginEnded {
        id,
        was_current: principal.session_id == Some(id),
    })
}
