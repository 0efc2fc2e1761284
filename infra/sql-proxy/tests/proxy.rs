//! Integration tests of the proxy against a real PostgreSQL (started by
//! `cargo xtask test`, which sets ANTEVUS_TEST_PG_URL). Each test runs its own
//! proxy in process, with its own limits, over one database made for this run.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sql_proxy::ProxyConfig;

/// The superuser connection string of this run's database.
fn database_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let server = std::env::var("ANTEVUS_TEST_PG_URL")
            .expect("ANTEVUS_TEST_PG_URL is not set: run the tests through `cargo xtask test`");
        let base = server.rsplit_once('/').expect("ANTEVUS_TEST_PG_URL must end with /<database>").0.to_owned();
        let name = format!("antevus_proxy_test_{}", std::process::id());
        // Set up on a thread of its own: the tests already run inside a runtime.
        std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&server, tokio_postgres::NoTls).await.expect("connect");
            tokio::spawn(conn);
            client.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).await.expect("drop");
            client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create");
            let url = format!("{base}/{name}");
            let (db, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("connect db");
            tokio::spawn(conn);
            db.batch_execute(
                "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL UNIQUE, qty int4, price numeric,
                  tags text[], doc jsonb, seen timestamptz, ref uuid, ok bool, big int8, ratio float8, blob bytea)",
            )
            .await
            .expect("schema");
            url
        })
        })
        .join()
        .expect("database setup")
    })
    .clone()
}

struct Proxy {
    url: String,
    http: reqwest::Client,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

async fn proxy(adjust: impl FnOnce(&mut ProxyConfig)) -> Proxy {
    let mut config = ProxyConfig::for_tests();
    adjust(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(sql_proxy::run(listener, config, async {
        let _ = rx.await;
    }));
    Proxy {
        url,
        http: reqwest::Client::new(),
        _shutdown: tx,
    }
}

impl Proxy {
    async fn sql_with(
        &self,
        connection: &str,
        body: Value,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}/sql", self.url))
            .header("Neon-Connection-String", connection)
            .json(&body);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = request.send().await.expect("send");
        let status = response.status().as_u16();
        (status, response.json().await.expect("json reply"))
    }

    async fn sql(&self, body: Value) -> (u16, Value) {
        self.sql_with(&database_url(), body, &[]).await
    }
}

#[tokio::test]
async fn single_query_round_trips_types() {
    let p = proxy(|_| {}).await;
    let (status, reply) = p
        .sql(json!({
            "query": "INSERT INTO items (name, qty, price, tags, doc, seen, ref, ok, big, ratio, blob)
                      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                      RETURNING name, qty, price, tags, doc, seen, ref, ok, big, ratio, blob, NULL::text AS nothing",
            "params": ["types", "7", "12.50", ["a", "b"], "{\"k\": [1, 2]}", "2026-01-02T03:04:05.123456Z",
                       "6f1c1f4e-1d2b-4c3d-9e8f-0a1b2c3d4e5f", "true", "9007199254740993", "0.25", "\\xdeadbeef"]
        }))
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["command"], "INSERT");
    assert_eq!(reply["rowCount"], 1);
    let row = &reply["rows"][0];
    assert_eq!(row["name"], "types");
    assert_eq!(row["qty"], 7);
    assert_eq!(row["price"], "12.50");
    assert_eq!(row["tags"], json!(["a", "b"]));
    assert_eq!(row["doc"], json!({ "k": [1, 2] }));
    assert_eq!(row["seen"], "2026-01-02 03:04:05.123456+00");
    assert_eq!(row["ref"], "6f1c1f4e-1d2b-4c3d-9e8f-0a1b2c3d4e5f");
    assert_eq!(row["ok"], true);
    assert_eq!(row["big"], "9007199254740993", "int8 stays exact, as text");
    assert_eq!(row["ratio"], 0.25);
    assert_eq!(row["blob"], "\\xdeadbeef");
    assert_eq!(row["nothing"], Value::Null);
    let fields: Vec<_> = reply["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| f["dataTypeID"].clone())
        .collect();
    assert_eq!(fields[0], 25);
    assert_eq!(fields[5], 1184);

    let (_, raw) = p
        .sql_with(
            &database_url(),
            json!({ "query": "SELECT 1::int4 AS one, true AS yes" }),
            &[
                ("Neon-Raw-Text-Output", "true"),
                ("Neon-Array-Mode", "true"),
            ],
        )
        .await;
    assert_eq!(raw["rows"], json!([["1", "t"]]));
    assert_eq!(raw["rowAsArray"], true);
}

#[tokio::test]
async fn postgres_errors_use_the_neon_format() {
    let p = proxy(|_| {}).await;
    p.sql(json!({ "query": "INSERT INTO items (name) VALUES ($1) ON CONFLICT DO NOTHING", "params": ["dup"] })).await;
    let (status, reply) = p
        .sql(json!({ "query": "INSERT INTO items (name) VALUES ($1)", "params": ["dup"] }))
        .await;
    assert_eq!(status, 400);
    assert_eq!(reply["code"], "23505");
    assert_eq!(reply["constraint"], "items_name_key");
    assert_eq!(reply["table"], "items");
    assert!(
        reply["message"]
            .as_str()
            .expect("message")
            .contains("duplicate key")
    );
    let (status, reply) = p.sql(json!({ "query": "SELEC 1" })).await;
    assert_eq!(status, 400);
    assert_eq!(reply["code"], "42601");
    let (status, reply) = p
        .sql(json!({ "query": "SELECT $1::int4", "params": ["seven"] }))
        .await;
    assert_eq!(status, 400);
    assert_eq!(reply["code"], "22P02", "{reply}");
    let (status, reply) = p
        .sql(json!({ "query": "SELECT $1::int4 AS a", "params": [] }))
        .await;
    assert_eq!(status, 400);
    assert_eq!(reply["code"], "08P01", "{reply}");
}

#[tokio::test]
async fn a_failing_batch_rolls_back_entirely() {
    let p = proxy(|_| {}).await;
    let (status, reply) = p
        .sql(json!({ "queries": [
            { "query": "INSERT INTO items (name) VALUES ($1)", "params": ["batch-1"] },
            { "query": "INSERT INTO items (name) VALUES ($1)", "params": ["batch-1"] }
        ]}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(reply["code"], "23505");
    let (_, reply) = p
        .sql(json!({ "query": "SELECT count(*) AS n FROM items WHERE name = 'batch-1'" }))
        .await;
    assert_eq!(
        reply["rows"][0]["n"], "0",
        "the first insert was rolled back"
    );

    let (status, reply) = p
        .sql_with(
            &database_url(),
            json!({ "queries": [
                { "query": "INSERT INTO items (name) VALUES ($1) RETURNING id", "params": ["batch-2"] },
                { "query": "SELECT count(*) AS n FROM items WHERE name = $1", "params": ["batch-2"] }
            ]}),
            &[("Neon-Batch-Isolation-Level", "Serializable")],
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["results"][1]["rows"][0]["n"], "1");
    let (status, reply) = p
        .sql_with(
            &database_url(),
            json!({ "queries": [{ "query": "INSERT INTO items (name) VALUES ('ro')" }] }),
            &[("Neon-Batch-Read-Only", "true")],
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        reply["code"], "25006",
        "read-only transaction refuses writes: {reply}"
    );
}

#[tokio::test]
async fn statement_timeout_is_enforced() {
    let p = proxy(|c| c.statement_timeout_ms = 200).await;
    let (status, reply) = p.sql(json!({ "query": "SELECT pg_sleep(5)" })).await;
    assert_eq!(status, 400);
    assert_eq!(reply["code"], "57014", "{reply}");
    let (status, _) = p.sql(json!({ "query": "SELECT 1" })).await;
    assert_eq!(status, 200, "the connection is usable afterwards");
}

#[tokio::test]
async fn pool_exhaustion_waits_then_times_out_cleanly() {
    let p = proxy(|c| {
        c.pool_size = 1;
        c.pool_timeout_ms = 300;
    })
    .await;
    let holder = {
        let http = p.http.clone();
        let url = format!("{}/sql", p.url);
        tokio::spawn(async move {
            http.post(url)
                .header("Neon-Connection-String", database_url())
                .json(&json!({ "query": "SELECT pg_sleep(1.5)" }))
                .send()
                .await
                .map(|r| r.status().as_u16())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let (status, reply) = p.sql(json!({ "query": "SELECT 1" })).await;
    assert_eq!(status, 503, "{reply}");
    assert!(
        reply["message"]
            .as_str()
            .expect("message")
            .contains("timed out"),
        "{reply}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "it waited for a connection first"
    );
    assert_eq!(holder.await.expect("join").expect("holder"), 200);
    let (status, _) = p.sql(json!({ "query": "SELECT 1" })).await;
    assert_eq!(
        status, 200,
        "the pool serves again once the connection is back"
    );
}

#[tokio::test]
async fn size_caps_answer_413_and_507() {
    let p = proxy(|c| {
        c.max_request_bytes = 4096;
        c.max_response_bytes = 8192;
    })
    .await;
    let (status, reply) = p
        .sql(json!({ "query": format!("SELECT '{}'", "x".repeat(5000)) }))
        .await;
    assert_eq!(status, 413, "{reply}");
    let (status, reply) = p
        .sql(json!({ "query": "SELECT repeat('y', 100) FROM generate_series(1, 200)" }))
        .await;
    assert_eq!(status, 507, "{reply}");
    assert!(
        reply["message"]
            .as_str()
            .expect("message")
            .contains("too large")
    );
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let p = proxy(|_| {}).await;
    let post = |body: &'static str, connection: Option<String>| {
        let mut request = p.http.post(format!("{}/sql", p.url)).body(body);
        if let Some(c) = connection {
            request = request.header("Neon-Connection-String", c);
        }
        request.send()
    };
    let response = post("not json", Some(database_url())).await.expect("send");
    assert_eq!(response.status().as_u16(), 400);
    let reply: Value = response.json().await.expect("json");
    assert!(
        reply["message"]
            .as_str()
            .expect("message")
            .contains("not a valid SQL request")
    );

    let response = post("{\"query\": \"SELECT 1\"}", None).await.expect("send");
    assert_eq!(response.status().as_u16(), 400);
    let reply: Value = response.json().await.expect("json");
    assert!(
        reply["message"]
            .as_str()
            .expect("message")
            .contains("Neon-Connection-String")
    );

    let elsewhere = database_url().replace("127.0.0.1", "10.1.2.3");
    let (status, reply) = p
        .sql_with(&elsewhere, json!({ "query": "SELECT 1" }), &[])
        .await;
    assert_eq!(status, 403, "{reply}");
    assert!(
        reply["message"]
            .as_str()
            .expect("message")
            .contains("not allowed")
    );

    let url = database_url();
    let (scheme_user, rest) = url.split_once('@').expect("url has credentials");
    let (user_part, _) = scheme_user.rsplit_once(':').expect("password");
    let wrong = format!("{user_part}:definitely-wrong@{rest}");
    let (status, reply) = p
        .sql_with(&wrong, json!({ "query": "SELECT 1" }), &[])
        .await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["code"], "28P01", "{reply}");

    let (status, _) = p
        .sql_with("not a url", json!({ "query": "SELECT 1" }), &[])
        .await;
    assert_eq!(status, 400);

    let health: Value = p
        .http
        .get(format!("{}/healthz", p.url))
        .send()
        .await
        .expect("healthz")
        .json()
        .await
        .expect("json");
    assert_eq!(health["status"], "ok");
    let metrics = p
        .http
        .get(format!("{}/metrics", p.url))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("sql_proxy_requests_total"), "{metrics}");
    assert!(metrics.contains("outcome=\"bad_request\""), "{metrics}");
    assert!(metrics.contains("outcome=\"forbidden\""), "{metrics}");
}

#[test]
fn the_binary_shuts_down_gracefully_on_sigterm() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sql-proxy"))
        .env("SQL_PROXY_LISTEN", format!("127.0.0.1:{port}"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start sql-proxy");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "sql-proxy did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "graceful exit expected, got {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sql-proxy did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn invalid_configuration_is_refused_at_start() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sql-proxy"))
        .env("SQL_PROXY_POOL_SIZE", "0")
        .output()
        .expect("run sql-proxy");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid configuration"));
}
