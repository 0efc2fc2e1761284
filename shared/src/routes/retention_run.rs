//! `POST /api/v1/retention/run` (`users:manage`): retention for the
//! caller's organization now (see [`crate::retention`]), recorded as the
//! administrator who asked. The scheduled job (`POST /api/v1/jobs/retention`)
//! runs the same for every organization in turn; this is for a run on
//! demand. Answers what was removed; `409` when the expired part of the
//! audit chain does not verify (nothing changes).

use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::platform::Platform;
use crate::request::Rq;
use crate::retention::{self, By};

super::methods! {
    POST => run,
}

/// Run retention for the organization now
///
/// Requires `users:manage`. Removes what is past its retention period:
/// audit events from the start of the chain (after a signed checkpoint
/// names the last to go; never younger than seven years), run data bytes
/// (their records stay), ended sessions, idle rate-limit state and old
/// sent e-mail; audited (`RETENTION_RUN`) as the caller. The expired part
/// of the audit chain is verified first: when it does not verify, or
/// changes meanwhile, nothing is removed (409; `GET /api/audit/verify`
/// says where). The scheduled job (`POST /api/v1/jobs/retention`) runs the
/// same for every organization in turn.
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/v1/retention/run",
    responses(
        (status = 200, description = "What was removed", body = retention::Outcome),
        (status = 409, description = "The expired part of the audit chain does not verify, or changed while retention ran; nothing was removed"))))]
async fn run<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::UsersManage)?;
    let scope = principal.scope();
    let s3 = ctx.config.storage()?.s3.as_ref();
    let outcome = retention::run(ctx, rq, &scope, By::Caller(&principal), s3).await?;
    Reply::ok(outcome)
}
