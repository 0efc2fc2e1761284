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

/// The live socket: bridges' records, dashboards' live readings
///
/// A WebSocket: `GET` with `Upgrade: websocket`, answered `101`. Offer the
/// subprotocol `antevus.live.v1` (chosen when offered). Credentials as for
/// any route (`Authorization: Bearer`, `X-API-Key`); a browser, which
/// cannot set headers on a socket, offers `bearer.<token>` as a second
/// subprotocol next to `antevus.live.v1`. A bridge's key opens a *bridge*
/// socket; any other caller with `instruments:view` a *dashboard* socket.
/// A refused upgrade is answered in the error envelope. Credentials are
/// checked again at least every 30 seconds (and with every batch): an
/// expired token, a revoked key or a logout closes the socket with 4401, a
/// withdrawn permission with 4403. Messages are JSON text, each with a
/// `type`.
///
/// **Bridge socket.** The bridge sends
/// `{"type":"batch","batch":BridgeBatch}`: the body of
/// `POST /api/v1/bridges/ingest`, stored and rate limited the same way.
/// The server sends:
///
/// - `{"type":"ack","ack":BatchAck}` for each batch;
/// - `{"type":"commands","commands":[CommandOrder, ...]}` whenever commands
///   wait for its instruments (looked for every second, at most 50 at a
///   time, each marked `sent`);
/// - `{"type":"error","status":409,"error":{"code":...,"message":...,"details":[...]}}`
///   for a refused message: `status` is the HTTP status it would have had
///   (e.g. 409 for a gap in the stream), `error` the error envelope's.
///
/// **Dashboard socket.** The dashboard sends
/// `{"type":"subscribe","instrumentIds":[...]}` (at most 20 instruments by
/// id, each one of the organization's) or `{"type":"subscribe","all":true}`
/// (all of them), and `{"type":"unsubscribe","instrumentIds":[...]}` or
/// `{"type":"unsubscribe","all":true}`; at most 30 messages a minute (one
/// more closes the socket with 1008). The server sends:
///
/// - `{"type":"subscribed","all":false,"instruments":[{"id":...,"name":...,"status":...,"lastSeenAt":...}]}`
///   after each, the current state of what the socket follows;
/// - `{"type":"readings","instrumentId":...,"readings":[{"metric":...,"value":...,"unit":...,"recordedAt":...}]}`
///   when a batch sent on a bridge socket stored readings of a followed
///   instrument;
/// - `{"type":"status","instrumentId":...,"status":...}` when such a
///   batch's heartbeat reports that a followed instrument's status changed;
/// - `{"type":"error",...}` as for a bridge.
///
/// Without an upgrade this is 400; on a deployment without WebSockets it is
/// 501 `NOT_IMPLEMENTED`: bridges then use `POST /api/v1/bridges/ingest`
/// and `GET /api/v1/bridges/commands`, dashboards
/// `GET /api/v1/instruments/{id}/readings`.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/v1/live",
    security(("bearerAuth" = []), ("apiKey" = []), ("bridgeToken" = [])),
    params(
        ("Upgrade" = String, Header, description = "`websocket`"),
        ("Sec-WebSocket-Protocol" = Option<String>, Header, nullable = false, description = "`antevus.live.v1`, and `bearer.<token>` for a browser")),
    responses(
        (status = 101, description = "Switched to the WebSocket protocol; the messages are in the description"),
        (status = 501, description = "This deployment has no WebSockets: use the HTTP alternatives"))))]
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
