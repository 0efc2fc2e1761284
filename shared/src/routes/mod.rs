//! Every route, one module each, and the route table.
//!
//! A function is one path; it serves the methods listed for it. [`ROUTES`]
//! is the single source of truth: `xtask routes` renders `spin.toml`,
//! `wrangler.toml` and the local workerd configuration from it, the native
//! host and the wasmtime front route by it, and a test fails when any of
//! them (or the crates under `functions/`) drift.

/// Defines a route module's `handle`: the request's id, parameters and
/// envelope, and dispatch by method to
/// `async fn(&Ctx<P>, &mut Rq) -> Result<Reply, ApiError>` handlers; any
/// other method is `405` with `Allow`; `OPTIONS` (a CORS preflight) is
/// answered before anything else. A refusal the audit trail must show
/// is recorded from the error the handler returned.
macro_rules! methods {
    ($($method:ident => $handler:ident),+ $(,)?) => {
        const METHODS: &[http::Method] = &[$(http::Method::$method),+];

        pub async fn handle<P: $crate::platform::Platform>(
            ctx: &$crate::ctx::Ctx<P>,
            req: http::Request<bytes::Bytes>,
        ) -> http::Response<$crate::body::Body> {
            if req.method() == http::Method::OPTIONS {
                return $crate::request::cors::preflight(ctx, &req, METHODS);
            }
            let route = $crate::routes::route_for(req.uri().path());
            let params = route.map_or_else(Vec::new, |r| r.owned_params(req.uri().path()));
            let audits = route.is_none_or(|r| r.attrs.audit);
            let mut rq = match $crate::request::Rq::new(ctx, req, audits) {
                Ok(rq) => rq.with_params(params),
                Err(answer) => return *answer,
            };
            let result = match *rq.method() {
                $(http::Method::$method => $handler(ctx, &mut rq).await,)+
                _ => Err($crate::request::method_not_allowed(METHODS)),
            };
            if let Err(err) = &result {
                $crate::audit::record_refusal(ctx, &rq, err).await;
            }
            rq.respond(ctx, result)
        }
    };
}
use methods;

/// The function that serves the web application (`shared::web`): not an
/// API route, so not in [`ROUTES`]; every deployment runs it beside them.
pub const WEB_FUNCTION: &str = "web";

/// Every function crate under `functions/`: one per route, and the web
/// application's.
pub fn functions() -> impl Iterator<Item = &'static str> {
    ROUTES
        .iter()
        .map(|route| route.function)
        .chain(std::iter::once(WEB_FUNCTION))
}

pub mod api_keys;
pub mod api_keys_item;
pub mod audit_events;
pub mod audit_export;
pub mod audit_log;
pub mod audit_verify;
pub mod auth_forgot_password;
pub mod auth_jwks;
pub mod auth_login;
pub mod auth_logout;
pub mod auth_me;
pub mod auth_mfa;
pub mod auth_mfa_confirm;
pub mod auth_mfa_enroll;
pub mod auth_mfa_verify;
pub mod auth_password;
pub mod auth_refresh;
pub mod auth_reset_password;
pub mod auth_sessions;
pub mod auth_sessions_item;
pub mod auth_signup;
pub mod auth_signup_confirm;
pub mod bridge_commands;
pub mod bridge_enroll;
pub mod bridge_ingest;
pub mod bridge_join_tokens;
pub mod bridge_join_tokens_item;
pub mod bridges;
pub mod health;
pub mod instrument_commands;
pub mod instrument_control;
pub mod instrument_maintenance;
pub mod instrument_readings;
pub mod instrument_status;
pub mod instrument_types;
pub mod instruments;
pub mod instruments_item;
pub mod invitations;
pub mod invitations_item;
pub mod job_deliver_webhooks;
pub mod job_retention;
pub mod job_send_mail;
pub mod job_watch;
pub mod live;
pub mod maintenance_item;
pub mod openapi;
pub mod organization_mfa_policy;
pub mod retention_run;
pub mod run_data;
pub mod run_qc;
pub mod run_signatures;
pub mod run_stop;
pub mod runs;
pub mod runs_item;
pub mod signing_in;
pub mod users;
pub mod users_item;
pub mod users_mfa;
pub mod webhook_deliveries;
pub mod webhook_delivery_retry;
pub mod webhook_recover;
pub mod webhook_secret;
pub mod webhook_test;
pub mod webhooks;
pub mod webhooks_item;

use bytes::Bytes;
use http::{Method, Request, Response};

use crate::config::Config;
use crate::ctx::Ctx;
use crate::platform::Platform;

/// One function: a path in Spin route syntax (literal segments and
/// `:name` parameters, each matching one non-empty segment) and the methods
/// it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Name of the function crate under `functions/`.
    pub function: &'static str,
    pub path: &'static str,
    pub methods: &'static [Method],
    /// What else the function needs (defaults: [`Attrs::DEFAULT`]).
    pub attrs: Attrs,
}

/// A route's needs beyond its path and methods, declared in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attrs {
    /// The largest request body it takes.
    pub body: Body,
    /// Whether it reaches object storage: its Spin component may call the
    /// store's origin and its Worker holds the store's keys.
    pub object_storage: bool,
    /// Whether it sends mail: its Spin component may call the mail
    /// provider and its Worker holds the provider's token.
    pub mail: bool,
    /// Whether its function holds the live hub (on Workers, the Durable
    /// Object with the organization's sockets).
    pub live_hub: bool,
    /// Whether it reaches the database (its connection string and the
    /// proxy's key).
    pub database: bool,
    /// Whether it records audit events (the audit signing key). Every route
    /// that authenticates does: it records refusals.
    pub audit: bool,
    /// Whether it verifies the audit trail or e-signature seals, so may
    /// hold the HMAC keys of what was signed before Ed25519
    /// (`AUDIT_KEYS`, for verifying only).
    pub verifies_audit: bool,
    /// Whether it issues access tokens (the private signing key; every
    /// other function holds only the public keys).
    pub issues_tokens: bool,
    /// Whether it seals or opens secrets at rest (a second factor's key,
    /// mail bodies): the AES-256-GCM keys (`ENCRYPTION_KEYS`).
    pub seals: bool,
    /// Whether it posts to the organizations' webhook endpoints: its Spin
    /// component may call any `https` origin (the endpoints are checked
    /// before every attempt, `crate::webhook::target`).
    pub webhooks: bool,
    /// A scheduled job's cadence (a cron expression, UTC): Workers runs it
    /// by a cron trigger, any other host through the route itself, which
    /// takes the scheduler's key (`SCHEDULER_KEY`).
    pub schedule: Option<&'static str>,
}

/// Every secret a function may be deployed with; [`Attrs::secrets`] says
/// which one holds which, and a function holding one it does not declare
/// refuses to serve ([`admit`]).
pub const SECRETS: &[&str] = &[
    "DATABASE_URL",
    "SQL_PROXY_KEY",
    "AUDIT_SIGNING_KEY",
    "AUDIT_KEYS",
    "JWT_SIGNING_KEY",
    "MAIL_PROVIDER_TOKEN",
    "S3_ACCESS_KEY_ID",
    "S3_SECRET_ACCESS_KEY",
    "ENCRYPTION_KEYS",
    "SCHEDULER_KEY",
];

impl Attrs {
    pub const DEFAULT: Attrs = Attrs {
        body: Body::Json,
        object_storage: false,
        mail: false,
        live_hub: false,
        database: true,
        audit: true,
        verifies_audit: false,
        issues_tokens: false,
        seals: false,
        webhooks: false,
        schedule: None,
    };

    /// The secrets the function is deployed with, from what it declares:
    /// the database URL and the proxy key, the audit signing key, the old
    /// HMAC audit keys (optional, to verify), the token signing key, and the
    /// keys of what it reaches. None of them is ever in a configuration
    /// file.
    pub fn secrets(&self) -> Vec<&'static str> {
        let mut secrets = Vec::new();
        if self.database {
            secrets.extend(["DATABASE_URL", "SQL_PROXY_KEY"]);
        }
        if self.audit {
            secrets.push("AUDIT_SIGNING_KEY");
        }
        if self.verifies_audit {
            secrets.push("AUDIT_KEYS");
        }
        if self.issues_tokens {
            secrets.push("JWT_SIGNING_KEY");
        }
        if self.mail {
            secrets.push("MAIL_PROVIDER_TOKEN");
        }
        if self.object_storage {
            secrets.extend(["S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"]);
        }
        if self.seals {
            secrets.push("ENCRYPTION_KEYS");
        }
        if self.schedule.is_some() {
            secrets.push("SCHEDULER_KEY");
        }
        secrets
    }
}

/// The request body cap of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// `MAX_BODY_BYTES` (configured; 1 MiB by default).
    Json,
    /// One upload chunk (the storage configuration's chunk size).
    UploadChunk,
    /// A fixed cap.
    AtMost(usize),
}

impl Route {
    /// [`Route::params`] as owned values (empty when the route does not
    /// serve `path`).
    pub fn owned_params(&self, path: &str) -> Vec<(&'static str, String)> {
        self.params(path)
            .map(|params| {
                params
                    .into_iter()
                    .map(|(name, value)| (name, value.to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }

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
    ($($function:literal => $module:ident, $path:literal, [$($method:ident),+] $({ $($attr:ident: $value:expr),+ $(,)? })?;)+) => {
        /// The route table.
        // A route may declare every attribute; the update then adds nothing.
        #[allow(clippy::needless_update)]
        pub const ROUTES: &[Route] = &[
            $(Route {
                function: $function,
                path: $path,
                methods: &[$(Method::$method),+],
                attrs: Attrs { $($($attr: $value,)+)? ..Attrs::DEFAULT },
            },)+
        ];

        /// Runs the handler of `function`; `None` when no such function exists.
        pub async fn dispatch<P: Platform>(function: &str, ctx: &Ctx<P>, req: Request<Bytes>) -> Option<Response<crate::body::Body>> {
            match function {
                $($function => Some($module::handle(ctx, req).await),)+
                _ => None,
            }
        }
    };
}

route_table! {
    "health" => health, "/api/health", [GET] { audit: false };
    "openapi" => openapi, "/api/openapi.json", [GET] { database: false, audit: false };
    "auth-jwks" => auth_jwks, "/api/auth/jwks", [GET] { database: false, audit: false };
    "auth-login" => auth_login, "/api/auth/login", [POST] { issues_tokens: true };
    "auth-logout" => auth_logout, "/api/auth/logout", [POST];
    "auth-refresh" => auth_refresh, "/api/auth/refresh", [POST] { issues_tokens: true };
    "auth-me" => auth_me, "/api/auth/me", [GET];
    "auth-password" => auth_password, "/api/auth/password", [PUT];
    "auth-sessions" => auth_sessions, "/api/auth/sessions", [GET];
    "auth-sessions-item" => auth_sessions_item, "/api/auth/sessions/:id", [DELETE];
    "auth-mfa" => auth_mfa, "/api/auth/mfa", [GET, DELETE] { seals: true };
    "auth-mfa-enroll" => auth_mfa_enroll, "/api/auth/mfa/enroll", [POST] { seals: true };
    "auth-mfa-confirm" => auth_mfa_confirm, "/api/auth/mfa/confirm", [POST] { seals: true, issues_tokens: true };
    "auth-mfa-verify" => auth_mfa_verify, "/api/auth/mfa/verify", [POST] { seals: true, issues_tokens: true };
    "auth-forgot-password" => auth_forgot_password, "/api/auth/forgot-password", [POST] { seals: true };
    "auth-reset-password" => auth_reset_password, "/api/auth/reset-password", [POST];
    "auth-signup" => auth_signup, "/api/auth/signup", [POST] { seals: true };
    "auth-signup-confirm" => auth_signup_confirm, "/api/auth/signup/confirm", [POST];
    "instruments" => instruments, "/api/v1/instruments", [GET, POST];
    "instrument-types" => instrument_types, "/api/v1/instrument-types", [GET];
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
    "run-data" => run_data, "/api/v1/runs/:id/data", [GET, POST] { body: Body::UploadChunk, object_storage: true };
    "run-qc" => run_qc, "/api/v1/runs/:id/qc", [GET];
    "run-signatures" => run_signatures, "/api/v1/runs/:id/signatures", [GET, POST] { verifies_audit: true, seals: true };
    "audit-log" => audit_log, "/api/audit", [POST] { body: Body::AtMost(audit_log::MAX_BODY_BYTES) };
    "audit-events" => audit_events, "/api/audit/events", [GET];
    "audit-export" => audit_export, "/api/audit/export", [GET];
    "audit-verify" => audit_verify, "/api/audit/verify", [GET] { verifies_audit: true };
    "bridges" => bridges, "/api/v1/bridges", [GET];
    "bridge-join-tokens" => bridge_join_tokens, "/api/v1/bridges/join-tokens", [GET, POST];
    "bridge-join-tokens-item" => bridge_join_tokens_item, "/api/v1/bridges/join-tokens/:id", [DELETE];
    "bridge-enroll" => bridge_enroll, "/api/v1/bridges/enroll", [POST];
    "bridge-ingest" => bridge_ingest, "/api/v1/bridges/ingest", [POST];
    "bridge-commands" => bridge_commands, "/api/v1/bridges/commands", [GET];
    "live" => live, "/api/v1/live", [GET] { live_hub: true };
    "job-send-mail" => job_send_mail, "/api/v1/jobs/send-mail", [POST] { mail: true, seals: true, audit: false, schedule: Some("* * * * *") };
    "retention-run" => retention_run, "/api/v1/retention/run", [POST] { object_storage: true, verifies_audit: true };
    "job-retention" => job_retention, "/api/v1/jobs/retention", [POST] { object_storage: true, verifies_audit: true, schedule: Some("23 * * * *") };
    "api-keys" => api_keys, "/api/v1/api-keys", [GET, POST];
    "api-keys-item" => api_keys_item, "/api/v1/api-keys/:id", [DELETE];
    "users" => users, "/api/v1/users", [GET, POST] { seals: true };
    "users-item" => users_item, "/api/v1/users/:id", [GET, PUT];
    "users-mfa" => users_mfa, "/api/v1/users/:id/mfa", [DELETE];
    "invitations" => invitations, "/api/v1/invitations", [GET];
    "invitations-item" => invitations_item, "/api/v1/invitations/:id", [DELETE];
    "organization-mfa-policy" => organization_mfa_policy, "/api/v1/organization/mfa-policy", [GET, PUT];
    "webhooks" => webhooks, "/api/v1/webhooks", [GET, POST] { seals: true };
    "webhooks-item" => webhooks_item, "/api/v1/webhooks/:id", [GET, PUT, DELETE];
    "webhook-deliveries" => webhook_deliveries, "/api/v1/webhooks/:id/deliveries", [GET];
    "webhook-delivery-retry" => webhook_delivery_retry, "/api/v1/webhooks/:id/deliveries/:deliveryId/retry", [POST] { seals: true, webhooks: true };
    "webhook-recover" => webhook_recover, "/api/v1/webhooks/:id/recover", [POST];
    "webhook-secret" => webhook_secret, "/api/v1/webhooks/:id/secret", [POST] { seals: true };
    "webhook-test" => webhook_test, "/api/v1/webhooks/:id/test", [POST] { seals: true, webhooks: true };
    "job-deliver-webhooks" => job_deliver_webhooks, "/api/v1/jobs/deliver-webhooks", [POST] { seals: true, webhooks: true, schedule: Some("* * * * *") };
    "job-watch" => job_watch, "/api/v1/jobs/watch", [POST] { schedule: Some("* * * * *") };
}

/// What every host checks before it reads a request of `function`: that
/// the function holds no secret its route does not declare (it refuses to
/// serve until the deployment is fixed); then the largest request body it
/// takes (its route's [`Body`]).
pub fn admit(config: &Config, function: &str) -> Result<usize, crate::config::ConfigError> {
    let attrs = attrs_of(function);
    let declared = attrs.secrets();
    let undeclared: Vec<&str> = SECRETS
        .iter()
        .copied()
        .filter(|name| config.holds(name) && !declared.contains(name))
        .collect();
    if !undeclared.is_empty() {
        // Least privilege, held at the door: a deployment that gives a
        // function more than it needs is refused until it is fixed.
        tracing::error!(
            function,
            secrets = ?undeclared,
            "this function holds secrets it does not declare; it refuses to serve"
        );
        return Err(crate::config::ConfigError(format!(
            "{function} holds secrets it does not declare: {}",
            undeclared.join(", ")
        )));
    }
    Ok(match attrs.body {
        Body::Json => config.max_body_bytes()?,
        Body::UploadChunk => config.storage()?.max_chunk_bytes(),
        Body::AtMost(limit) => limit,
    })
}

/// The attributes of `function`'s route (the defaults for no route).
fn attrs_of(function: &str) -> Attrs {
    ROUTES
        .iter()
        .find(|route| route.function == function)
        .map_or(Attrs::DEFAULT, |route| route.attrs)
}

/// Whether variable `name` is a secret that `function` must not be given:
/// every host and runner gives a function its declared secrets only.
pub fn withholds(function: &str, name: &str) -> bool {
    SECRETS.contains(&name) && !attrs_of(function).secrets().contains(&name)
}

/// `config` as `function` is to see it, without the secrets its route does
/// not declare (for a host that runs every function in one process).
pub fn function_config(config: &Config, function: &str) -> Config {
    config.withholding(|name| withholds(function, name))
}

/// The route serving `path`, the most specific first.
pub fn route_for(path: &str) -> Option<&'static Route> {
    ROUTES
        .iter()
        .filter(|r| r.matches(path))
        .max_by_key(|r| r.specificity())
}

/// The parameters of the route serving `path`, by name (empty when no route
/// serves it).
pub fn params_of(path: &str) -> Vec<(&'static str, String)> {
    route_for(path).map_or_else(Vec::new, |route| route.owned_params(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(function: &str) -> &'static Route {
        ROUTES
            .iter()
            .find(|r| r.function == function)
            .unwrap_or_else(|| panic!("no route {function}"))
    }

    #[test]
    fn parameters_match_one_non_empty_segment_each() {
        let item = route("instruments-item");
        assert_eq!(
            item.params("/api/v1/instruments/abc"),
            Some(vec![("id", "abc")])
        );
        assert_eq!(item.params("/api/v1/instruments/"), None);
        assert_eq!(item.params("/api/v1/instruments"), None);
        assert_eq!(item.params("/api/v1/instruments/abc/status"), None);
        assert!(route("instruments").matches("/api/v1/instruments"));
        assert!(!route("instruments").matches("/api/v1/instrument"));
    }

    #[test]
    fn the_most_specific_route_serves_a_path() {
        let served = |path: &str| route_for(path).map(|r| r.function);
        assert_eq!(
            served("/api/v1/instruments/x/status"),
            Some("instrument-status")
        );
        assert_eq!(served("/api/v1/instruments/x"), Some("instruments-item"));
        assert_eq!(
            served("/api/v1/bridges/join-tokens"),
            Some("bridge-join-tokens")
        );
        assert_eq!(served("/api/v1/nothing"), None);
        assert_eq!(
            params_of("/api/v1/runs/r1/data"),
            vec![("id", "r1".to_owned())]
        );
        assert!(params_of("/api/v1/nothing").is_empty());
    }

    #[test]
    fn only_the_issuers_hold_the_signing_key_and_health_holds_no_key() {
        let holders: Vec<&str> = ROUTES
            .iter()
            .filter(|r| r.attrs.secrets().contains(&"JWT_SIGNING_KEY"))
            .map(|r| r.function)
            .collect();
        assert_eq!(
            holders,
            [
                "auth-login",
                "auth-refresh",
                "auth-mfa-confirm",
                "auth-mfa-verify"
            ]
        );
        assert_eq!(
            route("health").attrs.secrets(),
            ["DATABASE_URL", "SQL_PROXY_KEY"]
        );
        assert!(route("auth-jwks").attrs.secrets().is_empty());
        for secret in SECRETS {
            assert!(
                ROUTES.iter().any(|r| r.attrs.secrets().contains(secret)),
                "{secret} is held by no function"
            );
        }
    }

    #[test]
    fn a_function_given_a_secret_it_does_not_declare_refuses() {
        let given = |pairs: &'static [(&'static str, &'static str)]| {
            Config::from_lookup(move |name| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            })
        };
        let all = given(&[
            ("JWT_SIGNING_KEY", "k1:x"),
            ("AUDIT_SIGNING_KEY", "e1:x"),
            ("DATABASE_URL", "postgres://x"),
            ("JWT_ISSUER", "antevus"),
        ]);
        let err = admit(&all, "instruments").expect_err("undeclared signing key");
        assert!(err.0.contains("JWT_SIGNING_KEY"), "{err}");
        assert!(!err.0.contains("AUDIT_SIGNING_KEY"), "{err}");
        assert!(admit(&all, "auth-login").is_ok());
        let err = admit(&all, "health").expect_err("undeclared keys");
        assert!(
            err.0.contains("AUDIT_SIGNING_KEY") && err.0.contains("JWT_SIGNING_KEY"),
            "{err}"
        );
        // The old HMAC audit keys: only where the trail is verified.
        let legacy = given(&[("AUDIT_KEYS", "a1:x")]);
        assert!(admit(&legacy, "audit-verify").is_ok());
        assert!(admit(&legacy, "instruments").is_err());
        // What a host running every function in one process gives each.
        let own = function_config(&all, "health");
        assert!(admit(&own, "health").is_ok());
        assert!(own.holds("DATABASE_URL") && own.holds("JWT_ISSUER"));
        assert!(!own.holds("AUDIT_SIGNING_KEY") && !own.holds("JWT_SIGNING_KEY"));
    }

    #[test]
    fn routes_declare_what_they_need() {
        assert_eq!(route("run-data").attrs.body, Body::UploadChunk);
        assert!(route("run-data").attrs.object_storage);
        assert_eq!(route("instruments").attrs, Attrs::DEFAULT);
        // Only the mail sender sends; the routes that queue mail seal it.
        let senders: Vec<&str> = ROUTES
            .iter()
            .filter(|r| r.attrs.mail)
            .map(|r| r.function)
            .collect();
        assert_eq!(senders, ["job-send-mail"]);
        assert!(route("users").attrs.seals && route("auth-forgot-password").attrs.seals);
        assert_eq!(
            route("job-send-mail").attrs.secrets(),
            [
                "DATABASE_URL",
                "SQL_PROXY_KEY",
                "MAIL_PROVIDER_TOKEN",
                "ENCRYPTION_KEYS",
                "SCHEDULER_KEY"
            ]
        );
        assert_eq!(
            route("run-data").attrs.secrets(),
            [
                "DATABASE_URL",
                "SQL_PROXY_KEY",
                "AUDIT_SIGNING_KEY",
                "S3_ACCESS_KEY_ID",
                "S3_SECRET_ACCESS_KEY"
            ]
        );
        assert_eq!(
            route("auth-forgot-password").attrs.secrets().last(),
            Some(&"ENCRYPTION_KEYS")
        );
        let hubs: Vec<_> = ROUTES
            .iter()
            .filter(|r| r.attrs.live_hub)
            .map(|r| r.function)
            .collect();
        assert_eq!(hubs, [crate::live::hub::FUNCTION]);
    }
}
