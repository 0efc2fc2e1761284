//! Letting a socket in: [`admit`] turns an upgrade request into a [`Peer`]
//! (a bridge, by its key, or a dashboard with `instruments:view`) or the
//! refusal to answer with.

use bytes::Bytes;

use super::{Admitted, PROTOCOL, Peer, Role, TOKEN_PROTOCOL_PREFIX};
use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::error::ApiError;
use crate::live::persist;
use crate::platform::Platform;
use crate::request::Rq;

/// Checks an upgrade request: a GET asking for a WebSocket, credentials
/// (`Authorization`, `X-API-Key`, or the `bearer.<token>` subprotocol) that
/// are a bridge's key or a caller with `instruments:view`. A refusal is the
/// envelope to answer with (recorded in the audit trail when it must be).
pub async fn admit<P: Platform>(
    ctx: &Ctx<P>,
    mut req: http::Request<Bytes>,
) -> Result<Admitted, http::Response<crate::body::Body>> {
    let offered: Vec<String> = req
        .headers()
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    let token = offered
        .iter()
        .find_map(|p| p.strip_prefix(TOKEN_PROTOCOL_PREFIX))
        .map(str::to_owned);
    if let Some(token) = &token
        && !req.headers().contains_key(http::header::AUTHORIZATION)
        && let Ok(value) = http::HeaderValue::from_str(&format!("Bearer {token}"))
    {
        req.headers_mut().insert(http::header::AUTHORIZATION, value);
    }
    let protocol = offered.iter().any(|p| p == PROTOCOL).then_some(PROTOCOL);
    let mut rq = Rq::new(ctx, req, true).map_err(|answer| *answer)?;
    match admission(ctx, &mut rq, token.is_some(), protocol).await {
        Ok(peer) => Ok(Admitted { peer, protocol }),
        Err(err) => {
            crate::audit::record_refusal(ctx, &rq, &err).await;
            Err(rq.respond(ctx, Err(err)))
        }
    }
}

/// Whether `req` asks to become a WebSocket.
pub fn is_upgrade(req: &http::Request<Bytes>) -> bool {
    req.headers()
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Whether `req` is a WebSocket handshake, even after a proxy dropped its
/// hop-by-hop `Upgrade` header (`Sec-WebSocket-Key` is end to end).
pub fn is_handshake(req: &http::Request<Bytes>) -> bool {
    is_upgrade(req) || req.headers().contains_key(http::header::SEC_WEBSOCKET_KEY)
}

async fn admission<P: Platform>(
    ctx: &Ctx<P>,
    rq: &mut Rq,
    token_as_protocol: bool,
    protocol: Option<&'static str>,
) -> Result<Peer, ApiError> {
    if *rq.method() != http::Method::GET {
        return Err(crate::request::method_not_allowed(&[http::Method::GET]));
    }
    if !is_upgrade(&rq.req) {
        return Err(ApiError::invalid(
            "upgrade",
            "This endpoint is a WebSocket: connect with Upgrade: websocket",
        ));
    }
    if token_as_protocol && protocol.is_none() {
        return Err(ApiError::invalid(
            "sec-websocket-protocol",
            format!("Offer {PROTOCOL} together with the bearer.<token> subprotocol"),
        ));
    }
    let principal = auth::authenticate(ctx, rq).await?;
    // A key that is no bridge's is a dashboard's (any other failure stops
    // here: a bridge must never be taken for a dashboard).
    let bridge = match principal.api_key_id {
        Some(_) => match persist::bridge_of(ctx, &principal).await {
            Ok(bridge) => Some(bridge),
            Err(ApiError::Forbidden { .. }) => None,
            Err(err) => return Err(err),
        },
        None => None,
    };
    let role = match bridge {
        Some(_) => Role::Bridge,
        None => {
            principal.require(Permission::InstrumentsView)?;
            Role::Dashboard
        }
    };
    let user_agent = rq
        .req
        .headers()
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(120).collect());
    Ok(Peer {
        role,
        organization_id: principal.organization_id,
        bridge_id: bridge.map(|b| b.id),
        all: false,
        instruments: Vec::new(),
        user_agent,
        client_ip: rq.client_ip(),
        checked_at: ctx.now().unix_timestamp(),
        window_start: 0,
        messages: 0,
        principal,
    })
}
