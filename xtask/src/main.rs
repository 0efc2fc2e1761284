//! `cargo xtask <command>`: the project's automation, in Rust.
//!
//! - `setup`: install what this machine lacks (skips what is there).
//! - `routes [--check]`: render spin.toml, wrangler.toml and the workerd
//!   config from `shared::routes::ROUTES` (or fail when they drift).
//! - `build-wasm [--spin|--workers]`: every function, one cargo invocation per target.
//! - `pg start|stop|url`: the local PostgreSQL cluster.
//! - `dev`: the whole system locally (PostgreSQL, sql-proxy, every function on workerd).
//! - `layers`: the shared crate's module graph, checked against its layers.
//! - `test`: every check and test (what CI runs).
//! - `bench`: the benchmarks (see `tests/blackbox/benches`).

mod layers;
mod mailbox;
mod model;
mod pg;
mod routes;
mod secrets;
mod tls;
mod tools;
mod util;
mod wasm;
mod web;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};

use crate::secrets::Secrets;
use crate::util::{root, run};

#[derive(Parser)]
#[command(name = "xtask", about = "Antevus build and dev automation")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    Setup,
    Routes {
        #[arg(long)]
        check: bool,
    },
    BuildWasm {
        #[arg(long)]
        spin: bool,
        #[arg(long)]
        workers: bool,
    },
    Pg {
        #[arg(value_parser = ["start", "stop", "url"])]
        action: String,
    },
    Dev {
        /// Port of the API (workerd).
        #[arg(long, default_value_t = 8787)]
        port: u16,
    },
    /// The module graph and the model checks (`--verbose` lists each finding).
    Layers {
        #[arg(long)]
        verbose: bool,
        /// Another checkout to report on (to compare with this one).
        #[arg(long)]
        root: Option<std::path::PathBuf>,
    },
    Test,
    Bench,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Setup => tools::setup(),
        Cmd::Routes { check } => routes::sync(check),
        Cmd::BuildWasm { spin, workers } => {
            let both = !spin && !workers;
            if spin || both {
                wasm::build_spin()?;
            }
            if workers || both {
                wasm::build_workers()?;
            }
            Ok(())
        }
        Cmd::Pg { action } => {
            let secrets = Secrets::load()?;
            match action.as_str() {
                "start" => pg::start(&secrets),
                "stop" => pg::stop(),
                _ => {
                    println!("{}", pg::admin_url(&secrets, "postgres"));
                    Ok(())
                }
            }
        }
        Cmd::Dev { port } => dev(port),
        Cmd::Layers { verbose, root } => layers::report(root.as_deref(), verbose),
        Cmd::Test => test(),
        Cmd::Bench => bench(),
    }
}

const DEV_DB: &str = "antevus";
const PROXY_ADDR: &str = "127.0.0.1:4444";

fn cargo_bin(name: &str, release: bool) -> std::path::PathBuf {
    root()
        .join("target")
        .join(if release { "release" } else { "debug" })
        .join(name)
}

/// Starts PostgreSQL, creates and migrates `db`, sets the app role's password.
fn prepare_database(secrets: &Secrets, db: &str, release: bool) -> anyhow::Result<()> {
    pg::start(secrets)?;
    let exists = pg::psql(
        secrets,
        "postgres",
        &format!("SELECT 1 FROM pg_database WHERE datname = '{db}'"),
    )?;
    if exists.trim().is_empty() {
        pg::psql(secrets, "postgres", &format!("CREATE DATABASE {db}"))?;
    }
    let dbctl = cargo_bin("dbctl", release);
    run(Command::new(&dbctl)
        .arg("migrate")
        .env("ANTEVUS_ADMIN_DATABASE_URL", pg::admin_url(secrets, db)))?;
    run(Command::new(&dbctl)
        .arg("app-password")
        .env("ANTEVUS_ADMIN_DATABASE_URL", pg::admin_url(secrets, db))
        .env("ANTEVUS_APP_DB_PASSWORD", secrets.get("APP_DB_PASSWORD")))
}

/// Children that are stopped when this guard drops.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
        }
        for child in &mut self.0 {
            let _ = child.wait();
        }
    }
}

/// Environment of the functions: where the proxy is, the app role's
/// connection string, the token and audit keys. The runner (run.mjs) gives
/// each function only the secrets its route declares.
fn function_env(
    secrets: &Secrets,
    db: &str,
    proxy: &str,
) -> anyhow::Result<Vec<(&'static str, String)>> {
    Ok(vec![
        ("SQL_PROXY_URL", format!("http://{proxy}/sql")),
        ("SQL_PROXY_KEY", secrets.proxy_key()),
        ("DATABASE_URL", pg::app_url(secrets, db)),
        ("JWT_SIGNING_KEY", secrets.jwt_signing_key()),
        ("JWT_PUBLIC_KEYS", secrets.jwt_public_keys()?),
        ("AUDIT_SIGNING_KEY", secrets.audit_signing_key()),
        ("AUDIT_PUBLIC_KEYS", secrets.audit_public_keys()?),
        ("AUDIT_KEYS", secrets.audit_keys()),
        ("ENCRYPTION_KEYS", secrets.encryption_keys()),
        ("SCHEDULER_KEY", secrets.get("SCHEDULER_KEY").to_owned()),
        ("JWT_ISSUER", "antevus".into()),
        ("JWT_AUDIENCE", "antevus-api".into()),
    ])
}

fn start_workerd(env: &[(&'static str, String)], port: u16) -> anyhow::Result<(Child, String)> {
    let names: Vec<&str> = env.iter().map(|(k, _)| *k).collect();
    let mut child = Command::new("node")
        .arg(root().join("infra/workerd/run.mjs"))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("ANTEVUS_BINDINGS", names.join(","))
        .env("PORT", port.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start node (run `cargo xtask setup`)")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line?;
        if let Some(url) = line.strip_prefix("ready ") {
            let url = url.to_owned();
            std::thread::spawn(move || lines.for_each(|l| println!("{}", l.unwrap_or_default())));
            return Ok((child, url));
        }
        println!("{line}");
    }
    bail!("workerd exited before it was ready")
}

fn dev(port: u16) -> anyhow::Result<()> {
    tools::setup()?;
    routes::sync(false)?;
    web::build()?;
    wasm::build_workers()?;
    run(Command::new("cargo")
        .args(["build", "-p", "dbctl", "-p", "edge-bridge"])
        .current_dir(root()))?;
    // The proxy as it runs in production: a release build.
    run(Command::new("cargo")
        .args(["build", "--release", "-p", "sql-proxy"])
        .current_dir(root()))?;
    let secrets = Secrets::load()?;
    prepare_database(&secrets, DEV_DB, false)?;
    let seed = Command::new(cargo_bin("dbctl", false))
        .arg("seed")
        .env(
            "ANTEVUS_ADMIN_DATABASE_URL",
            pg::admin_url(&secrets, DEV_DB),
        )
        .output()?;
    let seed_text = String::from_utf8_lossy(&seed.stdout).into_owned();
    if !seed.status.success() {
        bail!("seeding failed: {}", String::from_utf8_lossy(&seed.stderr));
    }
    let mut children = Children(Vec::new());
    children.0.push(
        Command::new(cargo_bin("sql-proxy", true))
            .env("SQL_PROXY_LISTEN", PROXY_ADDR)
            .env("SQL_PROXY_ALLOW", format!("{}@{DEV_DB}", pg::APP_ROLE))
            .env("SQL_PROXY_KEYS", secrets.proxy_key())
            .spawn()
            .context("cannot start sql-proxy")?,
    );
    mailbox::start(root().join(".antevus/mail"))?;
    let mut env = function_env(&secrets, DEV_DB, PROXY_ADDR)?;
    env.push((
        "MAIL_PROVIDER_URL",
        format!("http://{}/send", mailbox::ADDR),
    ));
    env.push(("APP_URL", format!("http://127.0.0.1:{port}")));
    let (workerd, url) = start_workerd(&env, port)?;
    children.0.push(workerd);
    let (agent, lab) = start_simulated_lab(&secrets, &url)?;
    children.0.push(agent);
    tick_jobs(&url, secrets.get("SCHEDULER_KEY"));
    println!("\nAntevus is running on workerd at {url}");
    println!("  open {url}/ in a browser and sign in as admin@demo.lab");
    println!("  mail:    the messages the app sends (sign-up, invitations, password resets)");
    println!("           appear here within a minute and stay in .antevus/mail/");
    println!("  health:  curl {url}/api/health");
    println!("  login:   curl -X POST {url}/api/auth/login -H 'content-type: application/json' \\");
    println!("             -d '{{\"email\":\"admin@demo.lab\",\"password\":\"<password>\"}}'");
    for line in seed_text.lines() {
        println!("  {line}");
    }
    if !seed_text.contains("shown once") {
        println!("  (the admin password was printed when the database was first seeded;");
        println!("   `cargo xtask pg stop && rm -rf .antevus/pg` starts over with a new one)");
    }
    println!("  {lab}");
    println!("Press Ctrl-C to stop.");
    wait_for_ctrl_c();
    drop(children);
    pg::stop()
}

/// Runs the scheduled jobs of the route table while the dev runner runs,
/// as a deployment's scheduler would: each job's route, with the
/// scheduler's key, in the minutes its cadence names.
fn tick_jobs(url: &str, key: &str) {
    let jobs: Vec<(String, &'static str)> = shared::routes::ROUTES
        .iter()
        .filter_map(|route| Some((format!("{url}{}", route.path), route.attrs.schedule?)))
        .collect();
    let key = key.to_owned();
    std::thread::spawn(move || {
        let agent = ureq::Agent::new_with_defaults();
        loop {
            let minute = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() / 60 % 60);
            for (job, schedule) in &jobs {
                if !due_in_minute(schedule, minute) {
                    continue;
                }
                let answer = agent
                    .post(job)
                    .header("authorization", &format!("Bearer {key}"))
                    .send_empty();
                if let Err(e) = answer {
                    eprintln!("scheduled job {job}: {e}");
                }
            }
            // To the start of the next minute.
            let into = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() % 60);
            std::thread::sleep(std::time::Duration::from_secs(60 - into));
        }
    });
}

/// Whether a job of cadence `schedule` (cron: every minute, `* * * * *`,
/// or hourly at one minute, `23 * * * *`: the forms the route table uses)
/// runs in `minute` of the hour.
fn due_in_minute(schedule: &str, minute: u64) -> bool {
    match schedule.split_whitespace().next() {
        Some("*") => true,
        Some(at) => at.parse::<u64>().is_ok_and(|at| at == minute),
        None => false,
    }
}

/// Where the local simulated lab's bridge keeps its credentials and queue.
const LAB_BRIDGE_DIR: &str = ".antevus/bridge";
const LAB_METRICS: &str = "127.0.0.1:9464";

/// A simulated instrument of every type in the demo organization, read by
/// an edge bridge enrolled through the API (once; its credentials are kept
/// in `.antevus/bridge`), relaying to the local functions. Returns the
/// agent and a line for the user.
fn start_simulated_lab(secrets: &Secrets, url: &str) -> anyhow::Result<(Child, String)> {
    let dir = root().join(LAB_BRIDGE_DIR);
    let known: Option<String> = std::fs::read_to_string(dir.join("credentials.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|v| v["bridgeId"].as_str().map(str::to_owned));
    let mut seed = Command::new(cargo_bin("dbctl", false));
    seed.arg("seed-lab")
        .env("ANTEVUS_ADMIN_DATABASE_URL", pg::admin_url(secrets, DEV_DB));
    if let Some(bridge) = &known {
        seed.args(["--bridge", bridge]);
    }
    let seeded = seed.output()?;
    if !seeded.status.success() {
        bail!(
            "seeding the simulated lab failed: {}",
            String::from_utf8_lossy(&seeded.stderr)
        );
    }
    let text = String::from_utf8_lossy(&seeded.stdout).into_owned();
    let mut instruments = String::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(rest) = line.strip_prefix("instrument ")
            && let Some((kind, id)) = rest.split_once(' ')
        {
            instruments.push_str(&format!(
                "\n[[instruments]]\ndriver = \"simulator\"\nid = \"{id}\"\ntype = \"{kind}\"\ninterval_ms = 1000\nseed = {i}\n"
            ));
        }
        if let Some(token) = line.strip_prefix("join-token ") {
            run(Command::new(cargo_bin("edge-bridge", false))
                .args(["enroll", "--url", url, "--force", "--dir"])
                .arg(&dir)
                .env("EDGE_BRIDGE_JOIN_TOKEN", token))?;
        }
    }
    let config = dir.join("edge-bridge.toml");
    std::fs::write(
        &config,
        format!(
            "# Written by `cargo xtask dev`: the local simulated lab.\n\
             dir = {dir:?}\nurl = {url:?}\ntransport = \"websocket\"\nmetrics_listen = {LAB_METRICS:?}\n{instruments}",
            dir = dir.display().to_string()
        ),
    )?;
    let agent = Command::new(cargo_bin("edge-bridge", false))
        .args(["agent", "--config"])
        .arg(&config)
        .spawn()
        .context("cannot start the edge bridge")?;
    Ok((
        agent,
        format!(
            "simulated lab: {} instruments relayed by the edge bridge in {LAB_BRIDGE_DIR}; \
             connected to the local hub (dashboards: {}/api/v1/live); \
             its health and metrics at http://{LAB_METRICS}/healthz and /metrics",
            text.lines()
                .filter(|l| l.starts_with("instrument "))
                .count(),
            url.replacen("http", "ws", 1)
        ),
    ))
}

fn wait_for_ctrl_c() {
    let (tx, rx) = std::sync::mpsc::channel();
    if ctrlc::set_handler(move || {
        let _ = tx.send(());
    })
    .is_ok()
    {
        let _ = rx.recv();
    }
}

fn test() -> anyhow::Result<()> {
    tools::setup()?;
    routes::sync(true)?;
    run(Command::new("cargo")
        .args(["fmt", "--all", "--check"])
        .current_dir(root()))?;
    web::build()?;
    web::unit_tests()?;
    wasm::build_spin()?;
    wasm::build_workers()?;
    run(Command::new("cargo")
        .args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ])
        .current_dir(root()))?;
    wasm::clippy()?;
    let secrets = Secrets::load()?;
    pg::start(&secrets)?;
    let tested = run(Command::new("cargo")
        .args(["test", "--workspace", "--no-fail-fast"])
        .env("ANTEVUS_TEST_PG_URL", pg::admin_url(&secrets, "postgres"))
        .env("ANTEVUS_TEST_TLS_DIR", tls::dir())
        .env(
            "ANTEVUS_TEST_APP_DB_PASSWORD",
            secrets.get("APP_DB_PASSWORD"),
        )
        .current_dir(root()));
    drop_test_databases(&secrets)?;
    tested
}

/// Drops the databases tests made (each drops its own; a test binary
/// killed midway, or the proxy's tests, which have no hook after their last
/// test, leave theirs).
fn drop_test_databases(secrets: &Secrets) -> anyhow::Result<()> {
    let names = pg::psql(
        secrets,
        "postgres",
        r"SELECT datname FROM pg_database WHERE datname LIKE 'antevus\_%test\_%'",
    )?;
    for name in names.lines().map(str::trim).filter(|n| !n.is_empty()) {
        pg::psql(
            secrets,
            "postgres",
            &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        )?;
    }
    Ok(())
}

fn bench() -> anyhow::Result<()> {
    tools::setup()?;
    tools::valgrind()?;
    web::build()?;
    wasm::build_workers()?;
    // The keys section also runs the functions on wasmtime.
    wasm::build_spin()?;
    let secrets = Secrets::load()?;
    pg::start(&secrets)?;
    // The proxy section measures the release binary on its own; the keys
    // section times signatures natively and under `wasmtime run`.
    run(Command::new("cargo")
        .args([
            "build",
            "--release",
            "-p",
            "sql-proxy",
            "-p",
            "crypto-bench",
        ])
        .current_dir(root()))?;
    run(Command::new("cargo")
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "-p",
            "crypto-bench",
        ])
        .current_dir(root()))?;
    run(Command::new("cargo")
        .args(["run", "--release", "-p", "blackbox", "--bin", "bench"])
        .env("ANTEVUS_PROXY_BIN", cargo_bin("sql-proxy", true))
        .env("ANTEVUS_TEST_TLS_DIR", tls::dir())
        .env("ANTEVUS_TEST_PG_URL", pg::admin_url(&secrets, "postgres"))
        .env(
            "ANTEVUS_TEST_APP_DB_PASSWORD",
            secrets.get("APP_DB_PASSWORD"),
        )
        .env("ANTEVUS_PG_LOG", pg::log_file())
        .current_dir(root()))
}

#[cfg(test)]
mod tests {
    use super::due_in_minute;

    #[test]
    fn the_dev_runner_keeps_every_jobs_cadence() {
        assert!(due_in_minute("* * * * *", 7));
        assert!(due_in_minute("23 * * * *", 23) && !due_in_minute("23 * * * *", 24));
        for route in shared::routes::ROUTES {
            let Some(schedule) = route.attrs.schedule else {
                continue;
            };
            let fields: Vec<&str> = schedule.split_whitespace().collect();
            assert_eq!(fields.len(), 5, "{schedule}");
            assert!(
                fields[1..].iter().all(|f| *f == "*"),
                "{}: {schedule}: the dev runner reads only the minute",
                route.function
            );
            assert!((0..60).any(|m| due_in_minute(schedule, m)), "{schedule}");
        }
    }
}
