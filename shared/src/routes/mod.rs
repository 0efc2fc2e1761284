//! Every route, one module each, and the route table.
//!
//! A function is one path; it serves the methods listed for it. [`ROUTES`]
//! is the single source of truth: `xtask routes` renders `spin.toml`,
//! `wrangler.toml` and the local workerd configuration from it, the native
//! host and the wasmtime front route by it, and a test fails when any of
//! them (or the crates under `functions/`) drift.

/// Defines a route module's `handle`: the request's id and envelope, and
/// dispatch by method to `async fn(&Ctx<P>, &Rq) -> Result<Reply, ApiError>`
/// handlers; any other method is `405` with `Allow`.
macro_rules! methods {
    ($($method:ident => $handler:ident),+ $(,)?) => {
        const METHODS: &[http::Method] = &[$(http::Method::$method),+];

        pub async fn handle<P: $crate::platform::Platform>(
            ctx: &$crate::platform::Ctx<P>,
            req: http::Request<bytes::Bytes>,
        ) -> http::Response<bytes::Bytes> {
            let rq = $crate::routes::Rq::new(ctx, req);
            let result = match *rq.method() {
                $(http::Method::$method => $handler(ctx, &rq).await,)+
                _ => Err($crate::routes::method_not_allowed(METHODS)),
            };
            if let Err(err) = &result {
                $crate::routes::record_refusal(ctx, &rq, err).await;
            }
            rq.respond(ctx, result)
        }
    };
}
use methods;

pub mod api_keys;
pub mod api_keys_item;
pub mod audit_events;
pub mod audit_export;
pub mod audit_log;
pub mod audit_verify;
pub mod auth_forgot_password;
pub mod auth_login;
pub mod auth_logout;
pub mod auth_me;
pub mod auth_refresh;
pub mod auth_reset_password;
pub mod auth_signup;
pub mod bridge_commands;
pub mod bridge_enroll;
pub mod bridge_ingest;
pub mod bridge_join_tokens;
pub mod bridges;
pub mod health;
pub mod instrument_commands;
pub mod instrument_control;
pub mod instrument_maintenance;
pub mod instrument_readings;
pub mod instrument_status;
pub mod instruments;
pub mod instruments_item;
pub mod live;
pub mod maintenance_item;
pub mod page;
pub mod retention_run;
pub mod run_data;
pub mod run_qc;
pub mod run_signatures;
pub mod run_stop;
pub mod runs;
pub mod runs_item;
pub mod users;
pub mod users_item;

use std::net::IpAddr;

use bytes::Bytes;
use http::{Method, Request, Response};

use crate::envelope::{self, Metadata, Reply};
use crate::error::ApiError;
use crate::platform::{ConfigError, Ctx, Platform};

/// One function: a path in Spin route syntax (literal segments and
/// `:name` parameters, each matching one non-empty segment) and the methods
/// it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Name of the function crate under `functions/`.
    pub function: &'static str,
    pub path: &'static str,
    pub methods: &'static [Method],
}

impl Route {
    /// The values of this route's parameters in `path` (query string
    /// excluded), in order; `None` when the route does not serve `path`.
    pub fn params<'p>(&self, path: &'p str) -> Option<Vec<(&'static str, &'p str)>> {
        let mut params = Vec::new();
        let mut want = self.path.split('/');
        let mut got = path.split('/');
        loop {
            match (want.next(), got.next()) {
                (None, None) => return Some(params),
                (Some(w), Some(g)) if w.starts_with(':') && !g.is_empty() => {
                    params.push((&w[1..], g));
                }
                (Some(w), Some(g)) if w == g => {}
                _ => return None,
            }
        }
    }

    /// Whether this route serves `path` (query string excluded).
    pub fn matches(&self, path: &str) -> bool {
        self.params(path).is_some()
    }

    /// How specific the pattern is: more literal segments win.
    fn specificity(&self) -> usize {
        self.path
            .split('/')
            .filter(|segment| !segment.starts_with(':'))
            .count()
    }
}

macro_rules! route_table {
    ($($function:literal => $module:ident, $path:literal, [$($method:ident),+];)+) => {
        /// The route table.
        pub const ROUTES: &[Route] = &[
            $(Route { function: $function, path: $path, methods: &[$(Method::$method),+] },)+
        ];

        /// Runs the handler of `function`; `None` when no such function exists.
        pub async fn dispatch<P: Platform>(function: &str, ctx: &Ctx<P>, req: Request<Bytes>) -> Option<Response<Bytes>> {
            match function {
                $($function => Some($module::handle(ctx, req).await),)+
                _ => None,
            }
        }
    };
}

route_table! {
    "health" => health, "/api/health", [GET];
    "auth-login" => auth_login, "/api/auth/login", [POST];
    "auth-logout" => auth_logout, "/api/auth/logout", [POST];
    "auth-refresh" => auth_refresh, "/api/auth/refresh", [POST];
    "auth-me" => auth_me, "/api/auth/me", [GET];
    "auth-forgot-password" => auth_forgot_password, "/api/auth/forgot-password", [POST];
    "auth-reset-password" => auth_reset_password, "/api/auth/reset-password", [POST];
    "auth-signup" => auth_signup, "/api/auth/signup", [POST];
    "instruments" => instruments, "/api/v1/instruments", [GET, POST];
    "instruments-item" => instruments_item, "/api/v1/instruments/:id", [GET, PUT, DELETE];
    "instrument-status" => instrument_status, "/api/v1/instruments/:id/status", [GET];
    "instrument-control" => instrument_control, "/api/v1/instruments/:id/control", [POST];
    "instrument-commands" => instrument_commands, "/api/v1/instruments/:id/commands", [GET];
    "instrument-readings" => instrument_readings, "/api/v1/instruments/:id/readings", [GET];
    "instrument-maintenance" => instrument_maintenance, "/api/v1/instruments/:id/maintenance", [GET, POST];
    "maintenance-item" => maintenance_item, "/api/v1/maintenance/:id", [PUT];
    "runs" => runs, "/api/v1/runs", [GET, POST];
    "runs-item" => runs_item, "/api/v1/runs/:id", [GET];
    "run-stop" => run_stop, "/api/v1/runs/:id/stop", [PUT];
    "run-data" => run_data, "/api/v1/runs/:id/data", [GET, POST];
    "run-qc" => run_qc, "/api/v1/runs/:id/qc", [GET];
    "run-signatures" => run_signatures, "/api/v1/runs/:id/signatures", [GET, POST];
    "audit-log" => audit_log, "/api/audit", [POST];
    "audit-events" => audit_events, "/api/audit/events", [GET];
    "audit-export" => audit_export, "/api/audit/export", [GET];
    "audit-verify" => audit_verify, "/api/audit/verify", [GET];
    "bridges" => bridges, "/api/v1/bridges", [GET];
    "bridge-join-tokens" => bridge_join_tokens, "/api/v1/bridges/join-tokens", [POST];
    "bridge-enroll" => bridge_enroll, "/api/v1/bridges/enroll", [POST];
    "bridge-ingest" => bridge_ingest, "/api/v1/bridges/ingest", [POST];
    "bridge-commands" => bridge_commands, "/api/v1/bridges/commands", [GET];
    "live" => live, "/api/v1/live", [GET];
    "retention-run" => retention_run, "/api/v1/retention/run", [POST];
    "api-keys" => api_keys, "/api/v1/api-keys", [GET, POST];
    "api-keys-item" => api_keys_item, "/api/v1/api-keys/:id", [DELETE];
    "users" => users, "/api/v1/users", [GET, POST];
    "users-item" => users_item, "/api/v1/users/:id", [GET, PUT];
}

/// The largest request body `function` takes: one upload chunk for run
/// data, a small cap for client-reported audit events, the configured JSON
/// cap for everything else.
pub fn body_limit(config: &crate::platform::Config, function: &str) -> usize {
    match function {
        "run-data" => config.storage.max_chunk_bytes(),
        "audit-log" => audit_log::MAX_BODY_BYTES,
        _ => config.max_body_bytes,
    }
}

/// The route serving `path`, the most specific first.
pub fn route_for(path: &str) -> Option<&'static Route> {
    ROUTES
        .iter()
        .filter(|r| r.matches(path))
        .max_by_key(|r| r.specificity())
}

/// The client address, as the host reports it, in the request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// A request in flight: the request, its id, and headers to add to the
/// answer (rate-limit state).
pub struct Rq {
    pub req: Request<Bytes>,
    id: String,
    extra_headers: std::sync::Mutex<Vec<(http::HeaderName, http::HeaderValue)>>,
    /// When the request arrived (microsecond precision, as stored).
    started_at: time::OffsetDateTime,
    /// The key that signs this request's audit events.
    audit_key: Option<crate::platform::HmacKey>,
    /// Who made the request, once authenticated.
    caller: std::sync::Mutex<Option<Caller>>,
    /// Whether a rate-limit check of this request started a block.
    block_started: std::sync::atomic::AtomicBool,
}

/// The authenticated caller of a request, for audit events.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub user_id: uuid::Uuid,
    pub organization_id: uuid::Uuid,
    pub session_id: Option<uuid::Uuid>,
}

impl Rq {
    pub fn new<P: Platform>(ctx: &Ctx<P>, req: Request<Bytes>) -> Self {
        let id = crate::request::request_id(req.headers(), || ctx.new_uuid());
        let now = ctx.now();
        let started_at = now
            .replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
            .unwrap_or(now);
        Rq {
            req,
            id,
            extra_headers: std::sync::Mutex::new(Vec::new()),
            started_at,
            audit_key: ctx.config.audit_keys.first().cloned(),
            caller: std::sync::Mutex::new(None),
            block_started: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Notes who is calling (set by `auth::authenticate`).
    pub fn remember(&self, principal: &crate::auth::Principal) {
        if let Ok(mut caller) = self.caller.lock() {
            *caller = Some(Caller {
                user_id: principal.user_id,
                organization_id: principal.organization_id,
                session_id: principal.session_id,
            });
        }
    }

    /// The authenticated caller, if any.
    pub fn caller(&self) -> Option<Caller> {
        self.caller.lock().ok().and_then(|c| *c)
    }

    /// Whether a rate-limit check of this request started a block.
    pub fn block_started(&self) -> bool {
        self.block_started
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// When the request arrived: the time of its audit events.
    pub fn started_at(&self) -> time::OffsetDateTime {
        self.started_at
    }

    /// The key that signs this request's audit events.
    pub fn audit_key(&self) -> Option<&crate::platform::HmacKey> {
        self.audit_key.as_ref()
    }

    /// Adds headers to whatever answer this request gets.
    pub fn add_headers(&self, headers: Vec<(http::HeaderName, http::HeaderValue)>) {
        if let Ok(mut extra) = self.extra_headers.lock() {
            extra.extend(headers);
        }
    }

    /// Applies the `class` limit to `key` (one statement); stores the
    /// rate-limit headers and fails with 429 when over.
    pub async fn limit<P: Platform>(
        &self,
        ctx: &Ctx<P>,
        class: crate::ratelimit::Class,
        key: &str,
        organization_id: Option<uuid::Uuid>,
    ) -> Result<(), ApiError> {
        let policy = ctx.config.rate_limits.policy(class);
        let statement = crate::ratelimit::check_statement(
            policy,
            &format!("{}:{key}", class.name()),
            organization_id,
        );
        let checked: crate::ratelimit::Checked = ctx
            .db()
            .fetch_optional(&statement.query, statement.params)
            .await?
            .ok_or_else(|| ApiError::internal("rate limit check returned no row"))?;
        self.apply_limit(class, policy, &checked)
    }

    /// Records a check's verdict (headers) and turns a refusal into an error.
    pub fn apply_limit(
        &self,
        class: crate::ratelimit::Class,
        policy: crate::ratelimit::Policy,
        checked: &crate::ratelimit::Checked,
    ) -> Result<(), ApiError> {
        let verdict = crate::ratelimit::verdict(class, policy, checked);
        if checked.block_started {
            self.block_started
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        self.add_headers(verdict.headers);
        verdict.refusal.map_or(Ok(()), Err)
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
        let path = self.req.uri().path();
        route_for(path)
            .and_then(|route| route.params(path))
            .and_then(|params| params.into_iter().find(|(n, _)| *n == name))
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
        crate::request::parse_json(&self.req, ctx.config.max_body_bytes)
    }

    pub fn query<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        crate::request::parse_query(&self.req)
    }

    /// Renders the handler's result in the envelope; internal causes are
    /// logged with the request id and never reach the client.
    pub fn respond<P: Platform>(
        self,
        ctx: &Ctx<P>,
        result: Result<Reply, ApiError>,
    ) -> Response<Bytes> {
        let metadata = Metadata::new(ctx.now(), &self.id);
        let mut response = match result {
            Ok(reply) => envelope::success(reply, metadata),
            Err(err) => {
                log_error(&self.id, &err);
                envelope::failure(&err, metadata)
            }
        };
        if let Ok(extra) = self.extra_headers.lock() {
            for (name, value) in extra.iter() {
                response.headers_mut().append(name.clone(), value.clone());
            }
        }
        response
    }
}

/// Records a refusal the audit trail must show: a denied permission
/// (`ACCESS_DENIED`) and the start of a rate-limit block
/// (`RATE_LIMIT_BLOCKED`), with the caller when known. A failure to record
/// is logged; the client still gets its refusal.
pub async fn record_refusal<P: Platform>(ctx: &Ctx<P>, rq: &Rq, err: &ApiError) {
    let (event_type, action) = match err {
        ApiError::Forbidden => ("ACCESS_DENIED", "Access denied"),
        ApiError::RateLimited { .. } if rq.block_started() => {
            ("RATE_LIMIT_BLOCKED", "Client blocked by rate limit")
        }
        _ => return,
    };
    let caller = rq.caller();
    let event = crate::audit::Event {
        id: ctx.new_uuid(),
        organization_id: caller.map(|c| c.organization_id),
        user_id: caller.map(|c| c.user_id),
        event_type,
        severity: "WARNING",
        action,
        outcome: crate::audit::Outcome::Denied,
        record_type: None,
        record_id: None,
        old_values: None,
        new_values: None,
        metadata: serde_json::json!({
            "method": rq.method().as_str(),
            "path": rq.req.uri().path(),
        }),
        reason: None,
    };
    if let Err(e) = ctx
        .db()
        .batch(vec![event.insert(rq)], Default::default())
        .await
    {
        tracing::warn!(request_id = rq.id(), error = %e, "could not record a refusal");
    }
}

pub(crate) fn log_error(request_id: &str, err: &ApiError) {
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
/// cap, configuration missing, unknown path), still in the envelope.
pub fn early_failure<P: Platform>(
    platform: &P,
    headers: &http::HeaderMap,
    err: &ApiError,
) -> Response<Bytes> {
    let id = crate::request::request_id(headers, || {
        let mut bytes = [0u8; 16];
        platform.fill_random(&mut bytes);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    });
    log_error(&id, err);
    envelope::failure(err, Metadata::new(platform.now(), &id))
}

/// What a host does with a configuration problem: a generic 500.
pub fn config_failure<P: Platform>(
    platform: &P,
    headers: &http::HeaderMap,
    err: &ConfigError,
) -> Response<Bytes> {
    early_failure(platform, headers, &ApiError::internal(err))
}
