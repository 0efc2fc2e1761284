//! Isolation enforced by PostgreSQL: row-level security on the tenant
//! tables, checked as the application's role through the proxy (as a
//! function reaches the database), over every table of the catalogue.

use anyhow::{Context as _, ensure};
use serde_json::{Value, json};

use crate::accounts::unique_email;
use crate::client::TestApp;
use crate::lab::new_instrument;
use crate::runs::started_run;

crate::cases![tenant_tables_are_closed_without_their_organization];

/// The `SECURITY DEFINER` functions, all of them: the lookups before the
/// organization is known (migration V15), the audit trail's chain trigger
/// (V8) and retention purge (V11). Each runs as the tables' owner, past
/// their policies; a new one must be added here on purpose.
const DEFINERS: &[&str] = &[
    "accept_invitation",
    "account_for_login",
    "account_for_reset",
    "api_key_by_prefix",
    "audit_events_chain",
    "audit_retention_purge",
    "bridge_join_token",
    "claim_due_mail",
    "claim_due_webhook_deliveries",
    "claim_retention_due",
    "confirm_signup",
    "finish_retention",
    "invitation_for",
    "purge_expired_signup_requests",
    "purge_idle_rate_limits",
    "purge_unowned_mail",
    "record_mail_delivery",
    "refresh_token_state",
    "request_signup",
    "reset_token_owner",
    "rotate_refresh_token",
    "signup_request_for",
    "use_reset_token",
    "watch_due",
];

/// Tables the setup below gives rows in both organizations, so hiding
/// them is shown on rows that exist.
const FILLED: &[&str] = &[
    "organizations",
    "users",
    "sessions",
    "api_keys",
    "invitations",
    "password_resets",
    "bridge_join_tokens",
    "email_outbox",
    "rate_limits",
    "audit_events",
    "audit_chain_heads",
    "instruments",
    "runs",
    "instrument_commands",
    "webhooks",
    "events",
    "webhook_deliveries",
];

/// As the application's role: one statement, or a batch (`[..]`).
async fn as_app(app: &TestApp, body: Value) -> anyhow::Result<(u16, Value)> {
    let reply = app.stack.app_sql(&app.http, &body)?.send().await?;
    Ok((reply.status().as_u16(), reply.json().await?))
}

/// `SELECT set_config(...)` for organization `org`, first in a batch.
fn setting(org: uuid::Uuid) -> Value {
    json!({"query": "SELECT set_config('app.organization_id', $1, true)", "params": [org.to_string()]})
}

/// A count a reply carries in its first row as `n` (int8: text).
fn n(result: &Value) -> anyhow::Result<i64> {
    result["rows"][0]["n"]
        .as_str()
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("no count in {result}"))
}

/// The application's role as it is and as the catalogue says: no
/// superuser, no `BYPASSRLS`, owner of nothing; exactly [`DEFINERS`] run as
/// their owner, each with its own `search_path` and, but for the trigger,
/// callable by the application's role only.
async fn check_roles_and_definers(app: &TestApp) -> anyhow::Result<()> {
    let (status, reply) = as_app(
        app,
        json!({"query": "SELECT count(*) AS n FROM pg_roles r WHERE r.rolname = current_user \
                         AND NOT r.rolsuper AND NOT r.rolbypassrls \
                         AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.relowner = r.oid)"}),
    )
    .await?;
    ensure!(
        status == 200 && n(&reply)? == 1,
        "the application's role: {reply}"
    );
    let db = app.db().await?;
    let definers = db
        .query(
            "SELECT p.proname::text, \
                    EXISTS (SELECT 1 FROM unnest(coalesce(p.proconfig, '{}')) c WHERE c LIKE 'search_path=%'), \
                    p.prorettype = 'trigger'::regtype OR NOT EXISTS ( \
                        SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a \
                        WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE') \
             FROM pg_proc p JOIN pg_namespace s ON s.oid = p.pronamespace \
             WHERE s.nspname = 'public' AND p.prosecdef ORDER BY 1",
            &[],
        )
        .await?;
    let names: Vec<String> = definers.iter().map(|row| row.get(0)).collect();
    ensure!(names == DEFINERS, "SECURITY DEFINER functions: {names:?}");
    for row in &definers {
        let (name, path, private): (String, bool, bool) = (row.get(0), row.get(1), row.get(2));
        ensure!(path, "{name} runs without its own search_path");
        ensure!(private, "{name} is callable by PUBLIC");
    }
    Ok(())
}

/// What a statement `as_app` sent did: its code when refused.
fn refused(status: u16, reply: &Value) -> Option<String> {
    (status == 400).then(|| reply["code"].as_str().unwrap_or_default().to_owned())
}

async fn tenant_tables_are_closed_without_their_organization(app: &TestApp) -> anyhow::Result<()> {
    // Two organizations, each with an instrument, a run and its command,
    // an API key, an invitation and its e-mail, a password reset, a
    // bridge's join token, and a webhook with an event delivered to it.
    let (a_admin, a) = app.admin().await?;
    let (b_admin, b) = app.admin().await?;
    let (org_a, org_b) = (a_admin.organization_id, b_admin.organization_id);
    for (admin, token) in [(&a_admin, &a), (&b_admin, &b)] {
        new_instrument(app, token, "HPLC", "hplc", "idle").await?;
        let user = app.as_user(token);
        // A webhook, and an event for it: the event and its delivery.
        user.post(
            "/api/v1/webhooks",
            &json!({"url": "https://hooks.example.com/lims", "events": ["run.aborted"]}),
        )
        .await?
        .expect_ok(201)?;
        let (_, run) = started_run(app, token, token, "plate_reader").await?;
        user.put(
            &format!(
                "/api/v1/runs/{}/stop",
                run["id"].as_str().unwrap_or_default()
            ),
            &json!({"outcome": "aborted"}),
        )
        .await?
        .expect_ok(200)?;
        user.post(
            "/api/v1/api-keys",
            &json!({"name": "LIMS", "permissions": ["instruments:view"]}),
        )
        .await?
        .expect_ok(201)?;
        user.post(
            "/api/v1/users",
            &json!({"email": unique_email("invitee"), "role": "TECHNICIAN", "name": "Tess"}),
        )
        .await?
        .expect_ok(201)?;
        user.post("/api/v1/bridges/join-tokens", &json!({"name": "Lab 2"}))
            .await?
            .expect_ok(201)?;
        app.anonymous()
            .post("/api/auth/forgot-password", &json!({"email": admin.email}))
            .await?
            .expect_ok(202)?;
    }
    check_roles_and_definers(app).await?;
    // Signup requests belong to no organization yet: the application's
    // role reaches them only through V19's functions.
    let (status, reply) = as_app(
        app,
        json!({"query": "SELECT count(*) AS n FROM signup_requests"}),
    )
    .await?;
    ensure!(
        refused(status, &reply).as_deref() == Some("42501"),
        "signup_requests read directly: {reply}"
    );

    // The catalogue: every table with an organization (and `organizations`
    // itself) is under row-level security, each policy reading the
    // organization setting.
    let db = app.db().await?;
    let tables = db
        .query(
            "SELECT c.relname::text, c.relrowsecurity, \
                    (SELECT count(*) FROM pg_policies p WHERE p.schemaname = 'public' AND p.tablename = c.relname), \
                    (SELECT count(*) FROM pg_policies p WHERE p.schemaname = 'public' AND p.tablename = c.relname \
                       AND concat(p.qual, p.with_check) NOT LIKE '%app_organization()%') \
             FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace \
             WHERE s.nspname = 'public' AND c.relkind = 'r' AND (c.relname = 'organizations' OR EXISTS ( \
                 SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'organization_id' \
                 AND NOT a.attisdropped)) \
             ORDER BY c.relname",
            &[],
        )
        .await?;
    let mut protected = Vec::new();
    for row in &tables {
        let (name, secured, policies, other): (String, bool, i64, i64) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        ensure!(
            secured,
            "{name} has an organization but no row-level security"
        );
        ensure!(policies >= 1, "{name} has row-level security but no policy");
        ensure!(
            other == 0,
            "{name} has a policy that does not read the organization setting"
        );
        protected.push(name);
    }
    ensure!(protected.len() >= 27, "{protected:?}");
    for table in FILLED {
        ensure!(
            protected.iter().any(|t| t == table),
            "{table} is no tenant table"
        );
    }

    for table in &protected {
        let column = if table == "organizations" {
            "id"
        } else {
            "organization_id"
        };
        let count = format!("SELECT count(*) AS n FROM {table}");
        let of = |org: uuid::Uuid| json!({"query": format!("{count} WHERE {column} = $1"), "params": [org.to_string()]});
        let owned = |org: uuid::Uuid| {
            let db = &db;
            let query = format!("{count} WHERE {column} = $1");
            async move { anyhow::Ok(db.query_one(&query, &[&org]).await?.get::<_, i64>(0)) }
        };
        let (a_rows, b_rows) = (owned(org_a).await?, owned(org_b).await?);
        if FILLED.contains(&table.as_str()) {
            ensure!(a_rows >= 1 && b_rows >= 1, "{table} has rows of both");
        }
        // Without the setting: no row of any organization, though the
        // table has them (rate limits by address and the system's audit
        // chain belong to none).
        let (status, reply) = as_app(
            app,
            json!({"query": format!("{count} WHERE {column} IS NOT NULL")}),
        )
        .await?;
        ensure!(status == 200, "{table}: {reply}");
        ensure!(n(&reply)? == 0, "{table} without a setting: {reply}");
        // With A's: A's rows, as many as there are, and none of B's.
        let (status, reply) = as_app(
            app,
            json!({"queries": [setting(org_a), {"query": count}, of(org_b)]}),
        )
        .await?;
        ensure!(status == 200, "{table}: {reply}");
        ensure!(n(&reply["results"][1])? == a_rows, "{table} as A: {reply}");
        ensure!(
            n(&reply["results"][2])? == 0,
            "{table} as A, B's rows: {reply}"
        );

        // Writes: no row of A's without the setting, none of B's with A's
        // (refused by the policy, 42501, before any constraint is checked;
        // an audit event must carry its hash for the chain's trigger).
        let insert = |org: uuid::Uuid| match table.as_str() {
            "audit_events" => json!({
                "query": "INSERT INTO audit_events (organization_id, content_hash, key_id) VALUES ($1, '\\x00', 'probe')",
                "params": [org.to_string()]}),
            _ => {
                json!({"query": format!("INSERT INTO {table} ({column}) VALUES ($1)"), "params": [org.to_string()]})
            }
        };
        let (status, reply) = as_app(app, insert(org_a)).await?;
        ensure!(
            refused(status, &reply).as_deref() == Some("42501"),
            "{table}: an insert without the setting: {reply}"
        );
        let (status, reply) =
            as_app(app, json!({"queries": [setting(org_a), insert(org_b)]})).await?;
        ensure!(
            refused(status, &reply).as_deref() == Some("42501"),
            "{table}: A writing B's row: {reply}"
        );
        // A's update and delete of B's rows reach none (or are not granted).
        for change in [
            format!("UPDATE {table} SET {column} = {column} WHERE {column} = $1"),
            format!("DELETE FROM {table} WHERE {column} = $1"),
        ] {
            let (status, reply) = as_app(
                app,
                json!({"queries": [setting(org_a), {"query": change, "params": [org_b.to_string()]}]}),
            )
            .await?;
            match refused(status, &reply) {
                Some(code) => ensure!(code == "42501", "{table}: {change}: {reply}"),
                None => ensure!(
                    status == 200 && reply["results"][1]["rowCount"] == 0,
                    "{table}: A changing B's rows: {reply}"
                ),
            }
        }
        ensure!(
            (owned(org_a).await?, owned(org_b).await?) == (a_rows, b_rows),
            "{table}: the probes changed nothing"
        );
    }
    Ok(())
}
