//! API keys: shown once, scoped, limited by address, expiry, revocation and their own rate limit.

use anyhow::{Context as _, ensure};
use reqwest::Method;
use serde_json::{Value, json};
use shared::auth::Role;

use crate::client::TestApp;
use crate::instruments::instrument;

crate::cases![
    api_keys_are_shown_once_scoped_and_usable,
    api_key_allowlist_expiry_and_revocation,
    api_key_rate_limit_override,
];

async fn create_key(
    app: &TestApp,
    token: &str,
    body: Value,
) -> anyhow::Result<crate::client::Resp> {
    app.as_user(token).post("/api/v1/api-keys", &body).await
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
    ensure!(key.starts_with("ak_"), "{data}");
    ensure!(
        key.starts_with(data["keyPrefix"].as_str().unwrap_or("-")),
        "{data}"
    );
    ensure!(data["permissions"] == json!(["instruments:view"]), "{data}");
    ensure!(data["usageCount"] == 0, "{data}");
    let list = app.as_user(&token).get("/api/v1/api-keys").await?;
    let text = list.expect_ok(200)?.to_string();
    ensure!(!text.contains(&key), "listing leaks: {text}");
    ensure!(!text.contains("keyHash"), "listing leaks: {text}");
    ensure!(!text.contains("\"key\""), "listing leaks: {text}");
    // Usable on /api/v1 as X-API-Key or as a bearer token.
    app.as_key(&key)
        .get("/api/v1/instruments")
        .await?
        .expect_ok(200)?;
    app.as_user(&key)
        .get("/api/v1/instruments")
        .await?
        .expect_ok(200)?;
    // Scoped: a view-only key cannot create, though its owner could.
    let post = app
        .as_key(&key)
        .send(
            Method::POST,
            "/api/v1/instruments",
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
    app.as_user(&viewer_token)
        .get("/api/v1/api-keys")
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    // A key cannot mint keys wider than itself, nor use a garbage key.
    app.as_key(&key)
        .get("/api/v1/api-keys")
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    let forged = format!("{}_{}", &key[..15], "A".repeat(43));
    app.as_key(&forged)
        .get("/api/v1/instruments")
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    app.as_key("ak_garbage")
        .get("/api/v1/instruments")
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
    app.as_key(&fenced_key)
        .get("/api/v1/instruments")
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
    app.as_key(&local_key)
        .get("/api/v1/instruments")
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
    app.as_key(&local_key)
        .get("/api/v1/instruments")
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
    app.as_user(&stranger)
        .delete(&path)
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    app.as_key(&live_key)
        .get("/api/v1/instruments")
        .await?
        .expect_ok(200)?;
    let revoked = app.as_user(&token).delete(&path).await?;
    ensure!(revoked.expect_ok(200)?["revoked"] == true);
    app.as_key(&live_key)
        .get("/api/v1/instruments")
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    app.as_user(&token)
        .delete(&path)
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    app.as_user(&token)
        .delete("/api/v1/api-keys/not-a-uuid")
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    app.as_user(&token)
        .get(&path)
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
        statuses.push(app.as_key(&key).get("/api/v1/instruments").await?.status);
    }
    ensure!(statuses == [200, 200, 200, 429, 429], "{statuses:?}");
    Ok(())
}
