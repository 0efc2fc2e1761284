//! The proxy's configuration: one typed struct from flags and environment,
//! validated at start-up.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::Parser;
use shared::config::HmacKey;

/// Pooled SQL-over-HTTP proxy (Neon wire format) in front of PostgreSQL.
#[derive(Debug, Clone, Parser)]
#[command(name = "sql-proxy", version)]
pub struct ProxyConfig {
    /// Address to listen on.
    #[arg(long, env = "SQL_PROXY_LISTEN", default_value = "127.0.0.1:4444")]
    pub listen: SocketAddr,
    /// The listener's certificate chain (PEM). With the key, the proxy
    /// speaks HTTPS only, and SIGHUP reads both files again. Required
    /// unless the proxy listens on loopback.
    #[arg(long, env = "SQL_PROXY_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The listener's private key (PEM).
    #[arg(long, env = "SQL_PROXY_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Upstream hosts the proxy may connect to, comma-separated, each
    /// `host[=tls[:ca-file]]` with `tls` one of `disable`, `require`,
    /// `verify-ca`, `verify-full` (default: `disable` on loopback,
    /// `verify-full` with the public web roots elsewhere). A connection
    /// string naming any other host is refused; its own `sslmode` is not
    /// used.
    #[arg(
        long,
        env = "SQL_PROXY_ALLOWED_HOSTS",
        value_delimiter = ',',
        default_value = "127.0.0.1,localhost"
    )]
    pub allowed_hosts: Vec<Upstream>,
    /// The (user, database) pairs callers may reach, as `user@database`
    /// (comma-separated). Any other pair is refused before connecting.
    #[arg(long = "allow", env = "SQL_PROXY_ALLOW", value_delimiter = ',')]
    pub allow: Vec<Pair>,
    /// The keys callers sign requests with, `kid:base64url,...` (each
    /// verifies; several while rotating). Set it in the environment, not on
    /// the command line: it is a secret.
    #[arg(long, env = "SQL_PROXY_KEYS", hide_env_values = true, value_parser = keys)]
    pub keys: Option<Keys>,
    /// Lets callers reach superuser and BYPASSRLS roles. For tests of the
    /// proxy itself; never in production, where the app's role is neither.
    #[arg(long, env = "SQL_PROXY_ALLOW_SUPERUSER_FOR_TESTS")]
    pub allow_superuser_for_tests: bool,
    /// Connections per credential set.
    #[arg(long, env = "SQL_PROXY_POOL_SIZE", default_value_t = 16)]
    pub pool_size: usize,
    /// Most credential sets (pools) held at once.
    #[arg(long, env = "SQL_PROXY_MAX_POOLS", default_value_t = 64)]
    pub max_pools: usize,
    /// How long a request waits for a free connection, in milliseconds.
    #[arg(long, env = "SQL_PROXY_POOL_TIMEOUT_MS", default_value_t = 5_000)]
    pub pool_timeout_ms: u64,
    /// Connect timeout to PostgreSQL, in milliseconds.
    #[arg(long, env = "SQL_PROXY_CONNECT_TIMEOUT_MS", default_value_t = 5_000)]
    pub connect_timeout_ms: u64,
    /// `statement_timeout` of every upstream session, in milliseconds.
    #[arg(long, env = "SQL_PROXY_STATEMENT_TIMEOUT_MS", default_value_t = 15_000)]
    pub statement_timeout_ms: u64,
    /// Largest request body, in bytes (larger: 413).
    #[arg(long, env = "SQL_PROXY_MAX_REQUEST_BYTES", default_value_t = 4 << 20)]
    pub max_request_bytes: usize,
    /// Largest reply, in bytes (larger: 507).
    #[arg(long, env = "SQL_PROXY_MAX_RESPONSE_BYTES", default_value_t = 10 << 20)]
    pub max_response_bytes: usize,
    /// Most concurrent HTTP requests served; more wait.
    #[arg(long, env = "SQL_PROXY_MAX_CONCURRENCY", default_value_t = 512)]
    pub max_concurrency: usize,
}

impl ProxyConfig {
    /// Checks the values are usable.
    pub fn validate(&self) -> Result<(), String> {
        if self.allowed_hosts.is_empty() {
            return Err("allowed hosts must name at least one host".into());
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) | (None, Some(_)) => {
                return Err("SQL_PROXY_TLS_CERT and SQL_PROXY_TLS_KEY go together".into());
            }
            (None, None) if !self.listen.ip().is_loopback() => {
                return Err(format!(
                    "listening on {} needs TLS: set SQL_PROXY_TLS_CERT and SQL_PROXY_TLS_KEY",
                    self.listen
                ));
            }
            _ => {}
        }
        if self.keys.is_none() {
            return Err("SQL_PROXY_KEYS must hold at least one key".into());
        }
        if self.allow.is_empty() {
            return Err("allow must name at least one user@database pair".into());
        }
        if self.pool_size == 0 || self.max_pools == 0 || self.max_concurrency == 0 {
            return Err("pool size, max pools and max concurrency must be positive".into());
        }
        if self.statement_timeout_ms == 0
            || self.pool_timeout_ms == 0
            || self.connect_timeout_ms == 0
        {
            return Err("timeouts must be positive".into());
        }
        if self.max_request_bytes < 1024 || self.max_response_bytes < 1024 {
            return Err("size caps must be at least 1024 bytes".into());
        }
        Ok(())
    }

    pub fn pool_timeout(&self) -> Duration {
        Duration::from_millis(self.pool_timeout_ms)
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// Whether callers may reach `database` as `user`.
    pub fn allows(&self, user: &str, database: &str) -> bool {
        self.allow
            .iter()
            .any(|pair| pair.user == user && pair.database == database)
    }

    /// The keys that verify callers (none before [`Self::validate`]).
    pub fn keys(&self) -> &[HmacKey] {
        self.keys.as_ref().map_or(&[], |k| k.0.as_slice())
    }

    /// A configuration for tests: defaults, loopback only, reaching `allow`
    /// for callers with `keys`.
    pub fn for_tests(allow: Vec<Pair>, keys: Vec<HmacKey>) -> Self {
        ProxyConfig {
            allow,
            keys: Some(Keys(keys)),
            ..ProxyConfig::parse_from(["sql-proxy"])
        }
    }
}

/// An upstream host and how the proxy speaks TLS to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// Lower case.
    pub host: String,
    pub tls: UpstreamTls,
}

/// TLS to an upstream PostgreSQL (libpq's `sslmode` names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamTls {
    Disable,
    Require,
    /// Signed by the CA (a PEM file, else the public web roots).
    VerifyCa(Option<PathBuf>),
    /// Signed by the CA and naming the host.
    VerifyFull(Option<PathBuf>),
}

impl FromStr for Upstream {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (host, tls) = text.split_once('=').unwrap_or((text, ""));
        let host = host.trim().to_ascii_lowercase();
        if host.is_empty() {
            return Err(format!("{text:?} names no host"));
        }
        let (mode, ca) = match tls.split_once(':') {
            Some((mode, ca)) => (mode, Some(PathBuf::from(ca))),
            None => (tls, None),
        };
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        let tls = match (mode, ca) {
            ("", None) if loopback => UpstreamTls::Disable,
            ("", None) => UpstreamTls::VerifyFull(None),
            ("disable", None) => UpstreamTls::Disable,
            ("require", None) => UpstreamTls::Require,
            ("verify-ca", ca) => UpstreamTls::VerifyCa(ca),
            ("verify-full", ca) => UpstreamTls::VerifyFull(ca),
            _ => {
                return Err(format!(
                    "{text:?}: TLS must be disable, require, verify-ca[:ca-file] or verify-full[:ca-file]"
                ));
            }
        };
        Ok(Upstream { host, tls })
    }
}

/// The callers' keys.
#[derive(Debug, Clone)]
pub struct Keys(pub Vec<HmacKey>);

fn keys(raw: &str) -> Result<Keys, String> {
    shared::config::parse_keys("SQL_PROXY_KEYS", raw)
        .map(Keys)
        .map_err(|e| e.0)
}

/// A PostgreSQL user and a database of it, written `user@database`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub user: String,
    pub database: String,
}

impl Pair {
    pub fn new(user: impl Into<String>, database: impl Into<String>) -> Self {
        Pair {
            user: user.into(),
            database: database.into(),
        }
    }
}

impl FromStr for Pair {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim().split_once('@') {
            Some((user, database)) if !user.is_empty() && !database.is_empty() => {
                Ok(Pair::new(user, database))
            }
            _ => Err(format!("{text:?} is not user@database")),
        }
    }
}

impl fmt::Display for Pair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.user, self.database)
    }
}
