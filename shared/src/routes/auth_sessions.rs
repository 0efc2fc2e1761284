//! `GET /api/auth/sessions`: the caller's live logins (each a session
//! family: when it signed in, when and where from it last refreshed), the
//! current one marked, for the profile page, where one is ended with
//! `DELETE /api/auth/sessions/:id`.

use serde::Serialize;

use crate::auth;
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::model::session::{self, Login};
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    GET => list,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = OwnLogins))]
#[serde(rename_all = "camelCase")]
struct Logins {
    items: Vec<Login>,
    /// The login this request came with (none for an API key).
    current: Option<uuid::Uuid>,
}

/// The caller's live logins
///
/// Any signed-in user: their own logins only, the most recently active
/// first (at most 100).
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/auth/sessions",
    responses((status = 200, description = "The live logins", body = Logins))))]
async fn list<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    let items = session::logins_of(&ctx.db(), &principal.scope(), principal.user_id).await?;
    Reply::ok(Logins {
        items,
        current: principal.session_id,
    })
}
