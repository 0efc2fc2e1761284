//! Walks over the whole surface: every route that is not public refuses
//! every kind of bad credential on every method it serves, before it reads
//! anything else.

use anyhow::{Context as _, ensure};
use base64::Engine as _;
use reqwest::Method;
use serde_json::Value;
use shared::auth::jwt::{self, AccessClaims};
use shared::config::SigningKey;
use shared::routes::ROUTES;
use time::OffsetDateTime;

use crate::client::TestApp;

crate::cases![every_protected_route_refuses_every_bad_credential];

/// Routes that take no credentials, or take them in the body (a token of
/// their own), and why.
const PUBLIC: &[(&str, &str)] = &[
    ("health", "the load balancer's probe"),
    ("auth-jwks", "the public keys"),
    (
        "openapi",
        "the API's description, for its clients and the playground",
    ),
    ("auth-login", "e-mail and password in the body"),
    ("auth-refresh", "the refresh token in the body or cookie"),
    (
        "auth-signup",
        "a new organization, or an invitation token in the body",
    ),
    (
        "auth-signup-confirm",
        "the confirmation token mailed to the address, in the body",
    ),
    ("auth-forgot-password", "an e-mail address in the body"),
    ("auth-reset-password", "the reset token in the body"),
    ("auth-mfa-verify", "the login's challenge in the body"),
    (
        "auth-mfa-enroll",
        "a bearer token, or the login's challenge in the body",
    ),
    (
        "auth-mfa-confirm",
        "a bearer token, or the login's challenge in the body",
    ),
    ("bridge-enroll", "the join token in the body"),
    (
        "audit-log",
        "anonymous client events go to the system chain",
    ),
    (
        "live",
        "a WebSocket upgrade: its credentials are checked at the upgrade (hub cases)",
    ),
];

fn random_uuid() -> uuid::Uuid {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).unwrap_or_else(|e| panic!("no randomness: {e}"));
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// `path` with every parameter filled in.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|s| {
            if s.starts_with(':') {
                "00000000-0000-4000-8000-000000000000"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn every_protected_route_refuses_every_bad_credential(app: &TestApp) -> anyhow::Result<()> {
    let (admin, _) = app.admin().await?;
    let now = OffsetDateTime::now_utc();
    let claims = AccessClaims {
        iss: "antevus".into(),
        aud: "antevus-api".into(),
        sub: admin.id,
        org: admin.organization_id,
        role: "ADMIN".into(),
        sid: random_uuid(),
        jti: random_uuid(),
    };
    let sign = |key: &SigningKey, at: OffsetDateTime, ttl: i64| {
        jwt::sign(key, &claims, at, ttl).context("signing")
    };
    let stranger = SigningKey::from_seed("k1", [42; 32]);
    let expired = sign(&app.stack.token_key, now - time::Duration::hours(2), 300)?;
    let foreign = sign(&stranger, now, 300)?;
    // The suite's own key, but for a session that does not exist.
    let no_session = sign(&app.stack.token_key, now, 300)?;
    let unsigned = {
        let parts: Vec<&str> = no_session.split('.').collect();
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"alg":"none","typ":"at+jwt","kid":"k1"}"#);
        format!("{header}.{}.", parts[1])
    };
    let kinds: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("no credentials", vec![]),
        (
            "a malformed bearer token",
            vec![("authorization", "Bearer not-a-token".into())],
        ),
        (
            "an unsigned token",
            vec![("authorization", format!("Bearer {unsigned}"))],
        ),
        (
            "a token signed by another key",
            vec![("authorization", format!("Bearer {foreign}"))],
        ),
        (
            "an expired token",
            vec![("authorization", format!("Bearer {expired}"))],
        ),
        (
            "a token of no live session",
            vec![("authorization", format!("Bearer {no_session}"))],
        ),
        (
            "a made-up API key",
            vec![("x-api-key", format!("ak_{}", "A".repeat(50)))],
        ),
        (
            "a made-up API key as bearer",
            vec![("authorization", format!("Bearer ak_{}", "B".repeat(50)))],
        ),
        (
            "another scheme",
            vec![("authorization", "Basic YWRtaW46YWRtaW4=".into())],
        ),
    ];
    let mut problems = Vec::new();
    let mut checked = 0;
    for route in ROUTES
        .iter()
        .filter(|r| !PUBLIC.iter().any(|(f, _)| *f == r.function))
    {
        let path = concrete(route.path);
        for method in route.methods {
            for (kind, headers) in &kinds {
                let mut request = app.http.request(method.clone(), app.url(&path));
                for (name, value) in headers {
                    request = request.header(*name, value);
                }
                if *method != Method::GET {
                    request = request
                        .header("content-type", "application/json")
                        .body("{}");
                }
                let answer = request.send().await?;
                let status = answer.status().as_u16();
                let json: Value = answer.json().await.unwrap_or(Value::Null);
                let code = json["error"]["code"].as_str().unwrap_or("");
                checked += 1;
                if status != 401 || !matches!(code, "AUTH_TOKEN_INVALID" | "AUTH_TOKEN_EXPIRED") {
                    problems.push(format!(
                        "{method} {} with {kind}: {status} {code}",
                        route.path
                    ));
                }
            }
        }
    }
    ensure!(
        problems.is_empty(),
        "{} of {checked} let through or answered wrongly:\n{}",
        problems.len(),
        problems.join("\n")
    );
    Ok(())
}
