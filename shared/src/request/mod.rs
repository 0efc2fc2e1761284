//! A request in flight ([`Rq`]) and the parsing of what it carries
//! ([`parse`]).
//!
//! [`Rq`] is the request's identity and audit context: its id, when it
//! arrived, the route's parameters, the client's address and user agent,
//! the key that signs its audit events, and — once authenticated — its
//! caller. Handlers take it by `&mut` where they may change it
//! (authentication names the caller and adds the rate-limit headers), so
//! nothing about a request is changed behind its back. [`Rq::respond`]
//! renders the handler's outcome in the envelope.

pub mod cors;
mod parse;

use std::net::IpAddr;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Response};
use time::OffsetDateTime;

use crate::body::Body;
use crate::config::{Config, ConfigError, SigningKey};
use crate::ctx::Ctx;
use crate::envelope::{self, Metadata, Reply, request_id};
use crate::error::{ApiError, Caller};
use crate::platform::Platform;

pub use parse::{
    DRAIN_LIMIT, bearer_token, parse_json, parse_json_bytes, parse_query, parse_value, read_capped,
    time_field, uuid_field,
};

/// The client address, as the host reports it, in the request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// The client address in a header's value: an address, an address with a
/// port (`192.0.2.1:4711`, `[2001:db8::1]:4711`), or a list (`X-Forwarded-For`),
/// of which the last entry counts: the one the trusted proxy added.
pub fn parse_client_address(value: &str) -> Option<IpAddr> {
    let last = value.rsplit(',').next()?.trim();
    last.parse::<IpAddr>()
        .ok()
        .or_else(|| last.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
}

/// A request in flight.
pub struct Rq {
    pub req: Request<Bytes>,
    id: String,
    /// When the request arrived (microsecond precision, as stored).
    started_at: OffsetDateTime,
    /// The route's parameters (`:id` -> value), in path order.
    params: Vec<(&'static str, String)>,
    /// The key that signs this request's audit events (none for a route
    /// that declares it records none).
    audit_key: Option<SigningKey>,
    /// Who is calling, once authenticated.
    caller: Option<Caller>,
    /// Headers for whatever answer this request gets (rate-limit state,
    /// an upload's offset).
    response_headers: Vec<(HeaderName, HeaderValue)>,
}

impl Rq {
    /// A request of `ctx`'s deployment. When it `audits` (its route records
    /// audit events: every route but the few that declare none) and the
    /// audit keys are missing, it is answered at once (a generic 500 in the
    /// envelope): such a route records refusals, and an event is never
    /// written unsigned.
    pub fn new<P: Platform>(
        ctx: &Ctx<P>,
        req: Request<Bytes>,
        audits: bool,
    ) -> Result<Self, Box<Response<Body>>> {
        let audit_key = if audits {
            match ctx.config.audit_signing_key() {
                Ok(key) => Some(key.clone()),
                Err(err) => {
                    return Err(Box::new(config_failure(
                        &ctx.platform,
                        &ctx.config,
                        req.headers(),
                        &err,
                    )));
                }
            }
        } else {
            None
        };
        let id = request_id(req.headers(), || ctx.new_uuid());
        let now = ctx.now();
        let started_at = now
            .replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
            .unwrap_or(now);
        Ok(Rq {
            req,
            id,
            started_at,
            params: Vec::new(),
            audit_key,
            caller: None,
            response_headers: Vec::new(),
        })
    }

    /// The route's parameters, as the route table matched them.
    pub fn with_params(mut self, params: Vec<(&'static str, String)>) -> Self {
        self.params = params;
        self
    }

    /// Names the caller (authentication does this once it knows who is
    /// calling): its session goes into this request's audit events.
    pub fn identify(&mut self, caller: Caller) {
        self.caller = Some(caller);
    }

    /// The authenticated caller, if any.
    pub fn caller(&self) -> Option<Caller> {
        self.caller
    }

    /// When the request arrived: the time of its audit events.
    pub fn started_at(&self) -> OffsetDateTime {
        self.started_at
    }

    /// The key that signs this request's audit events; a route that
    /// declared it records none has no key, and asking is a 500.
    pub fn audit_key(&self) -> Result<&SigningKey, ApiError> {
        self.audit_key
            .as_ref()
            .ok_or_else(|| ApiError::internal("this route declares no audit events"))
    }

    /// Adds headers to whatever answer this request gets.
    pub fn add_headers(&mut self, headers: impl IntoIterator<Item = (HeaderName, HeaderValue)>) {
        self.response_headers.extend(headers);
    }

    /// The client address as text, for rate-limit keys (`unknown` when the
    /// platform reports none).
    pub fn client_key(&self) -> String {
        self.client_ip()
            .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The route parameter `name` of this request's path as a UUID; a
    /// malformed one is 404 (no such resource), like an unknown one.
    pub fn uuid_param(&self, name: &str) -> Result<uuid::Uuid, ApiError> {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, value)| uuid::Uuid::parse_str(value).ok())
            .ok_or(ApiError::NotFound)
    }

    pub fn method(&self) -> &Method {
        self.req.method()
    }

    pub fn client_ip(&self) -> Option<IpAddr> {
        self.req.extensions().get::<ClientIp>().map(|c| c.0)
    }

    pub fn user_agent(&self) -> Option<String> {
        let ua = self
            .req
            .headers()
            .get(http::header::USER_AGENT)?
            .to_str()
            .ok()?;
        Some(ua.chars().take(512).collect())
    }

    /// Parses the JSON body within the configured size cap.
    pub fn json<T: serde::de::DeserializeOwned, P: Platform>(
        &self,
        ctx: &Ctx<P>,
    ) -> Result<T, ApiError> {
        parse_json(&self.req, ctx.config.max_body_bytes()?)
    }

    /// The version the client read, for an update under optimistic
    /// concurrency: `If-Match: "3"` (or `W/"3"`), else the body's
    /// `version`. Neither is `428`.
    pub fn expected_version(
        &self,
        body_version: Option<&serde_json::Value>,
    ) -> Result<i64, ApiError> {
        if let Some(raw) = self.req.headers().get(http::header::IF_MATCH) {
            let text = raw.to_str().unwrap_or("");
            let tag = text.trim().trim_start_matches("W/").trim_matches('"');
            return tag.parse::<i64>().map_err(|_| {
                ApiError::invalid("If-Match", "Must be the ETag you read, e.g. \"3\"")
            });
        }
        match body_version {
            None => Err(ApiError::PreconditionRequired),
            Some(v) => v
                .as_i64()
                .filter(|v| *v >= 1)
                .ok_or_else(|| ApiError::invalid("version", "Must be a positive integer")),
        }
    }

    /// The `Idempotency-Key` header: 1 to 255 visible ASCII characters.
    pub fn idempotency_key(&self) -> Result<String, ApiError> {
        let problem = || {
            ApiError::invalid(
                "Idempotency-Key",
                "Send an Idempotency-Key header (1 to 255 visible ASCII characters) so a retry cannot run the command twice",
            )
        };
        let raw = self
            .req
            .headers()
            .get("idempotency-key")
            .ok_or_else(problem)?;
        let key = raw.to_str().map_err(|_| problem())?.trim();
        if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(problem());
        }
        Ok(key.to_owned())
    }

    pub fn query<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        parse_query(&self.req)
    }

    /// Renders the handler's result in the envelope; internal causes are
    /// logged with the request id and never reach the client.
    pub fn respond<P: Platform>(
        self,
        ctx: &Ctx<P>,
        result: Result<Reply, ApiError>,
    ) -> Response<Body> {
        let metadata = Metadata::new(ctx.now(), &self.id);
        let mut response = match result {
            Ok(reply) => envelope::success(reply, metadata),
            Err(err) => {
                log_error(&self.id, &err);
                envelope::failure(&err, metadata)
            }
        };
        for (name, value) in self.response_headers {
            response.headers_mut().append(name, value);
        }
        cors::seal(
            &ctx.config,
            self.req.headers(),
            cors::is_https(&self.req),
            &mut response,
        );
        response
    }
}

/// Logs a failure: internal causes as errors (the client saw nothing of
/// them), refusals briefly.
pub fn log_error(request_id: &str, err: &ApiError) {
    if err.is_internal() {
        tracing::error!(request_id, error = %err, "request failed");
    } else {
        tracing::info!(request_id, code = err.code().as_str(), "request refused");
    }
}

/// Fails with 405 unless `method` is one of `allow`.
pub fn method_not_allowed(allow: &'static [Method]) -> ApiError {
    ApiError::MethodNotAllowed { allow }
}

/// A response for a request refused before any handler ran (body over the
/// cap, configuration missing, unknown path), still in the envelope, with
/// the CORS and HSTS headers of `config` when the host has read it.
pub fn early_failure<P: Platform>(
    platform: &P,
    config: Option<&Config>,
    headers: &http::HeaderMap,
    err: &ApiError,
) -> Response<Body> {
    let id = request_id(headers, || {
        let mut bytes = [0u8; 16];
        platform.fill_random(&mut bytes);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    });
    log_error(&id, err);
    let mut response = envelope::failure(err, Metadata::new(platform.now(), &id));
    if let Some(config) = config {
        cors::seal(config, headers, false, &mut response);
    }
    response
}

/// What a host does with a configuration problem: a generic 500.
pub fn config_failure<P: Platform>(
    platform: &P,
    config: &Config,
    headers: &http::HeaderMap,
    err: &ConfigError,
) -> Response<Body> {
    early_failure(platform, Some(config), headers, &ApiError::internal(err))
}
