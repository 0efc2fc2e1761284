//! `POST /api/auth/logout`: ends the caller's session family at once (its
//! access tokens stop working on the next request) and clears the cookie.

use http::header;
use serde_json::json;

use crate::audit::{self, Outcome};
use crate::auth::{self, session};
use crate::ctx::Ctx;
use crate::db::{BatchOptions, statement};
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::params;
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    POST => logout,
}

async fn logout<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    let session_id = principal.session_id.ok_or_else(|| {
        ApiError::invalid(
            "authorization",
            "An API key has no session to end; revoke the key instead",
        )
    })?;
    let event = audit::Event {
        id: ctx.new_uuid(),
        organization_id: Some(principal.organization_id),
        user_id: Some(principal.user_id),
        event_type: "AUTH_LOGOUT",
        severity: "INFO",
        action: "User logged out",
        outcome: Outcome::Success,
        record_type: Some("session"),
        record_id: Some(session_id),
        old_values: None,
        new_values: None,
        metadata: json!({}),
        reason: None,
    };
    ctx.db()
        .batch(
            vec![
                statement(
                    "UPDATE sessions SET revoked_at = now(), revoked_reason = 'logout' \
                     WHERE family_id = $1 AND user_id = $2 AND revoked_at IS NULL",
                    params![session_id, principal.user_id],
                ),
                event.insert(rq),
            ],
            BatchOptions::default(),
        )
        .await?;
    Ok(Reply::ok(json!({ "loggedOut": true }))?
        .header(header::SET_COOKIE, session::clear_refresh_cookie()))
}
