//! The role matrix, walked: every role against every method of every route
//! that takes a person's credentials, compared with the matrix
//! (`shared::auth::roles`).

use anyhow::ensure;
use reqwest::Method;
use shared::auth::{Permission, Role};
use shared::routes::ROUTES;

use crate::client::TestApp;

crate::cases![role_matrix_walk_covers_every_route];

/// What a route's method asks of a signed-in person.
#[derive(Clone, Copy, Debug)]
enum Guard {
    /// A permission of the matrix: allowed exactly to the roles that have it.
    Needs(Permission),
    /// Anyone signed in (their own account, a client report).
    SignedIn,
    /// Only a bridge's own key: every person is 403.
    BridgeKey,
    /// Only the scheduler's key: every person is 401.
    Scheduler,
}

use Guard::{BridgeKey, Needs, Scheduler, SignedIn};
use Permission as P;

/// Every method of every route that takes credentials, and its guard.
const GUARDS: &[(&str, Method, Guard)] = &[
    ("auth-me", Method::GET, SignedIn),
    ("auth-mfa", Method::GET, SignedIn),
    ("auth-mfa", Method::DELETE, SignedIn),
    ("auth-mfa-enroll", Method::POST, SignedIn),
    ("auth-mfa-confirm", Method::POST, SignedIn),
    ("auth-sessions", Method::GET, SignedIn),
    ("instrument-types", Method::GET, Needs(P::InstrumentsView)),
    ("instruments", Method::GET, Needs(P::InstrumentsView)),
    ("instruments", Method::POST, Needs(P::InstrumentsManage)),
    ("instruments-item", Method::GET, Needs(P::InstrumentsView)),
    ("instruments-item", Method::PUT, Needs(P::InstrumentsManage)),
    (
        "instruments-item",
        Method::DELETE,
        Needs(P::InstrumentsManage),
    ),
    ("instrument-status", Method::GET, Needs(P::InstrumentsView)),
    (
        "instrument-control",
        Method::POST,
        Needs(P::InstrumentsControl),
    ),
    (
        "instrument-commands",
        Method::GET,
        Needs(P::InstrumentsView),
    ),
    (
        "instrument-readings",
        Method::GET,
        Needs(P::InstrumentsView),
    ),
    (
        "instrument-maintenance",
        Method::GET,
        Needs(P::InstrumentsView),
    ),
    (
        "instrument-maintenance",
        Method::POST,
        Needs(P::InstrumentsManage),
    ),
    (
        "maintenance-item",
        Method::PUT,
        Needs(P::InstrumentsControl),
    ),
    ("runs", Method::GET, Needs(P::RunsView)),
    ("runs", Method::POST, Needs(P::RunsCreate)),
    ("runs-item", Method::GET, Needs(P::RunsView)),
    ("run-stop", Method::PUT, Needs(P::RunsCreate)),
    ("run-data", Method::GET, Needs(P::DataExport)),
    ("run-data", Method::POST, Needs(P::RunsCreate)),
    ("run-qc", Method::GET, Needs(P::RunsView)),
    ("run-signatures", Method::GET, Needs(P::RunsView)),
    // Each meaning then needs its own permission (runs::signatures cases).
    ("run-signatures", Method::POST, Needs(P::RunsView)),
    ("audit-log", Method::POST, SignedIn),
    ("audit-events", Method::GET, Needs(P::AuditView)),
    ("audit-export", Method::GET, Needs(P::AuditView)),
    ("audit-verify", Method::GET, Needs(P::AuditView)),
    ("bridges", Method::GET, Needs(P::InstrumentsView)),
    ("bridge-join-tokens", Method::GET, Needs(P::KeysManage)),
    ("bridge-join-tokens", Method::POST, Needs(P::KeysManage)),
    (
        "bridge-join-tokens-item",
        Method::DELETE,
        Needs(P::KeysManage),
    ),
    ("bridge-ingest", Method::POST, BridgeKey),
    ("bridge-commands", Method::GET, BridgeKey),
    ("job-send-mail", Method::POST, Scheduler),
    ("job-retention", Method::POST, Scheduler),
    ("job-deliver-webhooks", Method::POST, Scheduler),
    ("job-watch", Method::POST, Scheduler),
    ("webhooks", Method::GET, Needs(P::WebhooksManage)),
    ("webhooks", Method::POST, Needs(P::WebhooksManage)),
    ("webhooks-item", Method::GET, Needs(P::WebhooksManage)),
    ("webhooks-item", Method::PUT, Needs(P::WebhooksManage)),
    ("webhooks-item", Method::DELETE, Needs(P::WebhooksManage)),
    ("webhook-deliveries", Method::GET, Needs(P::WebhooksManage)),
    (
        "webhook-delivery-retry",
        Method::POST,
        Needs(P::WebhooksManage),
    ),
    ("webhook-recover", Method::POST, Needs(P::WebhooksManage)),
    ("webhook-secret", Method::POST, Needs(P::WebhooksManage)),
    ("webhook-test", Method::POST, Needs(P::WebhooksManage)),
    ("retention-run", Method::POST, Needs(P::UsersManage)),
    ("api-keys", Method::GET, Needs(P::KeysManage)),
    ("api-keys", Method::POST, Needs(P::KeysManage)),
    ("api-keys-item", Method::DELETE, Needs(P::KeysManage)),
    ("users", Method::GET, Needs(P::UsersManage)),
    ("users", Method::POST, Needs(P::UsersManage)),
    // Another user (anyone may read themselves: accounts cases).
    ("users-item", Method::GET, Needs(P::UsersManage)),
    ("users-item", Method::PUT, Needs(P::UsersManage)),
    ("users-mfa", Method::DELETE, Needs(P::UsersManage)),
    ("invitations", Method::GET, Needs(P::UsersManage)),
    ("invitations-item", Method::DELETE, Needs(P::UsersManage)),
    (
        "organization-mfa-policy",
        Method::GET,
        Needs(P::UsersManage),
    ),
    (
        "organization-mfa-policy",
        Method::PUT,
        Needs(P::UsersManage),
    ),
    // Another user's login is 404 to anyone (sessions cases); the walk
    // would end its own.
    ("auth-sessions-item", Method::DELETE, SignedIn),
    // Last: they change the walker's password and end its session.
    ("auth-password", Method::PUT, SignedIn),
    ("auth-logout", Method::POST, SignedIn),
];

/// Routes that take no person's credentials (or only at a WebSocket
/// upgrade), and why.
const NOT_WALKED: &[(&str, &str)] = &[
    ("health", "public"),
    ("auth-jwks", "public"),
    ("openapi", "public"),
    ("auth-login", "e-mail and password in the body"),
    ("auth-refresh", "a refresh token"),
    ("auth-mfa-verify", "the login's challenge"),
    ("auth-forgot-password", "public"),
    ("auth-reset-password", "a reset token"),
    ("auth-signup", "public"),
    ("auth-signup-confirm", "a confirmation token"),
    ("bridge-enroll", "a join token"),
    (
        "live",
        "a WebSocket upgrade: roles are checked at the upgrade (hub cases)",
    ),
];

/// `path` with every parameter an id nothing has.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|s| {
            if s.starts_with(':') {
                "00000000-0000-4000-8000-00000000002a"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Every role against every guarded method: allowed (never 401 or 403,
/// never a 5xx: it goes on to validate the empty body or find nothing)
/// exactly when the matrix says so, else 403; a bridge's or the
/// scheduler's route refuses every person.
async fn role_matrix_walk_covers_every_route(app: &TestApp) -> anyhow::Result<()> {
    // The walk covers the route table: a new route needs its guard here.
    let mut uncovered = Vec::new();
    for route in ROUTES {
        if NOT_WALKED.iter().any(|(f, _)| *f == route.function) {
            continue;
        }
        for method in route.methods {
            if !GUARDS
                .iter()
                .any(|(f, m, _)| *f == route.function && m == method)
            {
                uncovered.push(format!("{method} {}", route.function));
            }
        }
    }
    ensure!(
        uncovered.is_empty(),
        "no guard in the walk for {uncovered:?}"
    );

    let (admin, _) = app.admin().await?;
    let mut problems = Vec::new();
    let mut checked = 0;
    for role in Role::ALL {
        let user = app.new_user(admin.organization_id, role).await?;
        let token = app.login(&user).await?;
        for (function, method, guard) in GUARDS {
            let route = ROUTES
                .iter()
                .find(|r| r.function == *function)
                .ok_or_else(|| anyhow::anyhow!("{function} is not a route"))?;
            let path = concrete(route.path);
            // Raw: an allowed export answers JSON lines or CSV, a download bytes.
            let caller = app.as_user(&token);
            let resp = if *method == Method::GET {
                caller.raw(method.clone(), &path, None).await?
            } else {
                caller
                    .header("content-type", "application/json")
                    .raw(method.clone(), &path, Some(b"{}".to_vec()))
                    .await?
            };
            checked += 1;
            let error: serde_json::Value = serde_json::from_slice(&resp.body).unwrap_or_default();
            let code = error["error"]["code"].as_str().unwrap_or_default();
            let what = format!("{role:?} {method} {function}: {} {code}", resp.status);
            let fine = match guard {
                Needs(permission) if role.can(*permission) => {
                    !matches!(resp.status, 401 | 403) && resp.status < 500
                }
                Needs(_) => resp.status == 403 && code == "AUTH_INSUFFICIENT_PERMISSIONS",
                SignedIn => !matches!(resp.status, 401 | 403) && resp.status < 500,
                BridgeKey => resp.status == 403,
                Scheduler => resp.status == 401,
            };
            if !fine {
                problems.push(format!("{what} (guard {guard:?})"));
            }
        }
    }
    ensure!(
        problems.is_empty(),
        "{} of {checked}: {problems:#?}",
        problems.len()
    );
    ensure!(checked == Role::ALL.len() * GUARDS.len());
    Ok(())
}
