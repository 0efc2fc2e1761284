//! `GET /api/v1/runs/:id` (`runs:view`): one run with its instrument and
//! data file summary; `ETag` is its version.

use http::header;

use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::envelope::etag;
use crate::error::ApiError;
use crate::model::run;
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    GET => show,
}

/// Show a run
///
/// Requires `runs:view`. The run with its instrument, its data file's
/// summary and its signatures; `ETag` is its version.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/v1/runs/{id}",
    params(("id" = uuid::Uuid, Path, description = "The run")),
    responses((status = 200, description = "The run", body = crate::model::run::Run,
        headers(("ETag" = String, description = "The run's version"))))))]
async fn show<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::RunsView)?;
    let run = run::get(&ctx.db(), &principal.scope(), rq.uuid_param("id")?).await?;
    let version = run.version;
    Ok(Reply::ok(run)?.header(header::ETAG, etag(version)))
}
