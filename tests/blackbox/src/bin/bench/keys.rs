//! What issue 16 costs (`ANTEVUS_BENCH_ONLY=keys cargo xtask bench`):
//!
//! 1. row-level security on `GET /api/v1/instruments?limit=25` on workerd,
//!    p50/p99 of sequential requests in blocks with the policies on and off
//!    (`ALTER TABLE ... DISABLE ROW LEVEL SECURITY` on every table that has
//!    them, as the superuser, between blocks; the organization setting is
//!    sent either way); and the list's query alone through the proxy, as
//!    the application's role: one statement with the policies off (how
//!    reads ran before issue 16), the setting and the statement as one
//!    transaction with them off, and with them on (now);
//! 2. the access token's Ed25519 verification per request on workerd and
//!    wasmtime: CPU per request (from `/proc/<pid>/stat`) of a token refused
//!    before its signature is checked (an unknown key id) and of one refused
//!    after (the right key id, a wrong signature), both without a database
//!    round trip; the difference is the verification;
//! 3. one signature operation natively and in wasm (`crypto-bench`, under
//!    `wasmtime run`): HS256 and HMAC as before, EdDSA and Ed25519 now.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use blackbox::{HostKind, Stack, TestApp};
use shared::auth::Role;

use super::cpu::{CLIENTS, cpu_of, hammer};
use super::{ms, stats};

/// Sequential requests per block of the row-level security comparison.
const BLOCK: usize = 1_000;
const INSTRUMENTS: usize = 200;
/// Requests per CPU measurement (after a warm-up of a tenth as many).
const REQUESTS: usize = 3_000;

/// Milliseconds of `comm`'s CPU per request of `path` with `token`.
async fn cpu_per_request(
    app: &Arc<TestApp>,
    comm: &str,
    token: &Arc<String>,
    path: &'static str,
    status: u16,
) -> anyhow::Result<f64> {
    hammer(app, token, path, status, REQUESTS / 10).await?;
    let before = cpu_of(comm)?;
    hammer(app, token, path, status, REQUESTS).await?;
    Ok((cpu_of(comm)? - before) / REQUESTS as f64 * 1000.0)
}

/// A token like `valid` but for `kid` and with its signature's first byte
/// flipped (still 64 bytes of base64url).
fn spoiled(valid: &str, kid: &str) -> anyhow::Result<String> {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = valid.split('.').collect();
    anyhow::ensure!(parts.len() == 3, "not a JWT");
    let mut header: serde_json::Value = serde_json::from_slice(&engine.decode(parts[0])?)?;
    header["kid"] = kid.into();
    let mut signature = engine.decode(parts[2])?;
    signature[0] ^= 1;
    Ok(format!(
        "{}.{}.{}",
        engine.encode(header.to_string()),
        parts[1],
        engine.encode(signature)
    ))
}

/// The verification rows of one host: CPU per request refused before and
/// after the signature check, and of a whole authenticated request.
async fn verification_on(app: &Arc<TestApp>, host: &str, comm: &str) -> anyhow::Result<()> {
    let admin = app.new_org_user(Role::Admin).await?;
    let valid = app.login(&admin).await?;
    let unknown = Arc::new(spoiled(&valid, "k9")?);
    let forged = Arc::new(spoiled(&valid, "k1")?);
    let valid = Arc::new(valid);
    let before = cpu_per_request(app, comm, &unknown, "/api/auth/me", 401).await?;
    let after = cpu_per_request(app, comm, &forged, "/api/auth/me", 401).await?;
    let whole = cpu_per_request(app, comm, &valid, "/api/auth/me", 200).await?;
    println!(
        "| {host} | {before:.3} | {after:.3} | {:.3} | {whole:.3} |",
        after - before
    );
    Ok(())
}

pub async fn run(stack: &Stack, app: &Arc<TestApp>) -> anyhow::Result<()> {
    // 1. Row-level security on the instrument list.
    let admin = app.new_org_user(Role::Admin).await?;
    let token = Arc::new(app.login(&admin).await?);
    let db = app.db().await?;
    db.execute(
        "INSERT INTO instruments (organization_id, name, type, status) \
         SELECT $1, 'RLS bench ' || g, 'freezer', 'online' FROM generate_series(1, $2::int8) g",
        &[&admin.organization_id, &(INSTRUMENTS as i64)],
    )
    .await?;
    let secured: Vec<String> = db
        .query(
            "SELECT DISTINCT tablename::text FROM pg_policies WHERE schemaname = 'public' ORDER BY 1",
            &[],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let toggle = |on: bool| {
        let statements: String = secured
            .iter()
            .map(|t| {
                format!(
                    "ALTER TABLE {t} {} ROW LEVEL SECURITY;",
                    if on { "ENABLE" } else { "DISABLE" }
                )
            })
            .collect();
        let db = &db;
        async move { db.batch_execute(&statements).await }
    };
    let block = |token: Arc<String>| {
        let app = app.clone();
        async move {
            let mut latencies = Vec::with_capacity(BLOCK);
            for _ in 0..BLOCK {
                let t = Instant::now();
                let resp = app
                    .as_user(&token)
                    .get("/api/v1/instruments?limit=25")
                    .await?;
                anyhow::ensure!(resp.status == 200, "{}", resp.status);
                latencies.push(t.elapsed());
            }
            anyhow::Ok(latencies)
        }
    };
    block(token.clone()).await?;
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        toggle(true).await?;
        on.extend(block(token.clone()).await?);
        toggle(false).await?;
        off.extend(block(token.clone()).await?);
    }
    // The query alone, through the proxy.
    let list = serde_json::json!({"query": super::LIST_SQL, "params": [admin.organization_id.to_string()]});
    let set = serde_json::json!({"query": "SELECT set_config('app.organization_id', $1, true)",
                                 "params": [admin.organization_id.to_string()]});
    let single = list.clone();
    let batch = serde_json::json!({"queries": [set, list]});
    let sql = |body: serde_json::Value| {
        let app = app.clone();
        async move {
            let mut latencies = Vec::with_capacity(BLOCK);
            for _ in 0..BLOCK {
                let t = Instant::now();
                let reply = app.stack.app_sql(&app.http, &body)?.send().await?;
                anyhow::ensure!(reply.status() == 200, "{}", reply.status());
                reply.bytes().await?;
                latencies.push(t.elapsed());
            }
            anyhow::Ok(latencies)
        }
    };
    sql(single.clone()).await?;
    let (mut single_off, mut batch_off, mut batch_on) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..2 {
        single_off.extend(sql(single.clone()).await?);
        batch_off.extend(sql(batch.clone()).await?);
        toggle(true).await?;
        batch_on.extend(sql(batch.clone()).await?);
        toggle(false).await?;
    }
    toggle(true).await?;
    let (on, off) = (stats(on, 0, Duration::ZERO), stats(off, 0, Duration::ZERO));
    println!(
        "\n| GET /api/v1/instruments?limit=25 on workerd, {} sequential, blocks of {BLOCK} alternating | p50 ms | p99 ms |\n|---|---:|---:|",
        on.count + off.count
    );
    println!(
        "| row-level security on ({} tables) | {} | {} |",
        secured.len(),
        ms(on.p50),
        ms(on.p99)
    );
    println!(
        "| row-level security off | {} | {} |",
        ms(off.p50),
        ms(off.p99)
    );
    println!(
        "\n| the list's query through the proxy as the application's role, {} each in blocks of {BLOCK} | p50 ms | p99 ms |\n|---|---:|---:|",
        2 * BLOCK
    );
    for (what, latencies) in [
        ("one statement, policies off (before)", single_off),
        (
            "setting + statement in one transaction, policies off",
            batch_off,
        ),
        (
            "setting + statement in one transaction, policies on (now)",
            batch_on,
        ),
    ] {
        let s = stats(latencies, 0, Duration::ZERO);
        println!("| {what} | {} | {} |", ms(s.p50), ms(s.p99));
    }

    // 2. The token's verification per request, on workerd and wasmtime.
    println!(
        "\n| CPU per request, GET /api/auth/me, {CLIENTS} clients, {REQUESTS} each | refused before the signature ms | refused after it ms | Ed25519 verification ms | valid token, whole request ms |\n|---|---:|---:|---:|---:|"
    );
    verification_on(app, "workerd", "workerd").await?;
    let wasmtime = Stack::start(HostKind::Wasmtime).await?;
    let on_wasmtime = Arc::new(TestApp::new(Arc::new(wasmtime)));
    let measured = verification_on(&on_wasmtime, "wasmtime serve", "wasmtime").await;
    on_wasmtime.stack.stop().await;
    measured?;
    let _ = stack;

    // 3. One operation, natively and in wasm.
    println!("\n| runtime | operation | µs per operation |\n|---|---|---:|");
    let root = blackbox::stack::root();
    for (label, program, args) in [
        (
            "native",
            root.join("target/release/crypto-bench"),
            vec!["native".to_owned()],
        ),
        (
            "wasmtime",
            std::path::PathBuf::from("wasmtime"),
            vec![
                "run".to_owned(),
                root.join("target/wasm32-wasip2/release/crypto-bench.wasm")
                    .display()
                    .to_string(),
                "wasmtime".to_owned(),
            ],
        ),
    ] {
        let output = std::process::Command::new(&program).args(&args).output()?;
        anyhow::ensure!(
            output.status.success(),
            "crypto-bench ({label}): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        print!("{}", String::from_utf8_lossy(&output.stdout));
    }
    Ok(())
}
