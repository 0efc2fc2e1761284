//! The headers every answer carries (security headers, CORS, HSTS) and
//! where a client's address comes from.

use anyhow::{Context as _, ensure};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::json;

use crate::client::TestApp;
use crate::stack::HostKind;

crate::cases![
    every_answer_carries_the_security_headers,
    every_function_answers_a_cors_preflight,
    only_configured_origins_may_read_answers,
    hsts_over_tls_and_a_client_address_only_from_the_platform,
];

/// The origin the suite's deployment allows (`CORS_ORIGIN`).
pub const ALLOWED_ORIGIN: &str = "https://eln.lab.example";

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn expect_security_headers(what: &str, headers: &HeaderMap) -> anyhow::Result<()> {
    ensure!(
        header(headers, "x-content-type-options") == Some("nosniff"),
        "{what}: {headers:?}"
    );
    ensure!(
        header(headers, "referrer-policy") == Some("no-referrer"),
        "{what}: {headers:?}"
    );
    ensure!(
        header(headers, "content-security-policy")
            == Some(shared::envelope::CONTENT_SECURITY_POLICY),
        "{what}: {headers:?}"
    );
    ensure!(
        header(headers, "x-frame-options") == Some("DENY"),
        "{what}: {headers:?}"
    );
    Ok(())
}

async fn every_answer_carries_the_security_headers(app: &TestApp) -> anyhow::Result<()> {
    let (_, token) = app.admin().await?;
    let anonymous = app.anonymous();
    let answers = [
        ("health", anonymous.get("/api/health").await?),
        ("401", anonymous.get("/api/v1/instruments").await?),
        (
            "list",
            app.as_user(&token).get("/api/v1/instruments").await?,
        ),
        ("404", anonymous.get("/api/v1/nothing-here").await?),
        (
            "405",
            anonymous.send(Method::PATCH, "/api/health", None).await?,
        ),
        (
            "413",
            anonymous
                .send(
                    Method::POST,
                    "/api/auth/login",
                    Some(("application/json", vec![b' '; 2 << 20])),
                )
                .await?,
        ),
    ];
    for (what, answer) in &answers {
        expect_security_headers(what, &answer.headers)?;
        // The suite's deployment is plain HTTP: no HSTS.
        ensure!(
            !answer.headers.contains_key("strict-transport-security"),
            "{what}: HSTS over plain HTTP"
        );
    }
    ensure!(answers[5].1.status == 413, "{:?}", answers[5].1);
    Ok(())
}

/// `route`'s path with every parameter filled in.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with(':') {
                "00000000-0000-4000-8000-000000000000"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn every_function_answers_a_cors_preflight(app: &TestApp) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    for route in shared::routes::ROUTES {
        let path = concrete(route.path);
        for method in route.methods {
            let answer = app
                .http
                .request(Method::OPTIONS, app.url(&path))
                .header("origin", ALLOWED_ORIGIN)
                .header("access-control-request-method", method.as_str())
                .header(
                    "access-control-request-headers",
                    "authorization, content-type, idempotency-key",
                )
                .send()
                .await?;
            let status = answer.status().as_u16();
            let headers = answer.headers();
            let allowed_methods = header(headers, "access-control-allow-methods").unwrap_or("");
            let allowed_headers = header(headers, "access-control-allow-headers").unwrap_or("");
            let ok = status == 204
                && header(headers, "access-control-allow-origin") == Some(ALLOWED_ORIGIN)
                && header(headers, "access-control-allow-credentials") == Some("true")
                && allowed_methods.split(", ").any(|m| m == method.as_str())
                && [
                    "authorization",
                    "content-type",
                    "idempotency-key",
                    "x-api-key",
                ]
                .iter()
                .all(|h| allowed_headers.split(", ").any(|a| a == *h))
                && header(headers, "access-control-max-age").is_some()
                && expect_security_headers(route.function, headers).is_ok();
            if !ok {
                problems.push(format!("{method} {}: {status} {headers:?}", route.function));
            }
        }
    }
    ensure!(problems.is_empty(), "preflights:\n{}", problems.join("\n"));

    // Another origin is refused, in the envelope, with nothing a browser
    // would take as permission.
    let refused = app
        .anonymous()
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send(Method::OPTIONS, "/api/v1/instruments", None)
        .await?;
    refused.expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    ensure!(
        !refused.headers.contains_key("access-control-allow-origin"),
        "{:?}",
        refused.headers
    );
    ensure!(
        !refused
            .headers
            .contains_key("access-control-allow-credentials")
    );
    // A method the route does not serve.
    let unserved = app
        .anonymous()
        .header("origin", ALLOWED_ORIGIN)
        .header("access-control-request-method", "DELETE")
        .send(Method::OPTIONS, "/api/v1/instruments", None)
        .await?;
    unserved.expect_error(405, "METHOD_NOT_ALLOWED")?;
    // A plain OPTIONS says what the route serves.
    let plain = app
        .http
        .request(Method::OPTIONS, app.url("/api/v1/instruments"))
        .send()
        .await?;
    ensure!(plain.status().as_u16() == 204, "{}", plain.status());
    ensure!(
        header(plain.headers(), "allow") == Some("GET, POST, OPTIONS"),
        "{:?}",
        plain.headers()
    );
    Ok(())
}

async fn only_configured_origins_may_read_answers(app: &TestApp) -> anyhow::Result<()> {
    let (_, token) = app.admin().await?;
    let from = |origin: &'static str| app.as_user(&token).header("origin", origin);
    let allowed = from(ALLOWED_ORIGIN).get("/api/v1/instruments").await?;
    allowed.expect_ok(200)?;
    let h = &allowed.headers;
    ensure!(
        header(h, "access-control-allow-origin") == Some(ALLOWED_ORIGIN),
        "{h:?}"
    );
    ensure!(
        header(h, "access-control-allow-credentials") == Some("true"),
        "{h:?}"
    );
    let exposed = header(h, "access-control-expose-headers").unwrap_or("");
    for name in [
        "x-request-id",
        "etag",
        "retry-after",
        "ratelimit",
        "upload-offset",
    ] {
        ensure!(
            exposed.split(", ").any(|e| e == name),
            "{name} not exposed: {exposed}"
        );
    }
    ensure!(
        h.get_all("vary")
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.contains("Origin"))),
        "{h:?}"
    );
    // A refusal is readable by the allowed page too (it must show why),
    // an early one included.
    let refused = app
        .anonymous()
        .header("origin", ALLOWED_ORIGIN)
        .get("/api/v1/instruments")
        .await?;
    refused.expect_error(401, "AUTH_TOKEN_INVALID")?;
    ensure!(header(&refused.headers, "access-control-allow-origin") == Some(ALLOWED_ORIGIN));
    let too_big = app
        .anonymous()
        .header("origin", ALLOWED_ORIGIN)
        .send(
            Method::POST,
            "/api/auth/login",
            Some(("application/json", vec![b' '; 2 << 20])),
        )
        .await?;
    too_big.expect_error(413, "PAYLOAD_TOO_LARGE")?;
    ensure!(header(&too_big.headers, "access-control-allow-origin") == Some(ALLOWED_ORIGIN));
    // Any other origin is served (CORS is not authorization) but told nothing
    // a browser would let its page read.
    for origin in [
        "https://evil.example",
        "null",
        "https://eln.lab.example.evil.example",
    ] {
        let other = from(origin).get("/api/v1/instruments").await?;
        other.expect_ok(200)?;
        ensure!(
            !other.headers.contains_key("access-control-allow-origin"),
            "{origin}: {:?}",
            other.headers
        );
        ensure!(
            !other
                .headers
                .contains_key("access-control-allow-credentials"),
            "{origin}"
        );
    }
    Ok(())
}

async fn hsts_over_tls_and_a_client_address_only_from_the_platform(
    app: &TestApp,
) -> anyhow::Result<()> {
    let (_, token) = app.admin().await?;
    // Keys fenced to loopback and to a range only a forwarded header names.
    let mut keys = Vec::new();
    for allowlist in [json!(["127.0.0.0/8"]), json!(["10.9.8.0/24"])] {
        let created = app
            .as_user(&token)
            .post(
                "/api/v1/api-keys",
                &json!({"name": "fenced", "permissions": ["instruments:view"], "ipAllowlist": allowlist}),
            )
            .await?;
        keys.push(
            created.expect_ok(201)?["key"]
                .as_str()
                .context("key")?
                .to_owned(),
        );
    }
    // On the suite's own deployment no client names its own address: the
    // forwarded headers are ignored (the wasmtime front, like Spin, sets
    // spin-client-addr itself; Workers' edge sets cf-connecting-ip).
    let forged = app
        .as_key(&keys[1])
        .header("spin-client-addr", "10.9.8.7:4711")
        .header("x-forwarded-for", "10.9.8.7")
        .header("x-real-ip", "10.9.8.7")
        .get("/api/v1/instruments")
        .await?;
    forged.expect_error(401, "AUTH_TOKEN_INVALID")?;

    // A deployment served over TLS (its public URL is https), naming an
    // address header on the native host (as behind a proxy of its own) and
    // none on wasmtime (plain `wasmtime serve`, which passes on whatever a
    // client sends).
    let kind = app.stack.kind;
    let address_header = if kind == HostKind::Native {
        "x-forwarded-for"
    } else {
        ""
    };
    let host = app
        .host_with(&[
            ("APP_URL", "https://lab.example"),
            ("CLIENT_ADDRESS_HEADER", address_header),
        ])
        .await?;
    let base = host.base_url.clone();
    let result = async {
        let get = |key: &str, forwarded: Option<&str>| {
            let mut request = app
                .http
                .get(format!("{base}/api/v1/instruments"))
                .header("x-api-key", key)
                .header("cf-connecting-ip", "127.0.0.1");
            if let Some(forwarded) = forwarded {
                request = request.header("x-forwarded-for", forwarded);
            }
            request.send()
        };
        let health = app.http.get(format!("{base}/api/health")).send().await?;
        ensure!(
            header(health.headers(), "strict-transport-security")
                == Some("max-age=63072000; includeSubDomains"),
            "{:?}",
            health.headers()
        );
        let loopback = get(&keys[0], None).await?.status().as_u16();
        let forwarded = get(&keys[1], Some("192.0.2.1, 10.9.8.7"))
            .await?
            .status()
            .as_u16();
        let loopback_forwarded = get(&keys[0], Some("127.0.0.1")).await?.status().as_u16();
        let want = match kind {
            // Behind its proxy: the header's last entry, and without it the
            // address is unknown (no fenced key works).
            HostKind::Native => (401, 200, 200),
            // The platform's cf-connecting-ip.
            HostKind::Workerd => (200, 401, 200),
            // No header believed: the address is unknown.
            HostKind::Wasmtime => (401, 401, 401),
        };
        ensure!(
            (loopback, forwarded, loopback_forwarded) == want,
            "{kind:?}: got {:?}, wanted {want:?}",
            (loopback, forwarded, loopback_forwarded)
        );
        Ok(())
    }
    .await;
    tokio::task::spawn_blocking(move || host.stop()).await?;
    result
}
