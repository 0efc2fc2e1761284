//! The proxy's configuration: one typed struct from flags and environment,
//! validated at start-up.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

/// Pooled SQL-over-HTTP proxy (Neon wire format) in front of PostgreSQL.
#[derive(Debug, Clone, Parser)]
#[command(name = "sql-proxy", version)]
pub struct ProxyConfig {
    /// Address to listen on.
    #[arg(long, env = "SQL_PROXY_LISTEN", default_value = "127.0.0.1:4444")]
    pub listen: SocketAddr,
    /// Upstream hosts the proxy may connect to (comma-separated). A
    /// connection string naming any other host is refused.
    #[arg(
        long,
        env = "SQL_PROXY_ALLOWED_HOSTS",
        value_delimiter = ',',
        default_value = "127.0.0.1,localhost"
    )]
    pub allowed_hosts: Vec<String>,
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
        if self.allowed_hosts.iter().all(|h| h.trim().is_empty()) {
            return Err("allowed hosts must name at least one host".into());
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

    /// A configuration for tests: defaults, loopback only.
    pub fn for_tests() -> Self {
        ProxyConfig::parse_from(["sql-proxy"])
    }
}
