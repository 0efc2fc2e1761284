//! `GET /api/health`: liveness plus database reachability through the proxy.

use serde::Serialize;

use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::platform::Platform;
use crate::ratelimit::Class;
use crate::request::Rq;

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
struct Health {
    status: &'static str,
    database: &'static str,
    version: &'static str,
    /// Whether this deployment pushes live data over `GET /api/v1/live`
    /// (a WebSocket); without it, dashboards poll.
    live_updates: bool,
}

super::methods! {
    GET => health,
}

/// Liveness and database reachability
///
/// Public, rate limited per client address. 503 `SERVICE_UNAVAILABLE` when
/// the database cannot be reached through the proxy.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/health", security(()),
    responses((status = 200, description = "Up, with the database reachable", body = Health))))]
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
            live_updates: P::LIVE_SOCKETS,
        }),
        Err(e) => Err(ApiError::DependencyDown {
            component: "database",
            cause: e.to_string(),
        }),
    }
}
