//! Isolation enforced by PostgreSQL: row-level security on the tenant
//! tables, checked as the application's role through the proxy (as a
//! function reaches the database), over every table of the catalogue.

use anyhow::{Context as _, ensure};
use serde_json::{Value, json};

use crate::client::TestApp;
use crate::lab::new_instrument;
use crate::runs::started_run;

crate::cases![tenant_tables_are_closed_without_their_organization];

/// Tenant tables not yet under row-level security, and why: each is read
/// before the organization is known, which needs its narrow
/// `SECURITY DEFINER` lookup first.
const NOT_YET: &[(&str, &str)] = &[
    (
        "users",
        "an account is looked up by e-mail at login and reset",
    ),
    ("api_keys", "a key is found by its prefix"),
    ("sessions", "a refresh token is found by its hash"),
    ("password_resets", "a reset token is found by its hash"),
    ("invitations", "an invitation is accepted by its token"),
    ("bridge_join_tokens", "a join token is found by its hash"),
    (
        "rate_limits",
        "rows are keyed by address before authentication",
    ),
    ("email_outbox", "a delivery is recorded by message id"),
    (
        "audit_events",
        "refusals before authentication go to the system chain",
    ),
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

async fn tenant_tables_are_closed_without_their_organization(app: &TestApp) -> anyhow::Result<()> {
    // Two organizations, each with an instrument, a run and its command.
    let (a_admin, a) = app.admin().await?;
    let (b_admin, b) = app.admin().await?;
    let (org_a, org_b) = (a_admin.organization_id, b_admin.organization_id);
    for token in [&a, &b] {
        new_instrument(app, token, "HPLC", "hplc", "idle").await?;
        started_run(app, token, token, "plate_reader").await?;
    }

    // The catalogue: every table with an organization (and `organizations`
    // itself) is under row-level security with a policy, unless listed.
    let db = app.db().await?;
    let tables = db
        .query(
            "SELECT c.relname, c.relrowsecurity, \
                    (SELECT count(*) FROM pg_policies p WHERE p.schemaname = 'public' AND p.tablename = c.relname) AS policies \
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
        let (name, secured, policies): (String, bool, i64) = (row.get(0), row.get(1), row.get(2));
        match NOT_YET.iter().find(|(table, _)| *table == name) {
            Some(_) => ensure!(!secured, "{name} is secured now: take it off NOT_YET"),
            None => {
                ensure!(
                    secured,
                    "{name} has an organization but no row-level security"
                );
                ensure!(policies >= 1, "{name} has row-level security but no policy");
                protected.push(name);
            }
        }
    }
    ensure!(protected.len() >= 18, "{protected:?}");
    for (table, _) in NOT_YET {
        ensure!(
            tables.iter().any(|row| row.get::<_, String>(0) == *table),
            "{table} is no tenant table any more: take it off NOT_YET"
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
        // Without the setting: nothing, though the table has rows.
        let (status, reply) = as_app(app, json!({"query": count})).await?;
        ensure!(status == 200, "{table}: {reply}");
        ensure!(n(&reply)? == 0, "{table} without a setting: {reply}");
        // With A's: A's rows, as many as there are, and none of B's.
        let (status, reply) = as_app(
            app,
            json!({"queries": [setting(org_a), {"query": count}, of(org_b)]}),
        )
        .await?;
        ensure!(status == 200, "{table}: {reply}");
        let admin: i64 = db
            .query_one(&format!("{count} WHERE {column} = $1"), &[&org_a])
            .await?
            .get(0);
        ensure!(n(&reply["results"][1])? == admin, "{table} as A: {reply}");
        ensure!(
            n(&reply["results"][2])? == 0,
            "{table} as A, B's rows: {reply}"
        );
    }
    let (a_rows, b_rows): (i64, i64) = {
        let row = db
            .query_one(
                "SELECT count(*) FILTER (WHERE organization_id = $1), count(*) FILTER (WHERE organization_id = $2) FROM runs",
                &[&org_a, &org_b],
            )
            .await?;
        (row.get(0), row.get(1))
    };
    ensure!(a_rows >= 1 && b_rows >= 1, "both organizations have runs");

    // Writes: none without the setting, none into or over B's with A's.
    let insert = |org: uuid::Uuid| {
        json!({"query": "INSERT INTO instruments (organization_id, name, type) VALUES ($1, 'Intruder', 'hplc')",
               "params": [org.to_string()]})
    };
    let (status, reply) = as_app(app, insert(org_a)).await?;
    ensure!(status == 400, "{reply}");
    ensure!(
        reply["code"] == "42501",
        "an insert without the setting: {reply}"
    );
    let (status, reply) = as_app(app, json!({"queries": [setting(org_a), insert(org_b)]})).await?;
    ensure!(status == 400, "{reply}");
    ensure!(reply["code"] == "42501", "A writing B's row: {reply}");
    let (status, reply) = as_app(
        app,
        json!({"queries": [setting(org_a), {
            "query": "UPDATE instruments SET name = 'Taken' WHERE organization_id = $1 RETURNING id",
            "params": [org_b.to_string()]}]}),
    )
    .await?;
    ensure!(status == 200, "{reply}");
    ensure!(
        reply["results"][1]["rowCount"] == 0,
        "A changing B's rows: {reply}"
    );
    let taken: i64 = db
        .query_one(
            "SELECT count(*) FROM instruments WHERE name = 'Taken' OR name = 'Intruder'",
            &[],
        )
        .await?
        .get(0);
    ensure!(taken == 0, "nothing was written: {taken}");
    Ok(())
}
