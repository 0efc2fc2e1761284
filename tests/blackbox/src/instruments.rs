//! The instrument registry: create, list, filter, page, validation, uniqueness, permission and isolation between organizations.

use anyhow::{Context as _, ensure};
use serde_json::{Value, json};
use shared::auth::Role;

use crate::client::TestApp;

crate::cases![
    admin_creates_and_lists_instruments,
    list_filters_and_paginates,
    list_rejects_bad_query,
    create_validates_input_and_changes_nothing,
    duplicate_serial_number_is_409,
    creating_needs_instruments_manage,
    organizations_are_isolated,
];

pub(crate) fn instrument(name: &str, kind: &str, status: &str, location: &str) -> Value {
    json!({ "name": name, "type": kind, "status": status, "location": location })
}

async fn admin_creates_and_lists_instruments(app: &TestApp) -> anyhow::Result<()> {
    let (admin, token) = app.admin().await?;
    let body = json!({
        "name": "  Illumina NovaSeq 6000 ",
        "type": "dna_sequencer",
        "status": "online",
        "location": "Lab A, Bay 3",
        "model": "NovaSeq 6000",
        "serialNumber": "NS-0001",
        "firmware": "1.7.5",
        "configuration": { "flowCell": "S4", "readLength": 150 },
        "calibration": { "lastCalibratedAt": "2026-11-01T00:00:00Z" }
    });
    let resp = app
        .as_user(&token)
        .post("/api/v1/instruments", &body)
        .await?;
    let created = resp.expect_ok(201)?.clone();
    ensure!(
        created["name"] == "Illumina NovaSeq 6000",
        "names are trimmed: {created}"
    );
    ensure!(created["type"] == "dna_sequencer", "{created}");
    ensure!(created["serialNumber"] == "NS-0001", "{created}");
    ensure!(created["configuration"]["readLength"] == 150, "{created}");
    ensure!(created["version"] == 1, "{created}");
    ensure!(created["createdBy"] == admin.id.to_string(), "{created}");
    let id = crate::lab::id_of(&created)?;
    let list = app.as_user(&token).get("/api/v1/instruments").await?;
    let data = list.expect_ok(200)?;
    ensure!(data["items"].as_array().map(Vec::len) == Some(1), "{data}");
    ensure!(data["items"][0] == created, "{data}");
    ensure!(data["nextCursor"].is_null());
    let db = app.db().await?;
    let row = db
        .query_one(
            "SELECT organization_id, (SELECT count(*) FROM audit_events a WHERE a.record_id = i.id \
             AND a.event_type = 'INSTRUMENT_CREATED' AND a.request_id = $2 AND a.new_values->>'serialNumber' = 'NS-0001') \
             FROM instruments i WHERE id = $1",
            &[&id, &resp.json["metadata"]["requestId"].as_str().unwrap_or_default()],
        )
        .await?;
    ensure!(row.get::<_, uuid::Uuid>(0) == admin.organization_id);
    ensure!(
        row.get::<_, i64>(1) == 1,
        "the creation is audited in the same transaction"
    );
    Ok(())
}

async fn list_filters_and_paginates(app: &TestApp) -> anyhow::Result<()> {
    let (_, token) = app.admin().await?;
    let specs = [
        ("Freezer 1", "freezer", "online", "Cold room"),
        ("Freezer 2", "freezer", "offline", "Cold room"),
        ("HPLC 1", "hplc", "online", "Lab B"),
        ("qPCR 1", "qpcr", "running", "Lab B"),
        ("Reader 1", "plate_reader", "idle", "Lab C"),
    ];
    for (name, kind, status, location) in specs {
        app.as_user(&token)
            .post(
                "/api/v1/instruments",
                &instrument(name, kind, status, location),
            )
            .await?
            .expect_ok(201)?;
    }
    let names = |resp: &crate::client::Resp| -> Vec<String> {
        resp.json["data"]["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let freezers = app
        .as_user(&token)
        .get("/api/v1/instruments?type=freezer")
        .await?;
    freezers.expect_ok(200)?;
    ensure!(
        names(&freezers) == ["Freezer 2", "Freezer 1"],
        "newest first: {:?}",
        names(&freezers)
    );
    let online = app
        .as_user(&token)
        .get("/api/v1/instruments?status=online")
        .await?;
    ensure!(
        names(&online) == ["HPLC 1", "Freezer 1"],
        "{:?}",
        names(&online)
    );
    let lab_b = app
        .as_user(&token)
        .get("/api/v1/instruments?location=Lab%20B&status=running")
        .await?;
    ensure!(names(&lab_b) == ["qPCR 1"], "{:?}", names(&lab_b));
    let mut seen = Vec::new();
    let mut path = "/api/v1/instruments?limit=2".to_owned();
    loop {
        let page = app.as_user(&token).get(&path).await?;
        page.expect_ok(200)?;
        let items = names(&page);
        ensure!(items.len() <= 2);
        seen.extend(items);
        match page.json["data"]["nextCursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/instruments?limit=2&cursor={cursor}"),
            None => break,
        }
        ensure!(seen.len() <= 5, "pagination must end");
    }
    ensure!(
        seen == ["Reader 1", "qPCR 1", "HPLC 1", "Freezer 2", "Freezer 1"],
        "{seen:?}"
    );
    Ok(())
}

async fn list_rejects_bad_query(app: &TestApp) -> anyhow::Result<()> {
    let (_, token) = app.admin().await?;
    for (query, field) in [
        ("status=broken", "status"),
        ("type=toaster", "type"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("cursor=%%%", "cursor"),
        ("cursor=bm90LWEtY3Vyc29y", "cursor"),
        ("colour=red", "colour"),
    ] {
        let resp = app
            .as_user(&token)
            .get(&format!("/api/v1/instruments?{query}"))
            .await?;
        resp.expect_error(400, "VALIDATION_ERROR")
            .with_context(|| query.to_owned())?;
        ensure!(
            resp.detail_fields().contains(&field.to_owned()),
            "{query}: {}",
            resp.json
        );
    }
    Ok(())
}

async fn create_validates_input_and_changes_nothing(app: &TestApp) -> anyhow::Result<()> {
    let (admin, token) = app.admin().await?;
    let cases = [
        (json!({ "type": "hplc" }), vec!["name"]),
        (json!({ "name": "  ", "type": "hplc" }), vec!["name"]),
        (
            json!({ "name": "X", "type": "toaster", "status": "melting" }),
            vec!["type", "status"],
        ),
        (
            json!({ "name": "X", "type": "hplc", "configuration": [1, 2] }),
            vec!["configuration"],
        ),
        (
            json!({ "name": "X", "type": "hplc", "calibration": "yesterday" }),
            vec!["calibration"],
        ),
        (
            json!({ "name": "X".repeat(256), "type": "hplc" }),
            vec!["name"],
        ),
        (
            json!({ "name": "X", "type": "hplc", "owner": "me" }),
            vec!["owner"],
        ),
        (json!({ "name": 7, "type": "hplc" }), vec!["name"]),
        (json!({ "name": "X\u{7}", "type": "hplc" }), vec!["name"]),
        (json!([]), vec!["body"]),
    ];
    for (body, fields) in cases {
        let resp = app
            .as_user(&token)
            .post("/api/v1/instruments", &body)
            .await?;
        resp.expect_error(400, "VALIDATION_ERROR")
            .with_context(|| body.to_string())?;
        let got = resp.detail_fields();
        ensure!(got == fields, "{body}: expected {fields:?}, got {got:?}");
    }
    let db = app.db().await?;
    let count: i64 = db
        .query_one(
            "SELECT count(*) FROM instruments WHERE organization_id = $1",
            &[&admin.organization_id],
        )
        .await?
        .get(0);
    ensure!(count == 0, "invalid input must create nothing");
    Ok(())
}

async fn duplicate_serial_number_is_409(app: &TestApp) -> anyhow::Result<()> {
    let (admin, token) = app.admin().await?;
    let mut body = instrument("Centrifuge", "centrifuge", "idle", "Lab D");
    body["serialNumber"] = json!("CF-77");
    app.as_user(&token)
        .post("/api/v1/instruments", &body)
        .await?
        .expect_ok(201)?;
    let resp = app
        .as_user(&token)
        .post("/api/v1/instruments", &body)
        .await?;
    resp.expect_error(409, "CONFLICT")?;
    ensure!(resp.detail_fields() == ["serialNumber"], "{}", resp.json);
    // The same serial number in another organization is fine.
    let (_, other) = app.admin().await?;
    app.as_user(&other)
        .post("/api/v1/instruments", &body)
        .await?
        .expect_ok(201)?;
    let db = app.db().await?;
    let audits: i64 = db
        .query_one(
            "SELECT count(*) FROM audit_events WHERE organization_id = $1 AND event_type = 'INSTRUMENT_CREATED'",
            &[&admin.organization_id],
        )
        .await?
        .get(0);
    ensure!(
        audits == 1,
        "the refused insert rolled its audit event back too, got {audits}"
    );
    Ok(())
}

async fn creating_needs_instruments_manage(app: &TestApp) -> anyhow::Result<()> {
    let (admin, _) = app.admin().await?;
    for role in Role::ALL {
        let user = app.new_user(admin.organization_id, role).await?;
        let token = app.login(&user).await?;
        let resp = app
            .as_user(&token)
            .post(
                "/api/v1/instruments",
                &instrument(&format!("{role:?}"), "incubator", "idle", "L"),
            )
            .await?;
        let allowed = role.can(shared::auth::Permission::InstrumentsManage);
        if allowed {
            resp.expect_ok(201).with_context(|| format!("{role:?}"))?;
        } else {
            resp.expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")
                .with_context(|| format!("{role:?}"))?;
        }
        app.as_user(&token)
            .get("/api/v1/instruments")
            .await?
            .expect_ok(200)?;
    }
    Ok(())
}

async fn organizations_are_isolated(app: &TestApp) -> anyhow::Result<()> {
    let (_, token_a) = app.admin().await?;
    let (_, token_b) = app.admin().await?;
    app.as_user(&token_a)
        .post(
            "/api/v1/instruments",
            &instrument("Only A", "microscope", "idle", "A"),
        )
        .await?
        .expect_ok(201)?;
    let b = app.as_user(&token_b).get("/api/v1/instruments").await?;
    let items = b.expect_ok(200)?["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    ensure!(
        items.is_empty(),
        "organization B sees A's instruments: {items:?}"
    );
    let a = app.as_user(&token_a).get("/api/v1/instruments").await?;
    ensure!(a.expect_ok(200)?["items"].as_array().map(Vec::len) == Some(1));
    Ok(())
}
