//! Starting and stopping what a suite needs: a fresh database, the
//! sql-proxy (in process), and one host.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use base64::Engine as _;
use shared::routes::route_for;
use shared::{ApiError, Config};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Which host runs the handlers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKind {
    Native,
    Workerd,
    Wasmtime,
}

/// Repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn required_env(name: &str) -> anyhow::Result<String> {
    std::env::var(name).map_err(|_| {
        anyhow::anyhow!(
            "{name} is not set: run the suites through `cargo xtask test`, which starts PostgreSQL"
        )
    })
}

/// A running host: its base URL and what to stop.
pub struct HostHandle {
    pub base_url: String,
    children: Vec<Child>,
    shutdown: Vec<oneshot::Sender<()>>,
}

impl HostHandle {
    pub fn stop(mut self) {
        for tx in self.shutdown.drain(..) {
            let _ = tx.send(());
        }
        for child in &mut self.children {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
        }
        for child in &mut self.children {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Everything a suite run uses.
pub struct Stack {
    pub kind: HostKind,
    pub base_url: String,
    /// Superuser connection string to this run's database (fixtures, checks).
    pub admin_db_url: String,
    /// Environment given to every function.
    pub function_env: Vec<(String, String)>,
    /// The signing key (for forging hostile tokens in tests).
    /// The key the token-issuing functions sign with (the suite forges
    /// tokens with it).
    pub token_key: shared::config::SigningKey,
    /// The key the functions sign audit events with.
    pub audit_key: shared::config::SigningKey,
    /// The HMAC key of events signed before Ed25519 (the functions that
    /// verify hold it).
    pub legacy_audit_key: shared::config::HmacKey,
    db_name: String,
    server_admin_url: String,
    host: Mutex<Option<HostHandle>>,
    proxy_shutdown: Mutex<Option<oneshot::Sender<()>>>,
    object_store: Mutex<Option<HostHandle>>,
}

/// Bytes up to which run data stays in PostgreSQL in the suites (with
/// object storage configured): larger files go to the S3-compatible server.
pub const INLINE_MAX_BYTES: usize = 1 << 20;
/// The suites' S3 part size (S3's minimum).
pub const S3_PART_BYTES: usize = 5 << 20;

/// Starts moto's S3-compatible server (installed by `cargo xtask setup`)
/// on a free port with an empty bucket `bucket`; returns its endpoint.
pub async fn start_object_store(bucket: &str) -> anyhow::Result<(HostHandle, String)> {
    let server = root().join(".antevus/tools/moto/bin/moto_server");
    if !server.exists() {
        bail!("{} is missing: run `cargo xtask setup`", server.display());
    }
    let port = free_port()?;
    let child = Command::new(&server)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", server.display()))?;
    let handle = HostHandle {
        base_url: format!("http://127.0.0.1:{port}"),
        children: vec![child],
        shutdown: Vec::new(),
    };
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match client
            .put(format!("{}/{bucket}", handle.base_url))
            .send()
            .await
        {
            Ok(response) if response.status().is_success() => break,
            Ok(response) => bail!("creating the test bucket: {}", response.status()),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => bail!("the S3-compatible server did not start: {e}"),
        }
    }
    let endpoint = handle.base_url.clone();
    Ok((handle, endpoint))
}

/// A wire-format SQL request to the proxy at `url` for `connection`, signed
/// with `key` now.
pub fn signed_sql(
    http: &reqwest::Client,
    url: &str,
    key: &shared::config::HmacKey,
    connection: &str,
    body: &serde_json::Value,
) -> anyhow::Result<reqwest::RequestBuilder> {
    let url: reqwest::Url = url.parse()?;
    let payload = serde_json::to_vec(body)?;
    let mut headers = http::HeaderMap::new();
    headers.insert(
        shared::db::wire::CONNECTION_STRING,
        http::HeaderValue::from_str(connection)?,
    );
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    let nonce: [u8; 16] = random_bytes();
    let signature = shared::db::signing::Request {
        method: "POST",
        path: url.path(),
        headers: &headers,
        body: &payload,
    }
    .sign(
        key,
        time::OffsetDateTime::now_utc().unix_timestamp(),
        &nonce,
    );
    headers.insert(
        shared::db::signing::SIGNATURE,
        http::HeaderValue::from_str(&signature)?,
    );
    Ok(http.post(url).headers(headers).body(payload))
}

/// A key as `SQL_PROXY_KEYS` and `SQL_PROXY_KEY` spell it.
pub fn env_key(key: &shared::config::HmacKey) -> String {
    format!(
        "{}:{}",
        key.kid,
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&key.secret)
    )
}

/// 32 random bytes, a fresh key's secret.
pub fn random_secret() -> Vec<u8> {
    random_bytes::<32>().to_vec()
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).unwrap_or_else(|e| panic!("no randomness: {e}"));
    buf
}

impl Stack {
    /// A function's environment variable `name` ("" if unset).
    pub fn function_var(&self, name: &str) -> String {
        self.function_env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// `body` (a wire-format SQL request) for the proxy, as a function
    /// sends it: the application's connection string, signed with the
    /// functions' proxy key.
    pub fn app_sql(
        &self,
        http: &reqwest::Client,
        body: &serde_json::Value,
    ) -> anyhow::Result<reqwest::RequestBuilder> {
        let key = shared::config::parse_keys("SQL_PROXY_KEY", &self.function_var("SQL_PROXY_KEY"))
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .remove(0);
        signed_sql(
            http,
            &self.function_var("SQL_PROXY_URL"),
            &key,
            &self.function_var("DATABASE_URL"),
            body,
        )
    }

    pub async fn start(kind: HostKind) -> anyhow::Result<Stack> {
        let server_admin_url = required_env("ANTEVUS_TEST_PG_URL")?;
        let app_password = required_env("ANTEVUS_TEST_APP_DB_PASSWORD")?;
        let pg =
            tokio_postgres::Config::from_str(&server_admin_url).context("ANTEVUS_TEST_PG_URL")?;
        let host = match pg.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => bail!("ANTEVUS_TEST_PG_URL must name a TCP host"),
        };
        let port = pg.get_ports().first().copied().unwrap_or(5432);
        let db_name = format!(
            "antevus_test_{}_{}",
            format!("{kind:?}").to_lowercase(),
            hex_id()
        );
        let admin = dbctl::connect(&server_admin_url).await?;
        admin
            .batch_execute(&format!("CREATE DATABASE {db_name}"))
            .await?;
        let admin_db_url = match server_admin_url.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{db_name}"),
            None => bail!("ANTEVUS_TEST_PG_URL must end with /<database>"),
        };
        let mut client = dbctl::connect(&admin_db_url).await?;
        dbctl::migrate(&mut client).await?;
        dbctl::set_app_password(&client, &app_password).await?;

        let proxy_listener = TcpListener::bind("127.0.0.1:0").await?;
        let proxy_addr = proxy_listener.local_addr()?;
        let (proxy_tx, proxy_rx) = oneshot::channel();
        // As in production: the app's role on this database only, never a
        // superuser.
        let proxy_key = shared::config::HmacKey {
            kid: "p1".into(),
            secret: random_secret(),
        };
        let mut proxy_config = sql_proxy::ProxyConfig::for_tests(
            vec![sql_proxy::config::Pair::new("antevus_app", &db_name)],
            vec![proxy_key.clone()],
        );
        // TLS on both legs, as in production: the listener with the suite's
        // certificate (except for wasmtime, whose HTTP client trusts only the
        // public roots it was built with), PostgreSQL verified against the
        // suite's CA.
        let tls = tls_dir()?;
        proxy_config.allowed_hosts = vec![
            format!("{host}=verify-full:{}", tls.join("ca.pem").display())
                .parse()
                .map_err(anyhow::Error::msg)?,
        ];
        let scheme = if kind == HostKind::Wasmtime {
            "http"
        } else {
            proxy_config.tls_cert = Some(tls.join("server.pem"));
            proxy_config.tls_key = Some(tls.join("server.key"));
            "https"
        };
        tokio::spawn(async move {
            let _ = sql_proxy::run(proxy_listener, proxy_config, async {
                let _ = proxy_rx.await;
            })
            .await;
        });

        let (object_store, s3_endpoint) = start_object_store("antevus-runs").await?;
        let token_key = shared::config::SigningKey::from_seed("k1", random_bytes::<32>());
        let audit_key = shared::config::SigningKey::from_seed("e1", random_bytes::<32>());
        let legacy_audit_key = shared::config::HmacKey {
            kid: "a1".to_owned(),
            secret: random_bytes::<32>().to_vec(),
        };
        let function_env = vec![
            ("S3_ENDPOINT".to_owned(), s3_endpoint),
            ("S3_BUCKET".to_owned(), "antevus-runs".to_owned()),
            ("S3_ACCESS_KEY_ID".to_owned(), "antevus-test".to_owned()),
            ("S3_SECRET_ACCESS_KEY".to_owned(), hex_id()),
            ("S3_PART_BYTES".to_owned(), S3_PART_BYTES.to_string()),
            (
                "RUN_DATA_INLINE_MAX_BYTES".to_owned(),
                INLINE_MAX_BYTES.to_string(),
            ),
            (
                "SQL_PROXY_URL".to_owned(),
                format!("{scheme}://{proxy_addr}/sql"),
            ),
            ("SQL_PROXY_KEY".to_owned(), env_key(&proxy_key)),
            (
                "DATABASE_URL".to_owned(),
                format!("postgres://antevus_app:{app_password}@{host}:{port}/{db_name}"),
            ),
            (
                "JWT_SIGNING_KEY".to_owned(),
                format!(
                    "k1:{}",
                    base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .encode(token_key.key.to_bytes())
                ),
            ),
            ("JWT_PUBLIC_KEYS".to_owned(), token_key.public_entry()),
            (
                "AUDIT_SIGNING_KEY".to_owned(),
                format!(
                    "e1:{}",
                    base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .encode(audit_key.key.to_bytes())
                ),
            ),
            ("AUDIT_PUBLIC_KEYS".to_owned(), audit_key.public_entry()),
            // The HMAC key events were signed with before Ed25519.
            ("AUDIT_KEYS".to_owned(), env_key(&legacy_audit_key)),
            (
                "ENCRYPTION_KEYS".to_owned(),
                env_key(&shared::config::HmacKey {
                    kid: "d1".into(),
                    secret: random_bytes::<32>().to_vec(),
                }),
            ),
            ("JWT_ISSUER".to_owned(), "antevus".to_owned()),
            ("JWT_AUDIENCE".to_owned(), "antevus-api".to_owned()),
            // The suite logs in far more often than a person: limits are
            // raised here and tested exactly on a host of their own.
            ("RATE_LIMIT_AUTH".to_owned(), "100000/60/900".to_owned()),
            ("RATE_LIMIT_PUBLIC".to_owned(), "100000/60/300".to_owned()),
            (
                "RATE_LIMIT_AUTHENTICATED".to_owned(),
                "1000000/60/300".to_owned(),
            ),
            ("RATE_LIMIT_ADMIN".to_owned(), "1000000/60/60".to_owned()),
            (
                "CORS_ORIGIN".to_owned(),
                crate::headers::ALLOWED_ORIGIN.to_owned(),
            ),
            (
                "SCHEDULER_KEY".to_owned(),
                hex::encode(random_bytes::<24>()),
            ),
        ];
        let host_handle = start_host(kind, &function_env).await?;
        Ok(Stack {
            kind,
            base_url: host_handle.base_url.clone(),
            admin_db_url,
            function_env,
            token_key,
            audit_key,
            legacy_audit_key,
            db_name,
            server_admin_url,
            host: Mutex::new(Some(host_handle)),
            proxy_shutdown: Mutex::new(Some(proxy_tx)),
            object_store: Mutex::new(Some(object_store)),
        })
    }

    /// Stops the host and the proxy and drops the database.
    pub async fn stop(&self) {
        if let Some(host) = self.host.lock().ok().and_then(|mut h| h.take()) {
            tokio::task::spawn_blocking(move || host.stop()).await.ok();
        }
        if let Some(tx) = self.proxy_shutdown.lock().ok().and_then(|mut p| p.take()) {
            let _ = tx.send(());
        }
        if let Some(store) = self.object_store.lock().ok().and_then(|mut s| s.take()) {
            tokio::task::spawn_blocking(move || store.stop()).await.ok();
        }
        if let Ok(admin) = dbctl::connect(&self.server_admin_url).await {
            let _ = admin
                .batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.db_name
                ))
                .await;
        }
    }
}

fn hex_id() -> String {
    random_bytes::<6>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A free local port (bound and let go).
/// The suite's TLS certificates (`cargo xtask test` makes them): `ca.pem`
/// and `server.{pem,key}` for localhost and 127.0.0.1.
pub fn tls_dir() -> anyhow::Result<PathBuf> {
    required_env("ANTEVUS_TEST_TLS_DIR").map(PathBuf::from)
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Starts a host of `kind` whose functions see `env`.
pub async fn start_host(kind: HostKind, env: &[(String, String)]) -> anyhow::Result<HostHandle> {
    match kind {
        HostKind::Native => start_native(env).await,
        HostKind::Workerd => tokio::task::block_in_place(|| start_workerd(env)),
        HostKind::Wasmtime => start_wasmtime(env).await,
    }
}

async fn start_native(env: &[(String, String)]) -> anyhow::Result<HostHandle> {
    let mut map: HashMap<String, String> = env.iter().cloned().collect();
    // The native host serves the built web application itself.
    map.entry("WEB_ROOT".to_owned())
        .or_insert_with(|| root().join("web/dist").display().to_string());
    let config = Config::from_lookup(|k| map.get(k).cloned());
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base_url = format!("http://{}", listener.local_addr()?);
    let (tx, rx) = oneshot::channel();
    let platform =
        host_native::NativePlatform::trusting(&std::fs::read(tls_dir()?.join("ca.pem"))?)?;
    tokio::spawn(async move {
        let _ = host_native::serve_with(listener, config, platform, async {
            let _ = rx.await;
        })
        .await;
    });
    Ok(HostHandle {
        base_url,
        children: Vec::new(),
        shutdown: vec![tx],
    })
}

fn start_workerd(env: &[(String, String)]) -> anyhow::Result<HostHandle> {
    let root = root();
    // The web application's assets (empty when it is not built).
    std::fs::create_dir_all(root.join("web/dist"))?;
    for function in shared::routes::functions() {
        let script = root.join("functions").join(function).join("build/index.js");
        if !script.exists() {
            bail!(
                "{} is missing: run `cargo xtask build-wasm --workers`",
                script.display()
            );
        }
    }
    if !root.join("infra/workerd/node_modules/miniflare").exists() {
        bail!("miniflare is not installed: run `cargo xtask setup`");
    }
    let port = free_port()?;
    let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
    let mut child = Command::new("node")
        .arg(root.join("infra/workerd/run.mjs"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("ANTEVUS_BINDINGS", names.join(","))
        .env("PORT", port.to_string())
        // Outbound fetches (to the proxy) trust the suite's CA.
        .env("NODE_EXTRA_CA_CERTS", tls_dir()?.join("ca.pem"))
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start node: is Node.js installed? run `cargo xtask setup`")?;
    let stdout = child.stdout.take().context("no stdout from node")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("ready ") {
                let _ = tx.send(url.to_owned());
            } else {
                eprintln!("[workerd] {line}");
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(90)) {
        Ok(base_url) => Ok(HostHandle {
            base_url,
            children: vec![child],
            shutdown: Vec::new(),
        }),
        Err(_) => {
            let _ = child.kill();
            bail!("workerd (miniflare) did not become ready within 90 s")
        }
    }
}

/// The wasmtime binary: on PATH or in ~/.cargo/bin.
fn wasmtime_bin() -> anyhow::Result<PathBuf> {
    let candidates = [
        PathBuf::from("wasmtime"),
        PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo/bin/wasmtime"),
    ];
    for candidate in candidates {
        if Command::new(&candidate)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return Ok(candidate);
        }
    }
    bail!("wasmtime is not installed: run `cargo xtask setup`")
}

/// One `wasmtime serve` of `function`'s `wasm` on `port`, given the
/// variables of `env` but the secrets its route does not declare; the
/// receiver hears once it says it serves (its stderr is passed on to this
/// process's).
fn serve_wasm(
    wasmtime: &Path,
    function: &str,
    wasm: &Path,
    env: &[(String, String)],
    port: u16,
) -> anyhow::Result<(Child, std::sync::mpsc::Receiver<()>)> {
    let mut cmd = Command::new(wasmtime);
    cmd.args(["serve", "-Scli", "-O", "pooling-allocator=y", "--addr"])
        .arg(format!("127.0.0.1:{port}"));
    if function == shared::routes::WEB_FUNCTION {
        // The built app, where Spin mounts it (`files` in spin.toml).
        let dist = root().join("web/dist");
        std::fs::create_dir_all(&dist)?;
        cmd.arg("--dir").arg(format!("{}::/", dist.display()));
    }
    // Names only: values are inherited from this environment, never on the command line.
    let own = env
        .iter()
        .filter(|(name, _)| !shared::routes::withholds(function, name));
    for (name, value) in own {
        cmd.arg("--env").arg(name).env(name, value);
    }
    let mut child = cmd
        .arg(wasm)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start wasmtime serve")?;
    let (ready, serving) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().context("wasmtime's stderr")?;
    let serves = format!("Serving HTTP on http://127.0.0.1:{port}/");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains(&serves) {
                let _ = ready.send(());
            }
            eprintln!("{line}");
        }
    });
    Ok((child, serving))
}

/// Every function in its own `wasmtime serve`, behind a front that routes
/// by the route table. A function is ready when its own process says it
/// serves its port; one that cannot bind (the port was taken meanwhile)
/// starts again on another.
async fn start_wasmtime(env: &[(String, String)]) -> anyhow::Result<HostHandle> {
    // The front reports the client's address as Spin does, and the
    // components are told to believe it, as spin.toml tells them; a case
    // may override it (set it empty) to see an unconfigured deployment.
    let mut env = env.to_vec();
    if !env.iter().any(|(name, _)| name == "CLIENT_ADDRESS_HEADER") {
        env.push((
            "CLIENT_ADDRESS_HEADER".to_owned(),
            "spin-client-addr".to_owned(),
        ));
    }
    let env = env.as_slice();
    let wasmtime = wasmtime_bin()?;
    let root = root();
    let mut children = Vec::new();
    let mut ports = HashMap::new();
    let mut taken = std::collections::HashSet::new();
    let mut pick = || -> anyhow::Result<u16> {
        loop {
            let port = free_port()?;
            if taken.insert(port) {
                return Ok(port);
            }
        }
    };
    let mut starting = Vec::new();
    for function in shared::routes::functions() {
        let wasm = root
            .join("target/wasm32-wasip2/release")
            .join(format!("{}.wasm", function.replace('-', "_")));
        if !wasm.exists() {
            for (_, _, _, mut c, _) in starting {
                let _: Result<(), _> = Child::kill(&mut c);
            }
            bail!(
                "{} is missing: run `cargo xtask build-wasm --spin`",
                wasm.display()
            );
        }
        let port = pick()?;
        let (child, serving) = serve_wasm(&wasmtime, function, &wasm, env, port)?;
        starting.push((function, wasm, port, child, serving));
    }
    let mut starting = starting.into_iter();
    while let Some((function, wasm, mut port, mut child, mut serving)) = starting.next() {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut attempts = 1;
        loop {
            if serving.try_recv().is_ok() {
                break;
            }
            let exited = child.try_wait()?.is_some();
            if exited && attempts < 5 {
                attempts += 1;
                port = pick()?;
                (child, serving) = serve_wasm(&wasmtime, function, &wasm, env, port)?;
                continue;
            }
            if exited || Instant::now() > deadline {
                let _ = child.kill();
                let rest = starting.map(|(_, _, _, c, _)| c);
                for mut c in children.into_iter().chain(rest) {
                    let _: Result<(), _> = Child::kill(&mut c);
                }
                bail!("wasmtime serve for {function} did not start ({attempts} attempts)");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        children.push(child);
        ports.insert(function, port);
    }
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base_url = format!("http://{}", listener.local_addr()?);
    let (tx, rx) = oneshot::channel();
    let front = axum::Router::new()
        .fallback(forward)
        .with_state(std::sync::Arc::new(Front {
            ports,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            platform: host_native::NativePlatform::default(),
        }));
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            front.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = rx.await;
        })
        .await;
    });
    Ok(HostHandle {
        base_url,
        children,
        shutdown: vec![tx],
    })
}

/// The front of the wasmtime host: routes by the route table, as Spin's
/// HTTP trigger does, and reports the client address as Spin does.
struct Front {
    ports: HashMap<&'static str, u16>,
    client: reqwest::Client,
    platform: host_native::NativePlatform,
}

async fn forward(
    State(front): State<std::sync::Arc<Front>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: http::Request<Body>,
) -> http::Response<Body> {
    let (parts, body) = request.into_parts();
    // Below every route, as Spin's `/...`: the web application.
    let function = route_for(parts.uri.path()).map_or(shared::routes::WEB_FUNCTION, |r| r.function);
    let port = front.ports.get(function);
    let Some(port) = port else {
        return shared::request::early_failure(
            &front.platform,
            None,
            &parts.headers,
            &ApiError::NotFound,
        )
        .map(Body::new);
    };
    // A body over the front's own cap is refused here, never forwarded
    // short (the function would see an empty body).
    let bytes = match shared::request::read_capped(body, FRONT_MAX_BODY).await {
        Ok(b) => b,
        Err(err) => {
            return shared::request::early_failure(&front.platform, None, &parts.headers, &err)
                .map(Body::new);
        }
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut outbound = front.client.request(
        parts.method.clone(),
        format!("http://127.0.0.1:{port}{path}"),
    );
    for (name, value) in &parts.headers {
        if !is_hop_by_hop(name) && name != http::header::HOST && name.as_str() != "spin-client-addr"
        {
            outbound = outbound.header(name, value);
        }
    }
    outbound = outbound.header("spin-client-addr", peer.to_string());
    match outbound.body(bytes).send().await {
        Ok(response) => {
            let mut builder = http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                if !is_hop_by_hop(name) {
                    builder = builder.header(name, value);
                }
            }
            // Passed on as it comes, as Spin's trigger does: a streamed
            // answer stays streamed (chunked, no length).
            let streamed = !response
                .headers()
                .contains_key(http::header::CONTENT_LENGTH);
            if streamed {
                builder
                    .body(Body::from_stream(response.bytes_stream()))
                    .unwrap_or_default()
            } else {
                let body = response.bytes().await.unwrap_or_default();
                builder.body(Body::from(body)).unwrap_or_default()
            }
        }
        Err(e) => shared::request::early_failure(
            &front.platform,
            None,
            &parts.headers,
            &ApiError::Unavailable(e.to_string()),
        )
        .map(Body::new),
    }
}

/// The largest body the wasmtime front forwards (an upload chunk is at
/// most 64 MiB).
pub const FRONT_MAX_BODY: usize = 64 << 20;

/// Headers that describe one connection, not the message; a proxy drops them.
fn is_hop_by_hop(name: &http::HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "content-length"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body over the front's cap is 413 from the front: the function
    /// behind it never sees it (before, it got an empty body).
    #[tokio::test]
    async fn the_front_refuses_a_body_over_its_cap() -> anyhow::Result<()> {
        let upstream = TcpListener::bind("127.0.0.1:0").await?;
        let upstream_port = upstream.local_addr()?.port();
        let forwarded = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = forwarded.clone();
        let function = axum::Router::new().fallback(move |body: bytes::Bytes| {
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                format!("{} bytes", body.len())
            }
        });
        tokio::spawn(async move { axum::serve(upstream, function).await });
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let front = axum::Router::new()
            .fallback(forward)
            .with_state(std::sync::Arc::new(Front {
                ports: HashMap::from([("auth-login", upstream_port)]),
                client: reqwest::Client::new(),
                platform: host_native::NativePlatform::default(),
            }));
        tokio::spawn(async move {
            axum::serve(
                listener,
                front.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        });
        let client = reqwest::Client::new();
        let small = client
            .post(format!("{base}/api/auth/login"))
            .body(vec![b' '; 10])
            .send()
            .await?;
        anyhow::ensure!(
            small.text().await? == "10 bytes",
            "the front forwards a body within its cap"
        );
        let answer = client
            .post(format!("{base}/api/auth/login"))
            .body(vec![b' '; FRONT_MAX_BODY + 1])
            .send()
            .await?;
        anyhow::ensure!(answer.status().as_u16() == 413, "{}", answer.status());
        anyhow::ensure!(
            forwarded.load(std::sync::atomic::Ordering::SeqCst) == 1,
            "the oversized body was forwarded"
        );
        Ok(())
    }
}
