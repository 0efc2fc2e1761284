//! Cases for the audit trail's tamper evidence: the hash chain, signatures,
//! checkpoints, verification and the append-only table.

use anyhow::{Context as _, ensure};
use serde_json::{Value, json};
use shared::auth::Role;

use crate::client::TestApp;
use crate::lab::{id_of, register};
use crate::runs::started_run;

crate::cases![
    audit_chain_verifies_and_records_a_signed_checkpoint,
    audit_tampering_is_found_at_the_right_position,
    a_long_chain_is_verified_whole_in_bounded_steps,
    audit_rows_cannot_be_changed_or_removed,
    audit_events_are_listed_newest_first_with_filters,
    audit_export_round_trips_through_the_offline_verifier,
    audit_events_signed_with_hmac_before_ed25519_still_verify,
    denials_client_events_and_sessions_are_on_the_record,
    electronic_signatures_reauthenticate_bind_to_the_run_and_invalidate_on_change,
    retention_removes_only_what_has_expired_and_audits_itself,
    retention_refuses_to_vouch_for_a_rewritten_past,
    scheduled_retention_covers_every_organization,
    anonymous_client_reports_are_capped_together_on_their_own_chain,
    audit_pages_by_bytes_whatever_the_events_hold,
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
        .as_user(token)
        .get(&format!("/api/audit/verify{query}"))
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

/// Runs `sql` as the application's role through the proxy, as a function
/// would; asserts the database refused it for lack of privilege (42501).
/// The event types recorded about `record`, in chain order.
pub(crate) async fn event_types_of(
    db: &tokio_postgres::Client,
    record: &uuid::Uuid,
) -> anyhow::Result<Vec<String>> {
    Ok(db
        .query(
            "SELECT event_type FROM audit_events WHERE record_id = $1 ORDER BY sequence",
            &[record],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

pub(crate) async fn refused_as_app(app: &TestApp, sql: &str, params: Value) -> anyhow::Result<()> {
    let reply = app
        .stack
        .app_sql(&app.http, &json!({"query": sql, "params": params}))?
        .send()
        .await?;
    let status = reply.status().as_u16();
    let body: Value = reply.json().await?;
    ensure!(status == 400, "{sql}: {status} {body}");
    ensure!(body["code"] == "42501", "{sql}: {status} {body}");
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
    ensure!(report["verified"] == true, "{report}");
    ensure!(report["verifiedToSequence"] == head, "{report}");
    ensure!(report["events"] == head, "{report}");
    ensure!(report["legacyEvents"] == 0, "{report}");
    ensure!(
        report["headHash"].as_str().is_some_and(|h| h.len() == 64),
        "{report}"
    );
    // The verified head is now a signed checkpoint, checked next time.
    ensure!(report["latestCheckpoint"]["sequence"] == head, "{report}");
    let again = verify(app, &qa, "").await?;
    ensure!(again["verified"] == true, "{again}");
    ensure!(again["checkpointsChecked"] == 1, "{again}");
    // A range.
    let part = verify(app, &qa, "?from=2&to=4").await?;
    ensure!(part["verified"] == true, "{part}");
    ensure!(part["events"] == 3, "{part}");
    ensure!(part["verifiedToSequence"] == 4, "{part}");
    // Bad ranges, and who may verify.
    app.as_user(&qa)
        .get("/api/audit/verify?from=0")
        .await?
        .expect_error(400, "VALIDATION_ERROR")?;
    app.as_user(&qa)
        .get("/api/audit/verify?from=5&to=2")
        .await?
        .expect_error(400, "VALIDATION_ERROR")?;
    let (_, scientist) = app.member(org, Role::Scientist).await?;
    app.as_user(&scientist)
        .get("/api/audit/verify")
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    // Another organization's chain is its own.
    let (other, other_qa) = chain_with_events(app).await?;
    let theirs = verify(app, &other_qa, "").await?;
    ensure!(theirs["chainId"] == other.to_string(), "{theirs}");
    ensure!(theirs["verified"] == true, "{theirs}");
    Ok(())
}

/// Walks the whole chain `limit` events per request, following the
/// resume cursors; returns each step's report.
async fn walk_in_steps(app: &TestApp, token: &str, limit: u64) -> anyhow::Result<Vec<Value>> {
    let mut steps = vec![verify(app, token, &format!("?limit={limit}")).await?];
    while let Some(cursor) = steps.last().and_then(|s| s["resume"].as_str()) {
        ensure!(steps.len() < 100, "the walk does not end");
        let next = verify(app, token, &format!("?limit={limit}&resume={cursor}")).await?;
        steps.push(next);
    }
    Ok(steps)
}

async fn a_long_chain_is_verified_whole_in_bounded_steps(app: &TestApp) -> anyhow::Result<()> {
    let (org, qa) = chain_with_events(app).await?;
    let events: i64 = app
        .db()
        .await?
        .query_one(
            "SELECT count(*) FROM audit_events WHERE chain_id = $1",
            &[&org],
        )
        .await?
        .get(0);
    ensure!(events >= 6, "{events} events");
    // Two events per request: each step but the last is partial, verified
    // so far but not yet verified.
    let steps = walk_in_steps(app, &qa, 2).await?;
    ensure!(
        steps.len() as i64 == (events + 1) / 2,
        "{} steps for {events}",
        steps.len()
    );
    for (i, step) in steps.iter().enumerate() {
        let last = i + 1 == steps.len();
        ensure!(
            step["complete"] == last && step["verified"] == last,
            "step {i}: {step}"
        );
        ensure!(step["failure"].is_null(), "step {i}: {step}");
        ensure!(step["fromSequence"] == 1, "step {i}: {step}");
        ensure!(
            step["verifiedToSequence"].as_i64() == Some(events.min(2 * (i as i64 + 1))),
            "step {i}: {step}"
        );
    }
    let done = steps.last().context("a step")?;
    ensure!(done["events"].as_i64() == Some(events), "{done}");
    // The same answer as one walk, and the completed walk left a signed
    // checkpoint of the head it reached.
    let whole = verify(app, &qa, "").await?;
    ensure!(whole["headHash"] == done["headHash"], "{whole} vs {done}");
    ensure!(
        done["latestCheckpoint"]["sequence"].as_i64() == Some(events),
        "{done}"
    );

    // A change behind where a step stopped is found by the next step.
    let first = verify(app, &qa, "?limit=3").await?;
    let cursor = first["resume"].as_str().context("a cursor")?.to_owned();
    tamper(
        app,
        org,
        "UPDATE audit_events SET action = 'Nothing happened' WHERE chain_id = $1 AND sequence = 5",
    )
    .await?;
    let next = verify(app, &qa, &format!("?limit=3&resume={cursor}")).await?;
    ensure!(
        next["verified"] == false
            && next["complete"] == true
            && next["failure"]["sequence"] == 5
            && next["failure"]["reason"] == "modified",
        "{next}"
    );

    // A cursor is the deployment's own, for this organization, whole.
    let (other, other_qa) = chain_with_events(app).await?;
    ensure!(other != org);
    let forged = {
        let (json, signature) = cursor.split_once('.').context("a dot")?;
        let flipped = if signature.starts_with('0') { "1" } else { "0" };
        format!("{json}.{flipped}{}", &signature[1..])
    };
    for (token, query, field) in [
        (&other_qa, format!("?resume={cursor}"), "resume"),
        (&qa, format!("?resume={forged}"), "resume"),
        (&qa, "?resume=not-a-cursor".to_owned(), "resume"),
        (&qa, format!("?resume={cursor}&from=2"), "resume"),
        (&qa, "?limit=0".to_owned(), "limit"),
        (&qa, "?limit=20001".to_owned(), "limit"),
    ] {
        let answer = app
            .as_user(token)
            .get(&format!("/api/audit/verify{query}"))
            .await?;
        let error = answer
            .expect_error(400, "VALIDATION_ERROR")
            .with_context(|| query.clone())?;
        let details = &error.json["error"]["details"];
        ensure!(details[0]["field"] == field, "{query}: {details}");
    }

    // An event stored past the recorded head is read by a walk in steps
    // as by one walk, even when a step ends exactly at the head.
    let head: i64 = app
        .db()
        .await?
        .query_one(
            "SELECT max(sequence) FROM audit_events WHERE chain_id = $1",
            &[&other],
        )
        .await?
        .get(0);
    tamper(
        app,
        other,
        "CREATE TEMP TABLE forged AS SELECT * FROM audit_events WHERE chain_id = $1            AND sequence = (SELECT max(sequence) FROM audit_events WHERE chain_id = $1);          UPDATE forged SET id = gen_random_uuid(), sequence = sequence + 1;          INSERT INTO audit_events SELECT * FROM forged",
    )
    .await?;
    let step = verify(app, &other_qa, &format!("?limit={head}")).await?;
    ensure!(
        step["complete"] == false,
        "a step at the head with more stored: {step}"
    );
    let cursor = step["resume"].as_str().context("a cursor")?;
    let next = verify(app, &other_qa, &format!("?limit={head}&resume={cursor}")).await?;
    ensure!(
        next["verified"] == false && next["failure"]["sequence"] == head + 1,
        "{next}"
    );
    let whole = verify(app, &other_qa, "").await?;
    ensure!(whole["failure"]["sequence"] == head + 1, "{whole}");
    Ok(())
}

async fn audit_tampering_is_found_at_the_right_position(app: &TestApp) -> anyhow::Result<()> {
    let cases: [(&str, &str, i64, &str); 8] = [
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
            // Well-formed, so it is checked in the page's batch.
            "another event's signature copied",
            "UPDATE audit_events SET signature = (SELECT signature FROM audit_events WHERE chain_id = $1 AND sequence = 2) \
             WHERE chain_id = $1 AND sequence = 4",
            4,
            "bad_signature",
        ),
        (
            "a copied signature before a changed field",
            "UPDATE audit_events SET signature = (SELECT signature FROM audit_events WHERE chain_id = $1 AND sequence = 2) \
             WHERE chain_id = $1 AND sequence = 4; \
             UPDATE audit_events SET action = 'Nothing happened' WHERE chain_id = $1 AND sequence = 5",
            4,
            "bad_signature",
        ),
        (
            "a changed field before a copied signature",
            "UPDATE audit_events SET action = 'Nothing happened' WHERE chain_id = $1 AND sequence = 3; \
             UPDATE audit_events SET signature = (SELECT signature FROM audit_events WHERE chain_id = $1 AND sequence = 2) \
             WHERE chain_id = $1 AND sequence = 4",
            3,
            "modified",
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
        refused_as_app(app, sql, params).await?;
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
    let first = app.as_user(&qa).get("/api/audit/events?limit=3").await?;
    let first = first.expect_ok(200)?.clone();
    let top = sequences(&first);
    ensure!(top.len() == 3, "{first}");
    ensure!(top.windows(2).all(|w| w[0] == w[1] + 1), "{first}");
    let item = &first["items"][0];
    ensure!(
        item["hash"].as_str().is_some_and(|h| h.len() == 64),
        "{item}"
    );
    ensure!(item["keyId"] == "e1", "{item}");
    // Each event names its user as their account has it now.
    let db = app.db().await?;
    let mut named = 0;
    for item in first["items"].as_array().into_iter().flatten() {
        let Some(user) = item["userId"].as_str() else {
            ensure!(
                item["userName"].is_null() && item["userEmail"].is_null(),
                "{item}"
            );
            continue;
        };
        let row = db
            .query_one(
                "SELECT name, email FROM users WHERE id = $1",
                &[&user.parse::<uuid::Uuid>()?],
            )
            .await?;
        ensure!(item["userName"] == row.get::<_, String>(0), "{item}");
        ensure!(item["userEmail"] == row.get::<_, String>(1), "{item}");
        named += 1;
    }
    ensure!(named > 0, "no event with a user among {first}");
    let cursor = first["nextCursor"].as_str().context("next page")?;
    let second = app
        .as_user(&qa)
        .get(&format!("/api/audit/events?limit=3&cursor={cursor}"))
        .await?;
    let second = sequences(second.expect_ok(200)?);
    ensure!(second.first() == Some(&(top[2] - 1)), "{second:?}");

    let created = app
        .as_user(&qa)
        .get("/api/audit/events?eventType=INSTRUMENT_CREATED")
        .await?;
    let created = created.expect_ok(200)?;
    ensure!(
        created["items"].as_array().map(Vec::len) == Some(4),
        "{created}"
    );
    let text = app
        .as_user(&qa)
        .get("/api/audit/events?q=INSTRUMENT%20regis&outcome=SUCCESS")
        .await?;
    ensure!(text.expect_ok(200)?["items"].as_array().map(Vec::len) == Some(4));
    // Wildcards are literal.
    let literal = app.as_user(&qa).get("/api/audit/events?q=%25").await?;
    ensure!(literal.expect_ok(200)?["items"].as_array().map(Vec::len) == Some(0));
    for bad in [
        "severity=LOUD",
        "userId=me",
        "from=yesterday",
        "cursor=xyz",
        "colour=red",
    ] {
        app.as_user(&qa)
            .get(&format!("/api/audit/events?{bad}"))
            .await?
            .expect_error(400, "VALIDATION_ERROR")
            .with_context(|| bad.to_owned())?;
    }
    let (_, scientist) = app.member(org, Role::Scientist).await?;
    app.as_user(&scientist)
        .get("/api/audit/events")
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    // Another organization's events never show.
    let (_, other_qa) = chain_with_events(app).await?;
    let theirs = app
        .as_user(&other_qa)
        .get("/api/audit/events?limit=100")
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

/// An export's events and its manifest: a JSON Lines export is streamed
/// and ends with its manifest's line; a CSV one is built whole and carries
/// it in the `Antevus-Manifest` header.
fn export_parts(
    raw: &crate::client::Raw,
) -> anyhow::Result<(Vec<u8>, shared::audit::export::Manifest)> {
    use base64::Engine as _;
    use shared::audit::export;
    if raw.header("content-type") == Some(export::Format::Csv.content_type()) {
        let header = raw.header("antevus-manifest").context("manifest header")?;
        let manifest = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header)?,
        )?;
        return Ok((raw.body.clone(), manifest));
    }
    ensure!(
        raw.header("antevus-manifest").is_none(),
        "a streamed export has its manifest at its end"
    );
    let (body, manifest) = export::split_streamed(&raw.body).map_err(anyhow::Error::msg)?;
    Ok((body.to_vec(), manifest))
}

async fn audit_export_round_trips_through_the_offline_verifier(
    app: &TestApp,
) -> anyhow::Result<()> {
    use shared::audit::export;
    let (org, qa) = chain_with_events(app).await?;
    // The published keys alone: no secret.
    let keys = shared::config::AuditKeys {
        public: shared::config::ed25519::parse_public_keys(
            "AUDIT_PUBLIC_KEYS",
            &app.stack.function_var("AUDIT_PUBLIC_KEYS"),
        )?,
        legacy: Vec::new(),
    };
    let fetch = |query: &'static str| {
        let qa = qa.clone();
        async move {
            let raw = app
                .as_user(&qa)
                .raw(
                    reqwest::Method::GET,
                    &format!("/api/audit/export{query}"),
                    None,
                )
                .await?;
            ensure!(raw.status == 200, "{query}: {}", raw.status);
            let (body, manifest) = export_parts(&raw)?;
            anyhow::Ok((raw, body, manifest))
        }
    };
    for (query, content_type) in [
        ("", "application/x-ndjson"),
        ("?format=csv", "text/csv; charset=utf-8"),
    ] {
        let (raw, body, manifest) = fetch(query).await?;
        ensure!(raw.header("content-type") == Some(content_type), "{query}");
        // JSON Lines is streamed (no length: chunked), CSV built whole.
        let streamed = content_type == "application/x-ndjson";
        ensure!(
            raw.header("content-length").is_none() == streamed,
            "{query}: content-length {:?}",
            raw.header("content-length")
        );
        let verdict = export::verify(&body, &manifest, &keys);
        ensure!(verdict.ok(), "{query}: {:?}", verdict.problems);
        ensure!(verdict.signatures_checked, "{query}");
        // The manifest names the key that signed, as published.
        ensure!(manifest.version == export::MANIFEST_VERSION, "{manifest:?}");
        ensure!(
            manifest.keys.len() == 1
                && manifest.keys[0].kid == "e1"
                && manifest.keys[0].algorithm == "Ed25519"
                && manifest.keys[0].public_key.as_deref() == Some(keys.public[0].x().as_str()),
            "{:?}",
            manifest.keys
        );
        ensure!(manifest.count >= 6, "{manifest:?}");
        ensure!(manifest.first_sequence == Some(1), "{manifest:?}");
        ensure!(manifest.chain_id == org, "{manifest:?}");
        ensure!(!manifest.truncated, "{manifest:?}");
        // One changed byte is found.
        let mut damaged = body.clone();
        let at = damaged.len() / 2;
        damaged[at] ^= 0x20;
        ensure!(
            !export::verify(&damaged, &manifest, &keys).ok(),
            "{query}: damage missed"
        );
    }
    // Filtered, and continued after a sequence.
    let (_, body, manifest) = fetch("?eventType=INSTRUMENT_CREATED").await?;
    ensure!(manifest.count == 4);
    ensure!(manifest.filters["eventType"] == "INSTRUMENT_CREATED");
    ensure!(export::verify(&body, &manifest, &keys).ok());
    let (_, _, rest) = fetch("?after=3").await?;
    ensure!(rest.first_sequence == Some(4), "{rest:?}");
    // Exports are on the record, and the chain still verifies.
    let exported: i64 = app
        .db()
        .await?
        .query_one(
            "SELECT count(*) FROM audit_events WHERE chain_id = $1 AND event_type = 'AUDIT_EXPORTED'",
            &[&org],
        )
        .await?
        .get(0);
    ensure!(exported == 4, "{exported} export events");
    ensure!(verify(app, &qa, "").await?["verified"] == true);
    // Refusals.
    for bad in ["format=pdf", "limit=5", "after=x", "severity=LOUD"] {
        app.as_user(&qa)
            .get(&format!("/api/audit/export?{bad}"))
            .await?
            .expect_error(400, "VALIDATION_ERROR")
            .with_context(|| bad.to_owned())?;
    }
    let (_, scientist) = app.member(org, Role::Scientist).await?;
    app.as_user(&scientist)
        .get("/api/audit/export")
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    Ok(())
}

async fn denials_client_events_and_sessions_are_on_the_record(app: &TestApp) -> anyhow::Result<()> {
    let (org, qa) = chain_with_events(app).await?;
    let (viewer, viewer_token) = app.member(org, Role::Viewer).await?;
    let db = app.db().await?;
    // A denied permission.
    app.as_user(&viewer_token)
        .post(
            "/api/v1/instruments",
            &json!({"name": "Not allowed", "type": "freezer"}),
        )
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    let denied = db
        .query_one(
            "SELECT outcome, severity, metadata->>'path', session_id FROM audit_events \
             WHERE chain_id = $1 AND user_id = $2 AND event_type = 'ACCESS_DENIED'",
            &[&org, &viewer.id],
        )
        .await?;
    ensure!(denied.get::<_, String>(0) == "DENIED" && denied.get::<_, String>(1) == "WARNING");
    ensure!(denied.get::<_, String>(2) == "/api/v1/instruments");
    ensure!(
        denied.get::<_, Option<String>>(3).is_some(),
        "the session is named"
    );
    // Ten denials within ten minutes raise one security alert.
    let alerts = || async {
        let rows = db
            .query(
                "SELECT data FROM events WHERE organization_id = $1 AND event_type = 'security.alert' \
                  AND data ->> 'userId' = $2",
                &[&org, &viewer.id.to_string()],
            )
            .await?;
        anyhow::Ok(
            rows.iter()
                .map(|r| r.get::<_, Value>(0))
                .collect::<Vec<_>>(),
        )
    };
    for n in 2..=11 {
        if n == 10 {
            ensure!(
                alerts().await?.is_empty(),
                "an alert before the tenth denial"
            );
        }
        app.as_user(&viewer_token)
            .get("/api/v1/webhooks")
            .await?
            .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    }
    let raised = alerts().await?;
    ensure!(
        raised.len() == 1
            && raised[0]["kind"] == "repeated_denials"
            && raised[0]["detail"]
                .as_str()
                .is_some_and(|d| d.contains("/api/v1/webhooks")),
        "{raised:?}"
    );

    // A client-reported event, anonymous: its own chain, marked, redacted.
    let anonymous = app.anonymous().post("/api/audit", &json!({"eventType": "CSP_VIOLATION", "action": "Blocked inline script", "severity": "WARNING",
                    "metadata": {"page": "/runs", "userEmail": "someone@lab.example"}}))
        .await?;
    let recorded = anonymous.expect_ok(201)?;
    ensure!(
        recorded["eventType"] == "CLIENT_CSP_VIOLATION",
        "{recorded}"
    );
    ensure!(recorded["attributed"] == false, "{recorded}");
    let id: uuid::Uuid = recorded["id"].as_str().context("id")?.parse()?;
    let row = db
        .query_one(
            "SELECT chain_id, metadata FROM audit_events WHERE id = $1",
            &[&id],
        )
        .await?;
    ensure!(row.get::<_, uuid::Uuid>(0) == shared::audit::chain::CLIENT_REPORTS_CHAIN);
    let metadata: Value = row.get(1);
    ensure!(metadata["clientReported"] == true, "{metadata}");
    ensure!(metadata["reported"]["page"] == "/runs", "{metadata}");
    ensure!(
        metadata["reported"]["userEmail"] == "[REDACTED]",
        "{metadata}"
    );
    // With a token: the caller's chain.
    let attributed = app
        .as_user(&qa)
        .post(
            "/api/audit",
            &json!({"eventType": "SESSION_IDLE_LOCK", "action": "Screen locked after 15 minutes"}),
        )
        .await?;
    ensure!(attributed.expect_ok(201)?["attributed"] == true);
    let in_org: i64 = db
        .query_one(
            "SELECT count(*) FROM audit_events WHERE chain_id = $1 AND event_type = 'CLIENT_SESSION_IDLE_LOCK'",
            &[&org],
        )
        .await?
        .get(0);
    ensure!(in_org == 1);
    // Bad input, bad credentials, oversized bodies.
    for body in [
        json!({"eventType": "lower", "action": "x"}),
        json!({"eventType": "OK_TYPE", "action": ""}),
        json!({"eventType": "OK_TYPE", "action": "x", "severity": "LOUD"}),
        json!({"eventType": "OK_TYPE", "action": "x", "extra": 1}),
        json!({"eventType": "OK_TYPE", "action": "x", "metadata": {"blob": "y".repeat(2100)}}),
    ] {
        app.anonymous()
            .post("/api/audit", &body)
            .await?
            .expect_error(400, "VALIDATION_ERROR")
            .with_context(|| body.to_string())?;
    }
    app.as_user("forged")
        .post(
            "/api/audit",
            &json!({"eventType": "OK_TYPE", "action": "x"}),
        )
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    let huge =
        json!({"eventType": "OK_TYPE", "action": "x", "metadata": {"blob": "y".repeat(5000)}});
    app.anonymous()
        .post("/api/audit", &huge)
        .await?
        .expect_error(413, "PAYLOAD_TOO_LARGE")?;
    // Everything above still verifies.
    ensure!(verify(app, &qa, "").await?["verified"] == true);
    Ok(())
}

async fn electronic_signatures_reauthenticate_bind_to_the_run_and_invalidate_on_change(
    app: &TestApp,
) -> anyhow::Result<()> {
    let (admin, manager) = app.admin().await?;
    let org = admin.organization_id;
    let (scientist, token) = app.member(org, Role::Scientist).await?;
    let (_, run) = started_run(app, &manager, &token, "plate_reader").await?;
    let run_id = id_of(&run)?;
    let path = format!("/api/v1/runs/{run_id}/signatures");
    let sign = |token: String, body: Value| {
        let path = path.clone();
        async move { app.as_user(&token).post(&path, &body).await }
    };
    let first =
        json!({"meaning": "authorship", "email": scientist.email, "password": scientist.password});
    // A run is signed once it has ended.
    sign(token.clone(), first.clone())
        .await?
        .expect_error(409, "CONFLICT")?;
    app.as_user(&token)
        .json(
            reqwest::Method::PUT,
            &format!("/api/v1/runs/{run_id}/stop"),
            &json!({"outcome": "aborted", "reason": "Plate dropped"}),
        )
        .await?
        .expect_ok(200)?;
    // The first signature of a login needs the user ID too.
    let no_id = sign(
        token.clone(),
        json!({"meaning": "authorship", "password": scientist.password}),
    )
    .await?;
    no_id.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(no_id.detail_fields() == ["email"]);
    // A wrong password is refused and audited.
    sign(
        token.clone(),
        json!({"meaning": "authorship", "email": scientist.email, "password": "wrong password"}),
    )
    .await?
    .expect_error(401, "AUTH_INVALID_CREDENTIALS")?;
    let db = app.db().await?;
    let failed: i64 = db
        .query_one(
            "SELECT count(*) FROM audit_events WHERE chain_id = $1 AND event_type = 'ESIGNATURE_FAILED' AND user_id = $2",
            &[&org, &scientist.id],
        )
        .await?
        .get(0);
    ensure!(failed == 1);
    sign(
        token.clone(),
        json!({"meaning": "notarised", "email": scientist.email, "password": scientist.password}),
    )
    .await?
    .expect_error(400, "VALIDATION_ERROR")?;

    let signed = sign(token.clone(), first).await?;
    let signed = signed.expect_ok(201)?.clone();
    ensure!(signed["status"] == "valid", "{signed}");
    ensure!(signed["meaning"] == "authorship", "{signed}");
    ensure!(signed["signedAt"].is_string(), "{signed}");
    ensure!(
        signed["runHash"].as_str().is_some_and(|h| h.len() == 64),
        "{signed}"
    );
    let name: String = db
        .query_one("SELECT name FROM users WHERE id = $1", &[&scientist.id])
        .await?
        .get(0);
    ensure!(signed["printedName"] == name.as_str(), "{signed}");
    // Later in the same login the password is enough.
    sign(token.clone(), json!({"meaning": "responsibility", "password": scientist.password, "comment": "Data checked"}))
        .await?
        .expect_ok(201)?;
    // Who may sign what.
    let (_, viewer) = app.member(org, Role::Viewer).await?;
    sign(
        viewer.clone(),
        json!({"meaning": "review", "password": "irrelevant", "email": "x@y.z"}),
    )
    .await?
    .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    let (qa_user, qa) = app.member(org, Role::QualityAssurance).await?;
    sign(
        qa.clone(),
        json!({"meaning": "authorship", "email": qa_user.email, "password": qa_user.password}),
    )
    .await?
    .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    sign(
        qa.clone(),
        json!({"meaning": "approval", "email": qa_user.email, "password": qa_user.password}),
    )
    .await?
    .expect_ok(201)?;

    let listed = app.as_user(&viewer).get(&path).await?;
    let listed = listed.expect_ok(200)?.clone();
    let statuses = |list: &Value| -> Vec<String> {
        list["items"]
            .as_array()
            .map(|i| {
                i.iter()
                    .filter_map(|s| s["status"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    ensure!(statuses(&listed) == ["valid", "valid", "valid"], "{listed}");
    let shown = app
        .as_user(&viewer)
        .get(&format!("/api/v1/runs/{run_id}"))
        .await?;
    let shown = shown.expect_ok(200)?.clone();
    ensure!(
        shown["signatures"]
            .as_array()
            .is_some_and(|s| s.len() == 3 && s.iter().all(|s| s["current"] == true)),
        "{shown}"
    );

    // The run changes (its results are recorded): every signature is invalidated.
    let csv = b"Well,Type,Value\nA1,Blank,0.05\nB1,Positive,1.8\nB2,Positive,1.7\nC1,Negative,0.1\nC2,Negative,0.12\n";
    let uploaded = app
        .as_user(&token)
        .raw(
            reqwest::Method::POST,
            &format!("/api/v1/runs/{run_id}/data?format=plate_reader_csv"),
            Some(csv.to_vec()),
        )
        .await?;
    ensure!(uploaded.status == 201, "{}", uploaded.status);
    let after = app.as_user(&viewer).get(&path).await?;
    let after = after.expect_ok(200)?.clone();
    ensure!(
        statuses(&after) == ["invalidated", "invalidated", "invalidated"],
        "{after}"
    );
    let shown = app
        .as_user(&viewer)
        .get(&format!("/api/v1/runs/{run_id}"))
        .await?;
    ensure!(
        shown.expect_ok(200)?["signatures"]
            .as_array()
            .is_some_and(|s| s.iter().all(|s| s["current"] == false))
    );

    // A signature moved to another run is found out.
    let (_, other) = started_run(app, &manager, &token, "qpcr").await?;
    let other_id = id_of(&other)?;
    let signature_id: uuid::Uuid = signed["id"].as_str().context("id")?.parse()?;
    db.batch_execute(&format!(
        "SET session_replication_role = replica; \
         UPDATE run_signatures SET run_id = '{other_id}' WHERE id = '{signature_id}'; \
         SET session_replication_role = origin;"
    ))
    .await?;
    let moved = app
        .as_user(&viewer)
        .get(&format!("/api/v1/runs/{other_id}/signatures"))
        .await?;
    let moved = moved.expect_ok(200)?.clone();
    ensure!(statuses(&moved) == ["tampered"], "{moved}");
    // Signatures are append-only.
    ensure!(
        db.execute("DELETE FROM run_signatures WHERE id = $1", &[&signature_id])
            .await
            .is_err()
    );
    let applied: i64 = db
        .query_one(
            "SELECT count(*) FROM audit_events WHERE chain_id = $1 AND event_type = 'ESIGNATURE_APPLIED'",
            &[&org],
        )
        .await?
        .get(0);
    ensure!(applied == 3);
    Ok(())
}

/// Inserts event `n` by `user` (of their organization) recorded at `at`,
/// its action `label (n)`, its metadata padded with `padding` bytes,
/// signed by `sign` (`key_id` names the key), as the code of that time
/// would have written it; the chain trigger links it.
#[allow(clippy::too_many_arguments)]
async fn insert_signed_event(
    db: &tokio_postgres::Client,
    user: &crate::client::User,
    at: time::OffsetDateTime,
    label: &str,
    n: i64,
    key_id: &str,
    sign: impl Fn(&[u8; 32]) -> Vec<u8>,
    padding: usize,
) -> anyhow::Result<()> {
    use shared::audit::chain::Content;
    let (org, user) = (user.organization_id, user.id);
    let action = format!("{label} ({n})");
    let action = action.as_str();
    let metadata = &if padding == 0 {
        json!({ "n": n })
    } else {
        json!({ "n": n, "pad": "x".repeat(padding) })
    };
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let id = uuid::Uuid::from_bytes(bytes);
    let at = at.replace_nanosecond(at.nanosecond() / 1_000 * 1_000)?;
    let content = Content {
        id,
        organization_id: Some(org),
        user_id: Some(user),
        event_type: "INSTRUMENT_UPDATED",
        severity: "INFO",
        action,
        outcome: "SUCCESS",
        record_type: None,
        record_id: None,
        old_values: None,
        new_values: None,
        reason: None,
        metadata,
        ip_address: None,
        user_agent: None,
        request_id: None,
        session_id: None,
        created_at_micros: (at.unix_timestamp_nanos() / 1_000) as i64,
    };
    let hash = content.hash();
    db.execute(
        "INSERT INTO audit_events (id, organization_id, user_id, event_type, severity, action, outcome, \
           metadata, created_at, content_hash, signature, key_id) \
         VALUES ($1, $2, $3, 'INSTRUMENT_UPDATED', 'INFO', $4, 'SUCCESS', $5::text::jsonb, $6, $7, $8, $9)",
        &[&id, &org, &user, &action, &metadata.to_string(), &at, &hash.to_vec(), &sign(&hash), &key_id],
    )
    .await?;
    Ok(())
}

/// An organization whose chain starts with three events eight years old
/// (signed as they would have been then), followed by a login and four
/// registered instruments; its id and a quality assurance user's token.
async fn chain_with_old_events(app: &TestApp) -> anyhow::Result<(uuid::Uuid, String)> {
    use shared::audit::chain;
    let admin = app.new_org_user(Role::Admin).await?;
    let org = admin.organization_id;
    let db = app.db().await?;
    let key = &app.stack.audit_key;
    for n in 0..3 {
        let at = time::OffsetDateTime::now_utc() - time::Duration::days(8 * 366 - n);
        let sign = |hash: &[u8; 32]| chain::sign(key, hash).to_vec();
        insert_signed_event(
            &db,
            &admin,
            at,
            "Instrument updated eight years ago",
            n,
            &key.kid,
            sign,
            0,
        )
        .await?;
    }
    let token = app.login(&admin).await?;
    let (_, qa) = app.member(org, Role::QualityAssurance).await?;
    for n in 0..4 {
        register(
            app,
            &token,
            json!({"name": format!("Freezer {n}"), "type": "freezer"}),
        )
        .await?;
    }
    Ok((org, qa))
}

async fn retention_removes_only_what_has_expired_and_audits_itself(
    app: &TestApp,
) -> anyhow::Result<()> {
    let (org, qa) = chain_with_old_events(app).await?;
    let (_, admin) = app.member(org, Role::Admin).await?;
    let (scientist, token) = app.member(org, Role::Scientist).await?;
    // A run with data, and an ended login, both long past their periods.
    let (_, run) = started_run(app, &admin, &token, "hplc").await?;
    let run_id = id_of(&run)?;
    let uploaded = app
        .as_user(&token)
        .raw(
            reqwest::Method::POST,
            &format!("/api/v1/runs/{run_id}/data?filename=trace.txt"),
            Some(b"old chromatogram".to_vec()),
        )
        .await?;
    ensure!(uploaded.status == 201);
    // Two runs aborted: two events published.
    let (_, other_run) = started_run(app, &admin, &token, "hplc").await?;
    for id in [run_id, id_of(&other_run)?] {
        app.as_user(&token)
            .put(
                &format!("/api/v1/runs/{id}/stop"),
                &json!({"outcome": "aborted", "reason": "retention case"}),
            )
            .await?
            .expect_ok(200)?;
    }
    let (old_user, _) = app.member(org, Role::Viewer).await?;
    tamper(
        app,
        org,
        "UPDATE run_data SET completed_at = now() - interval '6 years' WHERE organization_id = $1; \
         UPDATE sessions SET expires_at = now() - interval '40 days' WHERE organization_id = $1 AND user_id = '__OLD__'::uuid"
            .replace("__OLD__", &old_user.id.to_string())
            .as_str(),
    )
    .await?;
    // The run's published events, long past their 90 days, and one that
    // is not.
    let db = app.db().await?;
    let old_events = db
        .execute(
            "UPDATE events SET occurred_at = now() - interval '100 days' WHERE organization_id = $1",
            &[&org],
        )
        .await?;
    ensure!(old_events >= 2, "the run published {old_events} events");
    let recent = db
        .execute(
            "UPDATE events SET occurred_at = now() - interval '80 days' WHERE organization_id = $1 \
               AND id = (SELECT id FROM events WHERE organization_id = $1 LIMIT 1)",
            &[&org],
        )
        .await?;
    let before = verify(app, &qa, "").await?;
    ensure!(before["verified"] == true, "{before}");
    let head = before["verifiedToSequence"].as_i64().context("head")?;

    // Only administrators run the job.
    app.as_user(&qa)
        .post("/api/v1/retention/run", &json!({}))
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    let ran = app
        .as_user(&admin)
        .post("/api/v1/retention/run", &json!({}))
        .await?;
    let ran = ran.expect_ok(200)?.clone();
    ensure!(ran["auditEventsRemoved"] == 3, "{ran}");
    ensure!(ran["auditChainStartsAfter"] == 3, "{ran}");
    ensure!(ran["runDataPurged"] == 1, "{ran}");
    ensure!(
        ran["sessionsDeleted"].as_i64().is_some_and(|n| n >= 1),
        "{ran}"
    );
    ensure!(ran["policy"]["auditDays"] == 2555, "{ran}");
    ensure!(
        ran["eventsDeleted"].as_u64() == Some(old_events - recent)
            && ran["policy"]["eventsDays"] == 90,
        "{ran}"
    );
    let kept: i64 = db
        .query_one(
            "SELECT count(*) FROM events WHERE organization_id = $1",
            &[&org],
        )
        .await?
        .get(0);
    ensure!(kept == i64::try_from(recent)?, "{kept} events kept");
    let left: Vec<i64> = db
        .query(
            "SELECT sequence FROM audit_events WHERE chain_id = $1 ORDER BY sequence LIMIT 2",
            &[&org],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    ensure!(left == [4, 5], "{left:?}");
    // The chain still verifies, from its new start.
    let after = verify(app, &qa, "").await?;
    ensure!(after["verified"] == true, "{after}");
    ensure!(after["fromSequence"] == 4, "{after}");
    ensure!(after["verifiedToSequence"].as_i64() > Some(head), "{after}");
    app.as_user(&qa)
        .get("/api/audit/verify?from=2")
        .await?
        .expect_error(400, "VALIDATION_ERROR")?;
    // The run keeps its data record, not its bytes.
    let gone = app
        .as_user(&admin)
        .raw(
            reqwest::Method::GET,
            &format!("/api/v1/runs/{run_id}/data"),
            None,
        )
        .await?;
    gone.envelope()?.expect_error(409, "CONFLICT")?;
    let shown = app
        .as_user(&admin)
        .get(&format!("/api/v1/runs/{run_id}"))
        .await?;
    ensure!(shown.expect_ok(200)?["data"]["status"] == "purged");
    let chunks: i64 = db
        .query_one(
            "SELECT count(*) FROM run_data_chunks WHERE run_id = $1",
            &[&run_id],
        )
        .await?
        .get(0);
    ensure!(chunks == 0);
    // The job is on the record; running it again removes nothing.
    let runs: i64 = db
        .query_one(
            "SELECT count(*) FROM audit_events WHERE chain_id = $1 AND event_type = 'RETENTION_RUN' \
               AND (new_values->>'auditEventsRemoved')::int = 3",
            &[&org],
        )
        .await?
        .get(0);
    ensure!(runs == 1);
    let again = app
        .as_user(&admin)
        .post("/api/v1/retention/run", &json!({}))
        .await?;
    ensure!(again.expect_ok(200)?["auditEventsRemoved"] == 0);
    // The database keeps seven years whatever it is asked, even for the
    // application role.
    for (days, through) in [(30, 10), (2555, 10)] {
        refused_as_app(
            app,
            "SELECT audit_retention_purge($1, $2, $3)",
            json!([org.to_string(), days.to_string(), through.to_string()]),
        )
        .await
        .with_context(|| format!("{days} days"))?;
    }
    let _ = scientist;
    Ok(())
}

/// An organization whose first events were signed with HMAC (as before
/// Ed25519, inserted here as the old code wrote them), then events signed
/// now: the chain verifies through the API (the verifying function holds
/// the old key), every new event and checkpoint carries a 64-byte Ed25519
/// signature, and an export verifies with the published key plus the old
/// HMAC key, and not without the latter.
async fn audit_events_signed_with_hmac_before_ed25519_still_verify(
    app: &TestApp,
) -> anyhow::Result<()> {
    use shared::audit::export;
    let (admin, token) = app.admin().await?;
    let org = admin.organization_id;
    let (_, qa) = app.member(org, Role::QualityAssurance).await?;
    let db = app.db().await?;
    // The organization's chain so far (its login is recorded); then three
    // old events.
    let legacy = &app.stack.legacy_audit_key;
    for n in 0..3 {
        let at = time::OffsetDateTime::now_utc() - time::Duration::days(400 - n);
        let sign = |hash: &[u8; 32]| legacy.sign(hash).to_vec();
        insert_signed_event(
            &db,
            &admin,
            at,
            "Recorded before Ed25519",
            n,
            &legacy.kid,
            sign,
            0,
        )
        .await?;
    }
    for n in 0..2 {
        register(
            app,
            &token,
            json!({"name": format!("Freezer {n}"), "type": "freezer"}),
        )
        .await?;
    }
    let report = verify(app, &qa, "").await?;
    ensure!(report["verified"] == true, "{report}");
    let kinds = db
        .query(
            "SELECT key_id, length(signature), count(*) FROM audit_events WHERE chain_id = $1 \
             GROUP BY 1, 2 ORDER BY 1",
            &[&org],
        )
        .await?;
    let kinds: Vec<(String, i32, i64)> = kinds
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    ensure!(kinds.len() == 2, "{kinds:?}");
    ensure!(
        kinds[0].0 == "a1" && kinds[0].1 == 32 && kinds[0].2 == 3,
        "{kinds:?}"
    );
    ensure!(kinds[1].0 == "e1" && kinds[1].1 == 64, "{kinds:?}");
    let checkpoint: (String, i32) = {
        let row = db
            .query_one(
                "SELECT key_id, length(signature) FROM audit_checkpoints WHERE chain_id = $1 \
                 ORDER BY sequence DESC LIMIT 1",
                &[&org],
            )
            .await?;
        (row.get(0), row.get(1))
    };
    ensure!(checkpoint == ("e1".to_owned(), 64), "{checkpoint:?}");

    let raw = app
        .as_user(&qa)
        .raw(reqwest::Method::GET, "/api/audit/export", None)
        .await?;
    ensure!(raw.status == 200, "{}", raw.status);
    let (body, manifest) = export_parts(&raw)?;
    let algorithms: Vec<(&str, &str)> = manifest
        .keys
        .iter()
        .map(|k| (k.kid.as_str(), k.algorithm.as_str()))
        .collect();
    ensure!(
        algorithms == [("e1", "Ed25519"), ("a1", "HMAC-SHA256")],
        "{algorithms:?}"
    );
    let public = shared::config::ed25519::parse_public_keys(
        "AUDIT_PUBLIC_KEYS",
        &app.stack.function_var("AUDIT_PUBLIC_KEYS"),
    )?;
    let alone = shared::config::AuditKeys {
        public: public.clone(),
        legacy: Vec::new(),
    };
    let verdict = export::verify(&body, &manifest, &alone);
    ensure!(
        verdict.problems.len() == 3
            && verdict
                .problems
                .iter()
                .all(|p| p.contains("signed with key a1, which was not given")),
        "{:?}",
        verdict.problems
    );
    let with_old = shared::config::AuditKeys {
        public,
        legacy: vec![legacy.clone()],
    };
    let verdict = export::verify(&body, &manifest, &with_old);
    ensure!(
        verdict.ok() && verdict.signatures_checked,
        "{:?}",
        verdict.problems
    );
    Ok(())
}

/// A rewritten old part of the chain gets no checkpoint and keeps its
/// evidence: retention verifies what it would vouch for and remove first.
async fn retention_refuses_to_vouch_for_a_rewritten_past(app: &TestApp) -> anyhow::Result<()> {
    let (org, qa) = chain_with_old_events(app).await?;
    let (_, admin) = app.member(org, Role::Admin).await?;
    tamper(
        app,
        org,
        "UPDATE audit_events SET action = 'Nothing happened' WHERE chain_id = $1 AND sequence = 2",
    )
    .await?;
    let db = app.db().await?;
    let count = || async {
        let row = db
            .query_one(
                "SELECT (SELECT count(*) FROM audit_events WHERE chain_id = $1), \
                        (SELECT count(*) FROM audit_checkpoints WHERE chain_id = $1)",
                &[&org],
            )
            .await?;
        anyhow::Ok((row.get::<_, i64>(0), row.get::<_, i64>(1)))
    };
    let before = count().await?;
    let refused = app
        .as_user(&admin)
        .post("/api/v1/retention/run", &json!({}))
        .await?;
    refused.expect_error(409, "CONFLICT")?;
    let message = refused.json["error"]["message"].as_str().unwrap_or("");
    ensure!(message.contains("event 2"), "{message}");
    let after = count().await?;
    // Nothing removed, nothing vouched for (the refusal's own record aside,
    // which is not an audit event).
    ensure!(after == before, "before {before:?}, after {after:?}");
    let report = verify(app, &qa, "").await?;
    ensure!(failure(&report).0 == 2, "{report}");
    Ok(())
}

/// The schedule runs retention for every organization in turn, recorded as
/// no one's, and sweeps what belongs to no organization; one
/// organization's refusal stops nobody else's.
async fn scheduled_retention_covers_every_organization(app: &TestApp) -> anyhow::Result<()> {
    // It runs alone (cases::ALONE): the job claims any organization due.
    let (good, good_qa) = chain_with_old_events(app).await?;
    let (bad, _) = chain_with_old_events(app).await?;
    tamper(
        app,
        bad,
        "UPDATE audit_events SET action = 'Nothing happened' WHERE chain_id = $1 AND sequence = 2",
    )
    .await?;
    // A signup request whose link expired, and a confirmation sent long ago.
    let db = app.db().await?;
    let request: uuid::Uuid = db
        .query_one(
            "INSERT INTO signup_requests (id, email, organization_name, name, password_hash, token_hash, expires_at) \
             SELECT id, id::text || '@example.org', 'Old Lab', 'Old', 'x', decode(md5(id::text), 'hex'), now() - interval '1 day' \
             FROM (SELECT gen_random_uuid() AS id) new RETURNING id",
            &[],
        )
        .await?
        .get(0);
    let mail: uuid::Uuid = db
        .query_one(
            "INSERT INTO email_outbox (organization_id, to_address, template, subject, sent_at, created_at) \
             VALUES (NULL, 'old@example.org', 'signup_confirmation', 'Old', now() - interval '40 days', now() - interval '40 days') \
             RETURNING id",
            &[],
        )
        .await?
        .get(0);

    // Only the scheduler runs it.
    let (_, admin) = app.member(good, Role::Admin).await?;
    for token in ["", admin.as_str()] {
        let refused = app
            .as_user(token)
            .post("/api/v1/jobs/retention", &json!({}))
            .await?;
        ensure!(refused.status == 401, "{}", refused.json);
    }
    let key = app.scheduler_key()?;
    // `good` is held by a run in progress elsewhere (its lease is not over).
    db.execute(
        "UPDATE organizations SET retention_lease_until = now() + interval '1 hour' WHERE id = $1",
        &[&good],
    )
    .await?;
    let due: i64 = db
        .query_one(
            "SELECT count(*) FROM organizations WHERE retention_lease_until IS NULL                AND (retention_ran_at IS NULL OR retention_ran_at < now() - interval '20 hours')",
            &[],
        )
        .await?
        .get(0);
    let ran_at = |org: uuid::Uuid| {
        let db = &db;
        async move {
            anyhow::Ok(
                db.query_one(
                    "SELECT retention_ran_at IS NOT NULL FROM organizations WHERE id = $1",
                    &[&org],
                )
                .await?
                .get::<_, bool>(0),
            )
        }
    };
    let mut failed = 0;
    let mut swept = Vec::new();
    let tick = || async {
        let tick = app
            .as_user(&key)
            .post("/api/v1/jobs/retention", &json!({}))
            .await?;
        anyhow::Ok(tick.expect_ok(200)?.clone())
    };
    for _ in 0..40 {
        let data = tick().await?;
        failed += data["failed"].as_i64().context("failed")?;
        swept.push(data);
        if ran_at(bad).await? {
            break;
        }
    }
    ensure!(ran_at(bad).await?, "{swept:?}");
    // One tick goes on past one batch while organizations are due.
    let first = &swept[0];
    let handled =
        first["organizations"].as_i64().unwrap_or(0) + first["failed"].as_i64().unwrap_or(0);
    ensure!(
        handled >= due.min(job_retention_batch() + 1) && first["batches"].as_i64() >= Some(1),
        "{due} due, the first tick: {first}"
    );
    // The leased one was left to its run; once that run is given up on
    // (its lease over, it never finished) a tick takes it.
    ensure!(!ran_at(good).await?, "a leased organization was taken");
    db.execute(
        "UPDATE organizations SET retention_lease_until = now() - interval '1 second' WHERE id = $1",
        &[&good],
    )
    .await?;
    let data = tick().await?;
    failed += data["failed"].as_i64().context("failed")?;
    swept.push(data);
    ensure!(ran_at(good).await?, "{swept:?}");
    let leased: i64 = db
        .query_one(
            "SELECT count(*) FROM organizations WHERE id = ANY($1) AND retention_lease_until IS NOT NULL",
            &[&vec![good, bad]],
        )
        .await?
        .get(0);
    ensure!(leased == 0, "finished runs release their lease");
    ensure!(failed >= 1, "the rewritten chain's organization: {swept:?}");
    // The good organization's expired events left, on its record as the
    // schedule's; its chain verifies from its new start.
    let record = db
        .query(
            "SELECT user_id IS NULL, (new_values->>'auditEventsRemoved')::int FROM audit_events \
             WHERE chain_id = $1 AND event_type = 'RETENTION_RUN'",
            &[&good],
        )
        .await?;
    ensure!(record.len() == 1, "{} records", record.len());
    ensure!(record[0].get::<_, bool>(0) && record[0].get::<_, i32>(1) == 3);
    let after = verify(app, &good_qa, "").await?;
    ensure!(
        after["verified"] == true && after["fromSequence"] == 4,
        "{after}"
    );
    // The rewritten one kept everything and got no record.
    let kept = db
        .query_one(
            "SELECT count(*) FILTER (WHERE sequence <= 3), count(*) FILTER (WHERE event_type = 'RETENTION_RUN') \
             FROM audit_events WHERE chain_id = $1",
            &[&bad],
        )
        .await?;
    ensure!(kept.get::<_, i64>(0) == 3 && kept.get::<_, i64>(1) == 0);
    // What belonged to no organization went.
    let left = db
        .query_one(
            "SELECT (SELECT count(*) FROM signup_requests WHERE id = $1), \
                    (SELECT count(*) FROM email_outbox WHERE id = $2)",
            &[&request, &mail],
        )
        .await?;
    ensure!(left.get::<_, i64>(0) == 0 && left.get::<_, i64>(1) == 0);
    ensure!(
        swept
            .iter()
            .any(|s| s["signupRequestsDeleted"].as_i64() >= Some(1)),
        "{swept:?}"
    );
    // Run within the period: the next tick leaves it alone.
    app.as_user(&key)
        .post("/api/v1/jobs/retention", &json!({}))
        .await?
        .expect_ok(200)?;
    let runs: i64 = db
        .query_one(
            "SELECT count(*) FROM audit_events WHERE chain_id = $1 AND event_type = 'RETENTION_RUN'",
            &[&good],
        )
        .await?
        .get(0);
    ensure!(runs == 1, "{runs} runs");
    Ok(())
}

/// Organizations the retention job claims at a time.
fn job_retention_batch() -> i64 {
    shared::routes::job_retention::BATCH
}

/// Reports nobody signed for are capped all together (a per-address limit
/// alone lets many addresses fill the trail) and kept off the system
/// chain, whose head every failed login locks.
async fn anonymous_client_reports_are_capped_together_on_their_own_chain(
    app: &TestApp,
) -> anyhow::Result<()> {
    let host = app
        .host_with(&[("RATE_LIMIT_CLIENT_REPORTS", "3/86400/0")])
        .await?;
    let base = host.base_url.clone();
    let result = async {
        let (_, signed_in) = app.admin().await?;
        let report = |token: Option<&str>| {
            let mut request = app.http.post(format!("{base}/api/audit")).json(
                &json!({"eventType": "CSP_VIOLATION", "action": "Blocked inline script"}),
            );
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            request.send()
        };
        let mut ids = Vec::new();
        for _ in 0..3 {
            let made = report(None).await?;
            ensure!(made.status().as_u16() == 201, "{}", made.status());
            let body: Value = made.json().await?;
            ids.push(body["data"]["id"].as_str().context("id")?.parse::<uuid::Uuid>()?);
        }
        let capped = report(None).await?;
        ensure!(capped.status().as_u16() == 429, "{}", capped.status());
        let body: Value = capped.json().await?;
        ensure!(body["error"]["code"] == "RATE_LIMIT_EXCEEDED", "{body}");
        // A signed-in reporter is attributed, on their organization's
        // chain, and not held by the cap.
        let signed = report(Some(&signed_in)).await?;
        ensure!(signed.status().as_u16() == 201, "{}", signed.status());
        let db = app.db().await?;
        let chains: Vec<uuid::Uuid> = db
            .query("SELECT DISTINCT chain_id FROM audit_events WHERE id = ANY($1)", &[&ids])
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        ensure!(chains == [shared::audit::chain::CLIENT_REPORTS_CHAIN], "{chains:?}");
        // A failed login stays on the system chain.
        let failed = app
            .http
            .post(format!("{base}/api/auth/login"))
            .json(&json!({"email": crate::accounts::unique_email("nobody"), "password": "not a password at all"}))
            .send()
            .await?;
        ensure!(failed.status().as_u16() == 401);
        let id = failed
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .context("x-request-id")?
            .to_owned();
        let chain: uuid::Uuid = db
            .query_one("SELECT chain_id FROM audit_events WHERE request_id = $1", &[&id])
            .await?
            .get(0);
        ensure!(chain == shared::audit::chain::SYSTEM_CHAIN);
        anyhow::Ok(())
    }
    .await;
    tokio::task::spawn_blocking(move || host.stop()).await?;
    result
}

/// A chain whose events hold a lot (here 12 MiB in 24 events) verifies and
/// exports: pages are cut by bytes, not only by count, so none passes the
/// SQL proxy's 10 MiB reply cap.
async fn audit_pages_by_bytes_whatever_the_events_hold(app: &TestApp) -> anyhow::Result<()> {
    use shared::audit::chain;
    let admin = app.new_org_user(Role::Admin).await?;
    let org = admin.organization_id;
    let db = app.db().await?;
    let key = &app.stack.audit_key;
    let start = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    for n in 0..24 {
        let sign = |hash: &[u8; 32]| chain::sign(key, hash).to_vec();
        insert_signed_event(
            &db,
            &admin,
            start + time::Duration::seconds(n),
            "Bulk configuration recorded",
            n,
            &key.kid,
            sign,
            512 * 1024,
        )
        .await?;
    }
    let (_, qa) = app.member(org, Role::QualityAssurance).await?;
    let report = verify(app, &qa, "").await?;
    ensure!(report["verified"] == true, "{report}");
    ensure!(report["events"].as_u64() >= Some(24), "{report}");
    let export = app
        .as_user(&qa)
        .raw(reqwest::Method::GET, "/api/audit/export", None)
        .await?;
    ensure!(export.status == 200, "export {}", export.status);
    let (body, manifest) = export_parts(&export)?;
    let manifest = serde_json::to_value(manifest)?;
    ensure!(manifest["truncated"] == false, "{manifest}");
    let lines = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    ensure!(
        manifest["count"].as_u64() == Some(lines as u64),
        "{manifest}"
    );
    ensure!(lines >= 24 && body.len() > 12 * 1024 * 1024);
    Ok(())
}
