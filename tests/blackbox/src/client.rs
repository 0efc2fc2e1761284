//! The typed client of the suite, and fixtures written straight to the
//! database (organizations, users).

use std::sync::Arc;

use anyhow::{Context as _, bail};
use reqwest::Method;
use serde_json::Value;
use shared::auth::Role;

use crate::stack::{HostHandle, Stack, start_host};

/// See [`TestApp::reading_mail`].
static MAIL: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// A response, with its JSON body parsed.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub json: Value,
}

impl Resp {
    /// Asserts a failure envelope with `status` and `code`.
    pub fn expect_error(&self, status: u16, code: &str) -> anyhow::Result<&Self> {
        if self.status != status
            || self.json["success"] != Value::Bool(false)
            || self.json["error"]["code"] != code
        {
            bail!(
                "expected {status} {code}, got {} {}",
                self.status,
                self.json
            );
        }
        if !self.json["error"]["message"].is_string() || !self.json["error"]["details"].is_array() {
            bail!("error envelope lacks message/details: {}", self.json);
        }
        let meta = &self.json["metadata"];
        if !meta["requestId"].is_string()
            || !meta["timestamp"].is_string()
            || !meta["version"].is_string()
        {
            bail!("envelope lacks metadata: {}", self.json);
        }
        Ok(self)
    }

    /// Asserts a success envelope with `status`; returns `data`.
    pub fn expect_ok(&self, status: u16) -> anyhow::Result<&Value> {
        if self.status != status || self.json["success"] != Value::Bool(true) {
            bail!(
                "expected {status} success, got {} {}",
                self.status,
                self.json
            );
        }
        Ok(&self.json["data"])
    }

    /// Field names in `error.details`.
    pub fn detail_fields(&self) -> Vec<String> {
        self.json["error"]["details"]
            .as_array()
            .map(|d| {
                d.iter()
                    .filter_map(|e| e["field"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A response whose body is kept as bytes (downloads, redirects).
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as an envelope (for failures).
    pub fn envelope(self) -> anyhow::Result<Resp> {
        let json = serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "{} reply is not JSON: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })?;
        Ok(Resp {
            status: self.status,
            headers: self.headers,
            json,
        })
    }
}

/// One caller's requests: its credentials (none, a bearer token or an API
/// key) and any extra headers, bound once (`app.as_user(&token).get(path)`).
#[derive(Clone)]
pub struct Caller<'a> {
    app: &'a TestApp,
    token: Option<String>,
    headers: Vec<(String, String)>,
}

impl Caller<'_> {
    /// The same caller, sending one more header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The same caller, sending these headers too.
    pub fn headers(self, headers: &[(&str, &str)]) -> Self {
        headers
            .iter()
            .fold(self, |caller, (name, value)| caller.header(name, value))
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = self.app.http.request(method, self.app.url(path));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        request
    }

    /// Sends `body` as-is with its content type; parses the envelope.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> anyhow::Result<Resp> {
        let mut request = self.request(method, path);
        if let Some((content_type, bytes)) = body {
            request = request.header("content-type", content_type).body(bytes);
        }
        let response = request.send().await.context("request failed")?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await?;
        let json = serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{status} reply is not JSON: {}",
                String::from_utf8_lossy(&bytes)
            )
        })?;
        Ok(Resp {
            status,
            headers,
            json,
        })
    }

    /// Sends a raw body; keeps the answer's bytes.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<Raw> {
        let mut request = self.request(method, path);
        if let Some(bytes) = body {
            request = request.body(bytes);
        }
        let response = request.send().await.context("request failed")?;
        Ok(Raw {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.bytes().await?.to_vec(),
        })
    }

    /// Sends a JSON body.
    pub async fn json(&self, method: Method, path: &str, body: &Value) -> anyhow::Result<Resp> {
        self.send(
            method,
            path,
            Some(("application/json", serde_json::to_vec(body)?)),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Resp> {
        self.send(Method::GET, path, None).await
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<Resp> {
        self.send(Method::DELETE, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Resp> {
        self.json(Method::POST, path, body).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> anyhow::Result<Resp> {
        self.json(Method::PUT, path, body).await
    }
}

/// A user made by a fixture.
#[derive(Debug, Clone)]
pub struct User {
    pub id: uuid::Uuid,
    pub organization_id: uuid::Uuid,
    pub email: String,
    pub password: String,
    pub role: Role,
}

/// What every case gets.
pub struct TestApp {
    pub stack: Arc<Stack>,
    pub http: reqwest::Client,
}

fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).unwrap_or_else(|e| panic!("no randomness: {e}"));
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

impl TestApp {
    pub fn new(stack: Arc<Stack>) -> Self {
        // The suite's CA too: the proxy, reached directly by some cases,
        // speaks TLS with its certificate.
        let ca = crate::stack::tls_dir()
            .and_then(|dir| Ok(std::fs::read(dir.join("ca.pem"))?))
            .ok()
            .and_then(|pem| reqwest::Certificate::from_pem(&pem).ok());
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        let http = match ca {
            Some(ca) => http.add_root_certificate(ca),
            None => http,
        }
        .build()
        .unwrap_or_default();
        TestApp { stack, http }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.stack.base_url)
    }

    /// Requests with no credentials.
    pub fn anonymous(&self) -> Caller<'_> {
        self.caller(None)
    }

    /// Requests as the holder of an access token (or of an API key sent as
    /// a bearer token, which `/api/v1` also takes).
    pub fn as_user(&self, token: &str) -> Caller<'_> {
        self.caller(Some(token))
    }

    /// Requests with an API key. On Workers the edge reports the client's
    /// address in `cf-connecting-ip`; the other hosts take it from the
    /// connection and ignore the header.
    pub fn as_key(&self, key: &str) -> Caller<'_> {
        self.anonymous()
            .header("x-api-key", key)
            .header("cf-connecting-ip", "127.0.0.1")
    }

    /// Requests with an access token or without one.
    pub fn caller(&self, token: Option<&str>) -> Caller<'_> {
        Caller {
            app: self,
            token: token.map(str::to_owned),
            headers: Vec::new(),
        }
    }

    /// A user of `role` in `organization_id`, logged in.
    pub async fn member(
        &self,
        organization_id: uuid::Uuid,
        role: Role,
    ) -> anyhow::Result<(User, String)> {
        let user = self.new_user(organization_id, role).await?;
        let token = self.login(&user).await?;
        Ok((user, token))
    }

    /// A new organization with one user of `role`.
    pub async fn new_org_user(&self, role: Role) -> anyhow::Result<User> {
        let slug = format!("org-{}", random_hex(6));
        let client = dbctl::connect(&self.stack.admin_db_url).await?;
        let row = client
            .query_one(
                "INSERT INTO organizations (name, slug) VALUES ($1, $1) RETURNING id",
                &[&slug],
            )
            .await?;
        self.new_user(row.get(0), role).await
    }

    /// A new user of `role` in `organization_id`.
    pub async fn new_user(&self, organization_id: uuid::Uuid, role: Role) -> anyhow::Result<User> {
        let email = format!("user-{}@example.org", random_hex(6));
        let password = format!("pw-{}", random_hex(12));
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        let hash = shared::auth::password::hash(&password, salt)?;
        let client = dbctl::connect(&self.stack.admin_db_url).await?;
        let row = client
            .query_one(
                "INSERT INTO users (organization_id, email, password_hash, name, role) VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[&organization_id, &email, &hash, &"Test User", &role.as_str()],
            )
            .await?;
        Ok(User {
            id: row.get(0),
            organization_id,
            email,
            password,
            role,
        })
    }

    /// Logs in through the API; returns the access token.
    pub async fn login(&self, user: &User) -> anyhow::Result<String> {
        let resp = self
            .anonymous()
            .post(
                "/api/auth/login",
                &serde_json::json!({ "email": user.email, "password": user.password }),
            )
            .await?;
        let data = resp.expect_ok(200)?;
        data["accessToken"]
            .as_str()
            .map(str::to_owned)
            .context("no accessToken")
    }

    /// A fresh organization's admin, logged in.
    pub async fn admin(&self) -> anyhow::Result<(User, String)> {
        let user = self.new_org_user(Role::Admin).await?;
        let token = self.login(&user).await?;
        Ok((user, token))
    }

    /// A host of the same kind whose functions see `overrides` on top of the
    /// suite's environment.
    pub async fn host_with(&self, overrides: &[(&str, &str)]) -> anyhow::Result<HostHandle> {
        let mut env: Vec<(String, String)> = self
            .stack
            .function_env
            .iter()
            .filter(|(k, _)| !overrides.iter().any(|(name, _)| name == k))
            .cloned()
            .collect();
        env.extend(
            overrides
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        start_host(self.stack.kind, &env).await
    }

    /// Held by a case between queueing a message and reading it: the mail
    /// sender's case (which sends every organization's due mail, dropping
    /// bodies) waits for none to be held.
    pub async fn reading_mail(&self) -> tokio::sync::RwLockReadGuard<'static, ()> {
        MAIL.read().await
    }

    /// The scheduler's key (`SCHEDULER_KEY`), which a job's tick route takes.
    pub fn scheduler_key(&self) -> anyhow::Result<String> {
        self.stack
            .function_env
            .iter()
            .find(|(name, _)| name == "SCHEDULER_KEY")
            .map(|(_, value)| value.clone())
            .context("SCHEDULER_KEY")
    }

    /// Held by the case that runs the mail sender.
    pub async fn sending_mail(&self) -> tokio::sync::RwLockWriteGuard<'static, ()> {
        MAIL.write().await
    }

    /// The newest message queued to `to`: its subject and its body, opened
    /// with the deployment's `ENCRYPTION_KEYS` (it is sealed at rest);
    /// `None` when there is none, or it was sent (a sent message keeps no
    /// body).
    pub async fn mail_to(&self, to: &str) -> anyhow::Result<Option<(String, String)>> {
        let db = self.db().await?;
        let Some(row) = db
            .query_opt(
                "SELECT id, subject, body_sealed, body_text FROM email_outbox \
                 WHERE to_address = $1 ORDER BY created_at DESC LIMIT 1",
                &[&to],
            )
            .await?
        else {
            return Ok(None);
        };
        anyhow::ensure!(
            row.get::<_, Option<String>>(3).is_none(),
            "a message queued now is never kept in clear"
        );
        let Some(sealed) = row.get::<_, Option<String>>(2) else {
            return Ok(None);
        };
        let raw = self
            .stack
            .function_env
            .iter()
            .find(|(name, _)| name == "ENCRYPTION_KEYS")
            .map(|(_, value)| value.clone())
            .context("ENCRYPTION_KEYS")?;
        let keys = shared::config::SealingKeys::parse("ENCRYPTION_KEYS", &raw)?;
        let body = keys.open(&sealed, &shared::mail::sealing_context(row.get(0)))?;
        Ok(Some((row.get(1), String::from_utf8(body)?)))
    }

    /// Runs a query against this run's database as superuser.
    pub async fn db(&self) -> anyhow::Result<tokio_postgres::Client> {
        dbctl::connect(&self.stack.admin_db_url).await
    }
}
