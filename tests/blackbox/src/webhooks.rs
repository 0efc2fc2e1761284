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

use crate::client::{TestApp, User};
use crate::lab::{id_of, register};

crate::cases![
    endpoints_must_be_public_https_and_are_the_organizations_own,
    deliveries_are_signed_retried_on_schedule_and_stop_when_gone,
    a_delivery_gives_up_after_its_schedule_and_a_failing_endpoint_is_disabled,
    a_run_of_the_job_keeps_to_its_outbound_allowance,
];

/// An answer the receiver gives: a status, headers, after a pause.
#[derive(Default)]
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    pause: std::time::Duration,
}

/// What the receiver answers next.
type Answers = Arc<Mutex<VecDeque<Answer>>>;

/// A request the receiver got.
#[derive(Clone)]
struct Hit {
    path: String,
    headers: http::HeaderMap,
    body: bytes::Bytes,
}

/// A local endpoint: answers from a queue of [`Answer`]s (200 once it is
/// empty) and records every request as it arrives.
struct Receiver {
    url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    answers: Answers,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Hit {
    /// How many signatures its `webhook-signature` carries.
    fn signatures(&self) -> usize {
        self.headers
            .get("webhook-signature")
            .and_then(|v| v.to_str().ok())
            .map_or(0, |v| v.split(' ').count())
    }
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
                    let answer =
                        queue
                            .lock()
                            .ok()
                            .and_then(|mut q| q.pop_front())
                            .unwrap_or(Answer {
                                status: 200,
                                ..Answer::default()
                            });
                    tokio::time::sleep(answer.pause).await;
                    let mut response = http::Response::builder().status(answer.status);
                    for (name, value) in answer.headers {
                        response = response.header(name, value);
                    }
                    response
                        .body(axum::body::Body::from("received by the suite"))
                        .unwrap_or_default()
                }
            },
        );
        let (address, stop) = crate::lab::serve_local(app).await?;
        Ok(Receiver {
            url: format!("http://{address}"),
            hits,
            answers,
            _stop: stop,
        })
    }

    fn answer(&self, status: u16, location: Option<&str>) {
        let headers = location
            .map(|l| vec![("location", l.to_owned())])
            .unwrap_or_default();
        self.answer_with(Answer {
            status,
            headers,
            ..Answer::default()
        });
    }

    fn answer_with(&self, answer: Answer) {
        if let Ok(mut q) = self.answers.lock() {
            q.push_back(answer);
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

    // The trail names the URL by its origin and a digest: a URL's path
    // often carries a credential.
    let audited: Vec<String> = db
        .query(
            "SELECT coalesce(old_values::text, '') || coalesce(new_values::text, '') || metadata::text \
               FROM audit_events WHERE organization_id = $1 AND record_id = $2",
            &[&admin.organization_id, &id],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    ensure!(audited.len() == 2, "{audited:?}");
    ensure!(
        audited.iter().all(|text| !text.contains("/lims"))
            && audited
                .iter()
                .any(|text| text.contains("https://hooks.example.com/… (sha256 ")),
        "the trail holds the URL: {audited:?}"
    );

    // Another organization's endpoint does not exist for them, whatever
    // they ask of it; a role without webhooks:manage is refused.
    let (_, other) = app.admin().await?;
    let delivery = uuid::Uuid::from_u128(1);
    for (method, p) in [
        (Method::GET, path.clone()),
        (Method::PUT, path.clone()),
        (Method::DELETE, path.clone()),
        (Method::GET, format!("{path}/deliveries")),
        (Method::POST, format!("{path}/test")),
        (Method::POST, format!("{path}/secret")),
        (Method::POST, format!("{path}/recover")),
        (Method::POST, format!("{path}/deliveries/{delivery}/retry")),
    ] {
        let caller = app.as_user(&other);
        let resp = match method {
            Method::GET => caller.get(&p).await?,
            Method::DELETE => caller.delete(&p).await?,
            Method::PUT => {
                caller
                    .put(&p, &json!({"version": 2, "description": "theirs"}))
                    .await?
            }
            _ => {
                let since = time::OffsetDateTime::now_utc()
                    .format(&time::format_description::well_known::Rfc3339)?;
                caller.post(&p, &json!({"since": since})).await?
            }
        };
        resp.expect_error(404, "RESOURCE_NOT_FOUND")
            .with_context(|| format!("{method} {p}"))?;
    }
    let unchanged = app.as_user(&token).get(&path).await?;
    ensure!(
        unchanged.expect_ok(200)?["description"] == "LIMS",
        "another organization changed it"
    );

    // At most 25 endpoints: the 26th is refused and not stored.
    for n in 1..25 {
        app.as_user(&token)
            .post(
                "/api/v1/webhooks",
                &json!({"url": format!("https://hooks.example.com/{n}"), "events": ["run.failed"]}),
            )
            .await?
            .expect_ok(201)
            .with_context(|| format!("endpoint {n}"))?;
    }
    app.as_user(&token)
        .post(
            "/api/v1/webhooks",
            &json!({"url": "https://hooks.example.com/26", "events": ["run.failed"]}),
        )
        .await?
        .expect_error(409, "CONFLICT")?;
    ensure!(stored().await? == 25, "{} stored", stored().await?);

    let (_, scientist) = app.member(admin.organization_id, Role::Scientist).await?;
    app.as_user(&scientist)
        .get("/api/v1/webhooks")
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    Ok(())
}

/// Calls through a host that allows loopback endpoints (a development
/// setting), as the admin `token` and as the scheduler.
struct Loopback<'a> {
    app: &'a TestApp,
    base: &'a str,
    token: String,
    scheduler: String,
}

/// Runs `through` against a host of its own that allows loopback endpoints
/// (a development setting), with `more` configuration, and stops it.
async fn on_loopback_host(
    app: &TestApp,
    more: &[(&str, &str)],
    through: impl AsyncFn(&TestApp, &str) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut overrides = vec![("WEBHOOK_ALLOW_LOOPBACK", "true")];
    overrides.extend_from_slice(more);
    let host = app.host_with(&overrides).await?;
    let base = host.base_url.clone();
    let result = through(app, &base).await;
    tokio::task::spawn_blocking(move || host.stop()).await?;
    result
}

impl<'a> Loopback<'a> {
    /// A new organization's admin calling through `base`.
    async fn new(app: &'a TestApp, base: &'a str) -> anyhow::Result<(Loopback<'a>, User)> {
        let (admin, token) = app.admin().await?;
        let via = Loopback {
            app,
            base,
            token,
            scheduler: app.scheduler_key()?,
        };
        Ok((via, admin))
    }

    /// One pass of the delivery job.
    async fn drain(&self) -> anyhow::Result<Value> {
        let resp = self
            .app
            .http
            .post(format!("{}/api/v1/jobs/deliver-webhooks", self.base))
            .bearer_auth(&self.scheduler)
            .json(&json!({"seconds": 0}))
            .send()
            .await?;
        ensure!(resp.status().as_u16() == 200, "drain {}", resp.status());
        Ok(resp.json::<Value>().await?["data"].clone())
    }

    /// `POST path` with `body`: the status and the envelope.
    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        let resp = self
            .app
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await?))
    }

    /// A new endpoint at `url` for `events`, with its secret.
    async fn create(&self, url: &str, events: Value) -> anyhow::Result<Value> {
        let (status, body) = self
            .post("/api/v1/webhooks", &json!({"url": url, "events": events}))
            .await?;
        ensure!(status == 201, "create {status}: {body}");
        Ok(body["data"].clone())
    }
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
    on_loopback_host(app, &[], deliveries_through).await
}

async fn deliveries_through(app: &TestApp, base: &str) -> anyhow::Result<()> {
    let receiver = Receiver::start().await?;
    let (via, admin) = Loopback::new(app, base).await?;
    let token = via.token.clone();
    let db = app.db().await?;
    let drain = || via.drain();
    let hook = via
        .create(
            &format!("{}/lims", receiver.url),
            json!(["run.aborted", "run.completed"]),
        )
        .await?;
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
    let due_now = || async {
        db.execute(
            "UPDATE webhook_deliveries SET next_attempt_at = now() WHERE id = $1",
            &[&delivery],
        )
        .await?;
        anyhow::Ok(())
    };
    let (status, attempts, wait) = attempt_recorded(&via, &db, delivery, 1).await?;
    ensure!(status == "pending" && attempts == 1, "{status} {attempts}");
    ensure!(
        wait.is_some_and(|w| (4.4..=5.6).contains(&w)),
        "first retry after {wait:?} s, not 5 s"
    );
    due_now().await?;
    let (_, attempts, wait) = attempt_recorded(&via, &db, delivery, 2).await?;
    ensure!(attempts == 2, "{attempts}");
    ensure!(
        wait.is_some_and(|w| (270.0..=330.0).contains(&w)),
        "second retry after {wait:?} s, not 5 min"
    );
    due_now().await?;
    let (status, attempts, _) = attempt_recorded(&via, &db, delivery, 3).await?;
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
            "SELECT status, response -> -1 ->> 'error', event_id FROM webhook_deliveries \
             WHERE webhook_id = $1 ORDER BY created_at DESC LIMIT 1",
            &[&hook_id],
        )
        .await?;
    let redirected_event: uuid::Uuid = redirected.get(2);
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
        replay
            .headers
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            == Some(redirected_event.to_string().as_str()),
        "a replay carries its own event's id"
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
    // One event published and delivered: its hit.
    let deliver_one = || async {
        abort_a_run(app, &token).await?;
        drain().await?;
        receiver.hits("/lims").last().cloned().context("a delivery")
    };
    let signed = deliver_one().await?;
    ensure!(
        signed.signatures() == 2,
        "{} signatures during the rotation",
        signed.signatures()
    );
    for key in [&secret, &new_secret] {
        standardwebhooks::Webhook::new(key)?
            .verify(&signed.body, &signed.headers)
            .map_err(|e| anyhow::anyhow!("a rotation's signature refused: {e:?}"))?;
    }
    // Once the overlap is over, only the new secret signs.
    db.execute(
        "UPDATE webhooks SET previous_secret_expires_at = now() - interval '1 second' WHERE id = $1",
        &[&hook_id],
    )
    .await?;
    let signed = deliver_one().await?;
    ensure!(
        signed.signatures() == 1,
        "{} signatures after the overlap",
        signed.signatures()
    );
    standardwebhooks::Webhook::new(&new_secret)?
        .verify(&signed.body, &signed.headers)
        .map_err(|e| anyhow::anyhow!("the new secret's signature refused: {e:?}"))?;
    ensure!(
        standardwebhooks::Webhook::new(&secret)?
            .verify(&signed.body, &signed.headers)
            .is_err(),
        "the old secret still signs after the overlap"
    );

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
    let via = &via;
    let via_loopback_host = |path: String| async move {
        let (status, body) = via.post(&path, &json!({})).await?;
        ensure!(status == 200, "{path}: {status} {body}");
        anyhow::Ok(body["data"].clone())
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

async fn a_delivery_gives_up_after_its_schedule_and_a_failing_endpoint_is_disabled(
    app: &TestApp,
) -> anyhow::Result<()> {
    on_loopback_host(app, &[], schedule_through).await
}

/// The delivery's status, attempts and the wait before its next attempt
/// (seconds, from the last attempt's start).
async fn delivery_state(
    db: &tokio_postgres::Client,
    delivery: uuid::Uuid,
) -> anyhow::Result<(String, i32, Option<f64>)> {
    let row = db
        .query_one(
            "SELECT status, attempts, extract(epoch FROM next_attempt_at - last_attempt_at)::float8 \
             FROM webhook_deliveries WHERE id = $1",
            &[&delivery],
        )
        .await?;
    Ok((row.get(0), row.get(1), row.get(2)))
}

/// Drains until attempt `n` at `delivery` is recorded (another case's run
/// of the job, which drains every organization, may be the one making
/// it); its state then.
async fn attempt_recorded(
    via: &Loopback<'_>,
    db: &tokio_postgres::Client,
    delivery: uuid::Uuid,
    n: i32,
) -> anyhow::Result<(String, i32, Option<f64>)> {
    for _ in 0..100 {
        via.drain().await?;
        let state = delivery_state(db, delivery).await?;
        if state.1 >= n {
            return Ok(state);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    anyhow::bail!("attempt {n} at {delivery} was never recorded")
}

/// The newest delivery of endpoint `hook`.
async fn newest_delivery(
    db: &tokio_postgres::Client,
    hook: uuid::Uuid,
) -> anyhow::Result<uuid::Uuid> {
    Ok(db
        .query_one(
            "SELECT id FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1",
            &[&hook],
        )
        .await?
        .get(0))
}

async fn schedule_through(app: &TestApp, base: &str) -> anyhow::Result<()> {
    let receiver = Receiver::start().await?;
    let (via, admin) = Loopback::new(app, base).await?;
    let token = via.token.clone();
    let db = app.db().await?;
    let hook = via
        .create(&format!("{}/flaky", receiver.url), json!(["run.aborted"]))
        .await?;
    let hook_id = id_of(&hook)?;
    let due_now = |delivery: uuid::Uuid| {
        let db = &db;
        async move {
            db.execute(
                "UPDATE webhook_deliveries SET next_attempt_at = now() WHERE id = $1",
                &[&delivery],
            )
            .await?;
            anyhow::Ok(())
        }
    };

    // Eight attempts, each failing, on the schedule (give or take its
    // tenth of jitter); then the delivery is given up.
    const SCHEDULE: [f64; 7] = [5.0, 300.0, 1_800.0, 7_200.0, 18_000.0, 36_000.0, 36_000.0];
    for _ in 0..8 {
        receiver.answer(500, None);
    }
    abort_a_run(app, &token).await?;
    let delivery = newest_delivery(&db, hook_id).await?;
    for (n, expected) in SCHEDULE.iter().enumerate() {
        let (status, attempts, wait) = attempt_recorded(&via, &db, delivery, n as i32 + 1).await?;
        ensure!(
            status == "pending" && attempts == n as i32 + 1,
            "after attempt {}: {status}, {attempts} attempts",
            n + 1
        );
        ensure!(
            wait.is_some_and(|w| w >= expected * 0.9 - 1.0 && w <= expected * 1.1 + 1.0),
            "retry {} after {wait:?} s, not {expected} s",
            n + 1
        );
        due_now(delivery).await?;
    }
    let (status, attempts, wait) = attempt_recorded(&via, &db, delivery, 8).await?;
    ensure!(
        status == "failed" && attempts == 8 && wait.is_none(),
        "after the 8th attempt: {status}, {attempts}, {wait:?}"
    );
    due_now(delivery).await?;
    via.drain().await?;
    let hits = receiver.hits("/flaky");
    ensure!(hits.len() == 8, "{} attempts sent", hits.len());
    ensure!(
        hits.iter()
            .all(|h| h.headers.get("webhook-id") == hits[0].headers.get("webhook-id")),
        "webhook-id changed across retries"
    );

    // Retry-After is honoured when it asks for longer than the schedule,
    // and the schedule when it asks for less.
    receiver.answer_with(Answer {
        status: 503,
        headers: vec![("retry-after", "900".into())],
        ..Answer::default()
    });
    receiver.answer_with(Answer {
        status: 429,
        headers: vec![("retry-after", "1".into())],
        ..Answer::default()
    });
    abort_a_run(app, &token).await?;
    let delivery = newest_delivery(&db, hook_id).await?;
    let (_, _, wait) = attempt_recorded(&via, &db, delivery, 1).await?;
    ensure!(
        wait.is_some_and(|w| (899.0..=902.0).contains(&w)),
        "Retry-After: 900 gave a wait of {wait:?} s"
    );
    due_now(delivery).await?;
    let (_, attempts, wait) = attempt_recorded(&via, &db, delivery, 2).await?;
    ensure!(
        attempts == 2 && wait.is_some_and(|w| (269.0..=331.0).contains(&w)),
        "Retry-After: 1 on the second attempt gave {wait:?} s, not the schedule's 5 min"
    );

    // While an attempt holds a delivery, nobody else sends it: the job
    // passes it by and a resend is refused.
    db.execute(
        "UPDATE webhook_deliveries SET next_attempt_at = now(), leased_until = now() + interval '1 minute' \
          WHERE id = $1",
        &[&delivery],
    )
    .await?;
    let sent = receiver.hits("/flaky").len();
    // (The job drains every organization, so other cases' deliveries may
    // be claimed by this run: only this delivery's state is asserted.)
    via.drain().await?;
    let retry = format!("/api/v1/webhooks/{hook_id}/deliveries/{delivery}/retry");
    let (status, refused) = via.post(&retry, &json!({})).await?;
    ensure!(
        status == 409 && refused["error"]["code"] == "CONFLICT",
        "a resend of a held delivery: {status} {refused}"
    );
    ensure!(
        receiver.hits("/flaky").len() == sent && delivery_state(&db, delivery).await?.1 == 2,
        "a held delivery was sent"
    );

    // An attempt whose lease was taken over meanwhile records nothing: a
    // slow failure cannot undo what another attempt did.
    db.execute(
        "UPDATE webhook_deliveries SET leased_until = NULL WHERE id = $1",
        &[&delivery],
    )
    .await?;
    receiver.answer_with(Answer {
        status: 500,
        pause: std::time::Duration::from_millis(1_500),
        ..Answer::default()
    });
    let slow = via.drain();
    let take_over = async {
        for _ in 0..100 {
            if receiver.hits("/flaky").len() > sent {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        db.execute(
            "UPDATE webhook_deliveries SET lease = gen_random_uuid(), status = 'delivered', \
                    next_attempt_at = NULL, leased_until = NULL WHERE id = $1",
            &[&delivery],
        )
        .await?;
        anyhow::Ok(())
    };
    let (drained, taken) = tokio::join!(slow, take_over);
    drained?;
    taken?;
    ensure!(
        receiver.hits("/flaky").len() == sent + 1,
        "the slow attempt was not made"
    );
    let (status, attempts, _) = delivery_state(&db, delivery).await?;
    ensure!(
        status == "delivered" && attempts == 2,
        "a superseded attempt was recorded: {status}, {attempts}"
    );

    // Five days of failures disable the endpoint once a delivery's
    // schedule is spent, not before; its other pending deliveries are
    // cancelled, and the disable is audited.
    db.execute(
        "UPDATE webhooks SET failing_since = now() - interval '6 days' WHERE id = $1",
        &[&hook_id],
    )
    .await?;
    receiver.answer(500, None);
    abort_a_run(app, &token).await?;
    let early = newest_delivery(&db, hook_id).await?;
    attempt_recorded(&via, &db, early, 1).await?;
    let shown = app
        .as_user(&token)
        .get(&format!("/api/v1/webhooks/{hook_id}"))
        .await?;
    ensure!(
        shown.expect_ok(200)?["enabled"] == true,
        "disabled before a schedule was spent: {}",
        shown.json
    );
    for _ in 0..3 {
        receiver.answer(500, None);
    }
    abort_a_run(app, &token).await?;
    let last = newest_delivery(&db, hook_id).await?;
    db.execute(
        "UPDATE webhook_deliveries SET attempts = 7, next_attempt_at = now() WHERE id = $1",
        &[&last],
    )
    .await?;
    // The early one waits for its retry meanwhile.
    db.execute(
        "UPDATE webhook_deliveries SET next_attempt_at = now() + interval '1 hour' WHERE id = $1",
        &[&early],
    )
    .await?;
    attempt_recorded(&via, &db, last, 8).await?;
    let shown = app
        .as_user(&token)
        .get(&format!("/api/v1/webhooks/{hook_id}"))
        .await?;
    let shown = shown.expect_ok(200)?;
    ensure!(
        shown["enabled"] == false && shown["disabledReason"] == "failing",
        "{shown}"
    );
    let (status, _, _) = delivery_state(&db, early).await?;
    ensure!(status == "cancelled", "a pending delivery left {status}");
    let audited = db
        .query_one(
            "SELECT count(*), min(metadata::text) FROM audit_events WHERE organization_id = $1 \
             AND event_type = 'WEBHOOK_DISABLED' AND record_id = $2",
            &[&admin.organization_id, &hook_id],
        )
        .await?;
    ensure!(audited.get::<_, i64>(0) == 1, "WEBHOOK_DISABLED count");
    let metadata: String = audited.get(1);
    ensure!(
        !metadata.contains("/flaky") && metadata.contains("failingSince"),
        "{metadata}"
    );
    // The organization's admins are told, by e-mail, once.
    let told = db
        .query_one(
            "SELECT count(*), min(subject) FROM email_outbox WHERE organization_id = $1 \
              AND template = 'webhook_disabled' AND to_address = $2",
            &[&admin.organization_id, &admin.email],
        )
        .await?;
    ensure!(
        told.get::<_, i64>(0) == 1
            && told.get::<_, Option<String>>(1).as_deref()
                == Some("A webhook endpoint was disabled"),
        "admins told {} times",
        told.get::<_, i64>(0)
    );
    Ok(())
}

async fn a_run_of_the_job_keeps_to_its_outbound_allowance(app: &TestApp) -> anyhow::Result<()> {
    // 10 outbound requests a run: one claim and three deliveries (each
    // may take three).
    on_loopback_host(app, &[("WEBHOOK_RUN_SUBREQUESTS", "10")], allowance_through).await
}

async fn allowance_through(app: &TestApp, base: &str) -> anyhow::Result<()> {
    let receiver = Receiver::start().await?;
    let (via, _) = Loopback::new(app, base).await?;
    let token = via.token.clone();
    via.create(&format!("{}/many", receiver.url), json!(["run.aborted"]))
        .await?;
    for _ in 0..5 {
        abort_a_run(app, &token).await?;
    }
    // Each run claims at most three (other cases' due deliveries share the
    // allowance), and all five go in the end.
    let mut sent = 0;
    for _ in 0..20 {
        let drained = via.drain().await?;
        ensure!(
            drained["claimed"].as_u64().is_some_and(|n| n <= 3),
            "one run claimed more than its allowance: {drained}"
        );
        // (Other cases' runs, without the allowance, may send some too.)
        sent = receiver.hits("/many").len();
        if sent == 5 {
            break;
        }
    }
    ensure!(sent == 5, "{sent} of 5 delivered");
    Ok(())
}
