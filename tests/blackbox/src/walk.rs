//! Every state-changing route, once, with the exact audit events its
//! request wrote (found by the request id). A route added without a line
//! here fails the walk.

use anyhow::{Context as _, bail, ensure};
use http::Method;
use serde_json::{Value, json};
use shared::auth::Role;
use shared::routes::ROUTES;

use crate::client::{Resp, TestApp};
use crate::lab::{id_of, register};

crate::cases![every_state_changing_route_writes_exactly_its_events];

/// A fresh suffix for e-mail addresses.
fn unique() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap_or_else(|e| panic!("no randomness: {e}"));
    hex::encode(bytes)
}

/// Requests that change nothing an audit trail covers, and why.
const EXEMPT: &[(&str, Method, &str)] = &[
    (
        "auth-refresh",
        Method::POST,
        "rotates the login's refresh token (session bookkeeping); a reused token is audited",
    ),
    (
        "audit-verify",
        Method::GET,
        "only adds a signed checkpoint of the chain",
    ),
    (
        "job-retention",
        Method::POST,
        "runs retention for every organization due, each recorded on its own chain; audit::scheduled_retention_covers_every_organization",
    ),
    (
        "job-deliver-webhooks",
        Method::POST,
        "delivers queued webhook deliveries (the outbox's bookkeeping); an endpoint it disables is audited: webhooks::deliveries_are_signed_retried_on_schedule_and_stop_when_gone",
    ),
    (
        "job-watch",
        Method::POST,
        "publishes what is due in every organization, each on its own chain; watch::the_watch_publishes_what_time_brings_once",
    ),
    (
        "job-send-mail",
        Method::POST,
        "delivers queued mail (the outbox's bookkeeping); accounts::mail_goes_through_the_configured_provider",
    ),
];

/// Routes that write although they are `GET`.
const WRITING_GETS: &[&str] = &["audit-export", "bridge-commands"];

struct Walk<'a> {
    app: &'a TestApp,
    covered: Vec<(&'static str, Method)>,
    problems: Vec<String>,
}

impl Walk<'_> {
    async fn expect(
        &mut self,
        function: &'static str,
        method: Method,
        request_id: Option<&str>,
        status: u16,
        wanted_status: u16,
        events: &[&str],
    ) -> anyhow::Result<()> {
        self.covered.push((function, method.clone()));
        if status != wanted_status {
            self.problems.push(format!(
                "{method} {function}: status {status}, wanted {wanted_status}"
            ));
            return Ok(());
        }
        let request_id = request_id.context("x-request-id")?;
        let db = self.app.db().await?;
        let mut got: Vec<String> = db
            .query(
                "SELECT event_type FROM audit_events WHERE request_id = $1",
                &[&request_id],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        got.sort();
        let mut wanted: Vec<String> = events.iter().map(|e| (*e).to_owned()).collect();
        wanted.sort();
        if got != wanted {
            self.problems.push(format!(
                "{method} {function}: wrote {got:?}, wanted {wanted:?}"
            ));
        }
        Ok(())
    }

    async fn json(
        &mut self,
        function: &'static str,
        resp: Resp,
        wanted_status: u16,
        events: &[&str],
        method: Method,
    ) -> anyhow::Result<Value> {
        let id = resp
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        self.expect(
            function,
            method,
            id.as_deref(),
            resp.status,
            wanted_status,
            events,
        )
        .await?;
        Ok(resp.json["data"].clone())
    }
}

async fn every_state_changing_route_writes_exactly_its_events(app: &TestApp) -> anyhow::Result<()> {
    let _reading_mail = app.reading_mail().await;
    let mut walk = Walk {
        app,
        covered: Vec::new(),
        problems: Vec::new(),
    };
    let (admin, token) = app.admin().await?;
    let org = admin.organization_id;
    let user = app.new_user(org, Role::Scientist).await?;

    // Authentication.
    let login = app
        .anonymous()
        .post(
            "/api/auth/login",
            &json!({"email": user.email, "password": user.password}),
        )
        .await?;
    let session = walk
        .json(
            "auth-login",
            login,
            200,
            &["AUTH_LOGIN_SUCCESS"],
            Method::POST,
        )
        .await?;
    let refresh = app
        .anonymous()
        .post(
            "/api/auth/refresh",
            &json!({"refreshToken": session["refreshToken"]}),
        )
        .await?;
    ensure!(refresh.status == 200, "refresh {}", refresh.json);
    let access = refresh.json["data"]["accessToken"]
        .as_str()
        .context("accessToken")?
        .to_owned();
    // A second login of the same user, ended from the first; then the
    // password changed from the first (which goes on).
    let second = app.login(&user).await?;
    let me = app.as_user(&second).get("/api/auth/me").await?;
    let second_id = me.json["data"]["sessionId"]
        .as_str()
        .context("sessionId")?
        .to_owned();
    let ended = app
        .as_user(&access)
        .delete(&format!("/api/auth/sessions/{second_id}"))
        .await?;
    walk.json(
        "auth-sessions-item",
        ended,
        200,
        &["AUTH_SESSION_REVOKED"],
        Method::DELETE,
    )
    .await?;
    let changed = app
        .as_user(&access)
        .put(
            "/api/auth/password",
            &json!({"currentPassword": user.password, "newPassword": "Changed-Passw0rd-2026!"}),
        )
        .await?;
    walk.json(
        "auth-password",
        changed,
        200,
        &["AUTH_PASSWORD_CHANGED"],
        Method::PUT,
    )
    .await?;
    let logout = app
        .as_user(&access)
        .post("/api/auth/logout", &json!({}))
        .await?;
    walk.json("auth-logout", logout, 200, &["AUTH_LOGOUT"], Method::POST)
        .await?;
    let forgot = app
        .anonymous()
        .post("/api/auth/forgot-password", &json!({"email": user.email}))
        .await?;
    walk.json(
        "auth-forgot-password",
        forgot,
        202,
        &["AUTH_PASSWORD_RESET_REQUESTED"],
        Method::POST,
    )
    .await?;
    let (_, reset_token) = crate::password_reset::reset_mail(app, &user.email)
        .await?
        .context("reset e-mail")?;
    let reset = app
        .anonymous()
        .post(
            "/api/auth/reset-password",
            &json!({"token": reset_token, "password": "a new long passphrase 42"}),
        )
        .await?;
    walk.json(
        "auth-reset-password",
        reset,
        200,
        &["AUTH_PASSWORD_RESET"],
        Method::POST,
    )
    .await?;
    let founder = format!("walk-{}@lab.example", unique());
    let signup = app
        .anonymous()
        .post(
            "/api/auth/signup",
            &json!({"organizationName": "Walk Lab", "email": founder,
                    "name": "Walker", "password": "a long walking passphrase 7"}),
        )
        .await?;
    // A request: no organization yet, so nothing to record.
    walk.json("auth-signup", signup, 202, &[], Method::POST)
        .await?;
    let (_, mail) = app
        .mail_to(&founder)
        .await?
        .context("confirmation e-mail")?;
    let confirmation = mail
        .split("token=")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .context("token in the confirmation")?;
    let confirmed = app
        .anonymous()
        .post(
            "/api/auth/signup/confirm",
            &json!({"token": confirmation, "password": "a long walking passphrase 7"}),
        )
        .await?;
    walk.json(
        "auth-signup-confirm",
        confirmed,
        201,
        &["USER_SIGNED_UP"],
        Method::POST,
    )
    .await?;

    // Instruments, control and maintenance.
    let created = app
        .as_user(&token)
        .post(
            "/api/v1/instruments",
            &json!({"name": "Walk reader", "type": "plate_reader", "status": "idle"}),
        )
        .await?;
    let instrument = walk
        .json(
            "instruments",
            created,
            201,
            &["INSTRUMENT_CREATED"],
            Method::POST,
        )
        .await?;
    let instrument_id = id_of(&instrument)?;
    let updated = app
        .as_user(&token)
        .header("if-match", "\"1\"")
        .put(
            &format!("/api/v1/instruments/{instrument_id}"),
            &json!({"location": "Bench 4"}),
        )
        .await?;
    walk.json(
        "instruments-item",
        updated,
        200,
        &["INSTRUMENT_UPDATED"],
        Method::PUT,
    )
    .await?;
    let control = app
        .as_user(&token)
        .header("idempotency-key", "walk-home-1")
        .post(
            &format!("/api/v1/instruments/{instrument_id}/control"),
            &json!({"command": "home"}),
        )
        .await?;
    walk.json(
        "instrument-control",
        control,
        202,
        &["INSTRUMENT_COMMAND_QUEUED"],
        Method::POST,
    )
    .await?;
    let scheduled = app
        .as_user(&token)
        .post(
            &format!("/api/v1/instruments/{instrument_id}/maintenance"),
            &json!({"kind": "calibration", "scheduledFor": "2030-01-01T00:00:00Z"}),
        )
        .await?;
    let maintenance = walk
        .json(
            "instrument-maintenance",
            scheduled,
            201,
            &["MAINTENANCE_SCHEDULED"],
            Method::POST,
        )
        .await?;
    let maintenance_id = id_of(&maintenance)?;
    let completed = app
        .as_user(&token)
        .header("if-match", "\"1\"")
        .put(
            &format!("/api/v1/maintenance/{maintenance_id}"),
            &json!({"status": "completed"}),
        )
        .await?;
    walk.json(
        "maintenance-item",
        completed,
        200,
        &["CALIBRATION_COMPLETED", "INSTRUMENT_CALIBRATED"],
        Method::PUT,
    )
    .await?;

    // Runs.
    let started = app
        .as_user(&token)
        .post("/api/v1/runs", &json!({"instrumentId": instrument_id}))
        .await?;
    let run = walk
        .json("runs", started, 201, &["RUN_STARTED"], Method::POST)
        .await?;
    let run_id = id_of(&run)?;
    let stopped = app
        .as_user(&token)
        .put(
            &format!("/api/v1/runs/{run_id}/stop"),
            &json!({"outcome": "aborted", "reason": "walk"}),
        )
        .await?;
    walk.json("run-stop", stopped, 200, &["RUN_STOPPED"], Method::PUT)
        .await?;
    let csv = b"Well,Type,Value\nA1,Blank,0.05\nB1,Positive,1.8\nB2,Positive,1.7\nC1,Negative,0.1\nC2,Negative,0.12\n";
    let uploaded = app
        .as_user(&token)
        .raw(
            Method::POST,
            &format!("/api/v1/runs/{run_id}/data?format=plate_reader_csv"),
            Some(csv.to_vec()),
        )
        .await?;
    let id = uploaded.header("x-request-id").map(str::to_owned);
    walk.expect(
        "run-data",
        Method::POST,
        id.as_deref(),
        uploaded.status,
        201,
        &["RUN_DATA_UPLOADED", "RUN_RESULTS_RECORDED"],
    )
    .await?;
    let signed = app
        .as_user(&token)
        .post(
            &format!("/api/v1/runs/{run_id}/signatures"),
            &json!({"meaning": "review", "email": admin.email, "password": admin.password}),
        )
        .await?;
    walk.json(
        "run-signatures",
        signed,
        201,
        &["ESIGNATURE_APPLIED"],
        Method::POST,
    )
    .await?;
    let spare = register(
        app,
        &token,
        json!({"name": "Spare freezer", "type": "freezer"}),
    )
    .await?;
    let removed = app
        .as_user(&token)
        .json(
            Method::DELETE,
            &format!("/api/v1/instruments/{}", id_of(&spare)?),
            &json!({"reason": "Decommissioned"}),
        )
        .await?;
    walk.json(
        "instruments-item",
        removed,
        200,
        &["INSTRUMENT_DELETED"],
        Method::DELETE,
    )
    .await?;

    // Audit, retention, keys and users.
    let reported = app
        .as_user(&token)
        .post(
            "/api/audit",
            &json!({"eventType": "WALK", "action": "Walked"}),
        )
        .await?;
    walk.json("audit-log", reported, 201, &["CLIENT_WALK"], Method::POST)
        .await?;
    let exported = app
        .as_user(&token)
        .raw(Method::GET, "/api/audit/export", None)
        .await?;
    let id = exported.header("x-request-id").map(str::to_owned);
    walk.expect(
        "audit-export",
        Method::GET,
        id.as_deref(),
        exported.status,
        200,
        &["AUDIT_EXPORTED"],
    )
    .await?;
    let retention = app
        .as_user(&token)
        .post("/api/v1/retention/run", &json!({}))
        .await?;
    walk.json(
        "retention-run",
        retention,
        200,
        &["RETENTION_RUN"],
        Method::POST,
    )
    .await?;
    let key = app
        .as_user(&token)
        .post(
            "/api/v1/api-keys",
            &json!({"name": "walk", "permissions": ["instruments:view"]}),
        )
        .await?;
    let key = walk
        .json("api-keys", key, 201, &["API_KEY_CREATED"], Method::POST)
        .await?;
    let revoked = app
        .as_user(&token)
        .json(
            Method::DELETE,
            &format!("/api/v1/api-keys/{}", id_of(&key)?),
            &json!({}),
        )
        .await?;
    walk.json(
        "api-keys-item",
        revoked,
        200,
        &["API_KEY_REVOKED"],
        Method::DELETE,
    )
    .await?;
    let hook = app
        .as_user(&token)
        .post(
            "/api/v1/webhooks",
            &json!({"url": "https://hooks.example.com/walk", "events": ["run.completed"]}),
        )
        .await?;
    let hook = walk
        .json("webhooks", hook, 201, &["WEBHOOK_CREATED"], Method::POST)
        .await?;
    let changed = app
        .as_user(&token)
        .put(
            &format!("/api/v1/webhooks/{}", id_of(&hook)?),
            &json!({"version": 1, "description": "walked"}),
        )
        .await?;
    walk.json(
        "webhooks-item",
        changed,
        200,
        &["WEBHOOK_UPDATED"],
        Method::PUT,
    )
    .await?;
    let hook_path = format!("/api/v1/webhooks/{}", id_of(&hook)?);
    let rotated = app
        .as_user(&token)
        .post(&format!("{hook_path}/secret"), &json!({}))
        .await?;
    walk.json(
        "webhook-secret",
        rotated,
        200,
        &["WEBHOOK_SECRET_ROTATED"],
        Method::POST,
    )
    .await?;
    let tested = app
        .as_user(&token)
        .post(&format!("{hook_path}/test"), &json!({}))
        .await?;
    let tested = walk
        .json(
            "webhook-test",
            tested,
            200,
            &["WEBHOOK_TESTED"],
            Method::POST,
        )
        .await?;
    let again = app
        .as_user(&token)
        .post(
            &format!(
                "{hook_path}/deliveries/{}/retry",
                tested["deliveryId"].as_str().unwrap_or_default()
            ),
            &json!({}),
        )
        .await?;
    walk.json(
        "webhook-delivery-retry",
        again,
        200,
        &["WEBHOOK_DELIVERY_RETRIED"],
        Method::POST,
    )
    .await?;
    // Nothing but a test failed: nothing to replay, nothing recorded.
    let replayed = app
        .as_user(&token)
        .post(
            &format!("{hook_path}/recover"),
            &json!({"since": (time::OffsetDateTime::now_utc() - time::Duration::hours(1))
                .format(&time::format_description::well_known::Rfc3339)?}),
        )
        .await?;
    walk.json("webhook-recover", replayed, 200, &[], Method::POST)
        .await?;
    let deleted = app
        .as_user(&token)
        .json(
            Method::DELETE,
            &format!("/api/v1/webhooks/{}", id_of(&hook)?),
            &json!({}),
        )
        .await?;
    walk.json(
        "webhooks-item",
        deleted,
        200,
        &["WEBHOOK_DELETED"],
        Method::DELETE,
    )
    .await?;
    let invited = app
        .as_user(&token)
        .post(
            "/api/v1/users",
            &json!({"email": format!("invitee-{}@lab.example", unique()), "role": "VIEWER"}),
        )
        .await?;
    let invited = walk
        .json("users", invited, 201, &["USER_INVITED"], Method::POST)
        .await?;
    let withdrawn = app
        .as_user(&token)
        .json(
            Method::DELETE,
            &format!("/api/v1/invitations/{}", id_of(&invited)?),
            &json!({}),
        )
        .await?;
    walk.json(
        "invitations-item",
        withdrawn,
        200,
        &["INVITATION_REVOKED"],
        Method::DELETE,
    )
    .await?;
    let renamed = app
        .as_user(&token)
        .put(
            &format!("/api/v1/users/{}", user.id),
            &json!({"name": "Walked Scientist"}),
        )
        .await?;
    walk.json("users-item", renamed, 200, &["USER_UPDATED"], Method::PUT)
        .await?;

    // Bridges.
    let join = app
        .as_user(&token)
        .post(
            "/api/v1/bridges/join-tokens",
            &json!({"name": "Walk bridge"}),
        )
        .await?;
    let join = walk
        .json(
            "bridge-join-tokens",
            join,
            201,
            &["BRIDGE_JOIN_TOKEN_CREATED"],
            Method::POST,
        )
        .await?;
    let spare = app
        .as_user(&token)
        .post(
            "/api/v1/bridges/join-tokens",
            &json!({"name": "Spare bridge"}),
        )
        .await?;
    let spare = id_of(spare.expect_ok(201)?)?;
    let withdrawn = app
        .as_user(&token)
        .json(
            Method::DELETE,
            &format!("/api/v1/bridges/join-tokens/{spare}"),
            &json!({}),
        )
        .await?;
    walk.json(
        "bridge-join-tokens-item",
        withdrawn,
        200,
        &["BRIDGE_JOIN_TOKEN_REVOKED"],
        Method::DELETE,
    )
    .await?;
    let enrolled = app
        .anonymous()
        .post("/api/v1/bridges/enroll", &json!({"token": join["token"]}))
        .await?;
    let enrolled = walk
        .json(
            "bridge-enroll",
            enrolled,
            201,
            &["BRIDGE_ENROLLED"],
            Method::POST,
        )
        .await?;

    // The live path: a heartbeat that changes an instrument's status, a
    // command handed out, its outcome reported.
    let key = enrolled["apiKey"].as_str().context("apiKey")?.to_owned();
    let bridged = app
        .as_user(&token)
        .post(
            "/api/v1/instruments",
            &json!({"name": "Bridged", "type": "incubator"}),
        )
        .await?;
    let bridged = crate::lab::id_of(bridged.expect_ok(201)?)?;
    let stream = uuid::Uuid::from_u128(0x5157_2ea1);
    let bridge = app.as_key(&key);
    let ingest = |body: Value| {
        bridge.send(
            Method::POST,
            "/api/v1/bridges/ingest",
            Some(("application/json", body.to_string().into_bytes())),
        )
    };
    let beat = ingest(json!({"stream": stream, "records": [
            {"seq": 1, "kind": "reading", "instrumentId": bridged, "metric": "temperature",
             "value": 37.0, "recordedAt": "2026-11-26T10:00:00Z"}],
        "heartbeat": {"queueDepth": 1, "instruments": [{"id": bridged, "status": "idle"}]}}))
    .await?;
    walk.json(
        "bridge-ingest",
        beat,
        200,
        &["INSTRUMENT_BOUND_TO_BRIDGE", "INSTRUMENT_STATUS_CHANGED"],
        Method::POST,
    )
    .await?;
    let queued = app
        .as_user(&token)
        .header("idempotency-key", "walk-calibrate")
        .post(
            &format!("/api/v1/instruments/{bridged}/control"),
            &json!({"command": "calibrate"}),
        )
        .await?;
    let command = crate::lab::id_of(queued.expect_ok(202)?)?;
    let handed = app.as_key(&key).get("/api/v1/bridges/commands").await?;
    walk.json(
        "bridge-commands",
        handed,
        200,
        &["INSTRUMENT_COMMAND_SENT"],
        Method::GET,
    )
    .await?;
    let done = ingest(json!({"stream": stream, "records": [
            {"seq": 2, "kind": "commandOutcome", "commandId": command, "state": "completed",
             "result": {"ok": true}, "at": "2026-11-26T10:00:01Z"}],
        "heartbeat": {"queueDepth": 0, "instruments": [{"id": bridged, "status": "idle"}]}}))
    .await?;
    walk.json(
        "bridge-ingest",
        done,
        200,
        &["INSTRUMENT_COMMAND_COMPLETED"],
        Method::POST,
    )
    .await?;

    // The second factor.
    let (second, second_token) = app.member(org, Role::Scientist).await?;
    let enrolled = app
        .as_user(&second_token)
        .post(
            "/api/auth/mfa/enroll",
            &json!({"password": second.password}),
        )
        .await?;
    let enrolled = walk
        .json(
            "auth-mfa-enroll",
            enrolled,
            200,
            &["MFA_ENROLMENT_STARTED"],
            Method::POST,
        )
        .await?;
    let mut phone = crate::mfa::Authenticator::from_uri(
        enrolled["otpauthUri"].as_str().context("otpauthUri")?,
    )?;
    let confirmed = app
        .as_user(&second_token)
        .post(
            "/api/auth/mfa/confirm",
            &json!({"code": phone.next_code().await}),
        )
        .await?;
    walk.json(
        "auth-mfa-confirm",
        confirmed,
        200,
        &["MFA_ENABLED"],
        Method::POST,
    )
    .await?;
    let challenge = crate::mfa::challenge(app, &second, "verify").await?;
    let verified = app
        .anonymous()
        .post(
            "/api/auth/mfa/verify",
            &json!({"challengeToken": challenge, "code": phone.next_code().await}),
        )
        .await?;
    walk.json(
        "auth-mfa-verify",
        verified,
        200,
        &["AUTH_LOGIN_SUCCESS"],
        Method::POST,
    )
    .await?;
    let removed = app
        .as_user(&second_token)
        .json(
            Method::DELETE,
            "/api/auth/mfa",
            &json!({"password": second.password, "code": phone.next_code().await}),
        )
        .await?;
    walk.json("auth-mfa", removed, 200, &["MFA_DISABLED"], Method::DELETE)
        .await?;
    let (third, third_token) = app.member(org, Role::Scientist).await?;
    crate::mfa::enrol(app, &third, &third_token).await?;
    let reset = app
        .as_user(&token)
        .json(
            Method::DELETE,
            &format!("/api/v1/users/{}/mfa", third.id),
            &json!({"reason": "Lost phone"}),
        )
        .await?;
    walk.json("users-mfa", reset, 200, &["MFA_RESET"], Method::DELETE)
        .await?;
    let policy = app
        .as_user(&token)
        .json(
            Method::PUT,
            "/api/v1/organization/mfa-policy",
            &json!({"requiredRoles": ["QUALITY_ASSURANCE"]}),
        )
        .await?;
    walk.json(
        "organization-mfa-policy",
        policy,
        200,
        &["MFA_POLICY_CHANGED"],
        Method::PUT,
    )
    .await?;

    // Every state-changing route and method was walked (or is exempt).
    let mut missing = Vec::new();
    for route in ROUTES {
        for method in route.methods {
            let changes = *method != Method::GET || WRITING_GETS.contains(&route.function);
            let exempt = EXEMPT
                .iter()
                .any(|(f, m, _)| *f == route.function && m == method);
            let walked = walk
                .covered
                .iter()
                .any(|(f, m)| *f == route.function && m == method);
            if changes && !exempt && !walked {
                missing.push(format!("{method} {}", route.path));
            }
        }
    }
    if !missing.is_empty() {
        walk.problems.push(format!(
            "not walked (add them here): {}",
            missing.join(", ")
        ));
    }
    if !walk.problems.is_empty() {
        bail!("{}", walk.problems.join("\n"));
    }
    Ok(())
}
