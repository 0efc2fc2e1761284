//! `POST /api/auth/logout`: ends the caller's session family at once (its
//! access tokens stop working on the next request) and clears the cookie.

use http::header;
use serde::Serialize;

use crate::audit::{self, EventType};
use crate::auth::{self, session};
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::model;
use crate::platform::Platform;
use crate::request::Rq;

/// The answer of a logout.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
struct LoggedOut {
    /// Always `true`.
    logged_out: bool,
}

super::methods! {
    POST => logout,
}

/// Sign out: end the session
///
/// Ends the caller's session family at once: its refresh tokens stop
/// working, and so do its access tokens, on their next request. Clears the
/// `antevus_refresh` cookie. An API key has no session (`400` on
/// `authorization`: revoke the key instead). Audited (`AUTH_LOGOUT`).
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/auth/logout",
    responses(
        (status = 200, description = "The session ended", body = LoggedOut,
            headers(("Set-Cookie" = String, description = "Clears the refresh cookie: `antevus_refresh=; Path=/api/auth; Max-Age=0; HttpOnly; Secure; SameSite=Strict`"))),
        (status = 400, description = "Called with an API key, which has no session (`VALIDATION_ERROR`)"),
    )))]
async fn logout<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    let session_id = principal.session_id.ok_or_else(|| {
        ApiError::invalid(
            "authorization",
            "An API key has no session to end; revoke the key instead",
        )
    })?;
    let event = audit::Event {
        organization_id: Some(principal.organization_id),
        user_id: Some(principal.user_id),
        record_id: Some(session_id),
        ..audit::Event::new(ctx.new_uuid(), EventType::AuthLogout)
    };
    let scope = principal.scope();
    scope
        .batch(
            &ctx.db(),
            vec![
                model::session::end_family(&scope, session_id, model::session::Ending::Logout),
                event.insert(rq)?,
            ],
        )
        .await?;
    Ok(Reply::ok(LoggedOut { logged_out: true })?
        .header(header::SET_COOKIE, session::clear_refresh_cookie()))
}
