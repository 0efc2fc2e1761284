//! The audit benchmark: what recording an event adds to a change, how fast
//! one organization's chain takes events, and how fast a chain of 1,000,000
//! signed events verifies through `GET /api/audit/verify`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use blackbox::{Stack, TestApp};
use futures::future::join_all;
use serde_json::json;
use shared::Ctx;
use shared::audit::{self, chain};
use shared::auth::{Principal, Role};
use shared::db::statement;
use shared::params;
use shared::request::Rq;

use super::{ms, stats};

const CHANGES: usize = 1_000;
const CHAIN: i64 = 1_000_000;
const BATCH: i64 = 2_000;
const WRITERS: usize = 16;
const SECONDS: u64 = 10;

fn config(stack: &Stack) -> anyhow::Result<shared::Config> {
    let map: HashMap<String, String> = stack.function_env.iter().cloned().collect();
    let config = shared::Config::from_lookup(|k| map.get(k).cloned());
    config.check()?;
    Ok(config)
}

fn request() -> http::Request<bytes::Bytes> {
    http::Request::new(bytes::Bytes::new())
}

/// One change, with or without its audit event, through the real client and
/// the proxy, in the organization's scope.
async fn change(
    ctx: &Ctx<host_native::NativePlatform>,
    principal: &Principal,
    instrument: uuid::Uuid,
    n: usize,
    audited: bool,
) -> anyhow::Result<Duration> {
    let location = format!("Bay {n}");
    let update = statement(
        "UPDATE instruments SET location = $3, updated_at = now() WHERE id = $1 AND organization_id = $2 RETURNING id",
        params![instrument, principal.organization_id, location],
    );
    let started = Instant::now();
    let statement = if audited {
        let rq = Rq::new(ctx, request(), true)
            .map_err(|_| anyhow::anyhow!("the benchmark's configuration has no audit key"))?;
        let event = audit::Event {
            old_values: Some(json!({ "location": format!("Bay {}", n.wrapping_sub(1)) })),
            new_values: Some(json!({ "location": location })),
            ..audit::Event::by(
                ctx.new_uuid(),
                principal,
                audit::EventType::InstrumentUpdated,
                instrument,
            )
        };
        event.record_change(&rq, update)?
    } else {
        update
    };
    // As the product runs it: one transaction that sets the organization
    // (row-level security) and makes the change.
    let rows = principal.scope().execute(&ctx.db(), statement).await?;
    anyhow::ensure!(rows.rows.len() == 1, "the change did not happen");
    Ok(started.elapsed())
}

pub async fn run(stack: &Stack, app: &TestApp) -> anyhow::Result<()> {
    // The stack's proxy speaks HTTPS with the suite's own CA.
    let platform = host_native::NativePlatform::trusting(&std::fs::read(
        blackbox::stack::tls_dir()?.join("ca.pem"),
    )?)?;
    let ctx = Ctx::new(platform, config(stack)?);
    let admin = app.new_org_user(Role::Admin).await?;
    let token = app.login(&admin).await?;
    let principal = Principal {
        user_id: admin.id,
        organization_id: admin.organization_id,
        role: Role::Admin,
        session_id: None,
        api_key_id: None,
        scopes: None,
        expires_at: None,
        token_kid: None,
    };
    let db = app.db().await?;
    let instruments: Vec<uuid::Uuid> = db
        .query(
            "INSERT INTO instruments (organization_id, name, type, status) \
             SELECT $1, 'Audit bench ' || g, 'freezer', 'online' FROM generate_series(1, $2::int8) g RETURNING id",
            &[&admin.organization_id, &(WRITERS as i64)],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();

    // 1. One change, alone and with its event, sequentially.
    for n in 0..100 {
        change(&ctx, &principal, instruments[0], n, n % 2 == 0).await?;
    }
    let mut plain = Vec::new();
    let mut audited = Vec::new();
    for n in 0..CHANGES {
        plain.push(change(&ctx, &principal, instruments[0], n, false).await?);
        audited.push(change(&ctx, &principal, instruments[0], n, true).await?);
    }
    let (plain, audited) = (
        stats(plain, 0, Duration::ZERO),
        stats(audited, 0, Duration::ZERO),
    );
    println!(
        "\n| one change through the proxy ({CHANGES} each, interleaved) | p50 ms | p99 ms |\n|---|---:|---:|"
    );
    println!("| UPDATE alone | {} | {} |", ms(plain.p50), ms(plain.p99));
    println!(
        "| UPDATE + its signed, chained audit event (one statement) | {} | {} |",
        ms(audited.p50),
        ms(audited.p99)
    );
    println!(
        "| audit overhead (p50) | {} | |",
        ms(audited.p50.saturating_sub(plain.p50))
    );

    // 2. Writers in one organization share its chain's head.
    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let writers = instruments.iter().enumerate().map(|(w, id)| {
        let ctx = &ctx;
        let principal = &principal;
        async move {
            let mut latencies = Vec::new();
            let mut n = w * 1_000_000;
            while Instant::now() < deadline {
                latencies.push(change(ctx, principal, *id, n, true).await?);
                n += 1;
            }
            anyhow::Ok(latencies)
        }
    });
    let started = Instant::now();
    let mut all = Vec::new();
    for result in join_all(writers).await {
        all.extend(result?);
    }
    let elapsed = started.elapsed();
    let s = stats(all, 0, elapsed);
    println!(
        "\n| {WRITERS} concurrent audited changes in one organization, {SECONDS} s | events/s | p50 ms | p99 ms |\n|---|---:|---:|---:|"
    );
    println!(
        "| through the proxy | {:.0} | {} | {} |",
        s.count as f64 / elapsed.as_secs_f64(),
        ms(s.p50),
        ms(s.p99)
    );

    // 3. Chains of a million signed events, then their verification: one
    // signed with Ed25519 as events are now, one with HMAC as before
    // (the route verifies both), in the same run.
    let mut rows = Vec::new();
    for signer in [
        Signer::Ed25519(ctx.config.audit_signing_key()?.clone()),
        Signer::Hmac(stack.legacy_audit_key.clone()),
    ] {
        rows.push((signer.name(), chain_of(app, &db, &signer).await?));
    }
    println!(
        "\n| a chain of {CHAIN} signed events | seeded s | events/s | verified s | events/s | requests | workerd CPU ms per request, p50 | max |\n|---|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (name, w) in rows {
        println!(
            "| {name}: chained by the insert trigger (batches of {BATCH}), then GET /api/audit/verify on workerd, resumed until complete (content hash, link and signature of each) | {:.1} | {:.0} | {:.1} | {:.0} | {} | {:.0} | {:.0} |",
            w.seeded.as_secs_f64(),
            CHAIN as f64 / w.seeded.as_secs_f64(),
            w.verified_in.as_secs_f64(),
            w.events as f64 / w.verified_in.as_secs_f64(),
            w.steps,
            w.cpu_ms_p50,
            w.cpu_ms_max,
        );
    }
    let _ = token;
    Ok(())
}

/// How the events of a benchmark chain are signed.
enum Signer {
    Ed25519(shared::config::SigningKey),
    Hmac(shared::config::HmacKey),
}

impl Signer {
    fn name(&self) -> &'static str {
        match self {
            Signer::Ed25519(_) => "Ed25519",
            Signer::Hmac(_) => "HMAC-SHA256 (before issue 16)",
        }
    }

    fn kid(&self) -> &str {
        match self {
            Signer::Ed25519(key) => &key.kid,
            Signer::Hmac(key) => &key.kid,
        }
    }

    fn sign(&self, hash: &[u8]) -> Vec<u8> {
        match self {
            Signer::Ed25519(key) => chain::sign(key, hash).to_vec(),
            Signer::Hmac(key) => key.sign(hash).to_vec(),
        }
    }
}

/// A new organization's chain of [`CHAIN`] events signed by `signer`,
/// written directly; then its verification through the API. The events
/// verified, how long seeding and verifying took.
async fn chain_of(
    app: &TestApp,
    db: &tokio_postgres::Client,
    signer: &Signer,
) -> anyhow::Result<Walked> {
    let verifier = app.new_org_user(Role::Admin).await?;
    let verifier_token = app.login(&verifier).await?;
    let org = verifier.organization_id;
    let base = time::OffsetDateTime::now_utc() - time::Duration::days(30);
    let seeding = Instant::now();
    let metadata = json!({});
    let mut written = 0;
    while written < CHAIN {
        let n = BATCH.min(CHAIN - written);
        let mut ids = Vec::with_capacity(n as usize);
        let mut actions = Vec::with_capacity(n as usize);
        let mut request_ids = Vec::with_capacity(n as usize);
        let mut times = Vec::with_capacity(n as usize);
        let mut hashes = Vec::with_capacity(n as usize);
        let mut signatures = Vec::with_capacity(n as usize);
        for i in written..written + n {
            // Unique across the two chains: the organization's id, then i.
            let id = uuid::Uuid::from_u128(org.as_u128() ^ i as u128);
            let at = base + time::Duration::milliseconds(i);
            let action = format!("Bench event {i}");
            let request_id = format!("bench-{i}");
            let content = chain::Content {
                id,
                organization_id: Some(org),
                user_id: Some(verifier.id),
                event_type: "BENCH_EVENT",
                severity: "INFO",
                action: &action,
                outcome: "SUCCESS",
                record_type: None,
                record_id: None,
                old_values: None,
                new_values: None,
                reason: None,
                metadata: &metadata,
                ip_address: None,
                user_agent: None,
                request_id: Some(&request_id),
                session_id: None,
                created_at_micros: (at.unix_timestamp_nanos() / 1_000) as i64,
            };
            let hash = content.hash();
            signatures.push(signer.sign(&hash));
            hashes.push(hash.to_vec());
            ids.push(id);
            actions.push(action);
            request_ids.push(request_id);
            times.push(at);
        }
        db.execute(
            "INSERT INTO audit_events (id, organization_id, user_id, event_type, severity, action, outcome, metadata, \
               request_id, created_at, content_hash, signature, key_id) \
             SELECT id, $2, $3, 'BENCH_EVENT', 'INFO', action, 'SUCCESS', '{}'::jsonb, request_id, created_at, \
                    content_hash, signature, $4 \
             FROM unnest($1::uuid[], $5::text[], $6::text[], $7::timestamptz[], $8::bytea[], $9::bytea[]) \
                  AS t(id, action, request_id, created_at, content_hash, signature)",
            &[&ids, &org, &verifier.id, &signer.kid(), &actions, &request_ids, &times, &hashes, &signatures],
        )
        .await?;
        written += n;
    }
    let seeded = seeding.elapsed();
    db.batch_execute("ANALYZE audit_events").await?;
    // The whole chain, one bounded step (20,000 events) per request,
    // following the resume cursors; workerd's CPU time per step from /proc.
    let started = Instant::now();
    let mut query = String::new();
    let mut steps = Vec::new();
    let data = loop {
        let cpu_before = super::cpu::cpu_of("workerd")?;
        let report = app
            .as_user(&verifier_token)
            .get(&format!("/api/audit/verify{query}"))
            .await?;
        let cpu = super::cpu::cpu_of("workerd")? - cpu_before;
        let data = report.expect_ok(200)?.clone();
        steps.push(cpu);
        match data["resume"].as_str() {
            Some(cursor) => query = format!("?resume={cursor}"),
            None => break data,
        }
    };
    let verified_in = started.elapsed();
    anyhow::ensure!(data["verified"] == true, "the chain did not verify: {data}");
    let events = data["events"].as_u64().unwrap_or(0);
    anyhow::ensure!(events as i64 > CHAIN, "{data}");
    let mut sorted = steps.clone();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize] * 1_000.0;
    Ok(Walked {
        events,
        seeded,
        verified_in,
        steps: steps.len(),
        cpu_ms_p50: at(0.5),
        cpu_ms_max: at(1.0),
    })
}

/// What seeding and walking one chain took.
struct Walked {
    events: u64,
    seeded: Duration,
    verified_in: Duration,
    /// Requests the walk took (each at most 20,000 events).
    steps: usize,
    /// workerd's CPU time per request.
    cpu_ms_p50: f64,
    cpu_ms_max: f64,
}
