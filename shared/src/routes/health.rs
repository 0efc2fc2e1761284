//! `GET /api/health`: liveness plus database reachability through the proxy.

use serde::Serialize;

use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::platform::Platform;
use crate::ratelimit::Class;
use crate::request::Rq;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Health {
    status: &'static str,
    database: &'static str,
    version: &'static str,
}

super::methods! {
    GET => health,
}

async fn health<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let key = format!("ip:{}", rq.client_key());
    match crate::ratelimit::check(ctx, rq, Class::Public, &key, None).await {
        Ok(()) => check(ctx).await,
        Err(e @ ApiError::RateLimited { .. }) => Err(e),
        // The limit lives in the database: failing to check it is the
        // database being down, which is what health reports.
        Err(e) => Err(ApiError::DependencyDown {
            component: "database",
            cause: e.to_string(),
        }),
    }
}

async fn check<P: Platform>(ctx: &Ctx<P>) -> Result<Reply, ApiError> {
    match ctx.db().query("SELECT 1 AS ok", Vec::new()).await {
        Ok(_) => Reply::ok(Health {
            status: "ok",
            database: "reachable",
            version: crate::envelope::API_VERSION,
        }),
        Err(e) => Err(ApiError::DependencyDown {
            component: "database",
            cause: e.to_string(),
        }),
    }
}
