//! `cargo xtask bench`, everything through workerd -> sql-proxy ->
//! PostgreSQL, with 10,000 instruments and 1,000,000 runs seeded in one
//! organization:
//!
//! 1. the query plans of the hot paths (lists and details), captured by
//!    `auto_explain` from the real requests: a sequential scan of a large
//!    table fails the benchmark;
//! 2. list and detail latency (p50/p99) per route, one client;
//! 3. throughput and latency of `GET /api/v1/instruments` at 1, 16 and 128
//!    concurrent clients, logins, and the proxy's overhead against the same
//!    query issued directly with tokio-postgres;
//! 4. the audit trail ([`audit`]): overhead of an event per change, events/s
//!    on one organization's chain, and verification of 1,000,000 events;
//! 5. the live path ([`live`]);
//! 6. workerd's CPU per request of the instrument list ([`cpu`]).
//!
//! 7. the sql-proxy binary alone: latency and instructions per request
//!    under callgrind ([`proxy`]);
//! 8. what issue 16 costs ([`keys`]): row-level security on the instrument
//!    list, the token's Ed25519 verification per request on workerd and
//!    wasmtime, one signature operation natively and in wasm.
//!
//! 9. the web application ([`web`]): what a first visit downloads, the
//!    time to a live dashboard in Chromium, a reading's delay to the page.
//!
//! 10. webhook delivery ([`webhooks`]): deliveries per second from the
//!     job with 1,000 pending, and commit to the receiver's hit.
//!
//! `ANTEVUS_BENCH_ONLY=audit|live|cpu|proxy|keys|web|webhooks` runs one of
//! the last seven alone.
//!
//! Prints Markdown tables. Timings are measured, never asserted.

#[path = "bench/audit.rs"]
mod audit;
#[path = "bench/cpu.rs"]
mod cpu;
#[path = "bench/keys.rs"]
mod keys;
#[path = "bench/live.rs"]
mod live;
#[path = "bench/proxy.rs"]
mod proxy;
#[path = "bench/web.rs"]
mod web;
#[path = "bench/webhooks.rs"]
mod webhooks;

use std::sync::Arc;
use std::time::{Duration, Instant};

use blackbox::{HostKind, Stack, TestApp};
use shared::auth::Role;

const SECONDS_PER_LEVEL: u64 = 10;
const INSTRUMENTS: i64 = 10_000;
const RUNS: i64 = 1_000_000;
/// Requests per route in the latency table.
const SAMPLES: usize = 300;
/// Tables large enough that a sequential scan on a hot path is a bug.
const LARGE_TABLES: &[&str] = &[
    "instruments",
    "runs",
    "run_data",
    "run_data_chunks",
    "instrument_commands",
    "maintenance",
    "readings",
];
const SEQUENTIAL_QUERIES: usize = 2_000;

struct Stats {
    count: usize,
    errors: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

fn stats(mut latencies: Vec<Duration>, errors: usize, elapsed: Duration) -> Stats {
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    Stats {
        count: latencies.len(),
        errors,
        elapsed,
        p50: at(0.50),
        p99: at(0.99),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

async fn load(app: Arc<TestApp>, token: Arc<String>, clients: usize) -> Stats {
    load_path(app, token, clients, "/api/v1/instruments?limit=25").await
}

async fn load_path(
    app: Arc<TestApp>,
    token: Arc<String>,
    clients: usize,
    path: &'static str,
) -> Stats {
    let deadline = Instant::now() + Duration::from_secs(SECONDS_PER_LEVEL);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let app = app.clone();
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            while Instant::now() < deadline {
                let t = Instant::now();
                match app.as_user(&token).get(path).await {
                    Ok(resp) if resp.status == 200 => latencies.push(t.elapsed()),
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        if let Ok((l, e)) = task.await {
            latencies.extend(l);
            errors += e;
        }
    }
    stats(latencies, errors, started.elapsed())
}

const LIST_SQL: &str = "SELECT id, name, type, status, location, model, serial_number, firmware, configuration, \
    calibration, version, created_at, updated_at, last_seen_at, created_by FROM instruments \
    WHERE organization_id = $1 AND deleted_at IS NULL ORDER BY created_at DESC, id DESC LIMIT 26";

async fn direct(url: &str, org: uuid::Uuid) -> anyhow::Result<Stats> {
    let client = dbctl::connect(url).await?;
    let statement = client.prepare(LIST_SQL).await?;
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(SEQUENTIAL_QUERIES);
    for _ in 0..SEQUENTIAL_QUERIES {
        let t = Instant::now();
        let rows = client.query(&statement, &[&org]).await?;
        anyhow::ensure!(rows.len() == 26);
        latencies.push(t.elapsed());
    }
    Ok(stats(latencies, 0, started.elapsed()))
}

async fn through_proxy(stack: &Stack, org: uuid::Uuid) -> anyhow::Result<Stats> {
    let http = reqwest::Client::new();
    let body = serde_json::json!({ "query": LIST_SQL, "params": [org.to_string()] });
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(SEQUENTIAL_QUERIES);
    for _ in 0..SEQUENTIAL_QUERIES {
        let t = Instant::now();
        let reply: serde_json::Value = stack.app_sql(&http, &body)?.send().await?.json().await?;
        anyhow::ensure!(
            reply["rows"].as_array().map(Vec::len) == Some(26),
            "{reply}"
        );
        latencies.push(t.elapsed());
    }
    Ok(stats(latencies, 0, started.elapsed()))
}

/// Seeds `INSTRUMENTS` instruments and `RUNS` runs (spread over them and
/// over the last year, all ended) in `org`.
async fn seed(
    db: &tokio_postgres::Client,
    org: uuid::Uuid,
    operator: uuid::Uuid,
) -> anyhow::Result<()> {
    let started = Instant::now();
    db.execute(
        "INSERT INTO instruments (organization_id, name, type, status, location, serial_number, created_at)
         SELECT $1, 'Instrument ' || g,
                (ARRAY['dna_sequencer','liquid_handler','hplc','qpcr','plate_reader','centrifuge','incubator',
                       'freezer','spectrophotometer','microscope','mass_spectrometer','flow_cytometer'])[1 + g % 12],
                (ARRAY['online','idle','offline','maintenance'])[1 + g % 4], 'Lab ' || (g % 10), 'SN-' || g,
                now() - make_interval(mins => g::int)
         FROM generate_series(1, $2::int8) AS g",
        &[&org, &INSTRUMENTS],
    )
    .await?;
    db.execute(
        "INSERT INTO runs (organization_id, instrument_id, name, status, started_at, completed_at, operator_id, created_at)
         SELECT $1, ids.a[1 + (g * 7919) % cardinality(ids.a)], 'Run ' || g,
                (ARRAY['completed','completed','completed','failed','aborted'])[1 + g % 5],
                now() - make_interval(secs => g * 30), now() - make_interval(secs => g * 30 - 3600),
                $2, now() - make_interval(secs => g * 30)
         FROM generate_series(1, $3::int8) AS g,
              (SELECT array_agg(id) AS a FROM instruments WHERE organization_id = $1) AS ids",
        &[&org, &operator, &RUNS],
    )
    .await?;
    db.batch_execute("ANALYZE instruments; ANALYZE runs")
        .await?;
    println!(
        "Seeded {INSTRUMENTS} instruments and {RUNS} runs in {:.1} s.\n",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// One plan `auto_explain` logged: the query and its scan nodes.
struct Plan {
    query: String,
    scans: Vec<String>,
}

/// Plans logged after byte `from` of the PostgreSQL log.
fn plans_in_log(log: &str) -> Vec<Plan> {
    let mut plans: Vec<Plan> = Vec::new();
    let mut current: Option<Plan> = None;
    for line in log.lines() {
        if line.contains("  plan:") {
            plans.extend(current.take());
            current = Some(Plan {
                query: String::new(),
                scans: Vec::new(),
            });
            continue;
        }
        let Some(plan) = current.as_mut() else {
            continue;
        };
        if !line.starts_with('\t') {
            plans.extend(current.take());
            continue;
        }
        let text = line.trim();
        if let Some(query) = text.strip_prefix("Query Text: ") {
            plan.query = query.to_owned();
        }
        let node = text.trim_start_matches("->").trim();
        if [
            "Seq Scan",
            "Index Scan",
            "Index Only Scan",
            "Bitmap Index Scan",
        ]
        .iter()
        .any(|n| node.starts_with(n))
        {
            plan.scans
                .push(node.split("  (").next().unwrap_or(node).to_owned());
        }
    }
    plans.extend(current);
    plans
}

/// Requests each path once with `auto_explain` on for the application's
/// role and returns the plans of the queries they ran.
async fn explain(
    app: &TestApp,
    token: &str,
    paths: &[String],
    log_path: &std::path::Path,
) -> anyhow::Result<Vec<(String, Vec<Plan>)>> {
    let mut out = Vec::new();
    for path in paths {
        let before = std::fs::metadata(log_path)?.len();
        let resp = app.as_user(token).get(path).await?;
        anyhow::ensure!(resp.status == 200, "{path}: {} {}", resp.status, resp.json);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let bytes = std::fs::read(log_path)?;
        let log = String::from_utf8_lossy(&bytes[before as usize..]).into_owned();
        out.push((path.clone(), plans_in_log(&log)));
    }
    Ok(out)
}

fn main() -> anyhow::Result<()> {
    // The live section runs an agent as a child process of this binary.
    if let Some(code) = blackbox::live::run_agent_if_asked() {
        return if code == std::process::ExitCode::SUCCESS {
            Ok(())
        } else {
            Err(anyhow::anyhow!("the agent failed"))
        };
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let log_path = std::path::PathBuf::from(
        std::env::var("ANTEVUS_PG_LOG")
            .map_err(|_| anyhow::anyhow!("ANTEVUS_PG_LOG is not set: run `cargo xtask bench`"))?,
    );
    let stack = Arc::new(runtime.block_on(Stack::start(HostKind::Workerd))?);
    // `ANTEVUS_BENCH_ONLY=audit` (or `live`, `cpu`, `proxy`) runs that
    // section alone.
    let only = std::env::var("ANTEVUS_BENCH_ONLY").unwrap_or_default();
    let result = runtime.block_on(async {
        let app = Arc::new(TestApp::new(stack.clone()));
        match only.as_str() {
            "audit" => return audit::run(&stack, &app).await,
            "live" => return live::run(&app).await,
            "cpu" => return cpu::run(&app).await,
            "proxy" => return proxy::run(&app).await,
            "keys" => return keys::run(&stack, &app).await,
            "web" => return web::run(&app).await,
            "webhooks" => return webhooks::run(&app).await,
            _ => {}
        }
        let db = app.db().await?;
        let db_name = stack
            .admin_db_url
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        // Before the application's first connection: its sessions load
        // auto_explain and log every plan.
        db.batch_execute(&format!(
            "ALTER ROLE antevus_app IN DATABASE {db_name} SET session_preload_libraries = 'auto_explain';
             ALTER ROLE antevus_app IN DATABASE {db_name} SET auto_explain.log_min_duration = 0;"
        ))
        .await?;
        let admin = app.new_org_user(Role::Admin).await?;
        let token = Arc::new(app.login(&admin).await?);
        seed(&db, admin.organization_id, admin.id).await?;

        let ids = |sql: &'static str| {
            let db = &db;
            let org = admin.organization_id;
            async move {
                let rows = db.query(sql, &[&org]).await?;
                anyhow::Ok(rows.iter().map(|r| r.get::<_, uuid::Uuid>(0)).collect::<Vec<_>>())
            }
        };
        let instruments = ids("SELECT id FROM instruments WHERE organization_id = $1 ORDER BY random() LIMIT 300").await?;
        let runs = ids("SELECT id FROM runs WHERE organization_id = $1 ORDER BY random() LIMIT 300").await?;
        let page2 = |path: &'static str| {
            let app = app.clone();
            let token = token.clone();
            async move {
                let first = app.as_user(&token).get(path).await?;
                let cursor = first.json["data"]["nextCursor"].as_str().unwrap_or_default().to_owned();
                anyhow::Ok(format!("{path}&cursor={cursor}"))
            }
        };
        let (i0, r0) = (instruments[0], runs[0]);
        let mut paths: Vec<(String, String)> = vec![
            ("instruments, first page".into(), "/api/v1/instruments?limit=25".into()),
            ("instruments, second page".into(), page2("/api/v1/instruments?limit=25").await?),
            ("instruments by status".into(), "/api/v1/instruments?status=online&limit=25".into()),
            ("instruments by type".into(), "/api/v1/instruments?type=hplc&limit=25".into()),
            ("instruments by name".into(), "/api/v1/instruments?sort=name&limit=25".into()),
            ("instruments by name, second page".into(), page2("/api/v1/instruments?sort=name&limit=25").await?),
            ("runs, first page".into(), "/api/v1/runs?limit=25".into()),
            ("runs, second page".into(), page2("/api/v1/runs?limit=25").await?),
            ("runs of an instrument".into(), format!("/api/v1/runs?instrumentId={i0}&limit=25")),
            ("runs by status".into(), "/api/v1/runs?status=failed&limit=25".into()),
            ("runs by operator".into(), format!("/api/v1/runs?operatorId={}&limit=25", admin.id)),
            ("runs started in a day".into(), "/api/v1/runs?startedFrom=2026-06-01T00:00:00Z&startedTo=2026-06-02T00:00:00Z&limit=25".into()),
            ("instrument commands".into(), format!("/api/v1/instruments/{i0}/commands")),
            ("instrument maintenance".into(), format!("/api/v1/instruments/{i0}/maintenance")),
        ];
        let details: Vec<(String, String)> = vec![
            ("instrument detail".into(), format!("/api/v1/instruments/{i0}")),
            ("instrument status".into(), format!("/api/v1/instruments/{i0}/status")),
            ("run detail".into(), format!("/api/v1/runs/{r0}")),
            ("run QC report".into(), format!("/api/v1/runs/{r0}/qc")),
        ];
        paths.extend(details.iter().cloned());

        // 1. Query plans.
        let explained = explain(
            &app,
            &token,
            &paths.iter().map(|(_, p)| p.clone()).collect::<Vec<_>>(),
            &log_path,
        )
        .await?;
        let mut seq_scans = Vec::new();
        println!("| route | scans of the route's own queries |\n|---|---|");
        for ((name, _), (path, plans)) in paths.iter().zip(&explained) {
            let mut scans: Vec<String> = plans
                .iter()
                .filter(|p| !p.query.is_empty())
                .filter(|p| LARGE_TABLES.iter().any(|t| p.query.contains(&format!(" {t} ")) || p.query.contains(&format!(" {t}\n"))))
                .flat_map(|p| p.scans.iter().cloned())
                .collect();
            scans.dedup();
            for scan in &scans {
                if let Some(table) = scan.strip_prefix("Seq Scan on ").and_then(|t| t.split_whitespace().next())
                    && LARGE_TABLES.contains(&table)
                {
                    seq_scans.push(format!("{path}: {scan}"));
                }
            }
            anyhow::ensure!(!scans.is_empty(), "{path}: no plan was captured");
            println!("| {name} | {} |", scans.join("; "));
        }
        anyhow::ensure!(seq_scans.is_empty(), "sequential scans on hot paths:\n{}", seq_scans.join("\n"));
        println!("\nNo sequential scan of a large table on any hot path.\n");
        db.batch_execute(&format!(
            "ALTER ROLE antevus_app IN DATABASE {db_name} RESET ALL;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'antevus_app' AND datname = '{db_name}';"
        ))
        .await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        // Warm up every isolate and the pool (the first requests after the
        // pool's connections were closed may fail once).
        for _ in 0..200 {
            let _ = app.as_user(&token).get("/api/v1/instruments?limit=25").await;
        }

        // 2. Latency per route, one client.
        println!("| route ({SAMPLES} sequential requests, one client) | p50 ms | p99 ms |\n|---|---:|---:|");
        for (name, path) in &paths {
            let mut latencies = Vec::with_capacity(SAMPLES);
            for n in 0..SAMPLES {
                // Detail routes walk 300 different records.
                let path = path
                    .replace(&i0.to_string(), &instruments[n % instruments.len()].to_string())
                    .replace(&r0.to_string(), &runs[n % runs.len()].to_string());
                let t = Instant::now();
                let resp = app.as_user(&token).get(&path).await?;
                anyhow::ensure!(resp.status == 200, "{path}: {}", resp.status);
                latencies.push(t.elapsed());
            }
            let s = stats(latencies, 0, Duration::ZERO);
            println!("| {name} | {} | {} |", ms(s.p50), ms(s.p99));
        }

        // 3. Throughput of the instrument list.
        println!("\n| GET /api/v1/instruments?limit=25, clients | requests | errors | req/s | p50 ms | p99 ms |");
        println!("|---:|---:|---:|---:|---:|---:|");
        for clients in [1, 16, 128] {
            let s = load(app.clone(), token.clone(), clients).await;
            println!(
                "| {clients} | {} | {} | {:.0} | {} | {} |",
                s.count,
                s.errors,
                s.count as f64 / s.elapsed.as_secs_f64(),
                ms(s.p50),
                ms(s.p99)
            );
        }
        // Login: argon2id verification natively, and whole logins on workerd.
        let phc = shared::auth::password::hash("bench password", [5; 16])?;
        let started = Instant::now();
        for _ in 0..20 {
            std::hint::black_box(shared::auth::password::verify("bench password", &phc));
        }
        let native_verify = started.elapsed() / 20;
        let mut logins = Vec::new();
        for _ in 0..20 {
            let t = Instant::now();
            app.login(&admin).await?;
            logins.push(t.elapsed());
        }
        let logins = stats(logins, 0, Duration::ZERO);
        println!("\n| login | ms |\n|---|---:|");
        println!("| argon2id verify (m=19 MiB, t=2, p=1), native, mean of 20 | {} |", ms(native_verify));
        println!("| POST /api/auth/login on workerd, p50 of 20 | {} |", ms(logins.p50));
        println!("| POST /api/auth/login on workerd, p99 of 20 | {} |", ms(logins.p99));
        let me = load_path(app.clone(), token.clone(), 16, "/api/auth/me").await;
        println!("\n| GET /api/auth/me, 16 clients, {SECONDS_PER_LEVEL} s | req/s | p50 ms | p99 ms |\n|---|---:|---:|---:|");
        println!(
            "| workerd | {:.0} | {} | {} |",
            me.count as f64 / me.elapsed.as_secs_f64(),
            ms(me.p50),
            ms(me.p99)
        );
        let d = direct(&stack.admin_db_url, admin.organization_id).await?;
        let p = through_proxy(&stack, admin.organization_id).await?;
        println!("\n| path ({SEQUENTIAL_QUERIES} sequential queries, 26 rows) | p50 ms | p99 ms |");
        println!("|---|---:|---:|");
        println!("| tokio-postgres, direct | {} | {} |", ms(d.p50), ms(d.p99));
        println!("| SQL-over-HTTP through sql-proxy | {} | {} |", ms(p.p50), ms(p.p99));
        println!("| proxy overhead (p50) | {} | |", ms(p.p50.saturating_sub(d.p50)));

        // 4. The audit trail.
        audit::run(&stack, &app).await?;
        // 5. The live path.
        live::run(&app).await?;
        // 6. workerd's CPU per request.
        cpu::run(&app).await?;
        // 7. The proxy alone.
        proxy::run(&app).await?;
        // 8. What issue 16 costs.
        keys::run(&stack, &app).await?;
        // 9. The web application.
        web::run(&app).await?;
        // 10. Webhook delivery.
        webhooks::run(&app).await?;
        anyhow::Ok(())
    });
    runtime.block_on(stack.stop());
    result
}
