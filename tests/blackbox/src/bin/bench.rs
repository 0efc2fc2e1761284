//! `cargo xtask bench`: throughput and latency of `GET /api/v1/instruments`
//! through workerd -> sql-proxy -> PostgreSQL at 1, 16 and 128 concurrent
//! clients, and the proxy's overhead against the same query issued directly
//! with tokio-postgres. Prints a Markdown table. Measures; asserts nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use blackbox::{HostKind, Stack, TestApp};
use shared::auth::Role;

const SECONDS_PER_LEVEL: u64 = 10;
const INSTRUMENTS: i64 = 1_000;
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
                match app.get(path, Some(&token)).await {
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
    let env = |name: &str| {
        stack
            .function_env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (endpoint, connection) = (env("SQL_PROXY_URL"), env("DATABASE_URL"));
    let http = reqwest::Client::new();
    let body = serde_json::json!({ "query": LIST_SQL, "params": [org.to_string()] });
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(SEQUENTIAL_QUERIES);
    for _ in 0..SEQUENTIAL_QUERIES {
        let t = Instant::now();
        let reply: serde_json::Value = http
            .post(&endpoint)
            .header("Neon-Connection-String", &connection)
            .json(&body)
            .send()
            .await?
            .json()
            .await?;
        anyhow::ensure!(
            reply["rows"].as_array().map(Vec::len) == Some(26),
            "{reply}"
        );
        latencies.push(t.elapsed());
    }
    Ok(stats(latencies, 0, started.elapsed()))
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let stack = Arc::new(runtime.block_on(Stack::start(HostKind::Workerd))?);
    let result = runtime.block_on(async {
        let app = Arc::new(TestApp::new(stack.clone()));
        let admin = app.new_org_user(Role::Admin).await?;
        let token = Arc::new(app.login(&admin).await?);
        let db = app.db().await?;
        db.execute(
            "INSERT INTO instruments (organization_id, name, type, status, location, serial_number)
             SELECT $1, 'Instrument ' || g, (ARRAY['hplc','qpcr','freezer','plate_reader'])[1 + g % 4],
                    (ARRAY['online','idle','running','offline'])[1 + g % 4], 'Lab ' || (g % 10), 'SN-' || g
             FROM generate_series(1, $2::int8) AS g",
            &[&admin.organization_id, &INSTRUMENTS],
        )
        .await?;
        db.batch_execute("ANALYZE instruments").await?;
        // Warm up every isolate and the pool.
        for _ in 0..200 {
            app.get("/api/v1/instruments?limit=25", Some(&token)).await?;
        }
        println!("| clients | requests | errors | req/s | p50 ms | p99 ms |");
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
        anyhow::Ok(())
    });
    runtime.block_on(stack.stop());
    result
}
