//! The typed configuration, in sections that parse on first use.
//!
//! A host builds one [`Config`] from its environment ([`Config::from_lookup`]
//! reads the variables named in [`VARS`] once); each section parses when a
//! handler first asks for it and keeps the result. A route therefore pays
//! only for the sections it uses, and a broken setting fails only the routes
//! that need it. On Workers the host keeps one `Config` per isolate, so a
//! section parses once per isolate; on Spin each request is a new instance.
//!
//! - [`Database`]: where the SQL proxy is and the connection string.
//! - [`Tokens`]: access-token issuer, audience, keys and lifetime.
//! - the audit trail's keys ([`Config::audit_signing_key`],
//!   [`Config::audit_keys`]).
//! - [`limits::Limits`]: the rate-limit policies.
//! - [`Mail`]: the web application's URL (for links) and the mail provider.
//! - [`storage::StorageConfig`]: where run data goes.
//! - [`retention::RetentionConfig`]: how long data is kept.
//! - [`HttpConfig`]: CORS origins, HSTS and the client address header.
//! - [`SealingKeys`]: AES-256-GCM for secrets at rest.

pub mod ed25519;
pub mod limits;
pub mod retention;
pub mod sealing;
pub mod serving;
pub mod storage;

use hmac::Mac as _;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use base64::Engine as _;

use crate::error::ApiError;

pub use ed25519::{PublicKey, SigningKey};
pub use limits::{Limits, Policy};
pub use retention::RetentionConfig;
pub use sealing::SealingKeys;
pub use serving::HttpConfig;
pub use storage::{S3Config, StorageConfig};

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

/// A configuration problem; logged, never shown.
#[derive(Debug, Clone, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

/// A request that needs a broken setting fails with a generic 500.
impl From<ConfigError> for ApiError {
    fn from(err: ConfigError) -> Self {
        ApiError::internal(err)
    }
}

/// One HMAC key (audit signatures, the proxy's request signatures), named
/// by its id so keys can rotate.
#[derive(Clone)]
pub struct HmacKey {
    pub kid: String,
    pub secret: Vec<u8>,
}

impl HmacKey {
    /// HMAC-SHA256 of `message` under this key.
    pub fn sign(&self, message: &[u8]) -> [u8; 32] {
        let mut mac = self.mac();
        mac.update(message);
        mac.finalize().into_bytes().into()
    }

    /// Whether `signature` is `message` signed by this key (constant time).
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        let mut mac = self.mac();
        mac.update(message);
        mac.verify_slice(signature).is_ok()
    }

    fn mac(&self) -> hmac::Hmac<sha2::Sha256> {
        // HMAC takes keys of any length.
        <hmac::Hmac<sha2::Sha256>>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
    }
}

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HmacKey")
            .field("kid", &self.kid)
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// Shortest HMAC key accepted (256 bits).
pub const MIN_KEY_BYTES: usize = 32;

/// Every variable a section reads; [`Config::from_lookup`] reads these and
/// no others.
pub const VARS: &[&str] = &[
    "SQL_PROXY_URL",
    "SQL_PROXY_KEY",
    "DATABASE_URL",
    "JWT_ISSUER",
    "JWT_AUDIENCE",
    "JWT_PUBLIC_KEYS",
    "JWT_SIGNING_KEY",
    "AUDIT_SIGNING_KEY",
    "AUDIT_PUBLIC_KEYS",
    "AUDIT_KEYS",
    "ACCESS_TOKEN_TTL_SECS",
    "MAX_BODY_BYTES",
    "RATE_LIMIT_AUTH",
    "RATE_LIMIT_PUBLIC",
    "RATE_LIMIT_AUTHENTICATED",
    "RATE_LIMIT_ADMIN",
    "RATE_LIMIT_CLIENT_REPORTS",
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
    "RETENTION_MAIL_DAYS",
    "RETENTION_EVENTS_DAYS",
    "CORS_ORIGIN",
    "CLIENT_ADDRESS_HEADER",
    "ENCRYPTION_KEYS",
    "SCHEDULER_KEY",
    "WEB_ROOT",
    "WEBHOOK_ALLOW_LOOPBACK",
    "WEBHOOK_RUN_SUBREQUESTS",
];

/// The variables as read from the environment: those of [`VARS`] that are
/// set.
#[derive(Clone, Default)]
pub struct Vars(BTreeMap<&'static str, String>);

impl Vars {
    /// The value of `name`, if set. Asking for a name missing from [`VARS`]
    /// is a bug (it could never be set); debug builds stop on it.
    pub fn get(&self, name: &str) -> Option<String> {
        debug_assert!(VARS.contains(&name), "{name} is not listed in config::VARS");
        self.0.get(name).cloned()
    }

    /// The value of `name`, which must be set and not blank.
    fn required(&self, name: &str) -> Result<String, ConfigError> {
        self.get(name)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| ConfigError(format!("{name} is not set")))
    }

    /// A whole number, `default` when unset.
    fn number(&self, name: &str, default: i64) -> Result<i64, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| ConfigError(format!("{name} is not a number"))),
        }
    }
}

/// Values are secrets: only the names are shown.
impl fmt::Debug for Vars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// `SQL_PROXY_URL`, `DATABASE_URL` and, for our own proxy, `SQL_PROXY_KEY`
/// (`kid:base64url`), which signs every request (Neon ignores the
/// signature).
#[derive(Debug, Clone)]
pub struct Database {
    /// The SQL-over-HTTP endpoint, e.g. `http://127.0.0.1:4444/sql`.
    pub sql_endpoint: String,
    /// The endpoint's path and query, which the signature covers.
    pub sql_path: String,
    /// The connection string sent as `Neon-Connection-String`.
    pub url: Secret,
    /// The key that signs requests to our proxy.
    pub proxy_key: Option<HmacKey>,
}

impl Database {
    fn parse(vars: &Vars) -> Result<Database, ConfigError> {
        let sql_endpoint = vars.required("SQL_PROXY_URL")?;
        let uri: http::Uri = sql_endpoint
            .parse()
            .map_err(|_| ConfigError("SQL_PROXY_URL is not a URL".into()))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(ConfigError("SQL_PROXY_URL must be an http(s) URL".into()));
        }
        let sql_path = uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), ToString::to_string);
        let proxy_key = match vars.get("SQL_PROXY_KEY").filter(|v| !v.trim().is_empty()) {
            None => None,
            Some(raw) => {
                let mut keys = parse_keys("SQL_PROXY_KEY", &raw)?;
                if keys.len() != 1 {
                    return Err(ConfigError("SQL_PROXY_KEY holds one key".into()));
                }
                keys.pop()
            }
        };
        Ok(Database {
            sql_endpoint,
            sql_path,
            url: Secret::new(vars.required("DATABASE_URL")?),
            proxy_key,
        })
    }
}

/// Access tokens: `JWT_ISSUER`, `JWT_AUDIENCE`, `JWT_PUBLIC_KEYS` (the
/// Ed25519 keys that verify, with their periods: [`token_keys`]),
/// `ACCESS_TOKEN_TTL_SECS` (default 900). The key that signs is a section
/// of its own ([`Config::token_signing_key`]): only the functions that
/// issue tokens hold it.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub issuer: String,
    pub audience: String,
    pub public_keys: Vec<PublicKey>,
    pub access_ttl_secs: i64,
}

impl Tokens {
    fn parse(vars: &Vars) -> Result<Tokens, ConfigError> {
        let access_ttl_secs = vars.number("ACCESS_TOKEN_TTL_SECS", 900)?;
        if !(30..=86_400).contains(&access_ttl_secs) {
            return Err(ConfigError(
                "ACCESS_TOKEN_TTL_SECS must be within 30..=86400".into(),
            ));
        }
        Ok(Tokens {
            issuer: vars.get("JWT_ISSUER").unwrap_or_else(|| "antevus".into()),
            audience: vars
                .get("JWT_AUDIENCE")
                .unwrap_or_else(|| "antevus-api".into()),
            public_keys: ed25519::parse_public_keys(
                "JWT_PUBLIC_KEYS",
                &vars.required("JWT_PUBLIC_KEYS")?,
            )?,
            access_ttl_secs,
        })
    }
}

/// Links in e-mail and the mail provider: `APP_URL` (default
/// `http://127.0.0.1:8787`), `MAIL_PROVIDER_URL` (unset: e-mail stays in
/// `email_outbox`), `MAIL_PROVIDER_TOKEN` (secret), `MAIL_FROM` (default
/// `no-reply@antevus.local`).
#[derive(Debug, Clone)]
pub struct Mail {
    /// Base URL of the web application, without a trailing `/`.
    pub app_url: String,
    pub provider_url: Option<String>,
    pub provider_token: Option<Secret>,
    pub from: String,
}

impl Mail {
    fn parse(vars: &Vars) -> Result<Mail, ConfigError> {
        let provider_url = match vars
            .get("MAIL_PROVIDER_URL")
            .filter(|v| !v.trim().is_empty())
        {
            Some(url) if url.starts_with("https://") || url.starts_with("http://") => Some(url),
            Some(_) => {
                return Err(ConfigError(
                    "MAIL_PROVIDER_URL must be an http(s) URL".into(),
                ));
            }
            None => None,
        };
        Ok(Mail {
            app_url: vars
                .get("APP_URL")
                .unwrap_or_else(|| "http://127.0.0.1:8787".into())
                .trim_end_matches('/')
                .to_owned(),
            provider_url,
            provider_token: vars
                .get("MAIL_PROVIDER_TOKEN")
                .filter(|v| !v.is_empty())
                .map(Secret::new),
            from: vars
                .get("MAIL_FROM")
                .unwrap_or_else(|| "no-reply@antevus.local".into()),
        })
    }
}

/// The keys that verify the audit trail ([`Config::audit_keys`]).
#[derive(Debug, Clone, Default)]
pub struct AuditKeys {
    /// Ed25519 keys, with the periods they signed in.
    pub public: Vec<PublicKey>,
    /// HMAC keys of what was signed before Ed25519 (verification only).
    pub legacy: Vec<HmacKey>,
}

/// A section: parsed on first use, the outcome kept.
type Section<T> = OnceLock<Result<T, ConfigError>>;

/// The configuration of one deployment (see the module docs).
#[derive(Debug, Default)]
pub struct Config {
    vars: Vars,
    database: Section<Database>,
    tokens: Section<Tokens>,
    token_signing_key: Section<SigningKey>,
    audit_signing_key: Section<SigningKey>,
    audit_keys: Section<AuditKeys>,
    max_body_bytes: Section<usize>,
    rate_limits: Section<Limits>,
    mail: Section<Mail>,
    storage: Section<StorageConfig>,
    retention: Section<RetentionConfig>,
    http: Section<HttpConfig>,
    sealing_keys: Section<SealingKeys>,
    scheduler_key: Section<Secret>,
}

impl Config {
    /// Reads the variables of [`VARS`] through `lookup` (environment, Spin
    /// variables, Workers bindings); nothing is parsed yet.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Config {
        let vars = VARS
            .iter()
            .filter_map(|name| lookup(name).map(|value| (*name, value)))
            .collect();
        Config {
            vars: Vars(vars),
            ..Config::default()
        }
    }

    /// Parses every section, for a host that wants to fail at start-up.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.database()?;
        self.tokens()?;
        self.token_signing_key()?;
        self.audit_signing_key()?;
        self.audit_keys()?;
        self.max_body_bytes()?;
        self.rate_limits()?;
        self.mail()?;
        self.storage()?;
        self.retention()?;
        self.http()?;
        Ok(())
    }

    fn section<'a, T>(
        &'a self,
        cell: &'a Section<T>,
        parse: impl FnOnce(&Vars) -> Result<T, ConfigError>,
    ) -> Result<&'a T, ConfigError> {
        cell.get_or_init(|| parse(&self.vars))
            .as_ref()
            .map_err(Clone::clone)
    }

    pub fn database(&self) -> Result<&Database, ConfigError> {
        self.section(&self.database, Database::parse)
    }

    pub fn tokens(&self) -> Result<&Tokens, ConfigError> {
        self.section(&self.tokens, Tokens::parse)
    }

    /// `JWT_SIGNING_KEY`: `kid:base64url`, the Ed25519 seed that signs
    /// access tokens (the functions that issue them only).
    pub fn token_signing_key(&self) -> Result<&SigningKey, ConfigError> {
        self.section(&self.token_signing_key, |vars| {
            SigningKey::parse("JWT_SIGNING_KEY", &vars.required("JWT_SIGNING_KEY")?)
        })
    }

    /// Whether variable `name` is set (for the check that a function holds
    /// no secret it does not declare).
    pub fn holds(&self, name: &str) -> bool {
        self.vars.0.contains_key(name)
    }

    /// The same variables but those `withheld` names (nothing parsed yet).
    pub fn withholding(&self, withheld: impl Fn(&str) -> bool) -> Config {
        let vars = self
            .vars
            .0
            .iter()
            .filter(|(name, _)| !withheld(name))
            .map(|(name, value)| (*name, value.clone()))
            .collect();
        Config {
            vars: Vars(vars),
            ..Config::default()
        }
    }

    /// `AUDIT_SIGNING_KEY`: `kid:base64url`, the Ed25519 seed that signs
    /// audit events, checkpoints, export manifests and e-signature seals
    /// (the functions that record events only).
    pub fn audit_signing_key(&self) -> Result<&SigningKey, ConfigError> {
        self.section(&self.audit_signing_key, |vars| {
            SigningKey::parse("AUDIT_SIGNING_KEY", &vars.required("AUDIT_SIGNING_KEY")?)
        })
    }

    /// The keys that verify the audit trail: `AUDIT_PUBLIC_KEYS` (Ed25519,
    /// with periods, like `JWT_PUBLIC_KEYS`) and, optionally, `AUDIT_KEYS`
    /// (`kid:base64url,...`, the HMAC keys that signed before Ed25519; only
    /// the functions that verify hold them).
    pub fn audit_keys(&self) -> Result<&AuditKeys, ConfigError> {
        self.section(&self.audit_keys, |vars| {
            let public = ed25519::parse_public_keys(
                "AUDIT_PUBLIC_KEYS",
                &vars.required("AUDIT_PUBLIC_KEYS")?,
            )?;
            let legacy = match vars.get("AUDIT_KEYS").filter(|v| !v.trim().is_empty()) {
                None => Vec::new(),
                Some(raw) => parse_keys("AUDIT_KEYS", &raw)?,
            };
            if let Some(both) = legacy
                .iter()
                .find(|l| public.iter().any(|p| p.kid == l.kid))
            {
                return Err(ConfigError(format!(
                    "audit key id {} is both an Ed25519 and an HMAC key",
                    both.kid
                )));
            }
            Ok(AuditKeys { public, legacy })
        })
    }

    /// `MAX_BODY_BYTES` (default 1 MiB): the largest JSON body.
    pub fn max_body_bytes(&self) -> Result<usize, ConfigError> {
        self.section(&self.max_body_bytes, |vars| {
            usize::try_from(vars.number("MAX_BODY_BYTES", 1 << 20)?)
                .map_err(|_| ConfigError("MAX_BODY_BYTES must be positive".into()))
        })
        .copied()
    }

    pub fn rate_limits(&self) -> Result<&Limits, ConfigError> {
        self.section(&self.rate_limits, Limits::parse)
    }

    pub fn mail(&self) -> Result<&Mail, ConfigError> {
        self.section(&self.mail, Mail::parse)
    }

    pub fn storage(&self) -> Result<&StorageConfig, ConfigError> {
        self.section(&self.storage, |vars| {
            StorageConfig::from_lookup(&|name: &str| vars.get(name))
        })
    }

    /// `ENCRYPTION_KEYS`: the AES-256-GCM keys of secrets at rest
    /// ([`SealingKeys`]; the functions that declare them only).
    pub fn sealing_keys(&self) -> Result<&SealingKeys, ConfigError> {
        self.section(&self.sealing_keys, |vars| {
            SealingKeys::parse("ENCRYPTION_KEYS", &vars.required("ENCRYPTION_KEYS")?)
        })
    }

    /// `SCHEDULER_KEY`: the bearer token the scheduler presents to a
    /// scheduled job's tick route (at least 32 characters; the job
    /// functions only).
    pub fn scheduler_key(&self) -> Result<&Secret, ConfigError> {
        self.section(&self.scheduler_key, |vars| {
            let key = vars.required("SCHEDULER_KEY")?;
            if key.len() < 32 {
                return Err(ConfigError(
                    "SCHEDULER_KEY must be at least 32 characters".into(),
                ));
            }
            Ok(Secret::new(key))
        })
    }

    /// CORS, HSTS and the client address ([`HttpConfig`]).
    /// `WEB_ROOT`: where a host that serves the web application's files
    /// itself (the native host) finds them.
    pub fn web_root(&self) -> Option<String> {
        self.vars.get("WEB_ROOT").filter(|v| !v.trim().is_empty())
    }

    /// `WEBHOOK_ALLOW_LOOPBACK` (`true` or `false`, default `false`): a
    /// development setting that lets webhooks point at loopback addresses
    /// (`http` too), so a receiver on the same machine can be tried.
    pub fn webhooks_allow_loopback(&self) -> Result<bool, ConfigError> {
        match self
            .vars
            .get("WEBHOOK_ALLOW_LOOPBACK")
            .as_deref()
            .map(str::trim)
        {
            None | Some("") | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(_) => Err(ConfigError(
                "WEBHOOK_ALLOW_LOOPBACK must be true or false".into(),
            )),
        }
    }

    /// `WEBHOOK_RUN_SUBREQUESTS` (10 to 100000; unset, no limit): the most
    /// outbound requests (to the SQL proxy and to endpoints) one run of
    /// the delivery job makes, so it stays under a platform's cap per
    /// invocation (Workers: 50 on the free plan, 1000 by default on the
    /// paid one; the generated `wrangler.toml` sets 1000).
    pub fn webhook_run_subrequests(&self) -> Result<Option<usize>, ConfigError> {
        match self
            .vars
            .get("WEBHOOK_RUN_SUBREQUESTS")
            .as_deref()
            .map(str::trim)
        {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (10..=100_000).contains(n))
                .map(Some)
                .ok_or_else(|| {
                    ConfigError("WEBHOOK_RUN_SUBREQUESTS must be a number from 10 to 100000".into())
                }),
        }
    }

    pub fn http(&self) -> Result<&HttpConfig, ConfigError> {
        self.section(&self.http, HttpConfig::parse)
    }

    pub fn retention(&self) -> Result<&RetentionConfig, ConfigError> {
        self.section(&self.retention, |vars| {
            RetentionConfig::from_lookup(&|name: &str| vars.get(name))
        })
    }
}

/// Parses `kid:base64url,kid:base64url`: unique non-empty ids, keys of at
/// least [`MIN_KEY_BYTES`].
pub fn parse_keys(name: &str, raw: &str) -> Result<Vec<HmacKey>, ConfigError> {
    let mut keys = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (kid, encoded) = entry
            .split_once(':')
            .ok_or_else(|| ConfigError(format!("{name} entries must be kid:base64url")))?;
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(encoded.trim_end_matches('='))
            .map_err(|_| ConfigError(format!("{name} key {kid} is not base64url")))?;
        if secret.len() < MIN_KEY_BYTES {
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

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

    fn config(pairs: &[(&str, &str)]) -> Config {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn every_section_parses_from_a_complete_environment() {
        let public = SigningKey::from_seed("k1", [7; 32]).public_entry();
        let config = config(&[
            ("SQL_PROXY_URL", "http://127.0.0.1:4444/sql"),
            ("DATABASE_URL", "postgres://app:pw@127.0.0.1/antevus"),
            ("JWT_PUBLIC_KEYS", &public),
            ("JWT_SIGNING_KEY", KEY),
            ("AUDIT_SIGNING_KEY", KEY),
            ("AUDIT_PUBLIC_KEYS", &public),
            (
                "AUDIT_KEYS",
                "legacy:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            ),
            ("S3_ENDPOINT", "http://127.0.0.1:9000"),
            ("S3_BUCKET", "runs"),
            ("S3_ACCESS_KEY_ID", "id"),
            ("S3_SECRET_ACCESS_KEY", "secret"),
        ]);
        config.check().expect("complete");
        assert_eq!(config.tokens().expect("tokens").access_ttl_secs, 900);
        assert_eq!(config.max_body_bytes().expect("cap"), 1 << 20);
        assert_eq!(
            config.mail().expect("mail").app_url,
            "http://127.0.0.1:8787"
        );
    }

    #[test]
    fn a_broken_section_fails_only_where_it_is_used() {
        let public = SigningKey::from_seed("k1", [7; 32]).public_entry();
        let config = config(&[
            ("SQL_PROXY_URL", "http://127.0.0.1:4444/sql"),
            ("DATABASE_URL", "postgres://app:pw@127.0.0.1/antevus"),
            ("JWT_PUBLIC_KEYS", &public),
            ("AUDIT_PUBLIC_KEYS", &public),
            ("S3_ENDPOINT", "http://127.0.0.1:9000"),
        ]);
        config.database().expect("database");
        config.tokens().expect("tokens");
        let err = config.storage().expect_err("S3 without a bucket");
        assert!(err.0.contains("S3_BUCKET"), "{err}");
        // The outcome is kept: asking again gives the same answer.
        assert!(config.storage().is_err());
        assert!(config.check().is_err());
    }

    #[test]
    fn required_variables_are_named_when_missing() {
        let config = config(&[]);
        assert!(
            config
                .database()
                .expect_err("no proxy")
                .0
                .contains("SQL_PROXY_URL")
        );
        assert!(
            config
                .tokens()
                .expect_err("no keys")
                .0
                .contains("JWT_PUBLIC_KEYS")
        );
        assert!(
            config
                .token_signing_key()
                .expect_err("no key")
                .0
                .contains("JWT_SIGNING_KEY")
        );
        assert!(
            config
                .audit_keys()
                .expect_err("no keys")
                .0
                .contains("AUDIT_PUBLIC_KEYS")
        );
    }

    #[test]
    fn audit_keys_are_ed25519_with_hmac_kept_for_verifying_only() {
        let public = SigningKey::from_seed("e1", [7; 32]).public_entry();
        let both = config(&[
            ("AUDIT_PUBLIC_KEYS", &public),
            (
                "AUDIT_KEYS",
                "e1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            ),
        ]);
        assert!(
            both.audit_keys()
                .expect_err("one id, two keys")
                .0
                .contains("e1")
        );
        let keys = config(&[("AUDIT_PUBLIC_KEYS", &public)]);
        let keys = keys.audit_keys().expect("no legacy keys is fine");
        assert_eq!((keys.public.len(), keys.legacy.len()), (1, 0));
    }

    #[test]
    fn keys_must_be_long_unique_and_named() {
        assert!(parse_keys("K", KEY).is_ok());
        assert!(parse_keys("K", "k1:AAAA").is_err());
        assert!(parse_keys("K", &format!("{KEY},{KEY}")).is_err());
        assert!(parse_keys("K", "").is_err());
        assert!(parse_keys("K", "nokid").is_err());
    }

    #[test]
    fn secrets_never_print() {
        let config = config(&[("DATABASE_URL", "postgres://app:hunter2@db/antevus")]);
        assert!(!format!("{config:?}").contains("hunter2"));
        assert!(!format!("{:?}", Secret::new("hunter2")).contains("hunter2"));
    }
}
