//! CPU per request on workerd (`ANTEVUS_BENCH_ONLY=cpu cargo xtask bench`):
//! `GET /api/v1/instruments?limit=25` requested many times by a few
//! clients while the workerd processes' CPU time (user + system, from
//! `/proc/<pid>/stat`) is read before and after; the difference over the
//! requests is what one request costs the runtime (the functions' wasm,
//! workerd's HTTP and JavaScript glue; the proxy and PostgreSQL are other
//! processes).

use std::sync::Arc;
use std::time::Instant;

use blackbox::TestApp;
use shared::auth::Role;

/// Requests measured (after a warm-up of [`WARM_UP`]).
const REQUESTS: usize = 4_000;
const WARM_UP: usize = 400;
pub const CLIENTS: usize = 4;
const INSTRUMENTS: usize = 50;
const PATH: &str = "/api/v1/instruments?limit=25";

/// Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`; 100 on
/// Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// The CPU time (seconds) of every process named `comm`.
pub fn cpu_of(comm: &str) -> anyhow::Result<f64> {
    let mut ticks = 0u64;
    let mut found = 0;
    for entry in std::fs::read_dir("/proc")? {
        let entry = entry?;
        let Ok(name) = std::fs::read_to_string(entry.path().join("comm")) else {
            continue;
        };
        if name.trim() != comm {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The fields after the parenthesised name: utime is the 14th field
        // of the line, stime the 15th.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        let utime: u64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0);
        let stime: u64 = fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0);
        ticks += utime + stime;
        found += 1;
    }
    anyhow::ensure!(found > 0, "no {comm} process found");
    Ok(ticks as f64 / TICKS_PER_SECOND)
}

/// `total` requests of `path` with `token` from [`CLIENTS`] clients, each
/// answered `status`.
pub async fn hammer(
    app: &Arc<TestApp>,
    token: &Arc<String>,
    path: &'static str,
    status: u16,
    total: usize,
) -> anyhow::Result<()> {
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let app = app.clone();
        let token = token.clone();
        let share = total / CLIENTS + usize::from(client < total % CLIENTS);
        tasks.push(tokio::spawn(async move {
            let mut wrong = 0;
            for _ in 0..share {
                match app.as_user(&token).get(path).await {
                    Ok(resp) if resp.status == status => {}
                    _ => wrong += 1,
                }
            }
            wrong
        }));
    }
    let mut wrong = 0;
    for task in tasks {
        wrong += task.await?;
    }
    anyhow::ensure!(wrong == 0, "{wrong} of {total} answers were not {status}");
    Ok(())
}

pub async fn run(app: &Arc<TestApp>) -> anyhow::Result<()> {
    let admin = app.new_org_user(Role::Admin).await?;
    let token = Arc::new(app.login(&admin).await?);
    for i in 0..INSTRUMENTS {
        let created = app
            .as_user(&token)
            .json(
                http::Method::POST,
                "/api/v1/instruments",
                &serde_json::json!({ "name": format!("Freezer {i:03}"), "type": "freezer" }),
            )
            .await?;
        anyhow::ensure!(created.status == 201, "seeding: {}", created.status);
    }
    hammer(app, &token, PATH, 200, WARM_UP).await?;
    let before = cpu_of("workerd")?;
    let started = Instant::now();
    hammer(app, &token, PATH, 200, REQUESTS).await?;
    let elapsed = started.elapsed();
    let after = cpu_of("workerd")?;
    let per_request_ms = (after - before) / REQUESTS as f64 * 1000.0;
    println!(
        "\n| GET /api/v1/instruments?limit=25 on workerd, {CLIENTS} clients | figure |\n|---|---:|"
    );
    println!("| requests | {REQUESTS} |");
    println!(
        "| requests/s | {:.0} |",
        REQUESTS as f64 / elapsed.as_secs_f64()
    );
    println!("| workerd CPU per request | {per_request_ms:.3} ms |");
    Ok(())
}
