//! `GET /api/v1/live`: the live hub's WebSocket (`live::hub`). Hosts that
//! hold sockets (the Durable Object on Workers, the native host) take the
//! upgrade before this handler runs; it answers the rest: a plain GET is
//! told to upgrade, and an upgrade that reaches it is on a host without
//! WebSockets (Spin), which points at the HTTP alternatives.

use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::live::hub;
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    GET => live,
}

async fn live<P: Platform>(_ctx: &Ctx<P>, rq: &Rq) -> Result<Reply, ApiError> {
    if !hub::is_handshake(&rq.req) {
        return Err(ApiError::invalid(
            "upgrade",
            "This endpoint is a WebSocket: connect with Upgrade: websocket",
        ));
    }
    Err(ApiError::NotImplemented(
        "This deployment has no WebSockets: bridges use transport = \"http\" \
         (POST /api/v1/bridges/ingest, GET /api/v1/bridges/commands) and dashboards read \
         GET /api/v1/instruments/:id/readings",
    ))
}
