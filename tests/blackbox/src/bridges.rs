//! Cases for edge bridges: join tokens, enrollment (through the agent's own
//! enrollment code), listing, and the bridge's key.

use anyhow::{Context as _, ensure};
use serde_json::json;
use shared::auth::Role;

use crate::client::TestApp;

crate::cases![
    bridges_enroll_once_with_a_join_token,
    join_tokens_are_listed_and_revoked_before_use,
];

async fn bridges_enroll_once_with_a_join_token(app: &TestApp) -> anyhow::Result<()> {
    let (admin, token) = app.admin().await?;
    let org = admin.organization_id;
    // Only key managers make join tokens.
    let (_, scientist) = app.member(org, Role::Scientist).await?;
    app.as_user(&scientist)
        .post("/api/v1/bridges/join-tokens", &json!({"name": "Lab 2"}))
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    for bad in [
        json!({"name": ""}),
        json!({"name": "x", "expiresInMinutes": 0}),
        json!({"name": "x", "extra": 1}),
    ] {
        app.as_user(&token)
            .post("/api/v1/bridges/join-tokens", &bad)
            .await?
            .expect_error(400, "VALIDATION_ERROR")?;
    }
    let made = app
        .as_user(&token)
        .post(
            "/api/v1/bridges/join-tokens",
            &json!({"name": "Lab 2 bench PC"}),
        )
        .await?;
    let made = made.expect_ok(201)?.clone();
    let join = made["token"].as_str().context("token")?.to_owned();
    ensure!(join.starts_with("bj_"));
    let stored: i64 = app
        .db()
        .await?
        .query_one(
            "SELECT count(*) FROM bridge_join_tokens WHERE token_hash = sha256(convert_to($1, 'UTF8'))",
            &[&join],
        )
        .await?
        .get(0);
    ensure!(stored == 1, "the token is stored only as its hash");

    // The agent's own enrollment, against this host.
    let dir = tempfile::tempdir()?;
    let public = edge_bridge::tls::Trust::load(None)?;
    let credentials = edge_bridge::enroll::enroll(
        &app.url(""),
        &join,
        dir.path(),
        Some("bench-pc"),
        false,
        &public,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(credentials.organization_id == org);
    ensure!(credentials.name == "Lab 2 bench PC");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join(edge_bridge::enroll::CREDENTIALS_FILE))?
            .permissions()
            .mode();
        ensure!(
            mode & 0o077 == 0,
            "credentials readable by others: {mode:o}"
        );
    }
    ensure!(
        !format!("{credentials:?}").contains(&credentials.api_key),
        "the key is never printed"
    );
    ensure!(
        edge_bridge::enroll::load(dir.path()).map_err(|e| anyhow::anyhow!("{e}"))? == credentials
    );
    // Once only, and not over existing credentials.
    let again =
        edge_bridge::enroll::enroll(&app.url(""), &join, dir.path(), None, false, &public).await;
    ensure!(matches!(
        again,
        Err(edge_bridge::enroll::EnrollError::AlreadyEnrolled(_))
    ));
    let reused =
        edge_bridge::enroll::enroll(&app.url(""), &join, dir.path(), None, true, &public).await;
    ensure!(
        matches!(reused, Err(edge_bridge::enroll::EnrollError::Rejected)),
        "{reused:?}"
    );
    app.anonymous()
        .post("/api/v1/bridges/enroll", &json!({"token": "bj_forged"}))
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    // An expired token is refused the same way.
    let short = app
        .as_user(&token)
        .post(
            "/api/v1/bridges/join-tokens",
            &json!({"name": "Expired", "expiresInMinutes": 1}),
        )
        .await?;
    let short = short.expect_ok(201)?["token"]
        .as_str()
        .context("token")?
        .to_owned();
    app.db()
        .await?
        .execute(
            "UPDATE bridge_join_tokens SET expires_at = now() - interval '1 second' WHERE name = 'Expired' AND organization_id = $1",
            &[&org],
        )
        .await?;
    app.anonymous()
        .post("/api/v1/bridges/enroll", &json!({"token": short}))
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;

    // Listed, and its key works within its scopes.
    let listed = app.as_user(&scientist).get("/api/v1/bridges").await?;
    let listed = listed.expect_ok(200)?.clone();
    let items = listed["items"].as_array().context("items")?;
    ensure!(items.len() == 1, "{listed}");
    ensure!(
        items[0]["id"] == credentials.bridge_id.to_string(),
        "{listed}"
    );
    ensure!(items[0]["hostname"] == "bench-pc", "{listed}");
    ensure!(items[0]["version"].is_string(), "{listed}");
    ensure!(items[0]["online"] == false, "{listed}");
    let as_bridge = app
        .as_key(&credentials.api_key)
        .send(reqwest::Method::GET, "/api/v1/instruments", None)
        .await?;
    as_bridge.expect_ok(200)?;
    let outsider = app.new_org_user(Role::Admin).await?;
    let outsider = app.login(&outsider).await?;
    let theirs = app.as_user(&outsider).get("/api/v1/bridges").await?;
    ensure!(
        theirs.expect_ok(200)?["items"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );
    let enrolled: i64 = app
        .db()
        .await?
        .query_one(
            "SELECT count(*) FROM audit_events WHERE chain_id = $1 AND event_type = 'BRIDGE_ENROLLED' AND record_id = $2",
            &[&org, &credentials.bridge_id],
        )
        .await?
        .get(0);
    ensure!(enrolled == 1);
    Ok(())
}

/// Key managers list their organization's join tokens (never the token)
/// with where each stands, and revoke one no bridge has used: it stops
/// enrolling at once. A used or revoked token is 409, another
/// organization's 404, and only key managers see or revoke them.
async fn join_tokens_are_listed_and_revoked_before_use(app: &TestApp) -> anyhow::Result<()> {
    let (admin, token) = app.admin().await?;
    let made = |name: &'static str| {
        let token = token.clone();
        async move {
            let made = app
                .as_user(&token)
                .post("/api/v1/bridges/join-tokens", &json!({ "name": name }))
                .await?;
            let made = made.expect_ok(201)?.clone();
            anyhow::Ok((
                made["id"].as_str().context("id")?.to_owned(),
                made["token"].as_str().context("token")?.to_owned(),
            ))
        }
    };
    let (used_id, used) = made("Bench A").await?;
    let (kept_id, kept) = made("Bench B").await?;
    let public = edge_bridge::tls::Trust::load(None)?;
    let dir = tempfile::tempdir()?;
    let enrolled =
        edge_bridge::enroll::enroll(&app.url(""), &used, dir.path(), None, false, &public)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;

    let listed = app
        .as_user(&token)
        .get("/api/v1/bridges/join-tokens")
        .await?;
    let items = listed.expect_ok(200)?["items"].clone();
    ensure!(
        !items.to_string().contains(&used) && !items.to_string().contains(&kept),
        "{items}"
    );
    ensure!(
        items[0]["id"] == kept_id.as_str() && items[0]["status"] == "active",
        "{items}"
    );
    ensure!(
        items[1]["id"] == used_id.as_str() && items[1]["status"] == "used",
        "{items}"
    );
    ensure!(
        items[1]["bridgeId"].is_string() && items[1]["usedAt"].is_string(),
        "{items}"
    );
    ensure!(items[0]["createdBy"] == admin.id.to_string(), "{items}");
    // The bridge shows its key, which is how an enrolled bridge is revoked.
    let bridges = app.as_user(&token).get("/api/v1/bridges").await?;
    let bridge = bridges.expect_ok(200)?["items"][0].clone();
    ensure!(bridge["id"] == items[1]["bridgeId"], "{bridge}");
    ensure!(bridge["apiKeyId"].is_string(), "{bridge}");
    ensure!(bridge["name"] == enrolled.name.as_str(), "{bridge}");

    // Only key managers.
    let (_, scientist) = app.member(admin.organization_id, Role::Scientist).await?;
    app.as_user(&scientist)
        .get("/api/v1/bridges/join-tokens")
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    let path = format!("/api/v1/bridges/join-tokens/{kept_id}");
    app.as_user(&scientist)
        .delete(&path)
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    let (_, stranger) = app.admin().await?;
    app.as_user(&stranger)
        .delete(&path)
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    let strangers = app
        .as_user(&stranger)
        .get("/api/v1/bridges/join-tokens")
        .await?;
    ensure!(
        strangers.expect_ok(200)?["items"] == json!([]),
        "{}",
        strangers.json
    );

    // Revoked: it no longer enrolls.
    let revoked = app.as_user(&token).delete(&path).await?;
    let revoked = revoked.expect_ok(200)?.clone();
    ensure!(
        revoked["status"] == "revoked" && revoked["revokedBy"] == admin.id.to_string(),
        "{revoked}"
    );
    let other = tempfile::tempdir()?;
    let refused =
        edge_bridge::enroll::enroll(&app.url(""), &kept, other.path(), None, false, &public).await;
    ensure!(
        matches!(refused, Err(edge_bridge::enroll::EnrollError::Rejected)),
        "{refused:?}"
    );
    app.as_user(&token)
        .delete(&path)
        .await?
        .expect_error(409, "CONFLICT")?;
    app.as_user(&token)
        .delete(&format!("/api/v1/bridges/join-tokens/{used_id}"))
        .await?
        .expect_error(409, "CONFLICT")?;
    app.as_user(&token)
        .delete("/api/v1/bridges/join-tokens/not-a-uuid")
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    let events =
        crate::audit::event_types_of(&app.db().await?, &kept_id.parse::<uuid::Uuid>()?).await?;
    ensure!(
        events == ["BRIDGE_JOIN_TOKEN_CREATED", "BRIDGE_JOIN_TOKEN_REVOKED"],
        "{events:?}"
    );
    Ok(())
}
