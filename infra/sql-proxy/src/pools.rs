//! One bounded connection pool per credential set, created on first use.
//!
//! A credential set is (host, port, user, database, password digest). The
//! host must be on the allowlist: the proxy never connects where a
//! connection string points unless that host is configured. The number of
//! pools is capped; idle pools are evicted to make room.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Mutex;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use sha2::{Digest, Sha256};
use tokio_postgres::NoTls;
use tokio_postgres::config::Host;

use crate::config::ProxyConfig;
use crate::error::ProxyError;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PoolKey {
    host: String,
    port: u16,
    user: String,
    dbname: String,
    password_digest: [u8; 32],
}

/// All pools of the proxy.
pub struct Pools {
    config: ProxyConfig,
    pools: Mutex<HashMap<PoolKey, Pool>>,
}

impl Pools {
    pub fn new(config: ProxyConfig) -> Self {
        Pools {
            config,
            pools: Mutex::new(HashMap::new()),
        }
    }

    /// The pool for a connection string, creating it if needed.
    pub fn pool_for(&self, connection_string: &str) -> Result<Pool, ProxyError> {
        let (key, pg_config) = self.parse(connection_string)?;
        let mut pools = self
            .pools
            .lock()
            .map_err(|_| ProxyError::Unavailable("pool registry poisoned".into()))?;
        if let Some(pool) = pools.get(&key) {
            return Ok(pool.clone());
        }
        if pools.len() >= self.config.max_pools {
            pools.retain(|_, pool| pool.status().size > 0);
            if pools.len() >= self.config.max_pools {
                return Err(ProxyError::Unavailable(
                    "too many distinct credential sets".into(),
                ));
            }
        }
        let manager = Manager::from_config(
            pg_config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(self.config.pool_size)
            .wait_timeout(Some(self.config.pool_timeout()))
            .create_timeout(Some(self.config.connect_timeout()))
            .recycle_timeout(Some(self.config.connect_timeout()))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| ProxyError::Unavailable(format!("cannot build pool: {e}")))?;
        pools.insert(key, pool.clone());
        Ok(pool)
    }

    /// Number of pools and of connections they hold, for metrics.
    pub fn stats(&self) -> (usize, usize, usize) {
        let Ok(pools) = self.pools.lock() else {
            return (0, 0, 0);
        };
        let (size, available) = pools.values().fold((0, 0), |(s, a), p| {
            let status = p.status();
            (s + status.size, a + status.available)
        });
        (pools.len(), size, available)
    }

    /// Closes every pool (graceful shutdown).
    pub fn close(&self) {
        if let Ok(mut pools) = self.pools.lock() {
            for pool in pools.values() {
                pool.close();
            }
            pools.clear();
        }
    }

    fn parse(
        &self,
        connection_string: &str,
    ) -> Result<(PoolKey, tokio_postgres::Config), ProxyError> {
        let bad =
            |why: &str| ProxyError::BadRequest(format!("invalid Neon-Connection-String: {why}"));
        let mut config = tokio_postgres::Config::from_str(connection_string)
            .map_err(|_| bad("not a postgres URL"))?;
        let [Host::Tcp(host)] = config.get_hosts() else {
            return Err(bad("exactly one TCP host is required"));
        };
        let host = host.to_ascii_lowercase();
        if !self
            .config
            .allowed_hosts
            .iter()
            .any(|allowed| allowed.trim().eq_ignore_ascii_case(&host))
        {
            return Err(ProxyError::Forbidden(format!(
                "host {host} is not allowed by this proxy"
            )));
        }
        let port = match config.get_ports() {
            [] => 5432,
            [port] => *port,
            _ => return Err(bad("exactly one port is allowed")),
        };
        let user = config
            .get_user()
            .ok_or_else(|| bad("user is required"))?
            .to_owned();
        let dbname = config.get_dbname().unwrap_or(&user).to_owned();
        let password = config
            .get_password()
            .ok_or_else(|| bad("password is required"))?;
        let password_digest: [u8; 32] = Sha256::digest(password).into();
        config
            .dbname(&dbname)
            .connect_timeout(self.config.connect_timeout())
            .application_name("antevus-sql-proxy")
            .options(format!(
                "-c statement_timeout={}",
                self.config.statement_timeout_ms
            ));
        Ok((
            PoolKey {
                host,
                port,
                user,
                dbname,
                password_digest,
            },
            config,
        ))
    }
}
