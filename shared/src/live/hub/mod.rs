//! The live hub's logic, whoever holds the sockets (a Durable Object per
//! organization on Workers, the native host's registry in the suites).
//!
//! One endpoint, `GET /api/v1/live`, upgraded to a WebSocket: a bridge's key
//! makes the socket a *bridge* socket, anything else with `instruments:view`
//! a *dashboard* socket. A host calls [`admit`] for the upgrade request,
//! keeps the returned [`Peer`] with the socket, and for every text message
//! calls [`on_text`], and every [`TICK`] calls [`tick`]; it sends the
//! [`Reaction`]'s replies to that socket and each [`Broadcast`] to the
//! sockets whose peer [`Peer::wants`] it. Nothing here names a platform type.
//!
//! Bridge to hub: `{"type":"batch","batch":Batch}`; hub to bridge:
//! `{"type":"ack","ack":BatchAck}`, `{"type":"commands","commands":[...]}`,
//! `{"type":"error","status":409,"error":{code,message,details}}`.
//! Dashboard to hub: `{"type":"subscribe","instrumentIds":[...]}` or
//! `{"type":"subscribe","all":true}`, `{"type":"unsubscribe",...}`; hub to
//! dashboard: `{"type":"subscribed",...}`, `{"type":"readings",...}`,
//! `{"type":"status",...}`, `{"type":"error",...}`.
//!
//! Batches go through [`crate::live::persist::ingest`] exactly as `POST
//! /api/v1/bridges/ingest` does (the caller's credentials checked again for
//! each, rate limit included); the credentials of any socket are checked
//! again at least every [`RECHECK_SECS`], so a revoked key, an expired token
//! or a logout closes the socket.
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::auth::{self, Permission, Principal};
use crate::ctx::Ctx;
use crate::envelope::ErrorBody;
use crate::error::ApiError;
use crate::platform::Platform;
use crate::request::{ClientIp, Rq};

mod admit;
mod message;
mod tick;

pub use admit::{admit, is_handshake, is_upgrade};
pub use message::on_text;
pub use tick::tick;

/// The function (route) that serves the hub.
pub const FUNCTION: &str = "live";
/// On Workers: the Durable Object binding of the hub's namespace and its
/// class (defined by `host_workers::hub_function!`), one object per
/// organization.
pub const DURABLE_OBJECT_BINDING: &str = "LIVE_HUB";
pub const DURABLE_OBJECT_CLASS: &str = "LiveHub";
/// The subprotocol a client may offer; chosen when offered.
pub const PROTOCOL: &str = "antevus.live.v1";
/// A browser cannot set `Authorization` on a WebSocket: it offers its token
/// as a second subprotocol `bearer.<token>` next to [`PROTOCOL`].
pub const TOKEN_PROTOCOL_PREFIX: &str = "bearer.";
/// How often a host calls [`tick`] for a bridge's socket (the command
/// hand-out); see [`Peer::next_tick`].
pub const TICK: Duration = Duration::from_secs(1);
/// A socket's credentials are checked again after this long.
pub const RECHECK_SECS: i64 = 30;
/// The most instruments one dashboard socket follows by name (or it
/// follows all of its organization's).
pub const MAX_SUBSCRIPTIONS: usize = 20;
/// The most messages a dashboard socket sends in a minute: subscriptions
/// change rarely, and each message runs queries. One more is refused and
/// closes the socket ([`CLOSE_POLICY`]).
pub const DASHBOARD_MESSAGES_PER_MINUTE: u32 = 30;
/// How many commands one tick hands a bridge at most.
const COMMANDS_PER_TICK: i64 = 50;

/// Close codes (4000-4999 are the application's).
pub const CLOSE_UNAUTHORIZED: u16 = 4401;
pub const CLOSE_FORBIDDEN: u16 = 4403;
pub const CLOSE_POLICY: u16 = 1008;
pub const CLOSE_INTERNAL: u16 = 1011;

/// Which side of the live path a socket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    Bridge,
    Dashboard,
}

impl Role {
    /// The tag a host files the socket under.
    pub fn tag(self) -> &'static str {
        match self {
            Role::Bridge => "bridge",
            Role::Dashboard => "dashboard",
        }
    }
}

/// Who is on a socket, kept by the host with it (on Workers as the socket's
/// attachment, in the Durable Object's storage, so it survives hibernation:
/// kept small). It keeps no credential: what the credential resolved to
/// when the socket opened (the login and its token's expiry, or the API
/// key's id) is checked again from the database
/// ([`crate::auth::reauthenticate`]). It is never logged and has no `Debug`.
#[derive(Clone, Serialize, Deserialize)]
pub struct Peer {
    pub role: Role,
    #[serde(rename = "o")]
    pub organization_id: uuid::Uuid,
    /// The bridge on a bridge socket.
    #[serde(rename = "b", default, skip_serializing_if = "Option::is_none")]
    pub bridge_id: Option<uuid::Uuid>,
    /// A dashboard follows every instrument of its organization.
    #[serde(rename = "a", default)]
    pub all: bool,
    /// Or these.
    #[serde(rename = "i", default)]
    pub instruments: Vec<uuid::Uuid>,
    /// The opening request's user agent (for the audit trail), capped.
    #[serde(rename = "ua", default, skip_serializing_if = "Option::is_none")]
    user_agent: Option<String>,
    #[serde(rename = "ip", default)]
    client_ip: Option<IpAddr>,
    /// When the credentials were last found good (unix seconds).
    #[serde(rename = "c")]
    checked_at: i64,
    /// The minute (unix seconds at its start) a dashboard's messages are
    /// counted in, and how many it sent in it.
    #[serde(rename = "w", default)]
    window_start: i64,
    #[serde(rename = "m", default)]
    messages: u32,
    #[serde(rename = "p")]
    principal: Principal,
}

impl Peer {
    /// Whether this socket is to receive `broadcast`.
    pub fn wants(&self, broadcast: &Broadcast) -> bool {
        self.role == Role::Dashboard
            && self.organization_id == broadcast.organization_id
            && (self.all || self.instruments.contains(&broadcast.instrument_id))
    }

    /// How long a host may wait before calling [`tick`] for this socket
    /// (`now` in unix seconds): a bridge waits for its commands, so
    /// [`TICK`]; a dashboard only needs its credentials checked again when
    /// they are due, [`RECHECK_SECS`] after the last check.
    pub fn next_tick(&self, now: i64) -> Duration {
        match self.role {
            Role::Bridge => TICK,
            Role::Dashboard => {
                let due = self.checked_at.saturating_add(RECHECK_SECS);
                let wait = u64::try_from(due.saturating_sub(now)).unwrap_or(0);
                Duration::from_secs(wait).max(TICK)
            }
        }
    }

    /// Counts a dashboard's message sent at `now` (unix seconds); false
    /// when it is one more than [`DASHBOARD_MESSAGES_PER_MINUTE`] in the
    /// current minute.
    pub fn count_message(&mut self, now: i64) -> bool {
        if now - self.window_start >= 60 {
            self.window_start = now;
            self.messages = 0;
        }
        self.messages = self.messages.saturating_add(1);
        self.messages <= DASHBOARD_MESSAGES_PER_MINUTE
    }

    /// Carries over what a dashboard's own messages changed in `other`
    /// (its subscriptions, its message count): for a host that stores a
    /// socket's peer after a message while ticks may have stored it too.
    pub fn adopt_messages(&mut self, other: &Peer) {
        self.all = other.all;
        self.instruments.clone_from(&other.instruments);
        self.window_start = other.window_start;
        self.messages = other.messages;
    }

    /// Carries `other`'s credential check over when it is the newer one:
    /// for a host that ran a tick and a message of the same socket at once
    /// and must keep both outcomes.
    pub fn adopt_check(&mut self, other: &Peer) {
        if other.checked_at > self.checked_at {
            self.checked_at = other.checked_at;
            self.principal = other.principal.clone();
        }
    }

    /// A request standing for this socket's next message: its user agent
    /// and address, a new request id (no credential: see [`Peer`]).
    fn request(&self) -> http::Request<Bytes> {
        let mut req = http::Request::new(Bytes::new());
        if let Some(value) = self
            .user_agent
            .as_deref()
            .and_then(|ua| http::HeaderValue::from_str(ua).ok())
        {
            req.headers_mut().insert(http::header::USER_AGENT, value);
        }
        if let Some(ip) = self.client_ip {
            req.extensions_mut().insert(ClientIp(ip));
        }
        req
    }

    /// The caller, checked again when the last check is older than
    /// [`RECHECK_SECS`] (or `always`).
    async fn principal<P: Platform>(
        &mut self,
        ctx: &Ctx<P>,
        rq: &mut Rq,
        always: bool,
    ) -> Result<Principal, ApiError> {
        let now = ctx.now().unix_timestamp();
        if always || now - self.checked_at >= RECHECK_SECS {
            let principal = auth::reauthenticate(ctx, rq, &self.principal).await?;
            if principal.user_id != self.principal.user_id
                || principal.organization_id != self.organization_id
            {
                return Err(ApiError::TokenInvalid("credentials changed hands"));
            }
            if self.role == Role::Dashboard {
                principal.require(Permission::InstrumentsView)?;
            }
            self.principal = principal;
            self.checked_at = now;
        } else {
            rq.identify(self.principal.caller());
        }
        Ok(self.principal.clone())
    }
}

/// A socket the hub let in.
pub struct Admitted {
    pub peer: Peer,
    /// The subprotocol to answer with ([`PROTOCOL`] when the client offered it).
    pub protocol: Option<&'static str>,
}

/// Something for the dashboards that follow `instrument_id`.
#[derive(Debug, Clone, PartialEq)]
pub struct Broadcast {
    pub organization_id: uuid::Uuid,
    pub instrument_id: uuid::Uuid,
    pub text: String,
}

/// What a host does after a message or a tick.
#[derive(Debug, Default)]
pub struct Reaction {
    /// Messages for the socket the message came from, in order.
    pub replies: Vec<String>,
    /// Messages for the organization's dashboards that want them.
    pub broadcasts: Vec<Broadcast>,
    /// Instrument statuses a bridge reported, for [`Memory::changes`].
    pub reported: Vec<(uuid::Uuid, String)>,
    /// Close the socket after the replies.
    pub close: Option<(u16, &'static str)>,
}

impl Reaction {
    fn reply(text: String) -> Reaction {
        Reaction {
            replies: vec![text],
            ..Reaction::default()
        }
    }

    /// The error as a message; a refused credential also closes the socket.
    fn failure(rq: &Rq, err: &ApiError) -> Reaction {
        crate::request::log_error(rq.id(), err);
        let close = match err {
            ApiError::TokenExpired | ApiError::TokenInvalid(_) | ApiError::InvalidCredentials => {
                Some((CLOSE_UNAUTHORIZED, "credentials no longer valid"))
            }
            ApiError::Forbidden { .. } => Some((CLOSE_FORBIDDEN, "permission withdrawn")),
            _ => None,
        };
        Reaction {
            replies: vec![error_text(err)],
            close,
            ..Reaction::default()
        }
    }
}

/// What the hub sends a dashboard socket (and, `error`, a bridge's): one
/// JSON text message each, told apart by `type`. Part of the OpenAPI
/// document's components, so the web application's client is typed by it.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum DashboardEvent {
    /// The answer to `subscribe` / `unsubscribe`: what the socket follows
    /// now (`all`: every instrument of the organization), with each one's
    /// current state, to draw before the first reading arrives.
    Subscribed {
        all: bool,
        instruments: Vec<FollowedInstrument>,
    },
    /// Readings just stored for one instrument, oldest first.
    #[serde(rename_all = "camelCase")]
    Readings {
        instrument_id: uuid::Uuid,
        readings: Vec<LiveReading>,
    },
    /// An instrument's status changed (its bridge reported it).
    #[serde(rename_all = "camelCase")]
    Status {
        instrument_id: uuid::Uuid,
        #[cfg_attr(feature = "openapi", schema(value_type = crate::domain::InstrumentStatus))]
        status: String,
    },
    /// A message was refused: the HTTP status and the error envelope's
    /// `error` it would have had.
    Error { status: u16, error: ErrorBody },
}

/// An instrument a dashboard socket follows.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct FollowedInstrument {
    pub id: uuid::Uuid,
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = crate::domain::InstrumentStatus))]
    pub status: String,
    pub last_seen_at: Option<crate::domain::Timestamp>,
}

/// One reading as a dashboard receives it.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LiveReading {
    pub metric: String,
    pub value: f64,
    pub unit: Option<String>,
    pub recorded_at: crate::domain::Timestamp,
}

impl DashboardEvent {
    pub fn text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// An error in the envelope's shape, as a message.
pub fn error_text(err: &ApiError) -> String {
    DashboardEvent::Error {
        status: err.status().as_u16(),
        error: ErrorBody::of(err),
    }
    .text()
}

/// The last status the hub told dashboards for each instrument, so a
/// bridge's heartbeat becomes a `status` message only when it changed.
#[derive(Debug, Default)]
pub struct Memory {
    statuses: HashMap<uuid::Uuid, String>,
}

impl Memory {
    /// The `status` broadcasts for what `reaction` reported that changed.
    pub fn changes(&mut self, organization_id: uuid::Uuid, reaction: &Reaction) -> Vec<Broadcast> {
        let mut out = Vec::new();
        for (instrument_id, status) in &reaction.reported {
            if self.statuses.get(instrument_id) == Some(status) {
                continue;
            }
            self.statuses.insert(*instrument_id, status.clone());
            out.push(Broadcast {
                organization_id,
                instrument_id: *instrument_id,
                text: DashboardEvent::Status {
                    instrument_id: *instrument_id,
                    status: status.clone(),
                }
                .text(),
            });
        }
        out
    }
}
/// The request a socket's message or tick stands for; without audit keys
/// (a broken deployment) the socket is closed.
pub(super) fn request<P: Platform>(ctx: &Ctx<P>, peer: &Peer) -> Result<Rq, Reaction> {
    Rq::new(ctx, peer.request(), true).map_err(|_| Reaction {
        close: Some((CLOSE_INTERNAL, "service misconfigured")),
        ..Reaction::default()
    })
}

#[cfg(test)]
mod tests {
    use super::message::readings_of;
    use super::*;
    use crate::live::{Batch, BatchAck, Item};
    use crate::live::{Heartbeat, Reading, Record, Rejected};
    use time::OffsetDateTime;

    fn uuid(n: u128) -> uuid::Uuid {
        uuid::Uuid::from_u128(n)
    }

    fn dashboard(org: uuid::Uuid, all: bool, instruments: Vec<uuid::Uuid>) -> Peer {
        Peer {
            role: Role::Dashboard,
            organization_id: org,
            bridge_id: None,
            all,
            instruments,
            user_agent: None,
            client_ip: None,
            checked_at: 0,
            window_start: 0,
            messages: 0,
            principal: Principal {
                user_id: uuid(9),
                organization_id: org,
                role: crate::auth::Role::Viewer,
                session_id: None,
                api_key_id: None,
                scopes: None,
                expires_at: None,
                token_kid: None,
            },
        }
    }

    #[test]
    fn a_dashboard_sends_so_many_messages_a_minute() {
        let mut peer = dashboard(uuid(1), true, vec![]);
        let start = 1_800_000_000;
        for n in 0..DASHBOARD_MESSAGES_PER_MINUTE {
            assert!(peer.count_message(start + i64::from(n)), "message {n}");
        }
        assert!(
            !peer.count_message(start + 59),
            "one more in the same minute"
        );
        assert!(peer.count_message(start + 60), "a new minute");
    }

    #[test]
    fn an_attachment_keeps_no_credential() {
        let mut peer = dashboard(uuid(1), true, vec![uuid(2)]);
        peer.user_agent = Some("Mozilla/5.0".into());
        peer.principal.session_id = Some(uuid(3));
        peer.principal.expires_at = Some(1_800_000_000);
        peer.principal.token_kid = Some("k1".into());
        let stored = serde_json::to_value(&peer).unwrap_or_default();
        let keys = |value: &serde_json::Value| {
            let mut keys: Vec<String> = value
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default();
            keys.sort();
            keys
        };
        assert_eq!(
            keys(&stored),
            ["a", "c", "i", "ip", "m", "o", "p", "role", "ua", "w"]
        );
        assert_eq!(
            keys(&stored["p"]),
            [
                "api_key_id",
                "expires_at",
                "organization_id",
                "role",
                "scopes",
                "session_id",
                "token_kid",
                "user_id"
            ]
        );
        // What the host stores comes back as it was.
        let back: Peer =
            serde_json::from_value(stored).unwrap_or_else(|_| dashboard(uuid(0), false, vec![]));
        assert_eq!(back.principal, peer.principal);
        assert_eq!(back.user_agent, peer.user_agent);
    }

    fn broadcast(org: uuid::Uuid, instrument: uuid::Uuid) -> Broadcast {
        Broadcast {
            organization_id: org,
            instrument_id: instrument,
            text: String::new(),
        }
    }

    #[test]
    fn bridges_tick_every_second_and_dashboards_when_their_check_is_due() {
        let mut peer = dashboard(uuid(1), true, vec![]);
        peer.checked_at = 1_000;
        assert_eq!(peer.next_tick(1_000), Duration::from_secs(30));
        assert_eq!(peer.next_tick(1_021), Duration::from_secs(9));
        assert_eq!(peer.next_tick(1_030), TICK, "due now: the next tick");
        assert_eq!(peer.next_tick(5_000), TICK, "overdue: the next tick");
        peer.role = Role::Bridge;
        peer.bridge_id = Some(uuid(3));
        assert_eq!(peer.next_tick(1_000), TICK, "commands wait for a bridge");
    }

    #[test]
    fn dashboards_get_only_their_organizations_followed_instruments() {
        let (lab, other) = (uuid(1), uuid(2));
        let oven = uuid(10);
        let follower = dashboard(lab, false, vec![oven]);
        assert!(follower.wants(&broadcast(lab, oven)));
        assert!(!follower.wants(&broadcast(lab, uuid(11))));
        // Following everything never reaches across organizations.
        let everything = dashboard(other, true, Vec::new());
        assert!(!everything.wants(&broadcast(lab, oven)));
        assert!(everything.wants(&broadcast(other, oven)));
        // A bridge's socket receives no broadcasts.
        let mut bridge = dashboard(lab, true, Vec::new());
        bridge.role = Role::Bridge;
        assert!(!bridge.wants(&broadcast(lab, oven)));
    }

    #[test]
    fn the_peer_fits_a_workers_socket_attachment() {
        // Workers keep at most 2,048 bytes per socket: the longest user
        // agent kept, the most instruments by name, an API key's scopes.
        let mut peer = dashboard(
            uuid(1),
            false,
            (0..MAX_SUBSCRIPTIONS as u128).map(uuid).collect(),
        );
        peer.user_agent = Some("y".repeat(120));
        peer.principal.api_key_id = Some(uuid(5));
        peer.principal.scopes = Some(crate::auth::Permission::ALL.to_vec());
        peer.client_ip = Some("2001:db8::1".parse().unwrap_or(IpAddr::from([0; 16])));
        let size = serde_json::to_vec(&peer)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        assert!(size < 2048, "{size} bytes");
    }

    fn reading(seq: u64, instrument: uuid::Uuid) -> Record {
        Record {
            seq,
            item: Item::Reading(Reading {
                instrument_id: instrument,
                metric: "temperature".into(),
                value: seq as f64,
                unit: Some("C".into()),
                recorded_at: OffsetDateTime::UNIX_EPOCH.into(),
            }),
        }
    }

    #[test]
    fn only_readings_stored_now_are_broadcast_one_message_per_instrument() {
        let (a, b) = (uuid(10), uuid(11));
        let batch = Batch {
            stream: uuid(5),
            records: vec![
                reading(4, a),
                reading(5, a),
                reading(6, b),
                reading(7, a),
                reading(8, b),
            ],
            heartbeat: Heartbeat::default(),
        };
        // 4 and 5 were stored before; 8 was rejected.
        let ack = BatchAck {
            stream: uuid(5),
            acked: 8,
            stored: 2,
            duplicates: 2,
            rejected: vec![Rejected {
                seq: 8,
                reason: "no such instrument".into(),
            }],
        };
        let out = readings_of(uuid(1), &batch, &ack);
        let values: Vec<(uuid::Uuid, Vec<f64>)> = out
            .iter()
            .map(|b| {
                let v: serde_json::Value = serde_json::from_str(&b.text).unwrap_or_default();
                let values = v["readings"]
                    .as_array()
                    .map(|r| r.iter().filter_map(|x| x["value"].as_f64()).collect())
                    .unwrap_or_default();
                (b.instrument_id, values)
            })
            .collect();
        assert_eq!(values, vec![(a, vec![7.0]), (b, vec![6.0])]);
    }

    #[test]
    fn a_status_is_told_once_until_it_changes() {
        let mut memory = Memory::default();
        let oven = uuid(10);
        let reported = |status: &str| Reaction {
            reported: vec![(oven, status.to_owned())],
            ..Reaction::default()
        };
        assert_eq!(memory.changes(uuid(1), &reported("online")).len(), 1);
        assert!(memory.changes(uuid(1), &reported("online")).is_empty());
        let changed = memory.changes(uuid(1), &reported("error"));
        assert_eq!(changed.len(), 1);
        assert!(changed[0].text.contains("\"error\""));
    }

    #[test]
    fn errors_keep_the_envelopes_shape_and_refused_credentials_close() {
        let text = error_text(&ApiError::invalid("instrumentIds", "No instrument"));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(v["type"], "error");
        assert_eq!(v["status"], 400);
        assert_eq!(v["error"]["code"], "VALIDATION_ERROR");
        assert_eq!(v["error"]["details"][0]["field"], "instrumentIds");
        let internal = error_text(&ApiError::internal("connection refused by 10.0.0.5"));
        assert!(!internal.contains("10.0.0.5"), "{internal}");
    }
}
