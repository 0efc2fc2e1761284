//! The live hub on Workers: the `live` function admits an upgrade request
//! (credentials, role) and hands it to its organization's Durable Object,
//! which holds the organization's sockets with the hibernation API (each
//! socket's [`Peer`] is its attachment) and runs `shared::live::hub` for
//! every message and, while any socket is open, from an alarm: every second
//! while a bridge is connected, otherwise when a dashboard's credentials
//! are due for their check.
//! [`hub_function!`](crate::hub_function) defines both in the function crate.

use std::cell::RefCell;

use bytes::Bytes;
use shared::live::hub::{self, Admitted, Memory, Peer, Reaction, Role};
use shared::{ApiError, Ctx};
use worker::{Env, Headers, Request, RequestInit, Response, State, WebSocket, WebSocketPair};

use crate::WorkersPlatform;

/// Carries the admitted peer from the function to the Durable Object (an
/// internal request; clients never reach the object directly).
const PEER_HEADER: &str = "x-antevus-peer";
const PROTOCOL_HEADER: &str = "x-antevus-protocol";

fn failure(err: &ApiError) -> worker::Result<Response> {
    crate::respond(shared::request::early_failure(
        &WorkersPlatform,
        None,
        &http::HeaderMap::new(),
        err,
    ))
}

/// Admits the upgrade request and hands it to the organization's object.
pub async fn open(
    ctx: &Ctx<WorkersPlatform>,
    env: &Env,
    request: http::Request<Bytes>,
) -> worker::Result<Response> {
    let Admitted { peer, protocol } = match hub::admit(ctx, request).await {
        Ok(admitted) => admitted,
        Err(refusal) => return crate::respond(refusal),
    };
    let peer_json = match serde_json::to_string(&peer) {
        Ok(json) => json,
        Err(e) => return failure(&ApiError::internal(e)),
    };
    let stub = match env
        .durable_object(hub::DURABLE_OBJECT_BINDING)
        .and_then(|ns| ns.get_by_name(&peer.organization_id.to_string()))
    {
        Ok(stub) => stub,
        Err(e) => return failure(&ApiError::Unavailable(format!("live hub: {e}"))),
    };
    let headers = Headers::new();
    headers.set("upgrade", "websocket")?;
    headers.set(PEER_HEADER, &peer_json)?;
    if let Some(protocol) = protocol {
        headers.set(PROTOCOL_HEADER, protocol)?;
    }
    let mut init = RequestInit::new();
    init.with_headers(headers);
    let inner = Request::new_with_init("https://live-hub/connect", &init)?;
    match stub.fetch_with_request(inner).await {
        Ok(response) => Ok(response),
        Err(e) => failure(&ApiError::Unavailable(format!("live hub: {e}"))),
    }
}

/// The object's side of [`open`]: accepts the socket and files it by role.
pub async fn accept(state: &State, request: Request) -> worker::Result<Response> {
    let headers = request.headers();
    let Some(peer) = headers
        .get(PEER_HEADER)?
        .and_then(|json| serde_json::from_str::<Peer>(&json).ok())
    else {
        return failure(&ApiError::NotFound);
    };
    let pair = WebSocketPair::new()?;
    state.accept_websocket_with_tags(&pair.server, &[peer.role.tag()]);
    pair.server.serialize_attachment(&peer)?;
    // The alarm may be set for a dashboard's next check, later than this
    // socket needs (a bridge: a second); bring it forward then.
    let now = now_ms();
    let wait = peer.next_tick(now / 1000);
    let wanted = now.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
    match state.storage().get_alarm().await? {
        Some(at) if at <= wanted => {}
        _ => state.storage().set_alarm(wait).await?,
    }
    let response = Response::from_websocket(pair.client)?;
    match headers.get(PROTOCOL_HEADER)? {
        Some(protocol) => {
            let out = Headers::new();
            out.set("sec-websocket-protocol", &protocol)?;
            Ok(response.with_headers(out))
        }
        None => Ok(response),
    }
}

fn context(env: &Env) -> Option<Ctx<WorkersPlatform>> {
    crate::init_logging();
    let config = crate::config(env);
    // The hub stores batches and checks credentials: it needs the database,
    // the token keys and the audit keys.
    let checked = config
        .database()
        .and(config.tokens().map(|_| ()))
        .and(config.audit_keys().map(|_| ()));
    match checked {
        Ok(_) => Some(Ctx::new(WorkersPlatform, config)),
        Err(e) => {
            tracing::error!(error = %e, "live hub configuration");
            None
        }
    }
}

/// Sends the replies to `ws`, the broadcasts to the dashboards that want
/// them, and closes `ws` when the reaction says so.
fn deliver(
    state: &State,
    memory: &RefCell<Memory>,
    ws: &WebSocket,
    peer: &Peer,
    reaction: Reaction,
) {
    for reply in &reaction.replies {
        let _ = ws.send_with_str(reply);
    }
    let mut broadcasts = memory.borrow_mut().changes(peer.organization_id, &reaction);
    broadcasts.splice(0..0, reaction.broadcasts);
    if !broadcasts.is_empty() {
        for dashboard in state.get_websockets_with_tag(Role::Dashboard.tag()) {
            let Ok(Some(follower)) = dashboard.deserialize_attachment::<Peer>() else {
                continue;
            };
            for broadcast in broadcasts.iter().filter(|b| follower.wants(b)) {
                let _ = dashboard.send_with_str(&broadcast.text);
            }
        }
    }
    if let Some((code, reason)) = reaction.close {
        let _ = ws.close(Some(code), Some(reason));
    }
}

/// A message on one of the object's sockets.
pub async fn message(
    state: &State,
    env: &Env,
    memory: &RefCell<Memory>,
    ws: WebSocket,
    message: worker::WebSocketIncomingMessage,
) -> worker::Result<()> {
    let Ok(Some(mut peer)) = ws.deserialize_attachment::<Peer>() else {
        let _ = ws.close(Some(hub::CLOSE_POLICY), Some("unknown socket"));
        return Ok(());
    };
    let worker::WebSocketIncomingMessage::String(text) = message else {
        let _ = ws.send_with_str(hub::error_text(&ApiError::invalid(
            "message",
            "Messages are JSON text",
        )));
        return Ok(());
    };
    let Some(ctx) = context(env) else {
        let _ = ws.close(Some(1011), Some("hub misconfigured"));
        return Ok(());
    };
    // The object runs other events while this one waits for the database,
    // so the socket's peer is read again before it is written back: a
    // dashboard's subscriptions come from its own messages, which run one at
    // a time; a credential check is kept when it is the newer.
    let role = peer.role;
    let work = async move {
        let reaction = hub::on_text(&ctx, &mut peer, &text).await;
        Ok((peer, reaction))
    };
    let (peer, reaction) = match role {
        Role::Dashboard => state.block_concurrency_while(work).await?,
        Role::Bridge => work.await?,
    };
    store(&ws, &peer, role == Role::Dashboard)?;
    deliver(state, memory, &ws, &peer, reaction);
    Ok(())
}

/// Writes `peer` back as `ws`'s attachment over what is there now.
fn store(ws: &WebSocket, peer: &Peer, subscriptions: bool) -> worker::Result<()> {
    let mut current = match ws.deserialize_attachment::<Peer>()? {
        Some(current) => current,
        None => return Ok(()),
    };
    if subscriptions {
        current.adopt_messages(peer);
    }
    current.adopt_check(peer);
    ws.serialize_attachment(&current)
}

/// While sockets are open: every second when a bridge is connected (its
/// commands), otherwise when the soonest dashboard's credentials are due
/// for their check ([`Peer::next_tick`]).
pub async fn alarm(state: &State, env: &Env, memory: &RefCell<Memory>) -> worker::Result<Response> {
    let sockets = state.get_websockets();
    if sockets.is_empty() {
        return Response::ok("idle");
    }
    let mut next = hub::TICK;
    if let Some(ctx) = context(env) {
        let mut soonest = None::<std::time::Duration>;
        for ws in sockets {
            let Ok(Some(mut peer)) = ws.deserialize_attachment::<Peer>() else {
                continue;
            };
            let reaction = hub::tick(&ctx, &mut peer).await;
            store(&ws, &peer, false)?;
            deliver(state, memory, &ws, &peer, reaction);
            let wait = peer.next_tick(ctx.now().unix_timestamp());
            soonest = Some(soonest.map_or(wait, |s| s.min(wait)));
        }
        next = soonest.unwrap_or(hub::TICK);
    }
    state.storage().set_alarm(next).await?;
    Response::ok("ticked")
}

fn now_ms() -> i64 {
    worker::Date::now().as_millis() as i64
}

/// The close handshake's answer.
pub fn closed(ws: WebSocket, code: usize) -> worker::Result<()> {
    // 1005/1006 say no code was sent; a close frame must not carry them.
    let code = u16::try_from(code)
        .ok()
        .filter(|c| !matches!(c, 1005 | 1006 | 1015))
        .unwrap_or(1000);
    let _ = ws.close(Some(code), Some("closed"));
    Ok(())
}

/// Defines the live hub's function: the fetch entry (an upgrade goes to the
/// organization's hub, anything else to `$handler`) and the Durable Object
/// class `LiveHub`.
#[macro_export]
macro_rules! hub_function {
    ($name:literal, $handler:path) => {
        #[::worker::event(fetch)]
        async fn fetch(
            request: ::worker::Request,
            env: ::worker::Env,
            _ctx: ::worker::Context,
        ) -> ::worker::Result<::worker::Response> {
            match $crate::prepare(request, &env, $name).await {
                Ok((ctx, request)) if ::shared::live::hub::is_upgrade(&request) => {
                    $crate::hub::open(&ctx, &env, request).await
                }
                Ok((ctx, request)) => $crate::respond($handler(&ctx, request).await),
                Err(early) => early.into_response(),
            }
        }

        /// One organization's live hub.
        #[::worker::durable_object]
        pub struct LiveHub {
            state: ::worker::State,
            env: ::worker::Env,
            memory: ::std::cell::RefCell<::shared::live::hub::Memory>,
        }

        impl ::worker::DurableObject for LiveHub {
            fn new(state: ::worker::State, env: ::worker::Env) -> Self {
                LiveHub {
                    state,
                    env,
                    memory: ::std::default::Default::default(),
                }
            }

            async fn fetch(
                &self,
                request: ::worker::Request,
            ) -> ::worker::Result<::worker::Response> {
                $crate::hub::accept(&self.state, request).await
            }

            async fn websocket_message(
                &self,
                ws: ::worker::WebSocket,
                message: ::worker::WebSocketIncomingMessage,
            ) -> ::worker::Result<()> {
                $crate::hub::message(&self.state, &self.env, &self.memory, ws, message).await
            }

            async fn websocket_close(
                &self,
                ws: ::worker::WebSocket,
                code: usize,
                _reason: String,
                _was_clean: bool,
            ) -> ::worker::Result<()> {
                $crate::hub::closed(ws, code)
            }

            async fn websocket_error(
                &self,
                _ws: ::worker::WebSocket,
                _error: ::worker::Error,
            ) -> ::worker::Result<()> {
                Ok(())
            }

            async fn alarm(&self) -> ::worker::Result<::worker::Response> {
                $crate::hub::alarm(&self.state, &self.env, &self.memory).await
            }
        }
    };
}
