//! The envelope every answer shares: health, request ids, unknown paths and methods.

use anyhow::ensure;
use serde_json::Value;

use crate::client::TestApp;

crate::cases![
    health_reports_database_reachable,
    health_is_503_in_the_envelope_when_the_database_is_down,
    request_id_is_honoured_or_generated,
    unknown_path_is_404_in_the_envelope,
    wrong_method_is_405_with_allow,
];

async fn health_reports_database_reachable(app: &TestApp) -> anyhow::Result<()> {
    let resp = app.anonymous().get("/api/health").await?;
    let data = resp.expect_ok(200)?;
    ensure!(data["database"] == "reachable", "{data}");
    ensure!(data["status"] == "ok", "{data}");
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
    let host = app
        .host_with(&[("SQL_PROXY_URL", &format!("http://{dead}/sql"))])
        .await?;
    let result = async {
        let resp = app
            .http
            .get(format!("{}/api/health", host.base_url))
            .send()
            .await?;
        let status = resp.status().as_u16();
        let json: Value = resp.json().await?;
        ensure!(status == 503, "status {status}: {json}");
        ensure!(json["success"] == false, "{json}");
        ensure!(json["error"]["code"] == "SERVICE_UNAVAILABLE", "{json}");
        ensure!(json["error"]["details"][0]["field"] == "database", "{json}");
        let text = json.to_string();
        ensure!(!text.contains("127.0.0.1"), "internal text leaked: {text}");
        ensure!(!text.contains("refused"), "internal text leaked: {text}");
        Ok(())
    }
    .await;
    tokio::task::spawn_blocking(move || host.stop()).await?;
    result
}

async fn request_id_is_honoured_or_generated(app: &TestApp) -> anyhow::Result<()> {
    let resp = app
        .anonymous()
        .header("x-request-id", "lab-42.trace")
        .get("/api/health")
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
        .anonymous()
        .header("x-request-id", &hostile)
        .get("/api/health")
        .await?;
    let id = resp.json["metadata"]["requestId"]
        .as_str()
        .unwrap_or_default();
    ensure!(id.starts_with("req_"), "generated id expected, got {id}");
    ensure!(id.len() == 36, "generated id expected, got {id}");
    Ok(())
}

async fn unknown_path_is_404_in_the_envelope(app: &TestApp) -> anyhow::Result<()> {
    app.anonymous()
        .get("/api/v1/nothing-here")
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    app.anonymous()
        .get("/api/health/extra")
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    Ok(())
}

async fn wrong_method_is_405_with_allow(app: &TestApp) -> anyhow::Result<()> {
    let resp = app.anonymous().delete("/api/v1/instruments").await?;
    resp.expect_error(405, "METHOD_NOT_ALLOWED")?;
    ensure!(resp.headers.get("allow").and_then(|v| v.to_str().ok()) == Some("GET, POST"));
    let resp = app.anonymous().get("/api/auth/login").await?;
    resp.expect_error(405, "METHOD_NOT_ALLOWED")?;
    ensure!(resp.headers.get("allow").and_then(|v| v.to_str().ok()) == Some("POST"));
    Ok(())
}
