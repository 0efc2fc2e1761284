//! Webhooks: endpoints only to public https addresses, deliveries signed
//! per Standard Webhooks (checked with the `standardwebhooks` crate, not
//! our signing code), retried on the schedule, never redirected, and
//! stopped when the endpoint is gone. Time is moved by moving a delivery's
//! due time in the database, never by a clock a deployment could set.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, ensure};
use http::Method;
use serde_json::{Value, json};
use shared::auth::Role;

use crate::client::TestApp;
use crate::lab::{id_of, register};

crate::cases![
    endpoints_must_be_public_https_and_are_the_organizations_own,
    deliveries_are_signed_retried_on_schedule_and_stop_when_gone,
];

/// What the receiver answers next: a status and a `Location`.
type Answers = Arc<Mutex<VecDeque<(u16, Option<String>)>>>;

/// A request the receiver got.
#[derive(Clone)]
struct Hit {
    path: String,
    headers: http::HeaderMap,
    body: bytes::Bytes,
}

/// A local endpoint: answers from a queue of `(status, Location)` (200 once
/// it is empty) and records every request.
struct Receiver {
    url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    answers: Answers,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Receiver {
    async fn start() -> anyhow::Result<Receiver> {
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let answers: Answers = Arc::default();
        let (sink, queue) = (hits.clone(), answers.clone());
        let app = axum::Router::new().fallback(
            move |uri: http::Uri, headers: http::HeaderMap, body: axum::body::Bytes| {
                let (sink, queue) = (sink.clone(), queue.clone());
                async move {
                    if let Ok(mut hits) = sink.lock() {
                        hits.push(Hit {
                            path: uri.path().to_owned(),
                            headers,
                            body,
                        });
                    }
                    let (status, location) = queue
                        .lock()
                        .ok()
                        .and_then(|mut q| q.pop_front())
                        .unwrap_or((200, None));
                    let mut response = http::Response::builder().status(status);
                    if let Some(location) = location {
                        response = response.header("location", location);
                    }
                    response
                        .body(axum::body::Body::from("received by the suite"))
                        .unwrap_or_default()
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Receiver {
            url,
            hits,
            answers,
            _stop: tx,
        })
    }

    fn answer(&self, status: u16, location: Option<&str>) {
        if let Ok(mut q) = self.answers.lock() {
            q.push_back((status, location.map(str::to_owned)));
        }
    }

    fn hits(&self, path: &str) -> Vec<Hit> {
        self.hits
            .lock()
            .map(|h| h.iter().filter(|h| h.path == path).cloned().collect())
            .unwrap_or_default()
    }
}

async fn endpoints_must_be_public_https_and_are_the_organizations_own(
    app: &TestApp,
) -> anyhow::Result<()> {
    let (admin, token) = app.admin().await?;
    let db = app.db().await?;
    let stored = || async {
        let n: i64 = db
            .query_one(
                "SELECT count(*) FROM webhooks WHERE organization_id = $1",
                &[&admin.organization_id],
            )
            .await?
            .get(0);
        anyhow::Ok(n)
    };
    for url in [
        "https://127.0.0.1/hook",
        "https://10.0.0.8/hook",
        "https://172.16.4.4/hook",
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hook",
        "https://[fd00::1]/hook",
        "https://[::ffff:10.0.0.1]/hook",
        "https://2130706433/hook",
        "https://0177.0.0.1/hook",
        "https://0x7f.0.0.1/hook",
        "https://localhost/hook",
        "https://metadata.google.internal/computeMetadata/v1/",
        "http://hooks.example.com/hook",
        "https://user:secret@hooks.example.com/hook",
        "not a url",
    ] {
        let resp = app
            .as_user(&token)
            .post(
                "/api/v1/webhooks",
                &json!({"url": url, "events": ["run.completed"]}),
            )
            .await?;
        resp.expect_error(400, "VALIDATION_ERROR")
            .with_context(|| url.to_owned())?;
        ensure!(resp.detail_fields() == ["url"], "{url}: {}", resp.json);
    }
    let unknown = app
        .as_user(&token)
        .post(
            "/api/v1/webhooks",
            &json!({"url": "https://hooks.example.com/a", "events": ["run.exploded"]}),
        )
        .await?;
    unknown.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(unknown.detail_fields() == ["events"], "{}", unknown.json);
    ensure!(stored().await? == 0, "a refused endpoint was stored");

    // A public one: its secret shown once, stored only sealed.
    let created = app
        .as_user(&token)
        .post(
            "/api/v1/webhooks",
            &json!({"url": "https://hooks.example.com/lims", "events": ["run.failed", "run.completed", "run.failed"],
                    "description": "LIMS"}),
        )
        .await?;
    let created = created.expect_ok(201)?.clone();
    let secret = created["secret"].as_str().context("secret")?.to_owned();
    let key = secret.strip_prefix("whsec_").context("whsec_ prefix")?;
    use base64::Engine as _;
    ensure!(
        base64::engine::general_purpose::STANDARD
            .decode(key)
            .map(|k| k.len())
            .ok()
            == Some(32),
        "{secret}"
    );
    // Catalogue order, once each.
    ensure!(
        created["events"] == json!(["run.completed", "run.failed"]),
        "{created}"
    );
    let id = id_of(&created)?;
    let row = db
        .query_one(
            "SELECT encode(secret_ciphertext, 'escape'), secret_key_id FROM webhooks WHERE id = $1",
            &[&id],
        )
        .await?;
    let sealed: String = row.get(0);
    ensure!(!sealed.contains(key), "the secret is stored in clear");
    ensure!(
        row.get::<_, String>(1) == "d1",
        "sealed under the deployment's key"
    );
    let listed = app.as_user(&token).get("/api/v1/webhooks").await?;
    let listed = listed.expect_ok(200)?;
    ensure!(
        listed["items"].as_array().map(Vec::len) == Some(1),
        "{listed}"
    );
    ensure!(
        !listed.to_string().contains(key) && listed["items"][0].get("secret").is_none(),
        "a list shows the secret"
    );

    // Optimistic updates; a URL changed is checked again.
    let path = format!("/api/v1/webhooks/{id}");
    app.as_user(&token)
        .put(&path, &json!({"description": "x"}))
        .await?
        .expect_error(428, "PRECONDITION_REQUIRED")?;
    app.as_user(&token)
        .put(&path, &json!({"version": 1, "url": "https://10.1.1.1/x"}))
        .await?
        .expect_error(400, "VALIDATION_ERROR")?;
    let changed = app
        .as_user(&token)
        .put(&path, &json!({"version": 1, "enabled": false}))
        .await?;
    ensure!(
        changed.expect_ok(200)?["enabled"] == false,
        "{}",
        changed.json
    );
    app.as_user(&token)
        .put(&path, &json!({"version": 1, "enabled": true}))
        .await?
        .expect_error(412, "PRECONDITION_FAILED")?;

    // Another organization's endpoint does not exist for them; a role
    // without webhooks:manage is refused.
    let (_, other) = app.admin().await?;
    for (method, p) in [
        (Method::GET, path.clone()),
        (Method::DELETE, path.clone()),
        (Method::GET, format!("{path}/deliveries")),
    ] {
        let caller = app.as_user(&other);
        let resp = if method == Method::GET {
            caller.get(&p).await?
        } else {
            caller.delete(&p).await?
        };
        resp.expect_error(404, "RESOURCE_NOT_FOUND")
            .with_context(|| format!("{method} {p}"))?;
    }
    let (_, scientist) = app.member(admin.organization_id, Role::Scientist).await?;
    app.as_user(&scientist)
        .get("/api/v1/webhooks")
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    Ok(())
}

/// A run started and aborted through the API: `run.aborted`.
async fn abort_a_run(app: &TestApp, token: &str) -> anyhow::Result<uuid::Uuid> {
    let instrument = register(
        app,
        token,
        json!({"name": "Reader for webhooks", "type": "plate_reader", "status": "idle"}),
    )
    .await?;
    let run = app
        .as_user(token)
        .post(
            "/api/v1/runs",
            &json!({"instrumentId": id_of(&instrument)?}),
        )
        .await?;
    let run_id = id_of(run.expect_ok(201)?)?;
    app.as_user(token)
        .put(
            &format!("/api/v1/runs/{run_id}/stop"),
            &json!({"outcome": "aborted", "reason": "webhook case"}),
        )
        .await?
        .expect_ok(200)?;
    Ok(run_id)
}

async fn deliveries_are_signed_retried_on_schedule_and_stop_when_gone(
    app: &TestApp,
) -> anyhow::Result<()> {
    // Loopback endpoints are a development setting: a host of its own.
    let host = app.host_with(&[("WEBHOOK_ALLOW_LOOPBACK", "true")]).await?;
    let base = host.base_url.clone();
    let result = deliveries_through(app, &base).await;
    tokio::task::spawn_blocking(move || host.stop()).await?;
    result
}

async fn deliveries_through(app: &TestApp, base: &str) -> anyhow::Result<()> {
    let receiver = Receiver::start().await?;
    let scheduler = app.scheduler_key()?;
    let (admin, token) = app.admin().await?;
    let db = app.db().await?;
    let drain = || async {
        let resp = app
            .http
            .post(format!("{base}/api/v1/jobs/deliver-webhooks"))
            .bearer_auth(&scheduler)
            .json(&json!({"seconds": 0}))
            .send()
            .await?;
        ensure!(resp.status().as_u16() == 200, "drain {}", resp.status());
        anyhow::Ok(resp.json::<Value>().await?)
    };
    let create = |path: &str, events: Value| {
        let body = json!({"url": format!("{}{path}", receiver.url), "events": events});
        let request = app
            .http
            .post(format!("{base}/api/v1/webhooks"))
            .bearer_auth(&token)
            .json(&body);
        async move {
            let resp = request.send().await?;
            ensure!(resp.status().as_u16() == 201, "create {}", resp.status());
            let body: Value = resp.json().await?;
            anyhow::Ok(body["data"].clone())
        }
    };
    let hook = create("/lims", json!(["run.aborted", "run.completed"])).await?;
    let hook_id = id_of(&hook)?;
    let secret = hook["secret"].as_str().context("secret")?.to_owned();

    // Two failures, then success: the same webhook-id each time, every
    // attempt signed, the waits those of the schedule.
    receiver.answer(500, None);
    receiver.answer(503, None);
    let run_id = abort_a_run(app, &token).await?;
    let delivery: uuid::Uuid = db
        .query_one(
            "SELECT id FROM webhook_deliveries WHERE webhook_id = $1",
            &[&hook_id],
        )
        .await?
        .get(0);
    let wait_after_attempt = || async {
        let row = db
            .query_one(
                "SELECT status, attempts, extract(epoch FROM next_attempt_at - last_attempt_at)::float8 \
                 FROM webhook_deliveries WHERE id = $1",
                &[&delivery],
            )
            .await?;
        anyhow::Ok((
            row.get::<_, String>(0),
            row.get::<_, i32>(1),
            row.get::<_, Option<f64>>(2),
        ))
    };
    let due_now = || async {
        db.execute(
            "UPDATE webhook_deliveries SET next_attempt_at = now() WHERE id = $1",
            &[&delivery],
        )
        .await?;
        anyhow::Ok(())
    };
    drain().await?;
    let (status, attempts, wait) = wait_after_attempt().await?;
    ensure!(status == "pending" && attempts == 1, "{status} {attempts}");
    ensure!(
        wait.is_some_and(|w| (4.4..=5.6).contains(&w)),
        "first retry after {wait:?} s, not 5 s"
    );
    due_now().await?;
    drain().await?;
    let (_, attempts, wait) = wait_after_attempt().await?;
    ensure!(attempts == 2, "{attempts}");
    ensure!(
        wait.is_some_and(|w| (270.0..=330.0).contains(&w)),
        "second retry after {wait:?} s, not 5 min"
    );
    due_now().await?;
    drain().await?;
    let (status, attempts, _) = wait_after_attempt().await?;
    ensure!(
        status == "delivered" && attempts == 3,
        "{status} {attempts}"
    );
    let hits = receiver.hits("/lims");
    ensure!(hits.len() == 3, "{} requests", hits.len());
    let verifier = standardwebhooks::Webhook::new(&secret)?;
    let first_id = hits[0].headers.get("webhook-id").cloned();
    for hit in &hits {
        verifier
            .verify(&hit.body, &hit.headers)
            .map_err(|e| anyhow::anyhow!("signature refused: {e:?}"))?;
        ensure!(
            hit.headers.get("webhook-id") == first_id.as_ref(),
            "webhook-id changed"
        );
        ensure!(
            hit.headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                == Some("application/json"),
            "content type"
        );
    }
    let payload: Value = serde_json::from_slice(&hits[2].body)?;
    ensure!(payload["type"] == "run.aborted", "{payload}");
    ensure!(payload["data"]["runId"] == run_id.to_string(), "{payload}");
    ensure!(payload["data"]["reason"] == "webhook case", "{payload}");
    ensure!(payload["timestamp"].is_string(), "{payload}");
    let log = app
        .as_user(&token)
        .get(&format!("/api/v1/webhooks/{hook_id}/deliveries"))
        .await?;
    let log = log.expect_ok(200)?;
    let attempts = &log["items"][0]["attemptLog"];
    ensure!(
        attempts.as_array().map(Vec::len) == Some(3)
            && attempts[0]["statusCode"] == 500
            && attempts[1]["statusCode"] == 503
            && attempts[2]["statusCode"] == 200
            && attempts[2]["responseExcerpt"] == "received by the suite",
        "{log}"
    );
    ensure!(
        log["items"][0]["eventId"].as_str() == first_id.as_ref().and_then(|v| v.to_str().ok()),
        "{log}"
    );

    // A redirect is a failure and is not followed.
    let trap = format!("{}/trap", receiver.url);
    receiver.answer(302, Some(&trap));
    abort_a_run(app, &token).await?;
    drain().await?;
    ensure!(
        receiver.hits("/trap").is_empty(),
        "the redirect was followed"
    );
    let redirected = db
        .query_one(
            "SELECT status, response -> -1 ->> 'error' FROM webhook_deliveries \
             WHERE webhook_id = $1 ORDER BY created_at DESC LIMIT 1",
            &[&hook_id],
        )
        .await?;
    ensure!(
        redirected.get::<_, String>(0) == "pending"
            && redirected
                .get::<_, Option<String>>(1)
                .is_some_and(|e| e.contains("redirects are not followed")),
        "a redirect: {:?}",
        redirected.get::<_, Option<String>>(1)
    );

    // 410 Gone disables the endpoint (audited); nothing more is queued or sent.
    db.execute(
        "UPDATE webhook_deliveries SET next_attempt_at = now() WHERE webhook_id = $1 AND status = 'pending'",
        &[&hook_id],
    )
    .await?;
    receiver.answer(410, None);
    drain().await?;
    let shown = app
        .as_user(&token)
        .get(&format!("/api/v1/webhooks/{hook_id}"))
        .await?;
    let shown = shown.expect_ok(200)?;
    ensure!(
        shown["enabled"] == false && shown["disabledReason"] == "gone",
        "{shown}"
    );
    let disabled: i64 = db
        .query_one(
            "SELECT count(*) FROM audit_events WHERE organization_id = $1 \
             AND event_type = 'WEBHOOK_DISABLED' AND record_id = $2",
            &[&admin.organization_id, &hook_id],
        )
        .await?
        .get(0);
    ensure!(disabled == 1, "WEBHOOK_DISABLED written {disabled} times");
    let before = receiver.hits("/lims").len();
    abort_a_run(app, &token).await?;
    drain().await?;
    ensure!(
        receiver.hits("/lims").len() == before,
        "sent after the endpoint was disabled"
    );
    let queued: i64 = db
        .query_one(
            "SELECT count(*) FROM webhook_deliveries WHERE webhook_id = $1 AND status = 'pending'",
            &[&hook_id],
        )
        .await?
        .get(0);
    ensure!(
        queued == 0,
        "{queued} deliveries pending for a disabled endpoint"
    );

    // Enabled again, the failed and cancelled deliveries since a time are
    // replayed, each with its own webhook-id.
    let hook_path = format!("/api/v1/webhooks/{hook_id}");
    let version = shown["version"].as_i64().context("version")?;
    app.as_user(&token)
        .put(&hook_path, &json!({"version": version, "enabled": true}))
        .await?
        .expect_ok(200)?;
    let since = (time::OffsetDateTime::now_utc() - time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)?;
    let replayed = app
        .as_user(&token)
        .post(&format!("{hook_path}/recover"), &json!({"since": since}))
        .await?;
    let replayed = replayed.expect_ok(200)?["recovered"].as_u64();
    ensure!(replayed == Some(1), "recovered {replayed:?}");
    let before = receiver.hits("/lims").len();
    drain().await?;
    let hits = receiver.hits("/lims");
    ensure!(hits.len() == before + 1, "the replay was not sent");
    let replay = hits.last().context("a replay")?;
    verifier
        .verify(&replay.body, &replay.headers)
        .map_err(|e| anyhow::anyhow!("replay signature refused: {e:?}"))?;
    ensure!(
        replay.headers.get("webhook-id") != first_id.as_ref(),
        "a replay of another event carries its own id"
    );

    // A rotated secret: for a while both sign, each verifies on its own.
    let rotated = app
        .as_user(&token)
        .post(&format!("{hook_path}/secret"), &json!({}))
        .await?;
    let rotated = rotated.expect_ok(200)?.clone();
    let new_secret = rotated["secret"].as_str().context("new secret")?.to_owned();
    ensure!(new_secret != secret, "the same secret");
    ensure!(rotated["previousSecretUntil"].is_string(), "{rotated}");
    abort_a_run(app, &token).await?;
    drain().await?;
    let signed = receiver
        .hits("/lims")
        .last()
        .cloned()
        .context("a delivery")?;
    let signatures = signed
        .headers
        .get("webhook-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(' ')
        .count();
    ensure!(
        signatures == 2,
        "{signatures} signatures during the rotation"
    );
    for key in [&secret, &new_secret] {
        standardwebhooks::Webhook::new(key)?
            .verify(&signed.body, &signed.headers)
            .map_err(|e| anyhow::anyhow!("a rotation's signature refused: {e:?}"))?;
    }

    // A test, sent now and answered; and a delivery sent again, with its
    // own webhook-id.
    // The target is checked again at delivery: a host without the
    // development setting refuses the loopback endpoint and sends nothing.
    let sent_before = receiver.hits("/lims").len();
    let refused = app
        .as_user(&token)
        .post(&format!("{hook_path}/test"), &json!({}))
        .await?;
    let refused = refused.expect_ok(200)?;
    ensure!(
        refused["delivered"] == false
            && refused["attempt"]["error"]
                .as_str()
                .is_some_and(|e| e.contains("refused")),
        "{refused}"
    );
    ensure!(
        receiver.hits("/lims").len() == sent_before,
        "sent to a refused target"
    );
    // Sent from the request: through the host that allows loopback.
    let via_loopback_host = |path: String| {
        let request = app
            .http
            .post(format!("{base}{path}"))
            .bearer_auth(&token)
            .json(&json!({}));
        async move {
            let resp = request.send().await?;
            ensure!(resp.status().as_u16() == 200, "{path}: {}", resp.status());
            let body: Value = resp.json().await?;
            anyhow::Ok(body["data"].clone())
        }
    };
    let tested = via_loopback_host(format!("{hook_path}/test")).await?;
    ensure!(
        tested["delivered"] == true && tested["attempt"]["statusCode"] == 200,
        "{tested}"
    );
    let ping = receiver.hits("/lims").last().cloned().context("the test")?;
    let ping_body: Value = serde_json::from_slice(&ping.body)?;
    ensure!(
        ping_body["type"] == "webhook.test"
            && ping_body["data"]["webhookId"] == hook_id.to_string(),
        "{ping_body}"
    );
    standardwebhooks::Webhook::new(&new_secret)?
        .verify(&ping.body, &ping.headers)
        .map_err(|e| anyhow::anyhow!("the test's signature refused: {e:?}"))?;
    let again = via_loopback_host(format!("{hook_path}/deliveries/{delivery}/retry")).await?;
    ensure!(again["delivered"] == true, "{again}");
    let resent = receiver
        .hits("/lims")
        .last()
        .cloned()
        .context("the resend")?;
    ensure!(
        resent.headers.get("webhook-id") == first_id.as_ref(),
        "a delivery sent again keeps its webhook-id"
    );
    Ok(())
}
