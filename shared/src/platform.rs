//! The platform seam and the typed configuration.
//!
//! [`Platform`] is all a handler may ask of its host: outbound HTTP, the
//! clock and randomness. It has exactly three implementations (Spin, Workers,
//! native). Traits here use plain `async fn` without `Send`: the wasm hosts
//! are single-threaded.

use std::fmt;

use base64::Engine as _;
use bytes::Bytes;
use time::OffsetDateTime;

/// Failure of an outbound request before any HTTP response arrived.
#[derive(Debug, thiserror::Error)]
#[error("outbound request failed: {0}")]
pub struct FetchError(pub String);

/// What a handler may ask of the platform it runs on.
#[allow(async_fn_in_trait)]
pub trait Platform {
    /// Sends one HTTP request and returns the whole response.
    async fn fetch(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, FetchError>;
    /// The current time (UTC).
    fn now(&self) -> OffsetDateTime;
    /// Fills `buf` from a cryptographically secure source.
    fn fill_random(&self, buf: &mut [u8]);
    /// Waits `duration` without blocking other work (a long poll's pause).
    async fn sleep(&self, duration: std::time::Duration);
}

/// A secret value: never printed, never serialized.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// A configuration problem found at start of a request; logged, never shown.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

/// One HMAC key (access tokens, audit signatures), named by its id so keys
/// can rotate.
#[derive(Clone)]
pub struct HmacKey {
    pub kid: String,
    pub secret: Vec<u8>,
}

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HmacKey")
            .field("kid", &self.kid)
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// Typed configuration shared by every function. Read from the platform's
/// environment / secret store by the host, validated here.
#[derive(Debug, Clone)]
pub struct Config {
    /// `SQL_PROXY_URL`: the SQL-over-HTTP endpoint, e.g. `http://127.0.0.1:4444/sql`.
    pub sql_endpoint: String,
    /// `DATABASE_URL`: the connection string sent as `Neon-Connection-String`.
    pub database_url: Secret,
    /// `JWT_ISSUER`.
    pub jwt_issuer: String,
    /// `JWT_AUDIENCE`.
    pub jwt_audience: String,
    /// `JWT_KEYS`: `kid:base64url,kid:base64url`; the first key signs, all verify.
    pub jwt_keys: Vec<HmacKey>,
    /// `AUDIT_KEYS`: `kid:base64url,...`, like `JWT_KEYS`; the first signs
    /// audit events and checkpoints, all verify (old events stay
    /// verifiable after a rotation).
    pub audit_keys: Vec<HmacKey>,
    /// `ACCESS_TOKEN_TTL_SECS` (default 900).
    pub access_token_ttl_secs: i64,
    /// `MAX_BODY_BYTES` (default 1 MiB).
    pub max_body_bytes: usize,
    /// `RATE_LIMIT_AUTH`, `RATE_LIMIT_PUBLIC`, `RATE_LIMIT_AUTHENTICATED`,
    /// `RATE_LIMIT_ADMIN` (`limit/window_secs/block_secs`; defaults from the
    /// design document).
    pub rate_limits: crate::ratelimit::Limits,
    /// `APP_URL`: base URL of the web application, for links in e-mail
    /// (default `http://127.0.0.1:8787`).
    pub app_url: String,
    /// `MAIL_PROVIDER_URL`: HTTP mail provider endpoint; unset, e-mail stays
    /// in `email_outbox`.
    pub mail_provider_url: Option<String>,
    /// `MAIL_PROVIDER_TOKEN` (secret): bearer token for the provider.
    pub mail_provider_token: Option<Secret>,
    /// `MAIL_FROM`: sender address (default `no-reply@antevus.local`).
    pub mail_from: String,
    /// Run data storage (see [`crate::storage::StorageConfig`]).
    pub storage: crate::storage::StorageConfig,
    /// Retention periods (see [`crate::retention`]).
    pub retention: crate::retention::RetentionConfig,
}

/// Names of the variables [`Config::from_lookup`] reads.
pub const CONFIG_VARS: &[&str] = &[
    "SQL_PROXY_URL",
    "DATABASE_URL",
    "JWT_ISSUER",
    "JWT_AUDIENCE",
    "JWT_KEYS",
    "AUDIT_KEYS",
    "ACCESS_TOKEN_TTL_SECS",
    "MAX_BODY_BYTES",
    "RATE_LIMIT_AUTH",
    "RATE_LIMIT_PUBLIC",
    "RATE_LIMIT_AUTHENTICATED",
    "RATE_LIMIT_ADMIN",
    "APP_URL",
    "MAIL_PROVIDER_URL",
    "MAIL_PROVIDER_TOKEN",
    "MAIL_FROM",
    "RUN_DATA_PG_MAX_BYTES",
    "RUN_DATA_INLINE_MAX_BYTES",
    "RUN_DATA_MAX_BYTES",
    "S3_ENDPOINT",
    "S3_BUCKET",
    "S3_REGION",
    "S3_URL_STYLE",
    "S3_ACCESS_KEY_ID",
    "S3_SECRET_ACCESS_KEY",
    "S3_PART_BYTES",
    "RETENTION_AUDIT_DAYS",
    "RETENTION_RUN_DATA_DAYS",
    "RETENTION_SESSIONS_DAYS",
    "RETENTION_RATE_LIMITS_HOURS",
];

/// Shortest HMAC key accepted for access tokens (256 bits).
pub const MIN_JWT_KEY_BYTES: usize = 32;

impl Config {
    /// Builds the configuration from a variable lookup (environment, Spin
    /// variables, Workers bindings).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let required = |name: &str| {
            lookup(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| ConfigError(format!("{name} is not set")))
        };
        let number = |name: &str, default: i64| -> Result<i64, ConfigError> {
            match lookup(name) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse()
                    .map_err(|_| ConfigError(format!("{name} is not a number"))),
            }
        };
        let sql_endpoint = required("SQL_PROXY_URL")?;
        if !(sql_endpoint.starts_with("http://") || sql_endpoint.starts_with("https://")) {
            return Err(ConfigError("SQL_PROXY_URL must be an http(s) URL".into()));
        }
        let jwt_keys = parse_keys("JWT_KEYS", &required("JWT_KEYS")?)?;
        let audit_keys = parse_keys("AUDIT_KEYS", &required("AUDIT_KEYS")?)?;
        let access_token_ttl_secs = number("ACCESS_TOKEN_TTL_SECS", 900)?;
        if !(30..=86_400).contains(&access_token_ttl_secs) {
            return Err(ConfigError(
                "ACCESS_TOKEN_TTL_SECS must be within 30..=86400".into(),
            ));
        }
        let max_body_bytes = number("MAX_BODY_BYTES", 1 << 20)?;
        let defaults = crate::ratelimit::Limits::default();
        let policy = |name: &str, default: crate::ratelimit::Policy| match lookup(name) {
            None => Ok(default),
            Some(text) => crate::ratelimit::Policy::parse(&text)
                .ok_or_else(|| ConfigError(format!("{name} must be limit/window_secs/block_secs"))),
        };
        let rate_limits = crate::ratelimit::Limits {
            auth: policy("RATE_LIMIT_AUTH", defaults.auth)?,
            public: policy("RATE_LIMIT_PUBLIC", defaults.public)?,
            authenticated: policy("RATE_LIMIT_AUTHENTICATED", defaults.authenticated)?,
            admin: policy("RATE_LIMIT_ADMIN", defaults.admin)?,
        };
        Ok(Config {
            sql_endpoint,
            database_url: Secret::new(required("DATABASE_URL")?),
            jwt_issuer: lookup("JWT_ISSUER").unwrap_or_else(|| "antevus".into()),
            jwt_audience: lookup("JWT_AUDIENCE").unwrap_or_else(|| "antevus-api".into()),
            jwt_keys,
            audit_keys,
            access_token_ttl_secs,
            max_body_bytes: usize::try_from(max_body_bytes)
                .map_err(|_| ConfigError("MAX_BODY_BYTES must be positive".into()))?,
            rate_limits,
            app_url: lookup("APP_URL")
                .unwrap_or_else(|| "http://127.0.0.1:8787".into())
                .trim_end_matches('/')
                .to_owned(),
            mail_provider_url: match lookup("MAIL_PROVIDER_URL").filter(|v| !v.trim().is_empty()) {
                Some(url) if url.starts_with("https://") || url.starts_with("http://") => Some(url),
                Some(_) => {
                    return Err(ConfigError(
                        "MAIL_PROVIDER_URL must be an http(s) URL".into(),
                    ));
                }
                None => None,
            },
            mail_provider_token: lookup("MAIL_PROVIDER_TOKEN")
                .filter(|v| !v.is_empty())
                .map(Secret::new),
            mail_from: lookup("MAIL_FROM").unwrap_or_else(|| "no-reply@antevus.local".into()),
            storage: crate::storage::StorageConfig::from_lookup(&lookup)?,
            retention: crate::retention::RetentionConfig::from_lookup(&lookup)?,
        })
    }
}

pub fn parse_keys(name: &str, raw: &str) -> Result<Vec<HmacKey>, ConfigError> {
    let mut keys = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (kid, encoded) = entry
            .split_once(':')
            .ok_or_else(|| ConfigError(format!("{name} entries must be kid:base64url")))?;
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(encoded.trim_end_matches('='))
            .map_err(|_| ConfigError(format!("{name} key {kid} is not base64url")))?;
        if secret.len() < MIN_JWT_KEY_BYTES {
            return Err(ConfigError(format!(
                "{name} key {kid} is shorter than 256 bits"
            )));
        }
        if kid.is_empty() || keys.iter().any(|k: &HmacKey| k.kid == kid) {
            return Err(ConfigError(format!(
                "{name} key ids must be unique and non-empty"
            )));
        }
        keys.push(HmacKey {
            kid: kid.to_owned(),
            secret,
        });
    }
    if keys.is_empty() {
        return Err(ConfigError(format!("{name} holds no key")));
    }
    Ok(keys)
}

/// What every handler receives: the platform and the configuration.
pub struct Ctx<P> {
    pub platform: P,
    pub config: Config,
}

impl<P: Platform> Ctx<P> {
    pub fn new(platform: P, config: Config) -> Self {
        Ctx { platform, config }
    }

    pub fn now(&self) -> OffsetDateTime {
        self.platform.now()
    }

    pub fn random_bytes<const N: usize>(&self) -> [u8; N] {
        let mut buf = [0u8; N];
        self.platform.fill_random(&mut buf);
        buf
    }

    /// A random (version 4) UUID from the platform's randomness.
    pub fn new_uuid(&self) -> uuid::Uuid {
        uuid::Builder::from_random_bytes(self.random_bytes::<16>()).into_uuid()
    }

    /// The SQL-over-HTTP client for this request.
    pub fn db(&self) -> crate::db::Db<'_, P> {
        crate::db::Db::new(
            &self.platform,
            &self.config.sql_endpoint,
            &self.config.database_url,
        )
    }
}
