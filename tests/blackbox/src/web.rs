//! The web application, served from the API's origin on every host, and
//! used in a real browser: Debian's Chromium, driven by playwright-core
//! (`web/tests/smoke.mjs`), signs in, watches a simulated instrument's
//! readings change on the dashboard without a reload (pushed over the live
//! socket on Workers and the native host, polled on Spin, which has none),
//! is checked with axe-core, and signs out; and the account paths
//! (`web/tests/accounts.mjs`: an invitation accepted by a viewer who is
//! offered no admin action, a second factor set up from the profile, a
//! password reset and a new organization by their mailed links); and an
//! instrument's page (`web/tests/instrument.mjs`: its chart moving with its
//! limits drawn, a command followed to completion, a calibration completed,
//! an edit overtaken by another and reapplied, removal with a reason);
//! the run pages (`web/tests/runs.mjs`); and the administration pages
//! (`web/tests/admin.mjs`: an invitation revoked, a role changed with a
//! reason, an API key shown once, used and revoked, a bridge enrolled with
//! the page's own command and taken out of service, a join token revoked);
//! and the audit trail (`web/tests/audit.mjs`: filtered, an event in full,
//! the chain verified, exports checked against their manifests in the
//! browser and again here, offline, with the published keys alone); and
//! monitoring (`web/tests/monitoring.mjs`: two instruments' charts moving
//! side by side, the bridge's health, the system's).
//! Screenshots of each page are kept in `target/screenshots/<host>/` for a
//! reviewer.

use std::process::Stdio;

use anyhow::{Context as _, bail, ensure};
use tokio::io::AsyncBufReadExt as _;

use crate::client::TestApp;
use crate::stack::{HostKind, root};

crate::cases![
    web_app_is_served_from_the_api_origin,
    web_dashboard_shows_live_readings_in_a_browser,
    web_account_paths_in_a_browser,
    web_instrument_page_in_a_browser,
    web_runs_in_a_browser,
    web_administration_in_a_browser,
    web_audit_trail_in_a_browser,
    web_monitoring_in_a_browser,
];

fn host_name(kind: HostKind) -> &'static str {
    match kind {
        HostKind::Native => "native",
        HostKind::Workerd => "workerd",
        HostKind::Wasmtime => "wasmtime",
    }
}

/// The built app's `index.html`, or a failure that says how to build it.
fn built_index() -> anyhow::Result<String> {
    std::fs::read_to_string(root().join("web/dist/index.html"))
        .context("web/dist is not built: run `npm run build` in web/ (cargo xtask test does)")
}

async fn web_app_is_served_from_the_api_origin(app: &TestApp) -> anyhow::Result<()> {
    let index = built_index()?;
    for path in ["/", "/instruments/4b1c2a", "/sign-in"] {
        let page = app
            .anonymous()
            .raw(reqwest::Method::GET, path, None)
            .await?;
        ensure!(page.status == 200, "{path}: {}", page.status);
        ensure!(
            page.header("content-type") == Some("text/html; charset=utf-8"),
            "{path}: {:?}",
            page.header("content-type")
        );
        ensure!(
            String::from_utf8_lossy(&page.body) == index,
            "{path} is not the app's index.html"
        );
        ensure!(
            page.header("content-security-policy") == Some(shared::web::CONTENT_SECURITY_POLICY),
            "{path}: {:?}",
            page.header("content-security-policy")
        );
        ensure!(page.header("x-frame-options") == Some("DENY"), "{path}");
        ensure!(
            page.header("x-content-type-options") == Some("nosniff"),
            "{path}"
        );
    }
    // The hashed script is cached for a year.
    let script = index
        .split('"')
        .find(|part| part.starts_with("/assets/") && part.ends_with(".js"))
        .context("no /assets/*.js in index.html")?;
    let asset = app
        .anonymous()
        .raw(reqwest::Method::GET, script, None)
        .await?;
    ensure!(asset.status == 200, "{script}: {}", asset.status);
    ensure!(
        asset
            .header("cache-control")
            .is_some_and(|v| v.contains("max-age=31536000") && v.contains("immutable")),
        "{script}: {:?}",
        asset.header("cache-control")
    );
    ensure!(
        asset.header("content-type").is_some_and(
            |v| v.starts_with("text/javascript") || v.starts_with("application/javascript")
        ),
        "{script}: {:?}",
        asset.header("content-type")
    );
    // A path under /api that no route claims is still the API's 404.
    app.anonymous()
        .get("/api/v1/no-such-thing")
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    app.anonymous()
        .get("/api/openapi.json/x")
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    // The OpenAPI document is served as generated.
    let doc = app
        .anonymous()
        .raw(reqwest::Method::GET, "/api/openapi.json", None)
        .await?;
    ensure!(doc.status == 200, "openapi.json: {}", doc.status);
    ensure!(
        doc.body.as_slice() == shared::routes::openapi::DOCUMENT.as_bytes(),
        "the served document differs from docs/openapi.json"
    );
    Ok(())
}

async fn web_dashboard_shows_live_readings_in_a_browser(app: &TestApp) -> anyhow::Result<()> {
    for line in browse(app, 3).await? {
        eprintln!("[web {}] {line}", host_name(app.stack.kind));
    }
    Ok(())
}

/// What the browser measured (`timing <name> <values>`).
#[derive(Debug, Default)]
pub struct Timings {
    /// From clicking "Sign in" to the dashboard showing the instrument live.
    pub dashboard_ms: u64,
    /// From opening the URL (a cold browser) to the same.
    pub first_load_ms: u64,
    /// Each reading's delay from the simulator to the page.
    pub reading_delays_ms: Vec<u64>,
}

/// Runs `web/tests/smoke.mjs` in Chromium against `app`'s host with a
/// simulated bridge relaying a freezer, watching `updates` reading changes;
/// fails on any failed check, else returns the timings the script printed.
pub async fn browse(app: &TestApp, updates: usize) -> anyhow::Result<Vec<String>> {
    built_index()?;
    let (user, token) = app.admin().await?;
    let freezer =
        crate::lab::new_instrument(app, &token, "Freezer B-12", "freezer", "offline").await?;

    // The lab's bridge relays a simulated freezer: over the hub's socket,
    // or on Spin as HTTPS batches.
    let spin = app.stack.kind == HostKind::Wasmtime;
    let (_dir, agent) = simulated_bridge(app, &token, freezer, "freezer", 7).await?;

    let ran = run_script(
        app,
        "smoke.mjs",
        &[
            ("EMAIL", user.email.clone()),
            ("PASSWORD", user.password.clone()),
            ("INSTRUMENT_ID", freezer.to_string()),
            ("LIVE", if spin { "polling" } else { "socket" }.to_owned()),
            ("UPDATES", updates.to_string()),
        ],
        std::time::Duration::from_secs(180 + updates as u64),
    )
    .await;
    let stopped = agent.stop().await;
    let said = ran?;
    stopped?;
    Ok(said
        .into_iter()
        .filter(|l| l.starts_with("timing "))
        .collect())
}

async fn web_account_paths_in_a_browser(app: &TestApp) -> anyhow::Result<()> {
    // The mailed links are read from the outbox: the mail sender's case
    // must not send (and so drop) them meanwhile.
    let _reading_mail = app.reading_mail().await;
    let (_, token) = app.admin().await?;
    crate::lab::new_instrument(app, &token, "Centrifuge C-3", "centrifuge", "idle").await?;
    let invited = crate::accounts::unique_email("viewer");
    app.as_user(&token)
        .post(
            "/api/v1/users",
            &serde_json::json!({ "email": invited, "role": "VIEWER", "name": "Vera" }),
        )
        .await?
        .expect_ok(201)?;
    let (_, text) = app
        .mail_to(&invited)
        .await?
        .context("the invitation is mailed")?;
    let link = text
        .split_whitespace()
        .find_map(|word| {
            word.find("/signup?invitation=")
                .map(|at| word[at..].to_owned())
        })
        .context("no invitation link in the mail")?;
    run_script(
        app,
        "accounts.mjs",
        &[
            ("INVITE_LINK", link),
            ("INVITED_EMAIL", invited),
            ("NEW_ORG_EMAIL", crate::accounts::unique_email("founder")),
        ],
        std::time::Duration::from_secs(180),
    )
    .await?;
    Ok(())
}

async fn web_instrument_page_in_a_browser(app: &TestApp) -> anyhow::Result<()> {
    built_index()?;
    let admin = app.new_org_user(shared::auth::Role::Admin).await?;
    let admin_token = app.login(&admin).await?;
    let manager = app
        .new_user(admin.organization_id, shared::auth::Role::LabManager)
        .await?;
    let freezer = crate::lab::id_of(
        &crate::lab::register(
            app,
            &admin_token,
            serde_json::json!({
                "name": "Freezer B-12",
                "type": "freezer",
                "status": "offline",
                "location": "Room 114",
                "configuration": {"setpointC": -80, "alarmHighC": -70},
            }),
        )
        .await?,
    )?;
    let spin = app.stack.kind == HostKind::Wasmtime;
    let (_dir, agent) = simulated_bridge(app, &admin_token, freezer, "freezer", 11).await?;
    let ran = run_script(
        app,
        "instrument.mjs",
        &[
            ("EMAIL", manager.email.clone()),
            ("PASSWORD", manager.password.clone()),
            ("OTHER_TOKEN", admin_token.clone()),
            ("INSTRUMENT_ID", freezer.to_string()),
            ("LIVE", if spin { "polling" } else { "socket" }.to_owned()),
        ],
        std::time::Duration::from_secs(240),
    )
    .await;
    let stopped = agent.stop().await;
    ran?;
    stopped?;
    // What the page did is in the audit trail, as the manager's.
    let db = app.db().await?;
    let done: Vec<String> = db
        .query(
            "SELECT event_type FROM audit_events WHERE organization_id = $1 \
             AND user_id = $2 ORDER BY created_at",
            &[&admin.organization_id, &manager.id],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    for event in [
        "INSTRUMENT_COMMAND_QUEUED",
        "INSTRUMENT_CALIBRATED",
        "INSTRUMENT_UPDATED",
        "INSTRUMENT_DELETED",
    ] {
        ensure!(
            done.iter().any(|e| e == event),
            "no {event} by the manager: {done:?}"
        );
    }
    Ok(())
}

async fn web_runs_in_a_browser(app: &TestApp) -> anyhow::Result<()> {
    built_index()?;
    let admin = app.new_org_user(shared::auth::Role::Admin).await?;
    let admin_token = app.login(&admin).await?;
    let manager = app
        .new_user(admin.organization_id, shared::auth::Role::LabManager)
        .await?;
    let name = "Incubator I-4";
    let incubator =
        crate::lab::new_instrument(app, &admin_token, name, "incubator", "offline").await?;
    let (_dir, agent) = simulated_bridge(app, &admin_token, incubator, "incubator", 5).await?;
    let ran = run_script(
        app,
        "runs.mjs",
        &[
            ("EMAIL", manager.email.clone()),
            ("PASSWORD", manager.password.clone()),
            ("INSTRUMENT_NAME", name.to_owned()),
        ],
        std::time::Duration::from_secs(180),
    )
    .await;
    let stopped = agent.stop().await;
    ran?;
    stopped?;
    // The runs the page started, as the API recorded them: one the
    // instrument finished, one stopped with a reason.
    let db = app.db().await?;
    /// Status, end reason, operator, sample, started.
    type Recorded = (
        String,
        Option<String>,
        Option<uuid::Uuid>,
        Option<String>,
        bool,
    );
    let rows: Vec<Recorded> = db
        .query(
            "SELECT status, end_reason, operator_id, metadata->>'sample', started_at IS NOT NULL \
               FROM runs WHERE instrument_id = $1 ORDER BY created_at",
            &[&incubator],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    let operator = Some(manager.id);
    ensure!(
        rows == [
            (
                "completed".to_owned(),
                Some("The instrument finished the run".to_owned()),
                operator,
                Some("S-2026-0411".to_owned()),
                true
            ),
            (
                "aborted".to_owned(),
                Some("Wrong plate loaded".to_owned()),
                operator,
                Some("S-2026-0412".to_owned()),
                true
            ),
        ],
        "{rows:?}"
    );
    // The finished run's file and signature, as recorded: the whole file
    // once (the interrupted chunk resent), a refused attempt, then one
    // review signature by the manager.
    let events: Vec<String> = db
        .query(
            "SELECT event_type FROM audit_events WHERE organization_id = $1 AND user_id = $2 \
               AND event_type IN ('RUN_DATA_UPLOADED', 'ESIGNATURE_FAILED', 'ESIGNATURE_APPLIED') \
             ORDER BY sequence",
            &[&admin.organization_id, &manager.id],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    ensure!(
        events
            == [
                "RUN_DATA_UPLOADED",
                "ESIGNATURE_FAILED",
                "ESIGNATURE_APPLIED"
            ],
        "{events:?}"
    );
    let (size, meaning): (i64, String) = {
        let row = db
            .query_one(
                "SELECT d.total_bytes, s.meaning FROM runs r JOIN run_data d ON d.run_id = r.id \
                   JOIN run_signatures s ON s.run_id = r.id \
                 WHERE r.instrument_id = $1 AND r.status = 'completed'",
                &[&incubator],
            )
            .await?;
        (row.get(0), row.get(1))
    };
    ensure!(
        size == 12_000_000 && meaning == "review",
        "{size} {meaning}"
    );
    Ok(())
}

/// Enrolls a bridge for `app`'s organization (with `token`) that relays one
/// simulated instrument of `kind` reading every 500 ms: over the hub's
/// socket, or on Spin as HTTPS batches. The folder holds its credentials
/// and queue; keep it while the agent runs.
async fn simulated_bridge(
    app: &TestApp,
    token: &str,
    instrument: uuid::Uuid,
    kind: &str,
    seed: u64,
) -> anyhow::Result<(tempfile::TempDir, crate::live::InProcessAgent)> {
    simulated_bridge_of(app, token, &[(instrument, kind)], seed).await
}

/// A bridge as [`simulated_bridge`] relaying several simulated instruments.
async fn simulated_bridge_of(
    app: &TestApp,
    token: &str,
    instruments: &[(uuid::Uuid, &str)],
    seed: u64,
) -> anyhow::Result<(tempfile::TempDir, crate::live::InProcessAgent)> {
    let dir = tempfile::tempdir()?;
    let credentials = crate::live::enroll_into(app, token, dir.path()).await?;
    let simulated: String = instruments
        .iter()
        .enumerate()
        .map(|(n, (id, kind))| {
            format!(
                "[[instruments]]\ndriver = \"simulator\"\nid = \"{id}\"\ntype = \"{kind}\"\ninterval_ms = 500\nseed = {}\n",
                seed + n as u64
            )
        })
        .collect();
    let agent = crate::live::InProcessAgent::start(crate::hub::agent_config(
        dir.path(),
        &credentials.url,
        crate::hub::transport(app.stack.kind == HostKind::Wasmtime),
        &simulated,
    )?);
    Ok((dir, agent))
}

/// Runs `web/tests/<script>` in Chromium against `app`'s host with `vars`
/// (and `BASE_URL`, `SCREENSHOTS`, `CHROMIUM`), answering its `mail?
/// <address>` lines with the newest message queued to the address (one
/// JSON line, `{subject, text}` or `null`). Fails unless it ends with
/// `ok` within `limit`; returns what it printed.
pub async fn run_script(
    app: &TestApp,
    script: &str,
    vars: &[(&str, String)],
    limit: std::time::Duration,
) -> anyhow::Result<Vec<String>> {
    use tokio::io::AsyncWriteExt as _;
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    ensure!(
        std::path::Path::new(&chromium).exists(),
        "{chromium} is missing: run `cargo xtask setup` (Debian's chromium package)"
    );
    let shots = root()
        .join("target/screenshots")
        .join(host_name(app.stack.kind));
    let mut browser = tokio::process::Command::new("node")
        .arg(root().join("web/tests").join(script))
        .current_dir(root().join("web"))
        .env("BASE_URL", &app.stack.base_url)
        .env("SCREENSHOTS", &shots)
        .env("CHROMIUM", &chromium)
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start node for {script}"))?;
    let stdout = browser.stdout.take().context("node's stdout")?;
    let mut stdin = browser.stdin.take().context("node's stdin")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut said = Vec::new();
    // The lab computers' folders of the bridges the script enrolled.
    let mut bridge_dirs = Vec::new();
    let ran = tokio::time::timeout(limit, async {
        while let Some(line) = lines.next_line().await? {
            let answer =
                if let Some(address) = line.strip_prefix("mail? ") {
                    Some(app.mail_to(address.trim()).await?.map(
                        |(subject, text)| serde_json::json!({ "subject": subject, "text": text }),
                    ))
                } else if let Some(command) = line.strip_prefix("enroll? ") {
                    Some(Some(
                        enroll_by_command(app, command, &mut bridge_dirs).await?,
                    ))
                } else {
                    None
                };
            if let Some(message) = answer {
                let mut reply = serde_json::to_string(&message)?;
                reply.push('\n');
                stdin.write_all(reply.as_bytes()).await?;
                stdin.flush().await?;
            }
            said.push(line);
        }
        drop(stdin);
        anyhow::Ok(browser.wait_with_output().await?)
    })
    .await;
    let output = match ran {
        Ok(output) => output?,
        Err(_) => bail!("{script} did not finish within {limit:?}: {said:?}"),
    };
    ensure!(
        output.status.success() && said.last().map(String::as_str) == Some("ok"),
        "{script} failed ({}):\n{}\n{}",
        output.status,
        said.join("\n"),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(said)
}

async fn web_administration_in_a_browser(app: &TestApp) -> anyhow::Result<()> {
    built_index()?;
    let admin = app.new_org_user(shared::auth::Role::Admin).await?;
    let admin_token = app.login(&admin).await?;
    let scientist = app
        .new_user(admin.organization_id, shared::auth::Role::Scientist)
        .await?;
    let db = app.db().await?;
    db.execute(
        "UPDATE users SET name = 'Sam Rivera', department = 'Stability' WHERE id = $1",
        &[&scientist.id],
    )
    .await?;
    crate::lab::new_instrument(app, &admin_token, "Incubator I-7", "incubator", "offline").await?;
    let invited = crate::accounts::unique_email("vera");
    run_script(
        app,
        "admin.mjs",
        &[
            ("EMAIL", admin.email.clone()),
            ("PASSWORD", admin.password.clone()),
            ("OTHER_EMAIL", scientist.email.clone()),
            ("INVITE_EMAIL", invited.clone()),
        ],
        std::time::Duration::from_secs(240),
    )
    .await?;
    // What the pages did is in the audit trail, as the administrator's,
    // the role change with its reason.
    let done: Vec<(String, Option<String>)> = db
        .query(
            "SELECT event_type, reason FROM audit_events WHERE organization_id = $1 \
             AND user_id = $2 ORDER BY created_at",
            &[&admin.organization_id, &admin.id],
        )
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    for event in [
        "USER_INVITED",
        "INVITATION_REVOKED",
        "USER_UPDATED",
        "API_KEY_CREATED",
        "API_KEY_REVOKED",
        "BRIDGE_JOIN_TOKEN_CREATED",
        "BRIDGE_JOIN_TOKEN_REVOKED",
    ] {
        ensure!(
            done.iter().any(|(e, _)| e == event),
            "no {event} by the administrator: {done:?}"
        );
    }
    ensure!(
        done.iter().any(|(e, reason)| e == "USER_UPDATED"
            && reason.as_deref() == Some("Leads the stability programme from January")),
        "the role change's reason is not in the trail: {done:?}"
    );
    let role: String = db
        .query_one("SELECT role FROM users WHERE id = $1", &[&scientist.id])
        .await?
        .get(0);
    ensure!(role == "SENIOR_SCIENTIST", "{role}");
    Ok(())
}

async fn web_audit_trail_in_a_browser(app: &TestApp) -> anyhow::Result<()> {
    use shared::audit::export;
    built_index()?;
    let admin = app.new_org_user(shared::auth::Role::Admin).await?;
    let admin_token = app.login(&admin).await?;
    let db = app.db().await?;
    db.execute(
        "UPDATE users SET name = 'Ada Lovelace' WHERE id = $1",
        &[&admin.id],
    )
    .await?;
    let qa = app
        .new_user(admin.organization_id, shared::auth::Role::QualityAssurance)
        .await?;
    let scientist = app
        .new_user(admin.organization_id, shared::auth::Role::Scientist)
        .await?;
    // A history: an instrument registered, a role changed with a reason,
    // a run started, stopped and signed.
    crate::lab::new_instrument(app, &admin_token, "Freezer F-2", "freezer", "offline").await?;
    let (_, run) =
        crate::runs::started_run(app, &admin_token, &admin_token, "plate_reader").await?;
    let run_id = crate::lab::id_of(&run)?;
    app.as_user(&admin_token)
        .json(
            reqwest::Method::PUT,
            &format!("/api/v1/runs/{run_id}/stop"),
            &serde_json::json!({"outcome": "aborted", "reason": "Plate dropped"}),
        )
        .await?
        .expect_ok(200)?;
    app.as_user(&admin_token)
        .post(
            &format!("/api/v1/runs/{run_id}/signatures"),
            &serde_json::json!({"meaning": "review", "email": admin.email, "password": admin.password}),
        )
        .await?
        .expect_ok(201)?;
    app.as_user(&admin_token)
        .put(
            &format!("/api/v1/users/{}", scientist.id),
            &serde_json::json!({"role": "SENIOR_SCIENTIST", "reason": "Leads the stability programme from January"}),
        )
        .await?
        .expect_ok(200)?;
    let said = run_script(
        app,
        "audit.mjs",
        &[
            ("EMAIL", qa.email.clone()),
            ("PASSWORD", qa.password.clone()),
            ("ACTOR_NAME", "Ada Lovelace".to_owned()),
        ],
        std::time::Duration::from_secs(180),
    )
    .await?;
    // The files the browser saved verify offline with the published keys
    // alone, as an inspector would check them.
    let keys = shared::config::AuditKeys {
        public: shared::config::ed25519::parse_public_keys(
            "AUDIT_PUBLIC_KEYS",
            &app.stack.function_var("AUDIT_PUBLIC_KEYS"),
        )?,
        legacy: Vec::new(),
    };
    let mut checked = Vec::new();
    for line in said.iter().filter_map(|l| l.strip_prefix("exported ")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let file = std::fs::read(words.get(1).context("no file")?)?;
        let (body, manifest) = match words.first().copied() {
            Some("csv") => {
                use base64::Engine as _;
                let header = std::fs::read_to_string(words.get(2).context("no manifest")?)?;
                let manifest: export::Manifest = serde_json::from_slice(
                    &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header.trim())?,
                )?;
                (file, manifest)
            }
            _ => {
                let (body, manifest) = export::split_streamed(&file).map_err(anyhow::Error::msg)?;
                (body.to_vec(), manifest)
            }
        };
        let verdict = export::verify(&body, &manifest, &keys);
        ensure!(
            verdict.ok() && verdict.signatures_checked,
            "{line}: {:?}",
            verdict.problems
        );
        ensure!(manifest.count >= 3, "{line}: {} events", manifest.count);
        checked.push(words[0].to_owned());
    }
    ensure!(checked == ["jsonl", "csv"], "exports checked: {checked:?}");
    let exports: i64 = db
        .query_one(
            "SELECT count(*) FROM audit_events WHERE organization_id = $1 AND user_id = $2 \
             AND event_type = 'AUDIT_EXPORTED'",
            &[&admin.organization_id, &qa.id],
        )
        .await?
        .get(0);
    ensure!(exports == 2, "{exports} exports audited");
    Ok(())
}

async fn web_monitoring_in_a_browser(app: &TestApp) -> anyhow::Result<()> {
    built_index()?;
    let admin = app.new_org_user(shared::auth::Role::Admin).await?;
    let admin_token = app.login(&admin).await?;
    let technician = app
        .new_user(admin.organization_id, shared::auth::Role::Technician)
        .await?;
    let freezer = crate::lab::id_of(
        &crate::lab::register(
            app,
            &admin_token,
            serde_json::json!({
                "name": "Freezer B-12", "type": "freezer", "status": "offline",
                "configuration": {"setpointC": -80, "alarmHighC": -70},
            }),
        )
        .await?,
    )?;
    let incubator =
        crate::lab::new_instrument(app, &admin_token, "Incubator I-4", "incubator", "offline")
            .await?;
    crate::lab::new_instrument(app, &admin_token, "Centrifuge C-3", "centrifuge", "offline")
        .await?;
    let (_dir, agent) = simulated_bridge_of(
        app,
        &admin_token,
        &[(freezer, "freezer"), (incubator, "incubator")],
        17,
    )
    .await?;
    let spin = app.stack.kind == HostKind::Wasmtime;
    let ran = run_script(
        app,
        "monitoring.mjs",
        &[
            ("EMAIL", technician.email.clone()),
            ("PASSWORD", technician.password.clone()),
            ("LIVE", if spin { "polling" } else { "socket" }.to_owned()),
        ],
        std::time::Duration::from_secs(180),
    )
    .await;
    let stopped = agent.stop().await;
    ran?;
    stopped
}

/// Runs the enroll command a page showed (`EDGE_BRIDGE_JOIN_TOKEN=<token>
/// edge-bridge enroll --url <origin>`) as a lab computer would: the
/// bridge's own enrollment with that token and origin, into a new folder;
/// then its first heartbeat (version 1.4.2 on `lab-2-bench`, 12 records
/// queued, serving the organization's first instrument). Answers
/// `{"bridgeId", "apiKey"}`.
async fn enroll_by_command(
    app: &TestApp,
    command: &str,
    dirs: &mut Vec<tempfile::TempDir>,
) -> anyhow::Result<serde_json::Value> {
    let words: Vec<&str> = command.split_whitespace().collect();
    let token = words
        .iter()
        .find_map(|w| w.strip_prefix("EDGE_BRIDGE_JOIN_TOKEN="))
        .with_context(|| format!("no token in {command:?}"))?;
    let url = words
        .iter()
        .position(|w| *w == "--url")
        .and_then(|at| words.get(at + 1))
        .with_context(|| format!("no --url in {command:?}"))?;
    ensure!(
        words.contains(&"edge-bridge") && words.contains(&"enroll"),
        "not an enroll command: {command:?}"
    );
    let dir = tempfile::tempdir()?;
    let trust = edge_bridge::tls::Trust::load(None)?;
    let credentials =
        edge_bridge::enroll::enroll(url, token, dir.path(), Some("lab-2-bench"), false, &trust)
            .await
            .map_err(|e| anyhow::anyhow!("the page's enroll command failed: {e}"))?;
    dirs.push(dir);
    let instrument: Option<uuid::Uuid> = app
        .db()
        .await?
        .query_opt(
            "SELECT id FROM instruments WHERE organization_id = $1 ORDER BY created_at LIMIT 1",
            &[&credentials.organization_id],
        )
        .await?
        .map(|row| row.get(0));
    let heartbeat = serde_json::json!({
        "stream": uuid::Builder::from_random_bytes(rand::random()).into_uuid(),
        "records": [],
        "heartbeat": {
            "version": "1.4.2", "hostname": "lab-2-bench", "queueDepth": 12,
            "instruments": instrument.map(|id| vec![serde_json::json!({"id": id, "status": "idle"})]).unwrap_or_default(),
        },
    });
    app.as_key(&credentials.api_key)
        .post("/api/v1/bridges/ingest", &heartbeat)
        .await?
        .expect_ok(200)?;
    Ok(serde_json::json!({ "bridgeId": credentials.bridge_id, "apiKey": credentials.api_key }))
}

/// Reads the script's `timing` lines.
pub fn timings(lines: &[String]) -> Timings {
    let mut out = Timings::default();
    for line in lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        let mut pairs = words.iter().skip(1).collect::<Vec<_>>().into_iter();
        while let (Some(name), Some(value)) = (pairs.next(), pairs.next()) {
            match *name {
                "dashboard-ms" => out.dashboard_ms = value.parse().unwrap_or_default(),
                "first-load-ms" => out.first_load_ms = value.parse().unwrap_or_default(),
                "reading-delays-ms" => {
                    out.reading_delays_ms =
                        value.split(',').filter_map(|v| v.parse().ok()).collect();
                }
                _ => {}
            }
        }
    }
    out
}
