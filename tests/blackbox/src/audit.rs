//! Cases for the audit trail's tamper evidence: the hash chain, signatures,
//! checkpoints, verification and the append-only table.

use anyhow::{Context as _, ensure};
use serde_json::{Value, json};
use shared::auth::Role;

use crate::client::TestApp;
use crate::lab::register;

crate::cases![
    audit_chain_verifies_and_records_a_signed_checkpoint,
    audit_tampering_is_found_at_the_right_position,
    audit_rows_cannot_be_changed_or_removed,
    audit_events_are_listed_newest_first_with_filters,
];

/// An organization with a few audited changes; returns its id and the
/// token of a quality assurance user (who may read the audit trail).
async fn chain_with_events(app: &TestApp) -> anyhow::Result<(uuid::Uuid, String)> {
    let (admin, token) = app.admin().await?;
    let (_, qa) = app
        .member(admin.organization_id, Role::QualityAssurance)
        .await?;
    for n in 0..4 {
        register(
            app,
            &token,
            json!({"name": format!("Freezer {n}"), "type": "freezer"}),
        )
        .await?;
    }
    Ok((admin.organization_id, qa))
}

async fn verify(app: &TestApp, token: &str, query: &str) -> anyhow::Result<Value> {
    let resp = app
        .get(&format!("/api/audit/verify{query}"), Some(token))
        .await?;
    Ok(resp.expect_ok(200)?.clone())
}

/// Runs `sql` as a superuser with triggers off, as an attacker with the
/// database's keys (but not the application's) could.
async fn tamper(app: &TestApp, org: uuid::Uuid, sql: &str) -> anyhow::Result<()> {
    let db = app.db().await?;
    db.batch_execute(&format!(
        "SET session_replication_role = replica; {}",
        sql.replace("$1", &format!("'{org}'::uuid"))
    ))
    .await?;
    Ok(())
}

fn failure(report: &Value) -> (i64, String) {
    (
        report["failure"]["sequence"].as_i64().unwrap_or(-1),
        report["failure"]["reason"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

async fn audit_chain_verifies_and_records_a_signed_checkpoint(app: &TestApp) -> anyhow::Result<()> {
    let (org, qa) = chain_with_events(app).await?;
    let db = app.db().await?;
    let head: i64 = db
        .query_one(
            "SELECT max(sequence) FROM audit_events WHERE chain_id = $1",
            &[&org],
        )
        .await?
        .get(0);
    ensure!(head >= 6, "logins and four creations: {head}");
    // Gapless, linked, signed.
    let gaps: i64 = db
        .query_one(
            "SELECT count(*) FROM audit_events e WHERE chain_id = $1 AND sequence > 1 AND previous_hash <> \
               (SELECT hash FROM audit_events p WHERE p.chain_id = e.chain_id AND p.sequence = e.sequence - 1)",
            &[&org],
        )
        .await?
        .get(0);
    ensure!(gaps == 0);
    let report = verify(app, &qa, "").await?;
    ensure!(
        report["verified"] == true
            && report["verifiedToSequence"] == head
            && report["events"] == head
            && report["legacyEvents"] == 0
            && report["headHash"].as_str().is_some_and(|h| h.len() == 64),
        "{report}"
    );
    // The verified head is now a signed checkpoint, checked next time.
    ensure!(report["latestCheckpoint"]["sequence"] == head, "{report}");
    let again = verify(app, &qa, "").await?;
    ensure!(
        again["verified"] == true && again["checkpointsChecked"] == 1,
        "{again}"
    );
    // A range.
    let part = verify(app, &qa, "?from=2&to=4").await?;
    ensure!(
        part["verified"] == true && part["events"] == 3 && part["verifiedToSequence"] == 4,
        "{part}"
    );
    // Bad ranges, and who may verify.
    app.get("/api/audit/verify?from=0", Some(&qa))
        .await?
        .expect_error(400, "VALIDATION_ERROR")?;
    app.get("/api/audit/verify?from=5&to=2", Some(&qa))
        .await?
        .expect_error(400, "VALIDATION_ERROR")?;
    let (_, scientist) = app.member(org, Role::Scientist).await?;
    app.get("/api/audit/verify", Some(&scientist))
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    // Another organization's chain is its own.
    let (other, other_qa) = chain_with_events(app).await?;
    let theirs = verify(app, &other_qa, "").await?;
    ensure!(
        theirs["chainId"] == other.to_string() && theirs["verified"] == true,
        "{theirs}"
    );
    Ok(())
}

async fn audit_tampering_is_found_at_the_right_position(app: &TestApp) -> anyhow::Result<()> {
    let cases: [(&str, &str, i64, &str); 5] = [
        (
            "a field changed",
            "UPDATE audit_events SET action = 'Nothing happened' WHERE chain_id = $1 AND sequence = 3",
            3,
            "modified",
        ),
        (
            "an event removed",
            "DELETE FROM audit_events WHERE chain_id = $1 AND sequence = 3",
            3,
            "missing",
        ),
        (
            "two events swapped",
            "UPDATE audit_events SET sequence = -sequence WHERE chain_id = $1 AND sequence IN (2, 3); \
             UPDATE audit_events SET sequence = 3 WHERE chain_id = $1 AND sequence = -2; \
             UPDATE audit_events SET sequence = 2 WHERE chain_id = $1 AND sequence = -3",
            2,
            "reordered",
        ),
        (
            "a signature replaced",
            "UPDATE audit_events SET signature = sha256(signature) WHERE chain_id = $1 AND sequence = 3",
            3,
            "bad_signature",
        ),
        (
            "the newest event removed",
            "DELETE FROM audit_events WHERE chain_id = $1 \
               AND sequence = (SELECT max(sequence) FROM audit_events WHERE chain_id = $1)",
            0,
            "missing",
        ),
    ];
    for (what, sql, at, reason) in cases {
        let (org, qa) = chain_with_events(app).await?;
        let before = verify(app, &qa, "").await?;
        ensure!(before["verified"] == true, "{what}: {before}");
        let head = before["verifiedToSequence"].as_i64().context("head")?;
        tamper(app, org, sql).await?;
        let after = verify(app, &qa, "").await?;
        let at = if at == 0 { head } else { at };
        ensure!(after["verified"] == false, "{what}: {after}");
        ensure!(
            failure(&after) == (at, reason.to_owned()),
            "{what}: expected {reason} at {at}, got {after}"
        );
        ensure!(after["verifiedToSequence"] == at - 1, "{what}: {after}");
    }

    // Cutting the newest events off and rewinding the head to match is
    // caught by the signed checkpoint of the last verification.
    let (org, qa) = chain_with_events(app).await?;
    let before = verify(app, &qa, "").await?;
    let head = before["verifiedToSequence"].as_i64().context("head")?;
    tamper(
        app,
        org,
        "WITH cut AS (DELETE FROM audit_events WHERE chain_id = $1 \
           AND sequence >= (SELECT max(sequence) - 1 FROM audit_events WHERE chain_id = $1) RETURNING sequence) \
         UPDATE audit_chain_heads h SET sequence = e.sequence, hash = e.hash \
         FROM audit_events e WHERE h.chain_id = $1 AND e.chain_id = $1 \
           AND e.sequence = (SELECT min(sequence) - 1 FROM cut)",
    )
    .await?;
    let after = verify(app, &qa, "").await?;
    ensure!(
        failure(&after) == (head - 1, "truncated".to_owned()),
        "expected truncated at {}, got {after}",
        head - 1
    );
    Ok(())
}

async fn audit_rows_cannot_be_changed_or_removed(app: &TestApp) -> anyhow::Result<()> {
    let (org, _) = chain_with_events(app).await?;
    let env = |name: &str| {
        app.stack
            .function_env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    // As the application's role, through the proxy.
    for sql in [
        "UPDATE audit_events SET action = 'x' WHERE chain_id = $1",
        "DELETE FROM audit_events WHERE chain_id = $1",
        "UPDATE audit_chain_heads SET sequence = 0 WHERE chain_id = $1",
        "DELETE FROM audit_checkpoints WHERE chain_id = $1",
        "TRUNCATE audit_events",
    ] {
        let params = if sql.contains("$1") {
            json!([org.to_string()])
        } else {
            json!([])
        };
        let reply = app
            .http
            .post(env("SQL_PROXY_URL"))
            .header("Neon-Connection-String", env("DATABASE_URL"))
            .json(&json!({"query": sql, "params": params}))
            .send()
            .await?;
        let status = reply.status().as_u16();
        let body: Value = reply.json().await?;
        ensure!(
            status == 400 && body["code"] == "42501",
            "{sql}: {status} {body}"
        );
    }
    // Even a superuser, with triggers on, is refused.
    let db = app.db().await?;
    for sql in [
        "UPDATE audit_events SET action = 'x' WHERE chain_id = $1",
        "DELETE FROM audit_events WHERE chain_id = $1",
    ] {
        let refused = db.execute(sql, &[&org]).await;
        ensure!(refused.is_err(), "{sql} was allowed");
    }
    ensure!(db.batch_execute("TRUNCATE audit_events").await.is_err());
    let count: i64 = db
        .query_one(
            "SELECT count(*) FROM audit_events WHERE chain_id = $1",
            &[&org],
        )
        .await?
        .get(0);
    ensure!(count >= 6);
    Ok(())
}

async fn audit_events_are_listed_newest_first_with_filters(app: &TestApp) -> anyhow::Result<()> {
    let (org, qa) = chain_with_events(app).await?;
    let sequences = |page: &Value| -> Vec<i64> {
        page["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i["sequence"].as_i64())
                    .collect()
            })
            .unwrap_or_default()
    };
    let first = app.get("/api/audit/events?limit=3", Some(&qa)).await?;
    let first = first.expect_ok(200)?.clone();
    let top = sequences(&first);
    ensure!(
        top.len() == 3 && top.windows(2).all(|w| w[0] == w[1] + 1),
        "{first}"
    );
    let item = &first["items"][0];
    ensure!(
        item["hash"].as_str().is_some_and(|h| h.len() == 64) && item["keyId"] == "a1",
        "{item}"
    );
    let cursor = first["nextCursor"].as_str().context("next page")?;
    let second = app
        .get(
            &format!("/api/audit/events?limit=3&cursor={cursor}"),
            Some(&qa),
        )
        .await?;
    let second = sequences(second.expect_ok(200)?);
    ensure!(second.first() == Some(&(top[2] - 1)), "{second:?}");

    let created = app
        .get("/api/audit/events?eventType=INSTRUMENT_CREATED", Some(&qa))
        .await?;
    let created = created.expect_ok(200)?;
    ensure!(
        created["items"].as_array().map(Vec::len) == Some(4),
        "{created}"
    );
    let text = app
        .get(
            "/api/audit/events?q=INSTRUMENT%20regis&outcome=SUCCESS",
            Some(&qa),
        )
        .await?;
    ensure!(text.expect_ok(200)?["items"].as_array().map(Vec::len) == Some(4));
    // Wildcards are literal.
    let literal = app.get("/api/audit/events?q=%25", Some(&qa)).await?;
    ensure!(literal.expect_ok(200)?["items"].as_array().map(Vec::len) == Some(0));
    for bad in [
        "severity=LOUD",
        "userId=me",
        "from=yesterday",
        "cursor=xyz",
        "colour=red",
    ] {
        app.get(&format!("/api/audit/events?{bad}"), Some(&qa))
            .await?
            .expect_error(400, "VALIDATION_ERROR")
            .with_context(|| bad.to_owned())?;
    }
    let (_, scientist) = app.member(org, Role::Scientist).await?;
    app.get("/api/audit/events", Some(&scientist))
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    // Another organization's events never show.
    let (_, other_qa) = chain_with_events(app).await?;
    let theirs = app
        .get("/api/audit/events?limit=100", Some(&other_qa))
        .await?;
    let theirs = theirs.expect_ok(200)?;
    let ids: Vec<&str> = first["items"]
        .as_array()
        .map(|i| i.iter().filter_map(|e| e["id"].as_str()).collect())
        .unwrap_or_default();
    ensure!(
        theirs["items"].as_array().is_some_and(|items| items
            .iter()
            .all(|e| !ids.contains(&e["id"].as_str().unwrap_or("")))),
        "another organization's events leaked"
    );
    Ok(())
}
