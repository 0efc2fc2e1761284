//! The cases. Each is an `async fn(&TestApp) -> anyhow::Result<()>` and runs
//! on every host.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use anyhow::{Context as _, ensure};
use base64::Engine as _;
use futures::future::join_all;
use libtest_mimic::Trial;
use reqwest::Method;
use serde_json::{Value, json};
use shared::auth::Role;
use shared::auth::jwt::{self, AccessClaims};
use shared::config::HmacKey;
use time::OffsetDateTime;

use crate::client::TestApp;
use crate::stack::start_host;

pub(crate) type CaseFn =
    for<'a> fn(&'a TestApp) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + 'a>>;

#[macro_export]
macro_rules! cases {
    ($($name:ident),+ $(,)?) => {
        pub(crate) const CASES: &[(&str, $crate::cases::CaseFn)] = &[$((stringify!($name), |app| Box::pin($name(app)))),+];
    };
}

cases![
    health_reports_database_reachable,
    health_is_503_in_the_envelope_when_the_database_is_down,
    request_id_is_honoured_or_generated,
    unknown_path_is_404_in_the_envelope,
    login_returns_a_working_token,
    login_failures_are_indistinguishable,
    login_rejects_bad_input_and_changes_nothing,
    hostile_tokens_are_refused,
    admin_creates_and_lists_instruments,
    list_filters_and_paginates,
    list_rejects_bad_query,
    create_validates_input_and_changes_nothing,
    duplicate_serial_number_is_409,
    creating_needs_instruments_manage,
    organizations_are_isolated,
    wrong_method_is_405_with_allow,
    me_reports_the_caller,
    refresh_rotates_and_reuse_revokes_the_family,
    refresh_works_from_the_cookie,
    refresh_rejects_bad_input,
    logout_ends_the_session_at_once,
    deactivation_and_role_changes_take_effect_at_once,
    lockout_after_repeated_failures_then_unlock,
    rate_limits_admit_exactly_the_limit_under_concurrency,
    password_reset_by_email_link,
    password_reset_refuses_bad_tokens_and_weak_passwords,
    api_keys_are_shown_once_scoped_and_usable,
    api_key_allowlist_expiry_and_revocation,
    api_key_rate_limit_override,
    role_matrix_walk,
    signup_opens_an_organization,
    invitation_signup_joins_with_the_invited_role,
    admins_manage_users_within_limits,
    mail_goes_through_the_configured_provider,
];

/// Every case as a trial; without an app (listing only) they are listed but not run.
pub fn trials(app: Option<Arc<TestApp>>, runtime: tokio::runtime::Handle) -> Vec<Trial> {
    CASES
        .iter()
        .chain(crate::lab::CASES)
        .chain(crate::data::CASES)
        .chain(crate::audit::CASES)
        .chain(crate::walk::CASES)
        .chain(crate::bridges::CASES)
        .chain(crate::live::CASES)
        .chain(crate::hub::CASES)
        .chain(crate::tls::CASES)
        .map(|(name, case)| {
            let app = app.clone();
            let runtime = runtime.clone();
            let case = *case;
            Trial::test(*name, move || {
                let app = app.ok_or("no test stack")?;
                runtime
                    .block_on(case(&app))
                    .map_err(|e| format!("{e:#}").into())
            })
        })
        .collect()
}

async fn health_reports_database_reachable(app: &TestApp) -> anyhow::Result<()> {
    let resp = app.get("/api/health", None).await?;
    let data = resp.expect_ok(200)?;
    ensure!(
        data["database"] == "reachable" && data["status"] == "ok",
        "{data}"
    );
    ensure!(resp.json["metadata"]["version"] == shared::API_VERSION);
    ensure!(
        resp.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            == Some("application/json; charset=utf-8")
    );
    Ok(())
}

async fn health_is_503_in_the_envelope_when_the_database_is_down(
    app: &TestApp,
) -> anyhow::Result<()> {
    // A second host whose proxy address answers nothing.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let env: Vec<(String, String)> = app
        .stack
        .function_env
        .iter()
        .map(|(k, v)| {
            let v = if k == "SQL_PROXY_URL" {
                format!("http://{dead}/sql")
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect();
    let host = start_host(app.stack.kind, &env).await?;
    let result = async {
        let resp = app
            .http
            .get(format!("{}/api/health", host.base_url))
            .send()
            .await?;
        let status = resp.status().as_u16();
        let json: Value = resp.json().await?;
        ensure!(status == 503, "status {status}: {json}");
        ensure!(
            json["success"] == false && json["error"]["code"] == "SERVICE_UNAVAILABLE",
            "{json}"
        );
        ensure!(json["error"]["details"][0]["field"] == "database", "{json}");
        let text = json.to_string();
        ensure!(
            !text.contains("127.0.0.1") && !text.contains("refused"),
            "internal text leaked: {text}"
        );
        Ok(())
    }
    .await;
    tokio::task::spawn_blocking(move || host.stop()).await?;
    result
}

async fn request_id_is_honoured_or_generated(app: &TestApp) -> anyhow::Result<()> {
    let resp = app
        .send(
            Method::GET,
            "/api/health",
            None,
            &[("x-request-id", "lab-42.trace")],
            None,
        )
        .await?;
    ensure!(
        resp.json["metadata"]["requestId"] == "lab-42.trace",
        "{}",
        resp.json
    );
    ensure!(
        resp.headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            == Some("lab-42.trace")
    );
    let hostile = "<script>".repeat(30);
    let resp = app
        .send(
            Method::GET,
            "/api/health",
            None,
            &[("x-request-id", &hostile)],
            None,
        )
        .await?;
    let id = resp.json["metadata"]["requestId"]
        .as_str()
        .unwrap_or_default();
    ensure!(
        id.starts_with("req_") && id.len() == 36,
        "generated id expected, got {id}"
    );
    Ok(())
}

async fn unknown_path_is_404_in_the_envelope(app: &TestApp) -> anyhow::Result<()> {
    app.get("/api/v1/nothing-here", None)
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    app.get("/api/health/extra", None)
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    Ok(())
}

async fn login_returns_a_working_token(app: &TestApp) -> anyhow::Result<()> {
    let user = app.new_org_user(Role::Scientist).await?;
    let resp = app
        .post(
            "/api/auth/login",
            None,
            &json!({ "email": user.email.to_uppercase(), "password": user.password }),
        )
        .await?;
    let data = resp.expect_ok(200)?;
    ensure!(
        data["tokenType"] == "Bearer" && data["expiresIn"] == 900,
        "{data}"
    );
    ensure!(
        data["user"]["role"] == "SCIENTIST" && data["user"]["email"] == user.email.as_str(),
        "{data}"
    );
    ensure!(
        data["user"].get("passwordHash").is_none() && !resp.json.to_string().contains("argon2")
    );
    let token = data["accessToken"].as_str().context("token")?;
    app.get("/api/v1/instruments", Some(token))
        .await?
        .expect_ok(200)?;
    let db = app.db().await?;
    let row = db
        .query_one(
            "SELECT count(*) FROM audit_events WHERE user_id = $1 AND event_type = 'AUTH_LOGIN_SUCCESS' AND request_id = $2",
            &[&user.id, &resp.json["metadata"]["requestId"].as_str().unwrap_or_default()],
        )
        .await?;
    ensure!(
        row.get::<_, i64>(0) == 1,
        "login success must be audited with its request id"
    );
    Ok(())
}

async fn login_failures_are_indistinguishable(app: &TestApp) -> anyhow::Result<()> {
    let user = app.new_org_user(Role::Admin).await?;
    let wrong = app
        .post(
            "/api/auth/login",
            None,
            &json!({ "email": user.email, "password": "wrong-password" }),
        )
        .await?;
    let unknown = app
        .post(
            "/api/auth/login",
            None,
            &json!({ "email": "nobody-here@example.org", "password": "wrong-password" }),
        )
        .await?;
    wrong.expect_error(401, "AUTH_INVALID_CREDENTIALS")?;
    unknown.expect_error(401, "AUTH_INVALID_CREDENTIALS")?;
    ensure!(
        wrong.json["error"] == unknown.json["error"],
        "{} vs {}",
        wrong.json,
        unknown.json
    );
    let db = app.db().await?;
    db.execute(
        "UPDATE users SET is_active = false WHERE id = $1",
        &[&user.id],
    )
    .await?;
    let inactive = app
        .post(
            "/api/auth/login",
            None,
            &json!({ "email": user.email, "password": user.password }),
        )
        .await?;
    inactive.expect_error(401, "AUTH_INVALID_CREDENTIALS")?;
    ensure!(inactive.json["error"] == unknown.json["error"]);
    let failures: i64 = db
        .query_one(
            "SELECT count(*) FROM audit_events WHERE user_id = $1 AND event_type = 'AUTH_LOGIN_FAILURE'",
            &[&user.id],
        )
        .await?
        .get(0);
    ensure!(
        failures == 2,
        "each failed login is audited, got {failures}"
    );
    Ok(())
}

async fn login_rejects_bad_input_and_changes_nothing(app: &TestApp) -> anyhow::Result<()> {
    let post_raw = |content_type: &'static str, body: Vec<u8>| {
        app.send(
            Method::POST,
            "/api/auth/login",
            None,
            &[],
            Some((content_type, body)),
        )
    };
    let malformed = post_raw("application/json", b"{\"email\": ".to_vec()).await?;
    malformed.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(malformed.detail_fields() == ["body"], "{}", malformed.json);
    let missing = app
        .post("/api/auth/login", None, &json!({ "email": "a@b.co" }))
        .await?;
    missing.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(missing.detail_fields() == ["password"], "{}", missing.json);
    let unknown = app
        .post(
            "/api/auth/login",
            None,
            &json!({ "email": "a@b.co", "password": "x", "admin": true }),
        )
        .await?;
    unknown.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(unknown.detail_fields() == ["admin"], "{}", unknown.json);
    let bad_email = app
        .post(
            "/api/auth/login",
            None,
            &json!({ "email": "not-an-email", "password": "x" }),
        )
        .await?;
    bad_email.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(bad_email.detail_fields() == ["email"], "{}", bad_email.json);
    let wrong_type = app
        .post(
            "/api/auth/login",
            None,
            &json!({ "email": 42, "password": "x" }),
        )
        .await?;
    wrong_type.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(
        wrong_type.detail_fields() == ["email"],
        "{}",
        wrong_type.json
    );
    post_raw("text/plain", b"email=a".to_vec())
        .await?
        .expect_error(415, "UNSUPPORTED_MEDIA_TYPE")?;
    post_raw("application/json", Vec::new())
        .await?
        .expect_error(400, "VALIDATION_ERROR")?;
    let huge = format!(
        "{{\"email\":\"a@b.co\",\"password\":\"{}\"}}",
        "x".repeat(2 << 20)
    );
    post_raw("application/json", huge.into_bytes())
        .await?
        .expect_error(413, "PAYLOAD_TOO_LARGE")?;
    let nul = app
        .post(
            "/api/auth/login",
            None,
            &json!({ "email": "a\u{0}@b.co", "password": "x" }),
        )
        .await?;
    nul.expect_error(400, "VALIDATION_ERROR")?;
    // None of these requests wrote anything (other cases run concurrently,
    // so look for these requests' own ids).
    let ids: Vec<String> = [
        &malformed,
        &missing,
        &unknown,
        &bad_email,
        &wrong_type,
        &nul,
    ]
    .iter()
    .filter_map(|r| r.json["metadata"]["requestId"].as_str().map(str::to_owned))
    .collect();
    let db = app.db().await?;
    let written: i64 = db
        .query_one(
            "SELECT count(*) FROM audit_events WHERE request_id = ANY($1)",
            &[&ids],
        )
        .await?
        .get(0);
    ensure!(
        ids.len() == 6 && written == 0,
        "bad input must change nothing ({written} rows written)"
    );
    for resp in [&malformed, &missing, &unknown, &wrong_type] {
        let text = resp.json.to_string();
        ensure!(
            !text.contains("panicked") && !text.contains("serde"),
            "internal text leaked: {text}"
        );
    }
    Ok(())
}

fn forge(
    app: &TestApp,
    kid: &str,
    secret: &[u8],
    claims: AccessClaims,
    now: OffsetDateTime,
    ttl: i64,
) -> String {
    let keys = [HmacKey {
        kid: kid.to_owned(),
        secret: secret.to_vec(),
    }];
    jwt::sign(&keys, &claims, now, ttl)
        .unwrap_or_else(|e| panic!("signing failed: {e} ({})", app.stack.base_url))
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

async fn hostile_tokens_are_refused(app: &TestApp) -> anyhow::Result<()> {
    let (admin, token) = app.admin().await?;
    let login_claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).context("payload")?)?,
    )?;
    let sid: uuid::Uuid = login_claims["sid"].as_str().context("sid claim")?.parse()?;
    let good = AccessClaims {
        iss: "antevus".into(),
        aud: "antevus-api".into(),
        sub: admin.id,
        org: admin.organization_id,
        role: "ADMIN".into(),
        sid,
        jti: uuid::Uuid::nil(),
    };
    let key = app.stack.jwt_secret.clone();
    let now = OffsetDateTime::now_utc();
    // The forged-but-correct token works: the refusals below are about the hostile part only.
    let control = forge(app, "k1", &key, good.clone(), now, 300);
    app.get("/api/v1/instruments", Some(&control))
        .await?
        .expect_ok(200)?;

    let parts: Vec<&str> = token.split('.').collect();
    ensure!(parts.len() == 3);
    let payload: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(parts[1])?,
    )?;
    let mut tampered = payload.clone();
    tampered["role"] = json!("SUPER_ADMIN");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(tampered.to_string().as_bytes()),
        parts[2]
    );
    let mut hostile = vec![
        ("tampered payload", tampered),
        ("stripped signature", format!("{}.{}.", parts[0], parts[1])),
        ("garbage", "not.a.token".to_owned()),
        (
            "expired",
            forge(
                app,
                "k1",
                &key,
                good.clone(),
                now - time::Duration::hours(2),
                300,
            ),
        ),
        (
            "not yet valid",
            forge(
                app,
                "k1",
                &key,
                good.clone(),
                now + time::Duration::hours(1),
                7200,
            ),
        ),
        (
            "wrong issuer",
            forge(
                app,
                "k1",
                &key,
                AccessClaims {
                    iss: "evil".into(),
                    ..good.clone()
                },
                now,
                300,
            ),
        ),
        (
            "wrong audience",
            forge(
                app,
                "k1",
                &key,
                AccessClaims {
                    aud: "other".into(),
                    ..good.clone()
                },
                now,
                300,
            ),
        ),
        (
            "unknown kid",
            forge(app, "k9", &key, good.clone(), now, 300),
        ),
        (
            "wrong key",
            forge(app, "k1", &[7u8; 32], good.clone(), now, 300),
        ),
    ];
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = b64(json!({ "alg": alg, "typ": "at+jwt", "kid": "k1" })
            .to_string()
            .as_bytes());
        hostile.push(("alg none", format!("{header}.{}.", parts[1])));
    }
    let hs512 = b64(json!({ "alg": "HS512", "typ": "at+jwt", "kid": "k1" })
        .to_string()
        .as_bytes());
    hostile.push(("alg HS512", format!("{hs512}.{}.{}", parts[1], parts[2])));
    let untyped = b64(json!({ "alg": "HS256", "kid": "k1" })
        .to_string()
        .as_bytes());
    hostile.push(("no typ", format!("{untyped}.{}.{}", parts[1], parts[2])));
    for (what, bad) in hostile {
        let resp = app.get("/api/v1/instruments", Some(&bad)).await?;
        let code = if what == "expired" {
            "AUTH_TOKEN_EXPIRED"
        } else {
            "AUTH_TOKEN_INVALID"
        };
        resp.expect_error(401, code)
            .with_context(|| format!("{what} token"))?;
        ensure!(
            resp.headers.get("www-authenticate").is_some(),
            "{what}: WWW-Authenticate missing"
        );
    }
    app.get("/api/v1/instruments", None)
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    // A refresh token is not an access token.
    let login = app
        .post(
            "/api/auth/login",
            None,
            &json!({ "email": admin.email, "password": admin.password }),
        )
        .await?;
    let refresh = login.expect_ok(200)?["refreshToken"]
        .as_str()
        .context("refreshToken")?
        .to_owned();
    app.get("/api/v1/instruments", Some(&refresh))
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    app.send(
        Method::GET,
        "/api/v1/instruments",
        None,
        &[("authorization", "Basic YTpi")],
        None,
    )
    .await?
    .expect_error(401, "AUTH_TOKEN_INVALID")?;
    Ok(())
}

fn instrument(name: &str, kind: &str, status: &str, location: &str) -> Value {
    json!({ "name": name, "type": kind, "status": status, "location": location })
}

async fn admin_creates_and_lists_instruments(app: &TestApp) -> anyhow::Result<()> {
    let (admin, token) = app.admin().await?;
    let body = json!({
        "name": "  Illumina NovaSeq 6000 ",
        "type": "dna_sequencer",
        "status": "online",
        "location": "Lab A, Bay 3",
        "model": "NovaSeq 6000",
        "serialNumber": "NS-0001",
        "firmware": "1.7.5",
        "configuration": { "flowCell": "S4", "readLength": 150 },
        "calibration": { "lastCalibratedAt": "2026-11-01T00:00:00Z" }
    });
    let resp = app.post("/api/v1/instruments", Some(&token), &body).await?;
    let created = resp.expect_ok(201)?.clone();
    ensure!(
        created["name"] == "Illumina NovaSeq 6000",
        "names are trimmed: {created}"
    );
    ensure!(
        created["type"] == "dna_sequencer" && created["serialNumber"] == "NS-0001",
        "{created}"
    );
    ensure!(
        created["configuration"]["readLength"] == 150 && created["version"] == 1,
        "{created}"
    );
    ensure!(created["createdBy"] == admin.id.to_string(), "{created}");
    let id = created["id"].as_str().context("id")?.to_owned();
    let list = app.get("/api/v1/instruments", Some(&token)).await?;
    let data = list.expect_ok(200)?;
    ensure!(
        data["items"].as_array().map(Vec::len) == Some(1) && data["items"][0] == created,
        "{data}"
    );
    ensure!(data["nextCursor"].is_null());
    let db = app.db().await?;
    let row = db
        .query_one(
            "SELECT organization_id, (SELECT count(*) FROM audit_events a WHERE a.record_id = i.id \
             AND a.event_type = 'INSTRUMENT_CREATED' AND a.request_id = $2 AND a.new_values->>'serialNumber' = 'NS-0001') \
             FROM instruments i WHERE id = $1::text::uuid",
            &[&id, &resp.json["metadata"]["requestId"].as_str().unwrap_or_default()],
        )
        .await?;
    ensure!(row.get::<_, uuid::Uuid>(0) == admin.organization_id);
    ensure!(
        row.get::<_, i64>(1) == 1,
        "the creation is audited in the same transaction"
    );
    Ok(())
}

async fn list_filters_and_paginates(app: &TestApp) -> anyhow::Result<()> {
    let (_, token) = app.admin().await?;
    let specs = [
        ("Freezer 1", "freezer", "online", "Cold room"),
        ("Freezer 2", "freezer", "offline", "Cold room"),
        ("HPLC 1", "hplc", "online", "Lab B"),
        ("qPCR 1", "qpcr", "running", "Lab B"),
        ("Reader 1", "plate_reader", "idle", "Lab C"),
    ];
    for (name, kind, status, location) in specs {
        app.post(
            "/api/v1/instruments",
            Some(&token),
            &instrument(name, kind, status, location),
        )
        .await?
        .expect_ok(201)?;
    }
    let names = |resp: &crate::client::Resp| -> Vec<String> {
        resp.json["data"]["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let freezers = app
        .get("/api/v1/instruments?type=freezer", Some(&token))
        .await?;
    freezers.expect_ok(200)?;
    ensure!(
        names(&freezers) == ["Freezer 2", "Freezer 1"],
        "newest first: {:?}",
        names(&freezers)
    );
    let online = app
        .get("/api/v1/instruments?status=online", Some(&token))
        .await?;
    ensure!(
        names(&online) == ["HPLC 1", "Freezer 1"],
        "{:?}",
        names(&online)
    );
    let lab_b = app
        .get(
            "/api/v1/instruments?location=Lab%20B&status=running",
            Some(&token),
        )
        .await?;
    ensure!(names(&lab_b) == ["qPCR 1"], "{:?}", names(&lab_b));
    let mut seen = Vec::new();
    let mut path = "/api/v1/instruments?limit=2".to_owned();
    loop {
        let page = app.get(&path, Some(&token)).await?;
        page.expect_ok(200)?;
        let items = names(&page);
        ensure!(items.len() <= 2);
        seen.extend(items);
        match page.json["data"]["nextCursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/instruments?limit=2&cursor={cursor}"),
            None => break,
        }
        ensure!(seen.len() <= 5, "pagination must end");
    }
    ensure!(
        seen == ["Reader 1", "qPCR 1", "HPLC 1", "Freezer 2", "Freezer 1"],
        "{seen:?}"
    );
    Ok(())
}

async fn list_rejects_bad_query(app: &TestApp) -> anyhow::Result<()> {
    let (_, token) = app.admin().await?;
    for (query, field) in [
        ("status=broken", "status"),
        ("type=toaster", "type"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("cursor=%%%", "cursor"),
        ("cursor=bm90LWEtY3Vyc29y", "cursor"),
        ("colour=red", "colour"),
    ] {
        let resp = app
            .get(&format!("/api/v1/instruments?{query}"), Some(&token))
            .await?;
        resp.expect_error(400, "VALIDATION_ERROR")
            .with_context(|| query.to_owned())?;
        ensure!(
            resp.detail_fields().contains(&field.to_owned()),
            "{query}: {}",
            resp.json
        );
    }
    Ok(())
}

async fn create_validates_input_and_changes_nothing(app: &TestApp) -> anyhow::Result<()> {
    let (admin, token) = app.admin().await?;
    let cases = [
        (json!({ "type": "hplc" }), vec!["name"]),
        (json!({ "name": "  ", "type": "hplc" }), vec!["name"]),
        (
            json!({ "name": "X", "type": "toaster", "status": "melting" }),
            vec!["type", "status"],
        ),
        (
            json!({ "name": "X", "type": "hplc", "configuration": [1, 2] }),
            vec!["configuration"],
        ),
        (
            json!({ "name": "X", "type": "hplc", "calibration": "yesterday" }),
            vec!["calibration"],
        ),
        (
            json!({ "name": "X".repeat(256), "type": "hplc" }),
            vec!["name"],
        ),
        (
            json!({ "name": "X", "type": "hplc", "owner": "me" }),
            vec!["owner"],
        ),
        (json!({ "name": 7, "type": "hplc" }), vec!["name"]),
        (json!({ "name": "X\u{7}", "type": "hplc" }), vec!["name"]),
        (json!([]), vec!["body"]),
    ];
    for (body, fields) in cases {
        let resp = app.post("/api/v1/instruments", Some(&token), &body).await?;
        resp.expect_error(400, "VALIDATION_ERROR")
            .with_context(|| body.to_string())?;
        let got = resp.detail_fields();
        ensure!(got == fields, "{body}: expected {fields:?}, got {got:?}");
    }
    let db = app.db().await?;
    let count: i64 = db
        .query_one(
            "SELECT count(*) FROM instruments WHERE organization_id = $1",
            &[&admin.organization_id],
        )
        .await?
        .get(0);
    ensure!(count == 0, "invalid input must create nothing");
    Ok(())
}

async fn duplicate_serial_number_is_409(app: &TestApp) -> anyhow::Result<()> {
    let (admin, token) = app.admin().await?;
    let mut body = instrument("Centrifuge", "centrifuge", "idle", "Lab D");
    body["serialNumber"] = json!("CF-77");
    app.post("/api/v1/instruments", Some(&token), &body)
        .await?
        .expect_ok(201)?;
    let resp = app.post("/api/v1/instruments", Some(&token), &body).await?;
    resp.expect_error(409, "CONFLICT")?;
    ensure!(resp.detail_fields() == ["serialNumber"], "{}", resp.json);
    // The same serial number in another organization is fine.
    let (_, other) = app.admin().await?;
    app.post("/api/v1/instruments", Some(&other), &body)
        .await?
        .expect_ok(201)?;
    let db = app.db().await?;
    let audits: i64 = db
        .query_one(
            "SELECT count(*) FROM audit_events WHERE organization_id = $1 AND event_type = 'INSTRUMENT_CREATED'",
            &[&admin.organization_id],
        )
        .await?
        .get(0);
    ensure!(
        audits == 1,
        "the refused insert rolled its audit event back too, got {audits}"
    );
    Ok(())
}

async fn creating_needs_instruments_manage(app: &TestApp) -> anyhow::Result<()> {
    let (admin, _) = app.admin().await?;
    for role in Role::ALL {
        let user = app.new_user(admin.organization_id, role).await?;
        let token = app.login(&user).await?;
        let resp = app
            .post(
                "/api/v1/instruments",
                Some(&token),
                &instrument(&format!("{role:?}"), "incubator", "idle", "L"),
            )
            .await?;
        let allowed = role.can(shared::auth::Permission::InstrumentsManage);
        if allowed {
            resp.expect_ok(201).with_context(|| format!("{role:?}"))?;
        } else {
            resp.expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")
                .with_context(|| format!("{role:?}"))?;
        }
        app.get("/api/v1/instruments", Some(&token))
            .await?
            .expect_ok(200)?;
    }
    Ok(())
}

async fn organizations_are_isolated(app: &TestApp) -> anyhow::Result<()> {
    let (_, token_a) = app.admin().await?;
    let (_, token_b) = app.admin().await?;
    app.post(
        "/api/v1/instruments",
        Some(&token_a),
        &instrument("Only A", "microscope", "idle", "A"),
    )
    .await?
    .expect_ok(201)?;
    let b = app.get("/api/v1/instruments", Some(&token_b)).await?;
    let items = b.expect_ok(200)?["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    ensure!(
        items.is_empty(),
        "organization B sees A's instruments: {items:?}"
    );
    let a = app.get("/api/v1/instruments", Some(&token_a)).await?;
    ensure!(a.expect_ok(200)?["items"].as_array().map(Vec::len) == Some(1));
    Ok(())
}

async fn wrong_method_is_405_with_allow(app: &TestApp) -> anyhow::Result<()> {
    let resp = app
        .send(Method::DELETE, "/api/v1/instruments", None, &[], None)
        .await?;
    resp.expect_error(405, "METHOD_NOT_ALLOWED")?;
    ensure!(resp.headers.get("allow").and_then(|v| v.to_str().ok()) == Some("GET, POST"));
    let resp = app.get("/api/auth/login", None).await?;
    resp.expect_error(405, "METHOD_NOT_ALLOWED")?;
    ensure!(resp.headers.get("allow").and_then(|v| v.to_str().ok()) == Some("POST"));
    Ok(())
}

async fn me_reports_the_caller(app: &TestApp) -> anyhow::Result<()> {
    let user = app.new_org_user(Role::QualityAssurance).await?;
    let token = app.login(&user).await?;
    let resp = app.get("/api/auth/me", Some(&token)).await?;
    let me = resp.expect_ok(200)?;
    ensure!(
        me["id"] == user.id.to_string() && me["email"] == user.email.as_str(),
        "{me}"
    );
    ensure!(
        me["role"] == "QUALITY_ASSURANCE"
            && me["organization"]["id"] == user.organization_id.to_string(),
        "{me}"
    );
    let permissions: Vec<&str> = me["permissions"]
        .as_array()
        .context("permissions")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    ensure!(
        permissions.contains(&"audit:view") && !permissions.contains(&"instruments:manage"),
        "{permissions:?}"
    );
    ensure!(me["lastLoginAt"].is_string(), "{me}");
    app.get("/api/auth/me", None)
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    Ok(())
}

async fn login_body(
    app: &TestApp,
    user: &crate::client::User,
) -> anyhow::Result<crate::client::Resp> {
    app.post(
        "/api/auth/login",
        None,
        &json!({ "email": user.email, "password": user.password }),
    )
    .await
}

async fn refresh_rotates_and_reuse_revokes_the_family(app: &TestApp) -> anyhow::Result<()> {
    let user = app.new_org_user(Role::Technician).await?;
    let login = login_body(app, &user).await?;
    let first = login.expect_ok(200)?.clone();
    let refresh_1 = first["refreshToken"]
        .as_str()
        .context("refreshToken")?
        .to_owned();
    ensure!(
        refresh_1.starts_with("rt_") && first["refreshExpiresIn"] == 604_800,
        "{first}"
    );
    let rotated = app
        .post(
            "/api/auth/refresh",
            None,
            &json!({ "refreshToken": refresh_1 }),
        )
        .await?;
    let second = rotated.expect_ok(200)?.clone();
    let refresh_2 = second["refreshToken"]
        .as_str()
        .context("refreshToken")?
        .to_owned();
    let access_2 = second["accessToken"]
        .as_str()
        .context("accessToken")?
        .to_owned();
    ensure!(refresh_2 != refresh_1, "the refresh token rotates");
    app.get("/api/auth/me", Some(&access_2))
        .await?
        .expect_ok(200)?;
    // The spent token again: refused, and the whole family ends.
    let reuse = app
        .post(
            "/api/auth/refresh",
            None,
            &json!({ "refreshToken": refresh_1 }),
        )
        .await?;
    reuse.expect_error(401, "AUTH_TOKEN_INVALID")?;
    app.post(
        "/api/auth/refresh",
        None,
        &json!({ "refreshToken": refresh_2 }),
    )
    .await?
    .expect_error(401, "AUTH_TOKEN_INVALID")?;
    app.get("/api/auth/me", Some(&access_2))
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    let db = app.db().await?;
    let audited: i64 = db
        .query_one(
            "SELECT count(*) FROM audit_events WHERE user_id = $1 AND event_type = 'AUTH_REFRESH_REUSE' \
             AND severity = 'CRITICAL'",
            &[&user.id],
        )
        .await?
        .get(0);
    ensure!(audited == 1, "reuse is audited once, got {audited}");
    let stored: i64 = db
        .query_one(
            "SELECT count(*) FROM sessions WHERE user_id = $1 AND (token_hash = convert_to($2, 'UTF8') \
             OR encode(token_hash, 'escape') LIKE 'rt_%')",
            &[&user.id, &refresh_1],
        )
        .await?
        .get(0);
    ensure!(stored == 0, "refresh tokens are stored hashed only");
    Ok(())
}

async fn refresh_works_from_the_cookie(app: &TestApp) -> anyhow::Result<()> {
    let user = app.new_org_user(Role::Viewer).await?;
    let login = login_body(app, &user).await?;
    login.expect_ok(200)?;
    let cookie = login
        .headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .context("set-cookie")?
        .to_owned();
    ensure!(
        cookie.contains("HttpOnly")
            && cookie.contains("Secure")
            && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().context("cookie pair")?.to_owned();
    let resp = app
        .send(
            Method::POST,
            "/api/auth/refresh",
            None,
            &[("cookie", &pair)],
            None,
        )
        .await?;
    resp.expect_ok(200)?;
    let next = resp
        .headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .context("rotated cookie")?;
    ensure!(!next.starts_with(&pair), "the cookie rotates too");
    Ok(())
}

async fn refresh_rejects_bad_input(app: &TestApp) -> anyhow::Result<()> {
    let none = app
        .send(Method::POST, "/api/auth/refresh", None, &[], None)
        .await?;
    none.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(none.detail_fields() == ["refreshToken"], "{}", none.json);
    app.post(
        "/api/auth/refresh",
        None,
        &json!({ "refreshToken": "rt_nope" }),
    )
    .await?
    .expect_error(401, "AUTH_TOKEN_INVALID")?;
    let unknown = format!("rt_{}", "A".repeat(43));
    app.post(
        "/api/auth/refresh",
        None,
        &json!({ "refreshToken": unknown }),
    )
    .await?
    .expect_error(401, "AUTH_TOKEN_INVALID")?;
    let extra = app
        .post(
            "/api/auth/refresh",
            None,
            &json!({ "refreshToken": unknown, "x": 1 }),
        )
        .await?;
    extra.expect_error(400, "VALIDATION_ERROR")?;
    // An access token is not a refresh token.
    let (_, access) = app.admin().await?;
    app.post(
        "/api/auth/refresh",
        None,
        &json!({ "refreshToken": access }),
    )
    .await?
    .expect_error(401, "AUTH_TOKEN_INVALID")?;
    Ok(())
}

async fn logout_ends_the_session_at_once(app: &TestApp) -> anyhow::Result<()> {
    let user = app.new_org_user(Role::Scientist).await?;
    let login = login_body(app, &user).await?;
    let data = login.expect_ok(200)?.clone();
    let access = data["accessToken"].as_str().context("accessToken")?;
    let refresh = data["refreshToken"].as_str().context("refreshToken")?;
    // A second login is a separate session and survives the first's logout.
    let other = app.login(&user).await?;
    let out = app
        .send(Method::POST, "/api/auth/logout", Some(access), &[], None)
        .await?;
    ensure!(out.expect_ok(200)?["loggedOut"] == true);
    let cleared = out
        .headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    ensure!(cleared.contains("Max-Age=0"), "{cleared}");
    app.get("/api/v1/instruments", Some(access))
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    app.post(
        "/api/auth/refresh",
        None,
        &json!({ "refreshToken": refresh }),
    )
    .await?
    .expect_error(401, "AUTH_TOKEN_INVALID")?;
    app.get("/api/auth/me", Some(&other))
        .await?
        .expect_ok(200)?;
    app.send(Method::POST, "/api/auth/logout", None, &[], None)
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    Ok(())
}

async fn deactivation_and_role_changes_take_effect_at_once(app: &TestApp) -> anyhow::Result<()> {
    let (admin, _) = app.admin().await?;
    let user = app
        .new_user(admin.organization_id, Role::LabManager)
        .await?;
    let token = app.login(&user).await?;
    let body = instrument("Role check", "incubator", "idle", "L");
    app.post("/api/v1/instruments", Some(&token), &body)
        .await?
        .expect_ok(201)?;
    let db = app.db().await?;
    db.execute(
        "UPDATE users SET role = 'VIEWER' WHERE id = $1",
        &[&user.id],
    )
    .await?;
    let mut second = body.clone();
    second["name"] = json!("Role check 2");
    app.post("/api/v1/instruments", Some(&token), &second)
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    db.execute(
        "UPDATE users SET is_active = false WHERE id = $1",
        &[&user.id],
    )
    .await?;
    app.get("/api/v1/instruments", Some(&token))
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    Ok(())
}

async fn lockout_after_repeated_failures_then_unlock(app: &TestApp) -> anyhow::Result<()> {
    let user = app.new_org_user(Role::Scientist).await?;
    let wrong = json!({ "email": user.email, "password": "not-the-password" });
    for _ in 0..shared::auth::session::MAX_FAILED_LOGINS {
        app.post("/api/auth/login", None, &wrong)
            .await?
            .expect_error(401, "AUTH_INVALID_CREDENTIALS")?;
    }
    // Locked: even the right password is refused, with the same answer.
    let locked = login_body(app, &user).await?;
    locked.expect_error(401, "AUTH_INVALID_CREDENTIALS")?;
    let unknown = app
        .post(
            "/api/auth/login",
            None,
            &json!({ "email": "ghost@example.org", "password": "x" }),
        )
        .await?;
    ensure!(
        locked.json["error"] == unknown.json["error"],
        "a lock must not be told apart"
    );
    let db = app.db().await?;
    let row = db
        .query_one(
            "SELECT account_locked_until > now() + interval '14 minutes', \
                    (SELECT count(*) FROM audit_events WHERE user_id = $1 AND event_type = 'AUTH_ACCOUNT_LOCKED') \
             FROM users WHERE id = $1",
            &[&user.id],
        )
        .await?;
    ensure!(row.get::<_, bool>(0), "locked for 15 minutes");
    ensure!(row.get::<_, i64>(1) == 1, "the lock is audited once");
    // The lock expires by itself (simulate the 15 minutes passing).
    db.execute(
        "UPDATE users SET account_locked_until = now() - interval '1 second' WHERE id = $1",
        &[&user.id],
    )
    .await?;
    login_body(app, &user).await?.expect_ok(200)?;
    Ok(())
}

/// A host of the same kind whose functions see `overrides` on top of the
/// suite's environment.
async fn host_with(
    app: &TestApp,
    overrides: &[(&str, &str)],
) -> anyhow::Result<crate::stack::HostHandle> {
    let mut env: Vec<(String, String)> = app
        .stack
        .function_env
        .iter()
        .filter(|(k, _)| !overrides.iter().any(|(name, _)| name == k))
        .cloned()
        .collect();
    env.extend(
        overrides
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    start_host(app.stack.kind, &env).await
}

async fn rate_limits_admit_exactly_the_limit_under_concurrency(
    app: &TestApp,
) -> anyhow::Result<()> {
    let host = host_with(
        app,
        &[
            ("RATE_LIMIT_AUTH", "5/60/900"),
            ("RATE_LIMIT_AUTHENTICATED", "10/60/300"),
            ("RATE_LIMIT_ADMIN", "10/60/60"),
        ],
    )
    .await?;
    let base = host.base_url.clone();
    let result = async {
        // 20 concurrent logins of one account: exactly 5 get through.
        let user = app.new_org_user(Role::Viewer).await?;
        let body = json!({ "email": user.email, "password": user.password });
        let logins = (0..20).map(|_| {
            let request = app
                .http
                .post(format!("{base}/api/auth/login"))
                .json(&body)
                .send();
            async move {
                let response = request.await?;
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                let json: Value = response.json().await?;
                anyhow::Ok((status, headers, json))
            }
        });
        let answers = futures_join_all(logins).await?;
        let passed = answers.iter().filter(|(s, _, _)| *s == 200).count();
        let limited: Vec<_> = answers.iter().filter(|(s, _, _)| *s == 429).collect();
        ensure!(
            passed == 5 && limited.len() == 15,
            "passed {passed}, limited {}",
            limited.len()
        );
        let (_, headers, json) = limited[0];
        ensure!(json["error"]["code"] == "RATE_LIMIT_EXCEEDED", "{json}");
        let retry: u64 = headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .context("Retry-After")?;
        ensure!((1..=900).contains(&retry), "Retry-After {retry}");
        let policy = headers
            .get("ratelimit-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        ensure!(policy == "\"auth\";q=5;w=60", "RateLimit-Policy {policy}");
        ensure!(headers.get("ratelimit").is_some(), "RateLimit header");
        // Blocked for 15 minutes: the next attempt is refused too.
        let again = app
            .http
            .post(format!("{base}/api/auth/login"))
            .json(&body)
            .send()
            .await?;
        ensure!(again.status().as_u16() == 429);
        let retry: u64 = again
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(0);
        ensure!(
            retry > 800,
            "the block lasts 15 minutes, Retry-After {retry}"
        );

        // 30 concurrent reads by one user: exactly 10 get through.
        let reader = app.new_org_user(Role::Viewer).await?;
        let token = app.login(&reader).await?;
        let reads = (0..30).map(|_| {
            let request = app
                .http
                .get(format!("{base}/api/v1/instruments"))
                .bearer_auth(&token)
                .send();
            async move { anyhow::Ok(request.await?.status().as_u16()) }
        });
        let statuses = futures_join_all(reads).await?;
        let ok = statuses.iter().filter(|s| **s == 200).count();
        let limited = statuses.iter().filter(|s| **s == 429).count();
        ensure!(
            ok == 10 && limited == 20,
            "reads passed {ok}, limited {limited}"
        );
        // The block is on the record once, not once per refusal.
        let blocks: i64 = app
            .db()
            .await?
            .query_one(
                "SELECT count(*) FROM audit_events WHERE organization_id = $1 AND user_id = $2 \
                   AND event_type = 'RATE_LIMIT_BLOCKED' AND outcome = 'DENIED'",
                &[&reader.organization_id, &reader.id],
            )
            .await?
            .get(0);
        ensure!(blocks == 1, "{blocks} RATE_LIMIT_BLOCKED events");
        anyhow::Ok(())
    }
    .await;
    tokio::task::spawn_blocking(move || host.stop()).await?;
    result
}

/// Runs futures concurrently on this task and collects their results.
async fn futures_join_all<T>(
    futures: impl IntoIterator<Item = impl Future<Output = anyhow::Result<T>>>,
) -> anyhow::Result<Vec<T>> {
    let handles: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut out = Vec::with_capacity(handles.len());
    for result in join_all(handles).await {
        out.push(result?);
    }
    Ok(out)
}

/// The newest queued e-mail to `to`, and the reset token in its link.
pub(crate) async fn reset_mail(
    app: &TestApp,
    to: &str,
) -> anyhow::Result<Option<(String, String)>> {
    let db = app.db().await?;
    let row = db
        .query_opt(
            "SELECT subject, body_text FROM email_outbox WHERE to_address = $1 ORDER BY created_at DESC LIMIT 1",
            &[&to],
        )
        .await?;
    Ok(row.map(|r| {
        let body: String = r.get(1);
        let token = body
            .split("token=")
            .nth(1)
            .map(|t| t.split_whitespace().next().unwrap_or_default().to_owned())
            .unwrap_or_default();
        (r.get(0), token)
    }))
}

async fn password_reset_by_email_link(app: &TestApp) -> anyhow::Result<()> {
    let user = app.new_org_user(Role::Scientist).await?;
    let old_session = app.login(&user).await?;
    let known = app
        .post(
            "/api/auth/forgot-password",
            None,
            &json!({ "email": user.email }),
        )
        .await?;
    let unknown = app
        .post(
            "/api/auth/forgot-password",
            None,
            &json!({ "email": "nobody-at-all@example.org" }),
        )
        .await?;
    ensure!(
        known.expect_ok(202)? == unknown.expect_ok(202)?,
        "the same answer either way"
    );
    ensure!(
        reset_mail(app, "nobody-at-all@example.org")
            .await?
            .is_none(),
        "no mail for an unknown account"
    );
    let (subject, token) = reset_mail(app, &user.email)
        .await?
        .context("a reset e-mail is queued")?;
    ensure!(
        subject.contains("Reset") && token.starts_with("pr_"),
        "{subject} {token}"
    );
    let db = app.db().await?;
    let stored: i64 = db
        .query_one(
            "SELECT count(*) FROM password_resets WHERE user_id = $1 \
             AND expires_at BETWEEN now() + interval '29 minutes' AND now() + interval '31 minutes' \
             AND token_hash = sha256(convert_to($2, 'UTF8'))",
            &[&user.id, &token],
        )
        .await?
        .get(0);
    ensure!(
        stored == 1,
        "the token is stored as its SHA-256, valid for 30 minutes"
    );
    let new_password = "a brand new lab password";
    let reset = app
        .post(
            "/api/auth/reset-password",
            None,
            &json!({ "token": token, "password": new_password }),
        )
        .await?;
    ensure!(reset.expect_ok(200)?["passwordReset"] == true);
    // Every session ended; the old password is gone; the new one works.
    app.get("/api/auth/me", Some(&old_session))
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    app.post(
        "/api/auth/login",
        None,
        &json!({ "email": user.email, "password": user.password }),
    )
    .await?
    .expect_error(401, "AUTH_INVALID_CREDENTIALS")?;
    app.post(
        "/api/auth/login",
        None,
        &json!({ "email": user.email, "password": new_password }),
    )
    .await?
    .expect_ok(200)?;
    // Single use.
    let again = app
        .post(
            "/api/auth/reset-password",
            None,
            &json!({ "token": token, "password": "another one, longer" }),
        )
        .await?;
    again.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(again.detail_fields() == ["token"], "{}", again.json);
    let audited: i64 = db
        .query_one("SELECT count(*) FROM audit_events WHERE user_id = $1 AND event_type = 'AUTH_PASSWORD_RESET'", &[&user.id])
        .await?
        .get(0);
    ensure!(audited == 1);
    Ok(())
}

async fn password_reset_refuses_bad_tokens_and_weak_passwords(app: &TestApp) -> anyhow::Result<()> {
    let user = app.new_org_user(Role::Viewer).await?;
    app.post(
        "/api/auth/forgot-password",
        None,
        &json!({ "email": user.email }),
    )
    .await?
    .expect_ok(202)?;
    let (_, token) = reset_mail(app, &user.email).await?.context("mail")?;
    let weak = app
        .post(
            "/api/auth/reset-password",
            None,
            &json!({ "token": token, "password": "password123" }),
        )
        .await?;
    weak.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(weak.detail_fields() == ["password"], "{}", weak.json);
    let short = app
        .post(
            "/api/auth/reset-password",
            None,
            &json!({ "token": token, "password": "short" }),
        )
        .await?;
    ensure!(short.detail_fields() == ["password"], "{}", short.json);
    let forged = format!("pr_{}", "B".repeat(43));
    let bad = app
        .post(
            "/api/auth/reset-password",
            None,
            &json!({ "token": forged, "password": "perfectly fine password" }),
        )
        .await?;
    bad.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(bad.detail_fields() == ["token"]);
    // Expired: the token stops working after 30 minutes.
    let db = app.db().await?;
    db.execute(
        "UPDATE password_resets SET expires_at = now() - interval '1 second' WHERE user_id = $1",
        &[&user.id],
    )
    .await?;
    let expired = app
        .post(
            "/api/auth/reset-password",
            None,
            &json!({ "token": token, "password": "perfectly fine password" }),
        )
        .await?;
    expired.expect_error(400, "VALIDATION_ERROR")?;
    // Nothing changed: the original password still works.
    app.login(&user).await?;
    app.post(
        "/api/auth/forgot-password",
        None,
        &json!({ "email": "not an email" }),
    )
    .await?
    .expect_error(400, "VALIDATION_ERROR")?;
    Ok(())
}

async fn create_key(
    app: &TestApp,
    token: &str,
    body: Value,
) -> anyhow::Result<crate::client::Resp> {
    app.post("/api/v1/api-keys", Some(token), &body).await
}

async fn with_key(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
) -> anyhow::Result<crate::client::Resp> {
    // On Workers the edge reports the client address in cf-connecting-ip;
    // the other hosts take it from the connection and ignore this header.
    app.send(
        method,
        path,
        None,
        &[("x-api-key", key), ("cf-connecting-ip", "127.0.0.1")],
        None,
    )
    .await
}

async fn api_keys_are_shown_once_scoped_and_usable(app: &TestApp) -> anyhow::Result<()> {
    let (admin, token) = app.admin().await?;
    let created = create_key(
        app,
        &token,
        json!({ "name": "LIMS sync", "permissions": ["instruments:view"] }),
    )
    .await?;
    let data = created.expect_ok(201)?.clone();
    let key = data["key"].as_str().context("key shown once")?.to_owned();
    ensure!(
        key.starts_with("ak_") && key.starts_with(data["keyPrefix"].as_str().unwrap_or("-")),
        "{data}"
    );
    ensure!(
        data["permissions"] == json!(["instruments:view"]) && data["usageCount"] == 0,
        "{data}"
    );
    let list = app.get("/api/v1/api-keys", Some(&token)).await?;
    let text = list.expect_ok(200)?.to_string();
    ensure!(
        !text.contains(&key) && !text.contains("keyHash") && !text.contains("\"key\""),
        "listing leaks: {text}"
    );
    // Usable on /api/v1 as X-API-Key or as a bearer token.
    with_key(app, Method::GET, "/api/v1/instruments", &key)
        .await?
        .expect_ok(200)?;
    app.get("/api/v1/instruments", Some(&key))
        .await?
        .expect_ok(200)?;
    // Scoped: a view-only key cannot create, though its owner could.
    let post = app
        .send(
            Method::POST,
            "/api/v1/instruments",
            None,
            &[("x-api-key", key.as_str())],
            Some((
                "application/json",
                serde_json::to_vec(&instrument("K", "hplc", "idle", "L"))?,
            )),
        )
        .await?;
    post.expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    let db = app.db().await?;
    let row = db
        .query_one(
            "SELECT usage_count, last_used_at IS NOT NULL, length(key_hash) FROM api_keys WHERE organization_id = $1",
            &[&admin.organization_id],
        )
        .await?;
    ensure!(
        row.get::<_, i64>(0) == 3 && row.get::<_, bool>(1),
        "usage is recorded"
    );
    ensure!(row.get::<_, i32>(2) == 32, "only the SHA-256 is stored");
    // Never wider than the creator: a lab director cannot grant users:manage.
    let director = app
        .new_user(admin.organization_id, Role::LabDirector)
        .await?;
    let director_token = app.login(&director).await?;
    let wide = create_key(
        app,
        &director_token,
        json!({ "name": "x", "permissions": ["users:manage"] }),
    )
    .await?;
    wide.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(wide.detail_fields() == ["permissions"], "{}", wide.json);
    let bogus = create_key(
        app,
        &token,
        json!({ "name": "x", "permissions": ["instruments:fly"], "ipAllowlist": ["nope"] }),
    )
    .await?;
    bogus.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(
        bogus.detail_fields() == ["permissions", "ipAllowlist"],
        "{}",
        bogus.json
    );
    // Only keys:manage may manage keys.
    let viewer = app.new_user(admin.organization_id, Role::Viewer).await?;
    let viewer_token = app.login(&viewer).await?;
    app.get("/api/v1/api-keys", Some(&viewer_token))
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    // A key cannot mint keys wider than itself, nor use a garbage key.
    with_key(app, Method::GET, "/api/v1/api-keys", &key)
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    let forged = format!("{}_{}", &key[..15], "A".repeat(43));
    with_key(app, Method::GET, "/api/v1/instruments", &forged)
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    with_key(app, Method::GET, "/api/v1/instruments", "ak_garbage")
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    Ok(())
}

async fn api_key_allowlist_expiry_and_revocation(app: &TestApp) -> anyhow::Result<()> {
    let (admin, token) = app.admin().await?;
    let fenced = create_key(
        app,
        &token,
        json!({ "name": "fenced", "permissions": ["instruments:view"], "ipAllowlist": ["10.0.0.0/8"] }),
    )
    .await?;
    let fenced_key = fenced.expect_ok(201)?["key"]
        .as_str()
        .context("key")?
        .to_owned();
    with_key(app, Method::GET, "/api/v1/instruments", &fenced_key)
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    let local = create_key(
        app,
        &token,
        json!({ "name": "local", "permissions": ["instruments:view"], "ipAllowlist": ["127.0.0.1", "::1/128"] }),
    )
    .await?;
    let local_data = local.expect_ok(201)?.clone();
    ensure!(
        local_data["ipAllowlist"] == json!(["127.0.0.1/32", "::1/128"]),
        "{local_data}"
    );
    let local_key = local_data["key"].as_str().context("key")?.to_owned();
    with_key(app, Method::GET, "/api/v1/instruments", &local_key)
        .await?
        .expect_ok(200)?;
    // Expiry.
    let past = create_key(
        app,
        &token,
        json!({ "name": "old", "permissions": ["instruments:view"], "expiresAt": "2020-01-01T00:00:00Z" }),
    )
    .await?;
    past.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(past.detail_fields() == ["expiresAt"]);
    let db = app.db().await?;
    let local_id: uuid::Uuid = local_data["id"].as_str().context("id")?.parse()?;
    db.execute(
        "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1",
        &[&local_id],
    )
    .await?;
    with_key(app, Method::GET, "/api/v1/instruments", &local_key)
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    // Revocation: 404 for others, once only, audited once.
    let live = create_key(
        app,
        &token,
        json!({ "name": "live", "permissions": ["instruments:view"] }),
    )
    .await?;
    let live_data = live.expect_ok(201)?.clone();
    let live_key = live_data["key"].as_str().context("key")?.to_owned();
    let path = format!(
        "/api/v1/api-keys/{}",
        live_data["id"].as_str().context("id")?
    );
    let (_, stranger) = app.admin().await?;
    app.send(Method::DELETE, &path, Some(&stranger), &[], None)
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    with_key(app, Method::GET, "/api/v1/instruments", &live_key)
        .await?
        .expect_ok(200)?;
    let revoked = app
        .send(Method::DELETE, &path, Some(&token), &[], None)
        .await?;
    ensure!(revoked.expect_ok(200)?["revoked"] == true);
    with_key(app, Method::GET, "/api/v1/instruments", &live_key)
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    app.send(Method::DELETE, &path, Some(&token), &[], None)
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    app.send(
        Method::DELETE,
        "/api/v1/api-keys/not-a-uuid",
        Some(&token),
        &[],
        None,
    )
    .await?
    .expect_error(404, "RESOURCE_NOT_FOUND")?;
    app.get(&path, Some(&token))
        .await?
        .expect_error(405, "METHOD_NOT_ALLOWED")?;
    let audits: i64 = db
        .query_one(
            "SELECT count(*) FROM audit_events WHERE organization_id = $1 AND event_type = 'API_KEY_REVOKED'",
            &[&admin.organization_id],
        )
        .await?
        .get(0);
    ensure!(
        audits == 1,
        "one revocation, one audit event (got {audits})"
    );
    Ok(())
}

async fn api_key_rate_limit_override(app: &TestApp) -> anyhow::Result<()> {
    let (_, token) = app.admin().await?;
    let created = create_key(
        app,
        &token,
        json!({ "name": "slow", "permissions": ["instruments:view"], "rateLimit": 3 }),
    )
    .await?;
    let key = created.expect_ok(201)?["key"]
        .as_str()
        .context("key")?
        .to_owned();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(
            with_key(app, Method::GET, "/api/v1/instruments", &key)
                .await?
                .status,
        );
    }
    ensure!(statuses == [200, 200, 200, 429, 429], "{statuses:?}");
    Ok(())
}

/// Every role against every permission-guarded route: allowed exactly when
/// the matrix (`shared::auth::roles`) says so.
async fn role_matrix_walk(app: &TestApp) -> anyhow::Result<()> {
    use shared::auth::Permission;
    let (admin, _) = app.admin().await?;
    let missing = format!("/api/v1/api-keys/{}", uuid::Uuid::from_u128(42));
    let key_body = json!({ "name": "walk", "permissions": ["instruments:view"] });
    let missing_user = format!("/api/v1/users/{}", uuid::Uuid::from_u128(43));
    let routes: Vec<(Method, &str, Option<Value>, Option<Permission>)> = vec![
        (Method::GET, "/api/auth/me", None, None),
        (
            Method::GET,
            "/api/v1/instruments",
            None,
            Some(Permission::InstrumentsView),
        ),
        (
            Method::POST,
            "/api/v1/instruments",
            Some(instrument("walk", "hplc", "idle", "L")),
            Some(Permission::InstrumentsManage),
        ),
        (
            Method::GET,
            "/api/v1/api-keys",
            None,
            Some(Permission::KeysManage),
        ),
        (
            Method::POST,
            "/api/v1/api-keys",
            Some(key_body),
            Some(Permission::KeysManage),
        ),
        (
            Method::DELETE,
            missing.as_str(),
            None,
            Some(Permission::KeysManage),
        ),
        (
            Method::GET,
            "/api/v1/users",
            None,
            Some(Permission::UsersManage),
        ),
        (
            Method::POST,
            "/api/v1/users",
            Some(json!({ "email": "x@example.org", "role": "KING" })),
            Some(Permission::UsersManage),
        ),
        (
            Method::PUT,
            missing_user.as_str(),
            Some(json!({ "name": "x" })),
            Some(Permission::UsersManage),
        ),
    ];
    for role in Role::ALL {
        let user = app.new_user(admin.organization_id, role).await?;
        let token = app.login(&user).await?;
        for (method, path, body, permission) in &routes {
            let body = body.as_ref().map(|b| {
                (
                    "application/json",
                    serde_json::to_vec(b).unwrap_or_default(),
                )
            });
            let resp = app
                .send(method.clone(), path, Some(&token), &[], body)
                .await?;
            let allowed = permission.is_none_or(|p| role.can(p));
            let what = format!("{role:?} {method} {path}: {} {}", resp.status, resp.json);
            if allowed {
                ensure!(
                    resp.status != 403 && resp.status != 401 && resp.status < 500,
                    "{what}"
                );
            } else {
                resp.expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")
                    .with_context(|| what.clone())?;
            }
        }
    }
    Ok(())
}

/// The token in the newest queued e-mail to `to` after `marker=`.
async fn mailed_token(app: &TestApp, to: &str, marker: &str) -> anyhow::Result<String> {
    let db = app.db().await?;
    let row = db
        .query_one(
            "SELECT body_text FROM email_outbox WHERE to_address = $1 ORDER BY created_at DESC LIMIT 1",
            &[&to],
        )
        .await?;
    let body: String = row.get(0);
    body.split(marker)
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .map(str::to_owned)
        .context("token in mail")
}

fn unique_email(tag: &str) -> String {
    format!(
        "{tag}-{}@example.org",
        uuid::Uuid::from_bytes(rand_bytes()).simple()
    )
}

fn rand_bytes() -> [u8; 16] {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).unwrap_or_else(|e| panic!("no randomness: {e}"));
    b
}

async fn signup_opens_an_organization(app: &TestApp) -> anyhow::Result<()> {
    let email = unique_email("founder");
    let body = json!({ "organizationName": "Genomics Core", "email": email, "name": "Ada", "password": "a long good passphrase" });
    let resp = app.post("/api/auth/signup", None, &body).await?;
    let data = resp.expect_ok(201)?.clone();
    ensure!(
        data["user"]["role"] == "ADMIN" && data["user"]["email"] == email.as_str(),
        "{data}"
    );
    let token = app
        .post(
            "/api/auth/login",
            None,
            &json!({ "email": email, "password": "a long good passphrase" }),
        )
        .await?
        .expect_ok(200)?["accessToken"]
        .as_str()
        .context("token")?
        .to_owned();
    let me = app.get("/api/auth/me", Some(&token)).await?;
    ensure!(me.expect_ok(200)?["organization"]["name"] == "Genomics Core");
    let again = app.post("/api/auth/signup", None, &body).await?;
    again.expect_error(409, "CONFLICT")?;
    ensure!(again.detail_fields() == ["email"]);
    let weak = app
        .post("/api/auth/signup", None, &json!({ "organizationName": "X", "email": unique_email("w"), "name": "W", "password": "password1" }))
        .await?;
    weak.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(weak.detail_fields() == ["password"], "{}", weak.json);
    let both = app
        .post("/api/auth/signup", None, &json!({ "invitationToken": "in_x", "organizationName": "X", "email": unique_email("b"), "name": "B", "password": "a long good passphrase" }))
        .await?;
    both.expect_error(400, "VALIDATION_ERROR")?;
    Ok(())
}

async fn invitation_signup_joins_with_the_invited_role(app: &TestApp) -> anyhow::Result<()> {
    let (admin, token) = app.admin().await?;
    let email = unique_email("invitee");
    let invited = app
        .post(
            "/api/v1/users",
            Some(&token),
            &json!({ "email": email, "role": "TECHNICIAN", "name": "Tess" }),
        )
        .await?;
    let data = invited.expect_ok(201)?.clone();
    ensure!(
        data["role"] == "TECHNICIAN" && data.get("token").is_none(),
        "the token only travels by e-mail: {data}"
    );
    let invitation = mailed_token(app, &email, "invitation=").await?;
    ensure!(invitation.starts_with("in_"));
    let body = json!({ "invitationToken": invitation, "name": "Tess", "password": "technician passphrase" });
    let joined = app.post("/api/auth/signup", None, &body).await?;
    let user = joined.expect_ok(201)?.clone();
    ensure!(
        user["user"]["role"] == "TECHNICIAN"
            && user["organizationId"] == admin.organization_id.to_string(),
        "{user}"
    );
    // Single use.
    let again = app.post("/api/auth/signup", None, &body).await?;
    again.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(
        again.detail_fields() == ["invitationToken"],
        "{}",
        again.json
    );
    // Inviting an existing account is a conflict; bad roles are refused.
    app.post(
        "/api/v1/users",
        Some(&token),
        &json!({ "email": email, "role": "VIEWER" }),
    )
    .await?
    .expect_error(409, "CONFLICT")?;
    let bad = app
        .post(
            "/api/v1/users",
            Some(&token),
            &json!({ "email": unique_email("x"), "role": "KING" }),
        )
        .await?;
    ensure!(bad.detail_fields() == ["role"], "{}", bad.json);
    let sup = app
        .post(
            "/api/v1/users",
            Some(&token),
            &json!({ "email": unique_email("x"), "role": "SUPER_ADMIN" }),
        )
        .await?;
    sup.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(
        sup.detail_fields() == ["role"],
        "an admin cannot mint a super admin"
    );
    Ok(())
}

async fn admins_manage_users_within_limits(app: &TestApp) -> anyhow::Result<()> {
    let (admin, token) = app.admin().await?;
    let user = app.new_user(admin.organization_id, Role::Scientist).await?;
    let user_token = app.login(&user).await?;
    let path = format!("/api/v1/users/{}", user.id);
    let list = app.get("/api/v1/users", Some(&token)).await?;
    ensure!(list.expect_ok(200)?["items"].as_array().map(Vec::len) == Some(2));
    let text = list.json.to_string();
    ensure!(
        !text.contains("passwordHash") && !text.contains("argon2"),
        "no hashes in listings"
    );
    // A user may read themselves, not others, and may not manage users.
    app.get(&path, Some(&user_token)).await?.expect_ok(200)?;
    app.get(&format!("/api/v1/users/{}", admin.id), Some(&user_token))
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    let put = |body: Value, tok: String, p: String| async move {
        app.send(
            Method::PUT,
            &p,
            Some(&tok),
            &[],
            Some(("application/json", serde_json::to_vec(&body)?)),
        )
        .await
    };
    put(json!({ "role": "ADMIN" }), user_token.clone(), path.clone())
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    // A role change needs a reason.
    let unexplained = put(
        json!({ "role": "LAB_MANAGER" }),
        token.clone(),
        path.clone(),
    )
    .await?;
    unexplained.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(
        unexplained.detail_fields() == ["reason"],
        "{}",
        unexplained.json
    );
    // Role change by the admin takes effect and is audited with old and new values.
    let promoted = put(
        json!({ "role": "LAB_MANAGER", "department": "Genomics", "reason": "Leads the genomics group" }),
        token.clone(),
        path.clone(),
    )
    .await?;
    ensure!(promoted.expect_ok(200)?["role"] == "LAB_MANAGER");
    let db = app.db().await?;
    let audit = db
        .query_one(
            "SELECT old_values->>'role', new_values->>'role', reason FROM audit_events WHERE record_id = $1 AND event_type = 'USER_UPDATED'",
            &[&user.id],
        )
        .await?;
    ensure!(audit.get::<_, String>(0) == "SCIENTIST" && audit.get::<_, String>(1) == "LAB_MANAGER");
    ensure!(audit.get::<_, Option<String>>(2).as_deref() == Some("Leads the genomics group"));
    // No one changes their own role or deactivates themselves; no passwords set here.
    let own = format!("/api/v1/users/{}", admin.id);
    let self_demote = put(json!({ "role": "VIEWER" }), token.clone(), own.clone()).await?;
    ensure!(
        self_demote.detail_fields() == ["role"],
        "{}",
        self_demote.json
    );
    let self_off = put(json!({ "isActive": false }), token.clone(), own.clone()).await?;
    ensure!(
        self_off.detail_fields() == ["isActive"],
        "{}",
        self_off.json
    );
    let pw = put(
        json!({ "password": "known to the admin" }),
        token.clone(),
        path.clone(),
    )
    .await?;
    pw.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(pw.detail_fields() == ["password"], "{}", pw.json);
    let sup = put(
        json!({ "role": "SUPER_ADMIN" }),
        token.clone(),
        path.clone(),
    )
    .await?;
    ensure!(sup.detail_fields() == ["role"], "{}", sup.json);
    // Deactivation ends the user's sessions at once.
    put(json!({ "isActive": false }), token.clone(), path.clone())
        .await?
        .expect_ok(200)?;
    app.get("/api/auth/me", Some(&user_token))
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    // Other organizations' users are 404.
    let (_, stranger) = app.admin().await?;
    app.get(&path, Some(&stranger))
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    put(json!({ "name": "x" }), stranger, path.clone())
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    app.get("/api/v1/users/nope", Some(&token))
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    Ok(())
}

/// What the mail provider stand-in received: (authorization, JSON body).
type Received = Arc<std::sync::Mutex<Vec<(Option<String>, Value)>>>;

/// A stand-in for a third-party HTTP mail provider (the network boundary):
/// records what it receives and answers with `status`.
async fn mail_provider(
    status: u16,
) -> anyhow::Result<(String, Received, tokio::sync::oneshot::Sender<()>)> {
    let received: Received = Arc::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/send",
        axum::routing::post(move |headers: http::HeaderMap, body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                if let Ok(mut s) = sink.lock() {
                    s.push((auth, json));
                }
                http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/send", listener.local_addr()?);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    Ok((url, received, tx))
}

async fn mail_goes_through_the_configured_provider(app: &TestApp) -> anyhow::Result<()> {
    let db = app.db().await?;
    for (status, delivered) in [(200u16, true), (503, false)] {
        let (url, received, stop) = mail_provider(status).await?;
        let host = host_with(
            app,
            &[
                ("MAIL_PROVIDER_URL", url.as_str()),
                ("MAIL_PROVIDER_TOKEN", "provider-secret"),
            ],
        )
        .await?;
        let base = host.base_url.clone();
        let result = async {
            let user = app.new_org_user(Role::Viewer).await?;
            let resp = app.http.post(format!("{base}/api/auth/forgot-password")).json(&json!({ "email": user.email })).send().await?;
            ensure!(resp.status().as_u16() == 202, "the request succeeds whatever the provider says");
            let got = received.lock().map(|r| r.clone()).unwrap_or_default();
            ensure!(got.len() == 1, "one message posted, got {}", got.len());
            let (auth, message) = &got[0];
            ensure!(auth.as_deref() == Some("Bearer provider-secret"), "{auth:?}");
            ensure!(message["to"] == user.email.as_str(), "{message}");
            ensure!(message["text"].as_str().unwrap_or_default().contains("reset-password?token=pr_"), "{message}");
            let row = db
                .query_one(
                    "SELECT sent_at IS NOT NULL, attempts, coalesce(last_error, '') FROM email_outbox WHERE to_address = $1",
                    &[&user.email],
                )
                .await?;
            ensure!(row.get::<_, bool>(0) == delivered, "sent_at recorded only on success");
            ensure!(row.get::<_, i32>(1) == 1);
            ensure!(delivered || row.get::<_, String>(2).contains("503"), "the failure is recorded");
            anyhow::Ok(())
        }
        .await;
        let _ = stop.send(());
        tokio::task::spawn_blocking(move || host.stop()).await?;
        result?;
    }
    Ok(())
}
