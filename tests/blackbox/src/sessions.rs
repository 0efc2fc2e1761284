//! Signing in and staying signed in: login, forged and hostile tokens, `me`, refresh rotation, logout, deactivation and lockout.

use anyhow::{Context as _, ensure};
use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};
use shared::auth::Role;
use shared::auth::jwt::{self, AccessClaims};
use shared::config::SigningKey;
use time::OffsetDateTime;

use crate::client::TestApp;
use crate::instruments::instrument;

crate::cases![
    login_returns_a_working_token,
    login_failures_are_indistinguishable,
    login_rejects_bad_input_and_changes_nothing,
    hostile_tokens_are_refused,
    tokens_verify_with_the_published_keys_alone,
    me_reports_the_caller,
    refresh_rotates_and_reuse_revokes_the_family,
    refresh_works_from_the_cookie,
    refresh_rejects_bad_input,
    logout_ends_the_session_at_once,
    own_logins_are_listed_and_ended_one_by_one,
    password_change_needs_the_current_one_and_ends_the_other_logins,
    deactivation_and_role_changes_take_effect_at_once,
    lockout_after_repeated_failures_then_unlock,
];

async fn login_returns_a_working_token(app: &TestApp) -> anyhow::Result<()> {
    let user = app.new_org_user(Role::Scientist).await?;
    let resp = app
        .anonymous()
        .post(
            "/api/auth/login",
            &json!({ "email": user.email.to_uppercase(), "password": user.password }),
        )
        .await?;
    let data = resp.expect_ok(200)?;
    ensure!(data["tokenType"] == "Bearer", "{data}");
    ensure!(data["expiresIn"] == 900, "{data}");
    ensure!(data["user"]["role"] == "SCIENTIST", "{data}");
    ensure!(data["user"]["email"] == user.email.as_str(), "{data}");
    ensure!(data["user"].get("passwordHash").is_none());
    ensure!(!resp.json.to_string().contains("argon2"));
    let token = data["accessToken"].as_str().context("token")?;
    app.as_user(token)
        .get("/api/v1/instruments")
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
        .anonymous()
        .post(
            "/api/auth/login",
            &json!({ "email": user.email, "password": "wrong-password" }),
        )
        .await?;
    let unknown = app
        .anonymous()
        .post(
            "/api/auth/login",
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
        .anonymous()
        .post(
            "/api/auth/login",
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
    let anonymous = app.anonymous();
    let post_raw = |content_type: &'static str, body: Vec<u8>| {
        anonymous.send(Method::POST, "/api/auth/login", Some((content_type, body)))
    };
    let malformed = post_raw("application/json", b"{\"email\": ".to_vec()).await?;
    malformed.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(malformed.detail_fields() == ["body"], "{}", malformed.json);
    let missing = app
        .anonymous()
        .post("/api/auth/login", &json!({ "email": "a@b.co" }))
        .await?;
    missing.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(missing.detail_fields() == ["password"], "{}", missing.json);
    let unknown = app
        .anonymous()
        .post(
            "/api/auth/login",
            &json!({ "email": "a@b.co", "password": "x", "admin": true }),
        )
        .await?;
    unknown.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(unknown.detail_fields() == ["admin"], "{}", unknown.json);
    let bad_email = app
        .anonymous()
        .post(
            "/api/auth/login",
            &json!({ "email": "not-an-email", "password": "x" }),
        )
        .await?;
    bad_email.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(bad_email.detail_fields() == ["email"], "{}", bad_email.json);
    let wrong_type = app
        .anonymous()
        .post("/api/auth/login", &json!({ "email": 42, "password": "x" }))
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
        .anonymous()
        .post(
            "/api/auth/login",
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
        ids.len() == 6,
        "bad input must change nothing ({written} rows written)"
    );
    ensure!(
        written == 0,
        "bad input must change nothing ({written} rows written)"
    );
    for resp in [&malformed, &missing, &unknown, &wrong_type] {
        let text = resp.json.to_string();
        ensure!(!text.contains("panicked"), "internal text leaked: {text}");
        ensure!(!text.contains("serde"), "internal text leaked: {text}");
    }
    Ok(())
}

fn forge(
    app: &TestApp,
    kid: &str,
    seed: &[u8; 32],
    claims: AccessClaims,
    now: OffsetDateTime,
    ttl: i64,
) -> String {
    let key = SigningKey::from_seed(kid, *seed);
    jwt::sign(&key, &claims, now, ttl)
        .unwrap_or_else(|e| panic!("signing failed: {e} ({})", app.stack.base_url))
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A token with `alg` HS256 over a real token's payload, its MAC keyed
/// with `key` (the first of `rest` is the payload).
fn hs256_with(key: &[u8], rest: &[&str]) -> String {
    use hmac::Mac as _;
    let header = b64(json!({ "alg": "HS256", "typ": "at+jwt", "kid": "k1" })
        .to_string()
        .as_bytes());
    let signed = format!("{header}.{}", rest[0]);
    let mut mac = <hmac::Hmac<sha2::Sha256>>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(signed.as_bytes());
    format!("{signed}.{}", b64(&mac.finalize().into_bytes()))
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
    let key = app.stack.token_key.key.to_bytes();
    let now = OffsetDateTime::now_utc();
    // The forged-but-correct token works: the refusals below are about the hostile part only.
    let control = forge(app, "k1", &key, good.clone(), now, 300);
    app.as_user(&control)
        .get("/api/v1/instruments")
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
    // Algorithm confusion: an HMAC keyed with the public key's bytes.
    let public = app.stack.token_key.key.verifying_key().to_bytes();
    hostile.push((
        "HS256 keyed with the public key",
        hs256_with(&public, &parts[1..]),
    ));
    let hs512 = b64(json!({ "alg": "HS512", "typ": "at+jwt", "kid": "k1" })
        .to_string()
        .as_bytes());
    hostile.push(("alg HS512", format!("{hs512}.{}.{}", parts[1], parts[2])));
    let untyped = b64(json!({ "alg": "EdDSA", "kid": "k1" })
        .to_string()
        .as_bytes());
    hostile.push(("no typ", format!("{untyped}.{}.{}", parts[1], parts[2])));
    for (what, bad) in hostile {
        let resp = app.as_user(&bad).get("/api/v1/instruments").await?;
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
    app.anonymous()
        .get("/api/v1/instruments")
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    // A refresh token is not an access token.
    let login = app
        .anonymous()
        .post(
            "/api/auth/login",
            &json!({ "email": admin.email, "password": admin.password }),
        )
        .await?;
    let refresh = login.expect_ok(200)?["refreshToken"]
        .as_str()
        .context("refreshToken")?
        .to_owned();
    app.as_user(&refresh)
        .get("/api/v1/instruments")
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    app.anonymous()
        .header("authorization", "Basic YTpi")
        .get("/api/v1/instruments")
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    Ok(())
}

async fn me_reports_the_caller(app: &TestApp) -> anyhow::Result<()> {
    let user = app.new_org_user(Role::QualityAssurance).await?;
    let token = app.login(&user).await?;
    let resp = app.as_user(&token).get("/api/auth/me").await?;
    let me = resp.expect_ok(200)?;
    ensure!(me["id"] == user.id.to_string(), "{me}");
    ensure!(me["email"] == user.email.as_str(), "{me}");
    ensure!(me["role"] == "QUALITY_ASSURANCE", "{me}");
    ensure!(
        me["organization"]["id"] == user.organization_id.to_string(),
        "{me}"
    );
    let permissions: Vec<&str> = me["permissions"]
        .as_array()
        .context("permissions")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    ensure!(permissions.contains(&"audit:view"), "{permissions:?}");
    ensure!(
        !permissions.contains(&"instruments:manage"),
        "{permissions:?}"
    );
    ensure!(me["lastLoginAt"].is_string(), "{me}");
    app.anonymous()
        .get("/api/auth/me")
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    Ok(())
}

async fn login_body(
    app: &TestApp,
    user: &crate::client::User,
) -> anyhow::Result<crate::client::Resp> {
    app.anonymous()
        .post(
            "/api/auth/login",
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
    ensure!(refresh_1.starts_with("rt_"), "{first}");
    ensure!(first["refreshExpiresIn"] == 604_800, "{first}");
    let rotated = app
        .anonymous()
        .post("/api/auth/refresh", &json!({ "refreshToken": refresh_1 }))
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
    app.as_user(&access_2)
        .get("/api/auth/me")
        .await?
        .expect_ok(200)?;
    // The spent token again: refused, and the whole family ends.
    let reuse = app
        .anonymous()
        .post("/api/auth/refresh", &json!({ "refreshToken": refresh_1 }))
        .await?;
    reuse.expect_error(401, "AUTH_TOKEN_INVALID")?;
    app.anonymous()
        .post("/api/auth/refresh", &json!({ "refreshToken": refresh_2 }))
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    app.as_user(&access_2)
        .get("/api/auth/me")
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
    ensure!(cookie.contains("HttpOnly"), "{cookie}");
    ensure!(cookie.contains("Secure"), "{cookie}");
    ensure!(cookie.contains("SameSite=Strict"), "{cookie}");
    let pair = cookie.split(';').next().context("cookie pair")?.to_owned();
    let resp = app
        .anonymous()
        .header("cookie", &pair)
        .send(Method::POST, "/api/auth/refresh", None)
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
        .anonymous()
        .send(Method::POST, "/api/auth/refresh", None)
        .await?;
    none.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(none.detail_fields() == ["refreshToken"], "{}", none.json);
    app.anonymous()
        .post("/api/auth/refresh", &json!({ "refreshToken": "rt_nope" }))
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    let unknown = format!("rt_{}", "A".repeat(43));
    app.anonymous()
        .post("/api/auth/refresh", &json!({ "refreshToken": unknown }))
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    let extra = app
        .anonymous()
        .post(
            "/api/auth/refresh",
            &json!({ "refreshToken": unknown, "x": 1 }),
        )
        .await?;
    extra.expect_error(400, "VALIDATION_ERROR")?;
    // An access token is not a refresh token.
    let (_, access) = app.admin().await?;
    app.anonymous()
        .post("/api/auth/refresh", &json!({ "refreshToken": access }))
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
        .as_user(access)
        .send(Method::POST, "/api/auth/logout", None)
        .await?;
    ensure!(out.expect_ok(200)?["loggedOut"] == true);
    let cleared = out
        .headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    ensure!(cleared.contains("Max-Age=0"), "{cleared}");
    app.as_user(access)
        .get("/api/v1/instruments")
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    app.anonymous()
        .post("/api/auth/refresh", &json!({ "refreshToken": refresh }))
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    app.as_user(&other)
        .get("/api/auth/me")
        .await?
        .expect_ok(200)?;
    app.anonymous()
        .send(Method::POST, "/api/auth/logout", None)
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
    app.as_user(&token)
        .post("/api/v1/instruments", &body)
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
    app.as_user(&token)
        .post("/api/v1/instruments", &second)
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    db.execute(
        "UPDATE users SET is_active = false WHERE id = $1",
        &[&user.id],
    )
    .await?;
    app.as_user(&token)
        .get("/api/v1/instruments")
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    Ok(())
}

async fn lockout_after_repeated_failures_then_unlock(app: &TestApp) -> anyhow::Result<()> {
    let user = app.new_org_user(Role::Scientist).await?;
    let wrong = json!({ "email": user.email, "password": "not-the-password" });
    for _ in 0..shared::auth::session::MAX_FAILED_LOGINS {
        app.anonymous()
            .post("/api/auth/login", &wrong)
            .await?
            .expect_error(401, "AUTH_INVALID_CREDENTIALS")?;
    }
    // Locked: even the right password is refused, with the same answer.
    let locked = login_body(app, &user).await?;
    locked.expect_error(401, "AUTH_INVALID_CREDENTIALS")?;
    let unknown = app
        .anonymous()
        .post(
            "/api/auth/login",
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

/// The key set at `/api/auth/jwks` is the deployment's public key, and a
/// login's token verifies with it alone (checked here with ed25519-dalek,
/// not the code under test).
async fn tokens_verify_with_the_published_keys_alone(app: &TestApp) -> anyhow::Result<()> {
    let (_, token) = app.admin().await?;
    let jwks = app
        .anonymous()
        .raw(reqwest::Method::GET, "/api/auth/jwks", None)
        .await?;
    ensure!(jwks.status == 200, "jwks: {}", jwks.status);
    ensure!(
        jwks.header("content-type") == Some("application/jwk-set+json"),
        "{:?}",
        jwks.header("content-type")
    );
    ensure!(
        jwks.header("cache-control")
            .is_some_and(|c| c.contains("public")),
        "a key set may be cached"
    );
    let set: Value = serde_json::from_slice(&jwks.body)?;
    let keys = set["keys"].as_array().context("keys")?;
    ensure!(keys.len() == 1, "{set}");
    let key = &keys[0];
    for (field, value) in [
        ("kty", "OKP"),
        ("crv", "Ed25519"),
        ("alg", "EdDSA"),
        ("use", "sig"),
        ("kid", "k1"),
    ] {
        ensure!(key[field] == value, "{field}: {key}");
    }
    ensure!(key.get("d").is_none(), "a private part is published: {key}");
    let x: [u8; 32] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(key["x"].as_str().context("x")?)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("x is not 32 bytes"))?;
    ensure!(
        x == app.stack.token_key.key.verifying_key().to_bytes(),
        "the published key is the deployment's"
    );

    let parts: Vec<&str> = token.split('.').collect();
    ensure!(parts.len() == 3, "a JWT");
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(parts[0])?,
    )?;
    ensure!(
        header["alg"] == "EdDSA" && header["kid"] == "k1",
        "{header}"
    );
    let signature: [u8; 64] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[2])?
        .try_into()
        .map_err(|_| anyhow::anyhow!("an Ed25519 signature is 64 bytes"))?;
    let verifying = ed25519_dalek::VerifyingKey::from_bytes(&x)?;
    verifying.verify_strict(
        format!("{}.{}", parts[0], parts[1]).as_bytes(),
        &ed25519_dalek::Signature::from_bytes(&signature),
    )?;
    // The key set is public; writing to it is not a thing.
    app.anonymous()
        .post("/api/auth/jwks", &json!({}))
        .await?
        .expect_error(405, "METHOD_NOT_ALLOWED")?;
    Ok(())
}

/// The login id (`sessionId`) of an access token.
async fn session_id(app: &TestApp, token: &str) -> anyhow::Result<String> {
    let me = app.as_user(token).get("/api/auth/me").await?;
    Ok(me.expect_ok(200)?["sessionId"]
        .as_str()
        .context("sessionId")?
        .to_owned())
}

async fn own_logins_are_listed_and_ended_one_by_one(app: &TestApp) -> anyhow::Result<()> {
    let user = app.new_org_user(Role::Scientist).await?;
    let here = app.login(&user).await?;
    let there = app.login(&user).await?;
    let (here_id, there_id) = (
        session_id(app, &here).await?,
        session_id(app, &there).await?,
    );
    let list = app.as_user(&here).get("/api/auth/sessions").await?;
    let data = list.expect_ok(200)?;
    ensure!(data["current"] == here_id.as_str(), "{data}");
    let ids: Vec<&str> = data["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter_map(|l| l["id"].as_str())
        .collect();
    ensure!(
        ids.len() == 2 && ids.contains(&here_id.as_str()) && ids.contains(&there_id.as_str()),
        "{data}"
    );
    let first = &data["items"][0];
    for field in ["signedInAt", "lastRefreshedAt", "expiresAt"] {
        ensure!(first[field].is_string(), "{field}: {first}");
    }

    // Someone else's login is not the caller's to end, nor to see.
    let stranger = app.new_org_user(Role::Scientist).await?;
    let theirs = app.login(&stranger).await?;
    let theirs_id = session_id(app, &theirs).await?;
    app.as_user(&here)
        .delete(&format!("/api/auth/sessions/{theirs_id}"))
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    app.as_user(&theirs)
        .get("/api/auth/me")
        .await?
        .expect_ok(200)?;
    app.as_user(&here)
        .delete("/api/auth/sessions/not-a-uuid")
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;

    // Ending the other login stops it at once; this one goes on.
    let ended = app
        .as_user(&here)
        .delete(&format!("/api/auth/sessions/{there_id}"))
        .await?;
    let data = ended.expect_ok(200)?;
    ensure!(
        data["id"] == there_id.as_str() && data["wasCurrent"] == false,
        "{data}"
    );
    app.as_user(&there)
        .get("/api/auth/me")
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    app.as_user(&here)
        .get("/api/auth/me")
        .await?
        .expect_ok(200)?;
    let list = app.as_user(&here).get("/api/auth/sessions").await?;
    ensure!(
        list.expect_ok(200)?["items"].as_array().map(Vec::len) == Some(1),
        "{}",
        list.json
    );
    // Once ended, it is gone.
    app.as_user(&here)
        .delete(&format!("/api/auth/sessions/{there_id}"))
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    Ok(())
}

async fn password_change_needs_the_current_one_and_ends_the_other_logins(
    app: &TestApp,
) -> anyhow::Result<()> {
    let user = app.new_org_user(Role::Scientist).await?;
    let here = app.login(&user).await?;
    let there = app.login(&user).await?;
    let new_password = "A-new-passw0rd-for-the-lab";

    // Bad input is refused by field and changes nothing.
    let weak = app
        .as_user(&here)
        .put(
            "/api/auth/password",
            &json!({"currentPassword": user.password, "newPassword": "short"}),
        )
        .await?;
    weak.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(weak.detail_fields() == ["newPassword"], "{}", weak.json);
    let same = app
        .as_user(&here)
        .put(
            "/api/auth/password",
            &json!({"currentPassword": user.password, "newPassword": user.password}),
        )
        .await?;
    same.expect_error(400, "VALIDATION_ERROR")?;
    app.as_user(&here)
        .put("/api/auth/password", &json!({"newPassword": new_password}))
        .await?
        .expect_error(400, "VALIDATION_ERROR")?;
    app.as_user(&here)
        .put(
            "/api/auth/password",
            &json!({"currentPassword": "not my password", "newPassword": new_password}),
        )
        .await?
        .expect_error(401, "AUTH_INVALID_CREDENTIALS")?;
    app.as_user(&there)
        .get("/api/auth/me")
        .await?
        .expect_ok(200)?;

    // The right one changes it: the other login ends, this one goes on,
    // and only the new password signs in.
    let changed = app
        .as_user(&here)
        .put(
            "/api/auth/password",
            &json!({"currentPassword": user.password, "newPassword": new_password}),
        )
        .await?;
    ensure!(
        changed.expect_ok(200)?["passwordChanged"] == true,
        "{}",
        changed.json
    );
    app.as_user(&there)
        .get("/api/auth/me")
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    app.as_user(&here)
        .get("/api/auth/me")
        .await?
        .expect_ok(200)?;
    app.anonymous()
        .post(
            "/api/auth/login",
            &json!({"email": user.email, "password": user.password}),
        )
        .await?
        .expect_error(401, "AUTH_INVALID_CREDENTIALS")?;
    app.anonymous()
        .post(
            "/api/auth/login",
            &json!({"email": user.email, "password": new_password}),
        )
        .await?
        .expect_ok(200)?;
    Ok(())
}
