//! The sql-proxy binary on its own (`ANTEVUS_BENCH_ONLY=proxy cargo xtask
//! bench`): one page of the instrument list (the functions' own query) sent
//! signed, as a function sends it, to a release build of the proxy started
//! for the purpose.
//!
//! - latency (p50/p99) of [`SEQUENTIAL`] requests from one client, over
//!   HTTP and over HTTPS (one keep-alive connection: the handshake once,
//!   the encryption every request);
//! - instructions per request under `valgrind --tool=callgrind`: the
//!   proxy's total for [`FEW`] and for [`MANY`] requests, the difference
//!   over the difference in requests (start-up and shutdown cancel out).
//!   Instruction counts do not depend on what else the machine does.
//!
//! `ANTEVUS_PROXY_BEFORE=<path to another sql-proxy binary>` measures that
//! binary the same way in the same run (an older build: it ignores the
//! signature and the settings it does not know).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use blackbox::TestApp;
use serde_json::json;
use shared::auth::Role;
use shared::config::HmacKey;

const SEQUENTIAL: usize = 2_000;
const FEW: usize = 200;
const MANY: usize = 1_200;
const INSTRUMENTS: i64 = 50;

/// A proxy process listening on `url`.
struct Proxy {
    child: Child,
    url: String,
    http: reqwest::Client,
}

impl Proxy {
    /// With `tls`, the listener speaks HTTPS with the suite's certificate.
    fn start(
        binary: &Path,
        valgrind_out: Option<&Path>,
        app: &TestApp,
        key: &HmacKey,
        tls: bool,
    ) -> anyhow::Result<Proxy> {
        let port = blackbox::stack::free_port()?;
        let db_url: tokio_postgres::Config = app.stack.function_var("DATABASE_URL").parse()?;
        let allow = format!(
            "{}@{}",
            db_url.get_user().unwrap_or_default(),
            db_url.get_dbname().unwrap_or_default()
        );
        let mut command = match valgrind_out {
            Some(out) => {
                let mut c = Command::new("valgrind");
                c.arg("--tool=callgrind")
                    .arg(format!("--callgrind-out-file={}", out.display()))
                    .arg(binary);
                c
            }
            None => Command::new(binary),
        };
        let certificates = blackbox::stack::tls_dir()?;
        if tls {
            command
                .env("SQL_PROXY_TLS_CERT", certificates.join("server.pem"))
                .env("SQL_PROXY_TLS_KEY", certificates.join("server.key"));
        }
        let child = command
            .env("SQL_PROXY_LISTEN", format!("127.0.0.1:{port}"))
            .env("SQL_PROXY_ALLOW", allow)
            .env("SQL_PROXY_KEYS", blackbox::stack::env_key(key))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", binary.display()))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "{} did not listen",
                binary.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let ca = reqwest::Certificate::from_pem(&std::fs::read(certificates.join("ca.pem"))?)?;
        Ok(Proxy {
            child,
            url: format!(
                "{}://127.0.0.1:{port}/sql",
                if tls { "https" } else { "http" }
            ),
            http: reqwest::Client::builder()
                .add_root_certificate(ca)
                .build()?,
        })
    }

    /// SIGTERM, then waits for the (graceful) exit.
    fn stop(mut self) -> anyhow::Result<()> {
        Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()?;
        let status = self.child.wait()?;
        anyhow::ensure!(status.success(), "the proxy exited with {status}");
        Ok(())
    }
}

/// Sends the instrument list `n` times, one after another; the latencies.
async fn requests(
    app: &TestApp,
    proxy: &Proxy,
    key: &HmacKey,
    org: uuid::Uuid,
    n: usize,
) -> anyhow::Result<Vec<Duration>> {
    let http = &proxy.http;
    let body = json!({ "query": super::LIST_SQL, "params": [org.to_string()] });
    let connection = app.stack.function_var("DATABASE_URL");
    let mut latencies = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let reply: serde_json::Value =
            blackbox::stack::signed_sql(http, &proxy.url, key, &connection, &body)?
                .send()
                .await?
                .json()
                .await?;
        anyhow::ensure!(
            reply["rows"].as_array().map(Vec::len) == Some(26),
            "{reply}"
        );
        latencies.push(started.elapsed());
    }
    Ok(latencies)
}

/// The total instructions (`Ir`) of a callgrind output file.
fn instructions(out: &Path) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string(out)?;
    text.lines()
        .find_map(|line| {
            line.strip_prefix("summary:")
                .or_else(|| line.strip_prefix("totals:"))
        })
        .and_then(|n| n.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no instruction total in {}", out.display()))
}

/// Instructions per request of `binary`: two callgrind runs.
async fn per_request(
    app: &TestApp,
    binary: &Path,
    key: &HmacKey,
    org: uuid::Uuid,
    tls: bool,
) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let mut totals = Vec::new();
    for n in [FEW, MANY] {
        let out = dir.path().join(format!("callgrind.{n}"));
        let proxy = Proxy::start(binary, Some(&out), app, key, tls)?;
        requests(app, &proxy, key, org, n).await?;
        proxy.stop()?;
        totals.push(instructions(&out)?);
    }
    Ok((totals[1] as f64 - totals[0] as f64) / (MANY - FEW) as f64)
}

pub async fn run(app: &TestApp) -> anyhow::Result<()> {
    anyhow::ensure!(
        Command::new("valgrind").arg("--version").output().is_ok(),
        "valgrind is not installed (apt-get install valgrind)"
    );
    let current = PathBuf::from(
        std::env::var("ANTEVUS_PROXY_BIN").unwrap_or_else(|_| "target/release/sql-proxy".into()),
    );
    let mut runs = vec![
        ("this build, HTTP", current.clone(), false),
        ("this build, HTTPS", current, true),
    ];
    if let Ok(before) = std::env::var("ANTEVUS_PROXY_BEFORE") {
        runs.insert(
            0,
            ("ANTEVUS_PROXY_BEFORE, HTTP", PathBuf::from(before), false),
        );
    }
    let admin = app.new_org_user(Role::Admin).await?;
    let org = admin.organization_id;
    let db = app.db().await?;
    db.execute(
        "INSERT INTO instruments (organization_id, name, type, status, created_by) \
         SELECT $1, 'Bench ' || n, 'hplc', 'idle', $2 FROM generate_series(1, $3::int8) AS n",
        &[&org, &admin.id, &INSTRUMENTS],
    )
    .await?;
    let key = HmacKey {
        kid: "bench".into(),
        secret: blackbox::stack::random_secret(),
    };
    println!(
        "\n| sql-proxy, instrument list page | p50 ms | p99 ms | instructions per request |\n|---|---:|---:|---:|"
    );
    for (name, binary, tls) in &runs {
        let proxy = Proxy::start(binary, None, app, &key, *tls)?;
        requests(app, &proxy, &key, org, 100).await?;
        let latencies = requests(app, &proxy, &key, org, SEQUENTIAL).await?;
        proxy.stop()?;
        let stats = super::stats(latencies, 0, Duration::ZERO);
        let instructions = per_request(app, binary, &key, org, *tls).await?;
        println!(
            "| {name} | {} | {} | {:.0} |",
            super::ms(stats.p50),
            super::ms(stats.p99),
            instructions
        );
    }
    Ok(())
}
