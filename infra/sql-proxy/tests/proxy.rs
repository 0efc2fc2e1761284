//! Integration tests of the proxy against a real PostgreSQL (started by
//! `cargo xtask test`, which sets ANTEVUS_TEST_PG_URL). Each test runs its own
//! proxy in process, with its own limits, over one database made for this run.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};
use shared::config::HmacKey;
use shared::db::signing;
use sql_proxy::ProxyConfig;
use sql_proxy::config::Pair;

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
            // The databases of earlier runs whose process is gone (a test
            // binary has no hook after its last test; `cargo xtask test`
            // also sweeps them when the run ends).
            let leftovers = client
                .query("SELECT datname FROM pg_database WHERE datname LIKE 'antevus\\_proxy\\_test\\_%'", &[])
                .await
                .expect("list databases");
            for row in leftovers {
                let old: String = row.get(0);
                let pid = old.rsplit('_').next().unwrap_or_default();
                if old != name && !std::path::Path::new("/proc").join(pid).exists() {
                    client.batch_execute(&format!("DROP DATABASE IF EXISTS {old} WITH (FORCE)")).await.expect("drop a leftover");
                }
            }
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

/// Whether an error reply's message contains `text`.
fn says(reply: &Value, text: &str) -> bool {
    reply["message"].as_str().is_some_and(|m| m.contains(text))
}

/// The user@database a connection string reaches.
fn pair_of(url: &str) -> Pair {
    let config: tokio_postgres::Config = url.parse().expect("a postgres URL");
    Pair::new(
        config.get_user().expect("a user"),
        config.get_dbname().expect("a database"),
    )
}

struct Proxy {
    url: String,
    http: reqwest::Client,
    key: HmacKey,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

/// A fresh random key, as a deployment would have.
fn random_key(kid: &str) -> HmacKey {
    let mut secret = vec![0u8; 32];
    getrandom::fill(&mut secret).expect("randomness");
    HmacKey {
        kid: kid.into(),
        secret,
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

async fn proxy(adjust: impl FnOnce(&mut ProxyConfig)) -> Proxy {
    let key = random_key("p1");
    let mut config = ProxyConfig::for_tests(vec![pair_of(&database_url())], vec![key.clone()]);
    // These tests reach their database as its superuser.
    config.allow_superuser_for_tests = true;
    adjust(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let (scheme, http) = match config.tls_cert {
        Some(_) => ("https", client_trusting("ca.pem")),
        None => ("http", reqwest::Client::new()),
    };
    let url = format!("{scheme}://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(sql_proxy::run(listener, config, async {
        let _ = rx.await;
    }));
    Proxy {
        url,
        http,
        key,
        _shutdown: tx,
    }
}

/// The suite's certificates (`cargo xtask test` makes them): `ca.pem` and
/// `server.{pem,key}` for localhost and 127.0.0.1, and an unrelated
/// `other-ca.pem` with `other-server.{pem,key}`.
fn tls_dir() -> std::path::PathBuf {
    std::env::var("ANTEVUS_TEST_TLS_DIR")
        .expect("ANTEVUS_TEST_TLS_DIR is not set: run the tests through `cargo xtask test`")
        .into()
}

/// An HTTPS client that trusts the CA in `ca` (a file of [`tls_dir`]).
fn client_trusting(ca: &str) -> reqwest::Client {
    let pem = std::fs::read(tls_dir().join(ca)).expect("the test CA");
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("a PEM certificate"))
        .build()
        .expect("a client")
}

impl Proxy {
    /// The signature header for `body` with `headers`, by `key` at `ts`.
    fn signature(&self, key: &HmacKey, ts: i64, headers: &HeaderMap, body: &[u8]) -> String {
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).expect("randomness");
        signing::Request {
            method: "POST",
            path: "/sql",
            headers,
            body,
        }
        .sign(key, ts, &nonce)
    }

    /// `POST /sql` with `headers` and `body`, signed by the proxy's key now.
    fn signed(&self, headers: &[(&str, &str)], body: Vec<u8>) -> reqwest::RequestBuilder {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(
                HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
                HeaderValue::from_str(value).expect("a header value"),
            );
        }
        let signature = self.signature(&self.key, unix_now(), &map, &body);
        map.insert(
            signing::SIGNATURE,
            HeaderValue::from_str(&signature).expect("ascii"),
        );
        self.http
            .post(format!("{}/sql", self.url))
            .headers(map)
            .body(body)
    }

    async fn reply(request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.expect("send");
        let status = response.status().as_u16();
        (status, response.json().await.expect("json reply"))
    }

    async fn sql_with(
        &self,
        connection: &str,
        body: Value,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut all = vec![("neon-connection-string", connection)];
        all.extend_from_slice(headers);
        let body = serde_json::to_vec(&body).expect("json");
        Self::reply(self.signed(&all, body)).await
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
    assert!(says(&reply, "duplicate key"));
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
        let url = database_url();
        let request = p.signed(
            &[("neon-connection-string", &url)],
            br#"{"query": "SELECT pg_sleep(1.5)"}"#.to_vec(),
        );
        tokio::spawn(async move { request.send().await.map(|r| r.status().as_u16()) })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let (status, reply) = p.sql(json!({ "query": "SELECT 1" })).await;
    assert_eq!(status, 503, "{reply}");
    assert!(says(&reply, "timed out"), "{reply}");
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
    assert!(says(&reply, "too large"));
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let p = proxy(|_| {}).await;
    let url = database_url();
    let post = |body: &'static str, connection: Option<&str>| {
        let headers: Vec<_> = connection
            .map(|c| ("neon-connection-string", c))
            .into_iter()
            .collect();
        p.signed(&headers, body.as_bytes().to_vec()).send()
    };
    let response = post("not json", Some(&url)).await.expect("send");
    assert_eq!(response.status().as_u16(), 400);
    let reply: Value = response.json().await.expect("json");
    assert!(says(&reply, "not a valid SQL request"));

    let response = post("{\"query\": \"SELECT 1\"}", None).await.expect("send");
    assert_eq!(response.status().as_u16(), 400);
    let reply: Value = response.json().await.expect("json");
    assert!(says(&reply, "Neon-Connection-String"));

    let elsewhere = database_url().replace("127.0.0.1", "10.1.2.3");
    let (status, reply) = p
        .sql_with(&elsewhere, json!({ "query": "SELECT 1" }), &[])
        .await;
    assert_eq!(status, 403, "{reply}");
    assert!(says(&reply, "not allowed"));

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

/// The proxy binary, to listen on a free loopback port (returned) for one
/// allowed pair with a fresh key; its log discarded.
fn binary() -> (std::process::Command, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sql-proxy"));
    command
        .env("SQL_PROXY_LISTEN", format!("127.0.0.1:{port}"))
        .env("SQL_PROXY_ALLOW", "antevus_app@antevus")
        .env("SQL_PROXY_KEYS", env_key(&random_key("p1")))
        .stderr(std::process::Stdio::null());
    (command, port)
}

#[test]
fn the_binary_shuts_down_gracefully_on_sigterm() {
    let (mut command, port) = binary();
    let mut child = command.spawn().expect("start sql-proxy");
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

/// A key as `SQL_PROXY_KEYS` and `SQL_PROXY_KEY` spell it.
fn env_key(key: &HmacKey) -> String {
    use base64::Engine as _;
    format!(
        "{}:{}",
        key.kid,
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&key.secret)
    )
}

#[test]
fn invalid_configuration_is_refused_at_start() {
    let key = env_key(&random_key("p1"));
    for (vars, expected) in [
        (
            vec![
                ("SQL_PROXY_POOL_SIZE", "0"),
                ("SQL_PROXY_ALLOW", "a@b"),
                ("SQL_PROXY_KEYS", key.as_str()),
            ],
            "pool size",
        ),
        (vec![("SQL_PROXY_ALLOW", "a@b")], "SQL_PROXY_KEYS"),
        (vec![("SQL_PROXY_KEYS", key.as_str())], "user@database"),
        (
            vec![
                ("SQL_PROXY_ALLOW", "nobody"),
                ("SQL_PROXY_KEYS", key.as_str()),
            ],
            "user@database",
        ),
        (
            vec![("SQL_PROXY_ALLOW", "a@b"), ("SQL_PROXY_KEYS", "p1:c2hvcnQ")],
            "shorter than 256 bits",
        ),
        (
            vec![
                ("SQL_PROXY_ALLOW", "a@b"),
                ("SQL_PROXY_KEYS", key.as_str()),
                ("SQL_PROXY_LISTEN", "0.0.0.0:0"),
            ],
            "needs TLS",
        ),
        (
            vec![
                ("SQL_PROXY_ALLOW", "a@b"),
                ("SQL_PROXY_KEYS", key.as_str()),
                ("SQL_PROXY_TLS_CERT", "/x.pem"),
            ],
            "go together",
        ),
        (
            vec![
                ("SQL_PROXY_ALLOW", "a@b"),
                ("SQL_PROXY_KEYS", key.as_str()),
                ("SQL_PROXY_ALLOWED_HOSTS", "db=sometimes"),
            ],
            "verify-full",
        ),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_sql-proxy"))
            .env_remove("SQL_PROXY_KEYS")
            .env_remove("SQL_PROXY_ALLOW")
            .envs(vars.iter().copied())
            .output()
            .expect("run sql-proxy");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{vars:?}");
        assert!(stderr.contains(expected), "{vars:?}: {stderr}");
        assert!(
            !stderr.contains(&key[3..]),
            "the key is never printed: {stderr}"
        );
    }
}

#[tokio::test]
async fn transaction_control_and_session_changes_are_refused() {
    let p = proxy(|_| {}).await;
    for query in [
        "BEGIN",
        "start transaction read write",
        "COMMIT",
        "ROLLBACK",
        "SAVEPOINT a",
        "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        "SET ROLE antevus_nobody",
        "SET SESSION AUTHORIZATION DEFAULT",
        "set search_path = nowhere",
        "RESET ALL",
        "DISCARD ALL",
        "DEALLOCATE ALL",
        "/* a comment first */ begin",
    ] {
        let (status, reply) = p.sql(json!({ "query": query })).await;
        assert_eq!(status, 400, "{query}: {reply}");
        assert_eq!(reply["code"], "0A000", "{query}: {reply}");
        assert_eq!(reply["severity"], "ERROR", "{query}: {reply}");
        assert!(says(&reply, "not supported"), "{query}: {reply}");
    }
    // One refused statement in a batch: none of the batch runs.
    let (status, reply) = p
        .sql(json!({ "queries": [
            { "query": "INSERT INTO items (name) VALUES ($1)", "params": ["guarded-1"] },
            { "query": "COMMIT" },
            { "query": "INSERT INTO items (name) VALUES ($1)", "params": ["guarded-2"] }
        ]}))
        .await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["code"], "0A000", "{reply}");
    assert!(says(&reply, "query 1 of the batch"), "{reply}");
    let (_, reply) = p
        .sql(json!({ "query": "SELECT count(*) AS n FROM items WHERE name LIKE 'guarded-%'" }))
        .await;
    assert_eq!(reply["rows"][0]["n"], "0", "{reply}");
    // SET LOCAL is a transaction's own: allowed in a batch.
    let (status, reply) = p
        .sql(json!({ "queries": [
            { "query": "SET LOCAL statement_timeout = '1s'" },
            { "query": "SELECT current_setting('statement_timeout') AS t" }
        ]}))
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["results"][1]["rows"][0]["t"], "1s", "{reply}");
}

#[tokio::test]
async fn connections_return_to_the_pool_clean() {
    // One connection, so every request below shares it.
    let p = proxy(|config| config.pool_size = 1).await;
    let (status, first) = p
        .sql(json!({ "query":
            "SELECT set_config('search_path', 'nowhere', false) AS path, pg_backend_pid() AS pid" }))
        .await;
    assert_eq!(status, 200, "{first}");
    let (status, reply) = p
        .sql(json!({ "query": "CREATE TEMPORARY TABLE leftover (x int4)" }))
        .await;
    assert_eq!(status, 200, "{reply}");
    let (status, reply) = p
        .sql(json!({ "query": "SELECT pg_advisory_lock(42)" }))
        .await;
    assert_eq!(status, 200, "{reply}");
    let (status, reply) = p
        .sql(json!({ "query":
            "SELECT pg_backend_pid() AS pid, current_setting('search_path') AS path,
                    to_regclass('pg_temp.leftover') IS NULL AS no_temp_table,
                    (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
                       AND pid = pg_backend_pid()) AS advisory_locks" }))
        .await;
    assert_eq!(status, 200, "{reply}");
    let row = &reply["rows"][0];
    assert_eq!(row["pid"], first["rows"][0]["pid"], "the same connection");
    assert_eq!(row["path"], "\"$user\", public", "{row}");
    assert_eq!(row["no_temp_table"], true, "{row}");
    assert_eq!(row["advisory_locks"], "0", "{row}");
}

#[tokio::test]
async fn only_allowed_pairs_are_reached_and_never_a_superuser() {
    let elsewhere = proxy(|config| {
        config.allow = vec![Pair::new("antevus_app", "antevus")];
    })
    .await;
    let (status, reply) = elsewhere.sql(json!({ "query": "SELECT 1" })).await;
    assert_eq!(status, 403, "{reply}");
    let Pair { user, database } = pair_of(&database_url());
    assert_eq!(
        reply["message"],
        format!("{user}@{database} is not allowed by this proxy")
    );

    // The pair allowed, but its role is a superuser: refused on connecting.
    let production = proxy(|config| config.allow_superuser_for_tests = false).await;
    let (status, reply) = production.sql(json!({ "query": "SELECT 1" })).await;
    assert_eq!(status, 403, "{reply}");
    assert_eq!(reply["message"], sql_proxy::pools::PRIVILEGED, "{reply}");

    // Nor a role that bypasses row-level security, and a plain role is
    // reached (the same proxy settings otherwise).
    let admin = proxy(|_| {}).await;
    let mut suffix = [0u8; 4];
    getrandom::fill(&mut suffix).expect("randomness");
    let suffix = u32::from_le_bytes(suffix);
    let (bypass, plain) = (
        format!("proxy_bypass_{suffix}"),
        format!("proxy_plain_{suffix}"),
    );
    for (role, attribute) in [(&bypass, "BYPASSRLS"), (&plain, "NOBYPASSRLS")] {
        let (status, reply) = admin
            .sql(json!({ "query": format!("CREATE ROLE {role} LOGIN {attribute} PASSWORD 'pw-{suffix}'") }))
            .await;
        assert_eq!(status, 200, "{reply}");
    }
    let url = database_url();
    let (rest, database) = url.rsplit_once('/').expect("a database in the URL");
    let host = rest.rsplit_once('@').expect("credentials in the URL").1;
    for (role, expected) in [(&bypass, 403), (&plain, 200)] {
        let p = proxy(|config| {
            config.allow = vec![Pair::new(role.as_str(), database)];
            config.allow_superuser_for_tests = false;
        })
        .await;
        let connection = format!("postgres://{role}:pw-{suffix}@{host}/{database}");
        let (status, reply) = p
            .sql_with(&connection, json!({ "query": "SELECT 1 AS one" }), &[])
            .await;
        assert_eq!(status, expected, "{role}: {reply}");
        if expected == 403 {
            assert_eq!(reply["message"], sql_proxy::pools::PRIVILEGED, "{reply}");
        }
    }
    for role in [&bypass, &plain] {
        admin
            .sql(json!({ "query": format!("DROP ROLE {role}") }))
            .await;
    }
}

#[tokio::test]
async fn callers_must_sign_with_the_proxys_key() {
    let p = proxy(|_| {}).await;
    let url = database_url();
    let body = br#"{"query": "SELECT 1 AS one"}"#.to_vec();
    let connection = [("neon-connection-string", url.as_str())];

    // The database password alone is not enough.
    let unsigned = p
        .http
        .post(format!("{}/sql", p.url))
        .header("Neon-Connection-String", &url)
        .body(body.clone());
    let (status, reply) = Proxy::reply(unsigned).await;
    assert_eq!(status, 401, "{reply}");
    assert!(says(&reply, "not signed"), "{reply}");

    // Signed with a key the proxy does not hold; or too long ago.
    let mut headers = HeaderMap::new();
    headers.insert(
        "neon-connection-string",
        HeaderValue::from_str(&url).expect("value"),
    );
    for (key, ts, expected) in [
        (random_key("p1"), unix_now(), "does not verify"),
        (random_key("other"), unix_now(), "does not know"),
        (p.key.clone(), unix_now() - 120, "clocks must agree"),
    ] {
        let signature = p.signature(&key, ts, &headers, &body);
        let request = p
            .http
            .post(format!("{}/sql", p.url))
            .headers(headers.clone())
            .header(signing::SIGNATURE, signature)
            .body(body.clone());
        let (status, reply) = Proxy::reply(request).await;
        assert_eq!(status, 401, "{reply}");
        assert!(says(&reply, expected), "{expected}: {reply}");
    }

    // A signed request runs once; the same request again is a replay.
    let request = p.signed(&connection, body.clone());
    let again = request.try_clone().expect("a clonable request");
    let (status, reply) = Proxy::reply(request).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["rows"][0]["one"], 1);
    let (status, reply) = Proxy::reply(again).await;
    assert_eq!(status, 401, "{reply}");
    assert!(says(&reply, "replayed"), "{reply}");
}

#[tokio::test]
async fn repeated_failures_are_limited_but_good_callers_still_pass() {
    let p = proxy(|_| {}).await;
    let url = database_url();
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..12 {
        let response = p
            .http
            .post(format!("{}/sql", p.url))
            .header("Neon-Connection-String", &url)
            .header(signing::SIGNATURE, "v1,key=p1,ts=0,nonce=00,sig=00")
            .body("{}")
            .send()
            .await
            .expect("send");
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            let reply: Value = response.json().await.expect("json");
            assert!(says(&reply, "too many failed"), "{reply}");
        }
    }
    assert_eq!(&statuses[..10], &[401; 10], "{statuses:?}");
    assert_eq!(&statuses[10..], &[429; 2], "{statuses:?}");
    assert!(retry_after.is_some_and(|s| s >= 1), "{retry_after:?}");
    // The same address, signing properly, is served.
    let (status, reply) = p.sql(json!({ "query": "SELECT 1 AS one" })).await;
    assert_eq!(status, 200, "{reply}");
}

/// A small deterministic generator for the value sweeps below.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> i64 {
        (self.next() % n) as i64
    }
}

/// Asserts every row's raw value `v` is PostgreSQL's own text `t`.
async fn renders_as_text(p: &Proxy, query: &str, params: Value) -> usize {
    let (status, reply) = p
        .sql_with(
            &database_url(),
            json!({ "query": query, "params": params }),
            &[("neon-raw-text-output", "true")],
        )
        .await;
    assert_eq!(status, 200, "{query}: {reply}");
    let rows = reply["rows"].as_array().expect("rows");
    for row in rows {
        assert_eq!(row["v"], row["t"], "{query}: {row}");
    }
    rows.len()
}

#[tokio::test]
async fn values_render_exactly_as_postgres_writes_them() {
    let p = proxy(|_| {}).await;
    let expressions = [
        "0::int2",
        "(-32768)::int2",
        "2147483647::int4",
        "(-9223372036854775808)::int8",
        "4294967295::oid",
        "true",
        "false",
        "'a'::\"char\"",
        "'pg_class'::name",
        "0.1::float8",
        "'-0'::float8",
        "1e15::float8",
        "1e14::float8",
        "1.5e-7::float8",
        "'NaN'::float8",
        "'Infinity'::float8",
        "'-Infinity'::float8",
        "5e-324::float8",
        "1.7976931348623157e308::float8",
        "0.1::float4",
        "123456.7::float4",
        "1e6::float4",
        "3.4028235e38::float4",
        "1.17549435e-38::float4",
        "0::numeric",
        "12.50::numeric",
        "(-0.000123)::numeric",
        "1e-20::numeric",
        "123456789012345678901234567890.123456789::numeric",
        "'NaN'::numeric",
        "'Infinity'::numeric",
        "'-Infinity'::numeric",
        "10000::numeric",
        "1e30::numeric",
        "'he said \"hi\", \\ ok'::text",
        "''::text",
        "'NULL'::text",
        "E'line\\nbreak'::text",
        "'ab '::char(4)",
        "'x'::varchar",
        "ARRAY['a', 'b,c', 'say \"hi\"', NULL, '', 'NULL', 'back\\slash', 'two words', '{x}']::text[]",
        "ARRAY[[1, 2], [3, 4]]::int4[]",
        "'[0:1]={1,2}'::int4[]",
        "'{}'::int4[]",
        "ARRAY[1.5, 'NaN', '-Infinity']::float8[]",
        "ARRAY[true, false]",
        "ARRAY['2026-01-02 03:04:05+00'::timestamptz]",
        "ARRAY['{\"a\": 1}'::jsonb]",
        "ARRAY[NULL::int4]",
        "ARRAY['6f1c1f4e-1d2b-4c3d-9e8f-0a1b2c3d4e5f'::uuid]",
        "ARRAY[12.5::numeric, NULL]",
        "ARRAY['1 day'::interval]",
        "ARRAY['\\x00ff'::bytea]",
        "'\\xdeadbeef'::bytea",
        "''::bytea",
        "'2026-03-01'::date",
        "'0044-03-15 BC'::date",
        "'infinity'::date",
        "'10000-01-01'::date",
        "'4713-01-01 BC'::date",
        "'2026-01-02 03:04:05.123456'::timestamp",
        "'2026-01-02 03:04:05.1'::timestamp",
        "'0044-03-15 12:00:00 BC'::timestamp",
        "'-infinity'::timestamp",
        "'2026-01-02 03:04:05.5+02'::timestamptz",
        "'1900-01-01 00:00:00+00'::timestamptz",
        "'infinity'::timestamptz",
        "'03:04:05.123'::time",
        "'24:00:00'::time",
        "'03:04:05+05:30'::timetz",
        "'03:04:05-08'::timetz",
        "'03:04:05.25+05:30:15'::timetz",
        "'1 year 2 mons 3 days 04:05:06.789'::interval",
        "'-1 days +01:00:00'::interval",
        "'-1 mons +2 days'::interval",
        "'0'::interval",
        "'100 hours'::interval",
        "'-3 hours -2 minutes'::interval",
        "'1 mon -1 day'::interval",
        "'-1 year -2 mons'::interval",
        "'1.5 seconds'::interval",
        "'-0.000001 seconds'::interval",
        "'1 day -00:00:01'::interval",
        "'6f1c1f4e-1d2b-4c3d-9e8f-0a1b2c3d4e5f'::uuid",
        "'{\"b\": 1,  \"a\" : [1,2]}'::json",
        "'{\"b\": 1, \"a\": [1, 2], \"c\": null}'::jsonb",
        "'192.168.0.1'::inet",
        "'192.168.0.0/24'::inet",
        "'10.0.0.0/8'::cidr",
        "'2001:db8::1'::inet",
        "'::ffff:1.2.3.4'::inet",
        "'::1.2.3.4'::inet",
        "'::1'::inet",
        "'2001:db8::/32'::cidr",
        "'fe80::1:0:0:1'::inet",
        "'08:00:2b:01:02:03'::macaddr",
        "pg_sleep(0)",
    ];
    for expression in expressions {
        // format('%s') writes the value with its type's output function (a
        // cast to text does not always: booleans, inet).
        let query = format!("SELECT {expression} AS v, format('%s', {expression}) AS t");
        renders_as_text(&p, &query, json!([])).await;
    }

    // Sweeps of random values, each against PostgreSQL's own text of it.
    let mut rng = Xorshift(0x9E37_79B9_7F4A_7C15);
    let floats: Vec<f64> = std::iter::repeat_with(|| f64::from_bits(rng.next()))
        .filter(|f| f.is_finite())
        .take(2_000)
        .collect();
    let sweeps = [
        (
            "SELECT v, format('%s', v) AS t FROM unnest($1::float8[]) AS v",
            json!([floats]),
        ),
        (
            "SELECT v, format('%s', v) AS t FROM unnest($1::float4[]) AS v",
            json!([floats
                .iter()
                .map(|f| (*f as f32) as f64)
                .filter(|f| f.is_finite())
                .collect::<Vec<_>>()]),
        ),
        (
            "SELECT v, format('%s', v) AS t FROM unnest($1::numeric[]) AS v",
            json!([(0..500)
                .map(|_| {
                    let whole = rng.next() % 10u64.pow(rng.below(19) as u32 + 1);
                    let scale = rng.below(25) as usize;
                    let fraction: String = (0..scale)
                        .map(|_| char::from(b'0' + rng.below(10) as u8))
                        .collect();
                    let sign = if rng.below(2) == 0 { "-" } else { "" };
                    let point = if fraction.is_empty() { "" } else { "." };
                    format!("{sign}{whole}{point}{fraction}e{}", rng.below(40) - 20)
                })
                .collect::<Vec<_>>()]),
        ),
        (
            "SELECT v, format('%s', v) AS t FROM (SELECT make_interval(months => m, days => d, secs => s) AS v \
          FROM unnest($1::int4[], $2::int4[], $3::float8[]) AS u(m, d, s)) AS q",
            json!([
                (0..500)
                    .map(|_| rng.below(2_000) - 1_000)
                    .collect::<Vec<_>>(),
                (0..500)
                    .map(|_| if rng.below(3) == 0 {
                        0
                    } else {
                        rng.below(2_000) - 1_000
                    })
                    .collect::<Vec<_>>(),
                (0..500)
                    .map(|_| if rng.below(3) == 0 {
                        0.0
                    } else {
                        (rng.below(2_000_000_000_000) - 1_000_000_000_000) as f64 / 1e6
                    })
                    .collect::<Vec<_>>(),
            ]),
        ),
        (
            "SELECT v, format('%s', v) AS t FROM (SELECT to_timestamp(s) AS v FROM unnest($1::float8[]) AS s) AS q",
            json!([(0..500)
                .map(
                    |_| (rng.below(400_000_000_000_000_000) - 200_000_000_000_000_000) as f64 / 1e6
                )
                .collect::<Vec<_>>()]),
        ),
        (
            "SELECT v, format('%s', v) AS t FROM (SELECT to_timestamp(s)::timestamp AS v FROM unnest($1::float8[]) AS s) AS q",
            json!([(0..500)
                .map(
                    |_| (rng.below(400_000_000_000_000_000) - 200_000_000_000_000_000) as f64 / 1e6
                )
                .collect::<Vec<_>>()]),
        ),
        (
            "SELECT v, format('%s', v) AS t FROM (SELECT ('2000-01-01'::date + d) AS v FROM unnest($1::int4[]) AS d) AS q",
            json!([(0..500)
                .map(|_| rng.below(4_000_000) - 2_400_000)
                .collect::<Vec<_>>()]),
        ),
        (
            "SELECT v, format('%s', v) AS t FROM (SELECT ARRAY[x, y, NULL] AS v \
          FROM unnest($1::text[], $2::text[]) AS u(x, y)) AS q",
            {
                let mut word = || -> String {
                    (0..rng.below(6))
                        .map(|_| char::from(b" ,\"\\{}aNUL1\t"[rng.below(12) as usize]))
                        .collect()
                };
                json!([
                    (0..300).map(|_| word()).collect::<Vec<_>>(),
                    (0..300).map(|_| word()).collect::<Vec<_>>()
                ])
            },
        ),
    ];
    for (query, params) in sweeps {
        let rows = renders_as_text(&p, query, params).await;
        assert!(rows >= 200, "{query}: {rows} rows");
    }
}

#[tokio::test]
async fn values_convert_to_json_as_neon_converts_them() {
    let p = proxy(|_| {}).await;
    let (status, reply) = p
        .sql(json!({ "query":
            "SELECT 1::int2 AS small, 9007199254740993::int8 AS big, 0.5::float8 AS half,
                    'NaN'::float8 AS nan, '-Infinity'::float4 AS minus_inf, true AS yes,
                    12.50::numeric AS price, '{\"k\": [1, 2]}'::jsonb AS doc,
                    ARRAY[[1, NULL], [3, 4]]::int4[] AS grid, ARRAY['a,b', NULL]::text[] AS tags,
                    ARRAY['NaN', 1.5]::float8[] AS floats, '[0:0]={7}'::int4[] AS shifted,
                    '1 day 02:00:00'::interval AS span, '2026-01-02 03:04:05+00'::timestamptz AS at,
                    NULL::int4 AS nothing" }))
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply["rows"][0],
        json!({
            "small": 1, "big": "9007199254740993", "half": 0.5, "nan": "NaN",
            "minus_inf": "-Infinity", "yes": true, "price": "12.50", "doc": {"k": [1, 2]},
            "grid": [[1, null], [3, 4]], "tags": ["a,b", null], "floats": ["NaN", 1.5],
            "shifted": [7], "span": "1 day 02:00:00", "at": "2026-01-02 03:04:05+00",
            "nothing": null
        })
    );
}

#[tokio::test]
async fn parameters_are_read_by_postgres_itself() {
    let p = proxy(|_| {}).await;
    let (status, reply) = p
        .sql(json!({
            "query": "SELECT $1::int4[] AS a, $2::text[] AS b, $3::interval AS c, $4::inet AS d,
                             $5::numeric AS e, $6::jsonb AS f, $7::float8 AS g, $8::int8[] AS h,
                             $9::date AS i, $10::bool AS j",
            "params": ["{1,2,NULL}", ["x,y", "say \"hi\"", null], "1 day 2 hours", "10.0.0.1/8",
                       "123456789012345678901234567890.5", {"k": [1, "two"]}, "NaN",
                       [[1, 2], [3, 4]], "2026-03-01", "yes"]
        }))
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply["rows"][0],
        json!({
            "a": [1, 2, null], "b": ["x,y", "say \"hi\"", null], "c": "1 day 02:00:00",
            "d": "10.0.0.1/8", "e": "123456789012345678901234567890.5", "f": {"k": [1, "two"]},
            "g": "NaN", "h": [["1", "2"], ["3", "4"]], "i": "2026-03-01", "j": true
        })
    );
    // A value that does not read as its type is PostgreSQL's own error.
    let (status, reply) = p
        .sql(json!({ "query": "SELECT $1::interval", "params": ["soon"] }))
        .await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["code"], "22007", "{reply}");
}

#[tokio::test]
async fn neons_own_driver_works_against_the_proxy() {
    let p = proxy(|_| {}).await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/neon");
    assert!(
        dir.join("node_modules/@neondatabase/serverless").exists(),
        "Neon's driver is not installed in {}: run `cargo xtask setup`",
        dir.display()
    );
    let key = env_key(&p.key);
    let output = tokio::process::Command::new("node")
        .arg("driver.mjs")
        .current_dir(&dir)
        .env("PROXY_URL", format!("{}/sql", p.url))
        .env("PROXY_KEY", key)
        .env("DATABASE_URL", database_url())
        .env("TZ", "UTC")
        .output()
        .await
        .expect("node runs (run `cargo xtask setup`)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{report}");
    assert!(report.contains("# fail 0"), "{report}");
}

#[tokio::test]
async fn the_listener_speaks_tls_with_its_certificate() {
    let dir = tls_dir();
    let p = proxy(|config| {
        config.tls_cert = Some(dir.join("server.pem"));
        config.tls_key = Some(dir.join("server.key"));
    })
    .await;
    assert!(p.url.starts_with("https://"));
    let (status, reply) = p.sql(json!({ "query": "SELECT 1 AS one" })).await;
    assert_eq!(status, 200, "{reply}");
    // A client that trusts another CA does not get through the handshake;
    // plain HTTP gets no answer from a TLS port.
    let stranger = client_trusting("other-ca.pem")
        .get(format!("{}/healthz", p.url))
        .send()
        .await;
    assert!(stranger.is_err(), "{stranger:?}");
    let plain = reqwest::Client::new()
        .get(p.url.replace("https://", "http://") + "/healthz")
        .send()
        .await;
    assert!(plain.map_or(true, |r| !r.status().is_success()));
}

#[tokio::test]
async fn the_listener_reloads_its_certificate_on_sighup() {
    let tls = tls_dir();
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let install = |prefix: &str| {
        std::fs::copy(tls.join(format!("{prefix}server.pem")), &cert)
            .expect("copy the certificate");
        std::fs::copy(tls.join(format!("{prefix}server.key")), &key).expect("copy the key");
    };
    install("");
    let (mut command, port) = binary();
    let mut child = command
        .env("SQL_PROXY_TLS_CERT", &cert)
        .env("SQL_PROXY_TLS_KEY", &key)
        .spawn()
        .expect("start sql-proxy");
    let health = format!("https://127.0.0.1:{port}/healthz");
    let answers = |ca: &'static str| {
        let health = health.clone();
        async move {
            client_trusting(ca)
                .get(&health)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    };
    let hangup = || {
        let status = std::process::Command::new("kill")
            .arg("-HUP")
            .arg(child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !answers("ca.pem").await {
        assert!(Instant::now() < deadline, "sql-proxy did not serve TLS");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!answers("other-ca.pem").await);

    // A broken file: the reload fails and the certificate in use stays.
    std::fs::write(&cert, "not a certificate").expect("write");
    hangup();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        answers("ca.pem").await,
        "still served after a failed reload"
    );

    // A new certificate from another CA: served once reloaded.
    install("other-");
    hangup();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !answers("other-ca.pem").await {
        assert!(
            Instant::now() < deadline,
            "the new certificate was not loaded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!answers("ca.pem").await, "the old certificate is gone");
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn upstream_tls_is_the_proxys_own_setting() {
    use sql_proxy::config::{Upstream, UpstreamTls};
    let tls = tls_dir();
    let url = database_url();
    let through = |tls: UpstreamTls, connection: String| async move {
        let p = proxy(|config| {
            config.allowed_hosts = vec![Upstream {
                host: "127.0.0.1".into(),
                tls,
            }];
        })
        .await;
        p.sql_with(
            &connection,
            json!({ "query": "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" }),
            &[],
        )
        .await
    };
    let (status, reply) = through(UpstreamTls::Disable, url.clone()).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["rows"][0]["ssl"], false, "{reply}");
    // The caller's sslmode is not what decides.
    let (status, reply) = through(UpstreamTls::Disable, format!("{url}?sslmode=require")).await;
    assert_eq!(reply["rows"][0]["ssl"], false, "{status} {reply}");
    for mode in [
        UpstreamTls::Require,
        UpstreamTls::VerifyCa(Some(tls.join("ca.pem"))),
        UpstreamTls::VerifyFull(Some(tls.join("ca.pem"))),
    ] {
        let (status, reply) = through(mode.clone(), format!("{url}?sslmode=disable")).await;
        assert_eq!(status, 200, "{mode:?}: {reply}");
        assert_eq!(
            reply["rows"][0]["ssl"], true,
            "{mode:?}: PostgreSQL must run with ssl=on (cargo xtask pg stop && cargo xtask pg start): {reply}"
        );
    }
    // A server the CA did not sign is not reached.
    for mode in [
        UpstreamTls::VerifyCa(Some(tls.join("other-ca.pem"))),
        UpstreamTls::VerifyFull(Some(tls.join("other-ca.pem"))),
        UpstreamTls::VerifyFull(None),
    ] {
        let (status, reply) = through(mode.clone(), url.clone()).await;
        assert_eq!(status, 503, "{mode:?}: {reply}");
        assert!(says(&reply, "certificate"), "{mode:?}: {reply}");
    }
}
