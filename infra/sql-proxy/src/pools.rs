//! One bounded connection pool per connection string, created on first use
//! (the string is parsed and checked once, not per request).
//!
//! The host must be on the allowlist: the proxy never connects where a
//! connection string points unless that host is configured. The number of
//! pools is capped; idle pools are evicted to make room. Connections go
//! back to the pool clean: session state (settings, role, temporary
//! tables, advisory locks, listeners) is reset, the statement cache kept.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Mutex;

use deadpool_postgres::{
    ClientWrapper, Hook, HookError, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime,
};
use tokio_postgres::NoTls;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::config::ProxyConfig;
use crate::error::ProxyError;

/// All pools of the proxy.
pub struct Pools {
    config: ProxyConfig,
    /// Per allowed host, its TLS (`None`: plain), built once.
    upstreams: HashMap<String, Option<MakeRustlsConnect>>,
    pools: Mutex<HashMap<Box<str>, Pool>>,
}

impl Pools {
    /// Fails on an unreadable CA file.
    pub fn new(config: ProxyConfig) -> anyhow::Result<Self> {
        let upstreams = config
            .allowed_hosts
            .iter()
            .map(|upstream| {
                let tls = crate::tls::client_config(&upstream.tls)?.map(MakeRustlsConnect::new);
                anyhow::Ok((upstream.host.clone(), tls))
            })
            .collect::<Result<_, _>>()?;
        Ok(Pools {
            config,
            upstreams,
            pools: Mutex::new(HashMap::new()),
        })
    }

    /// The pool for a connection string, creating it if needed.
    pub fn pool_for(&self, connection_string: &str) -> Result<Pool, ProxyError> {
        if let Some(pool) = self.registry()?.get(connection_string) {
            return Ok(pool.clone());
        }
        let (pg_config, tls) = self.parse(connection_string)?;
        let mut pools = self.registry()?;
        if let Some(pool) = pools.get(connection_string) {
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
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Clean,
        };
        let manager = match tls {
            Some(tls) => Manager::from_config(pg_config, tls.clone(), manager_config),
            None => Manager::from_config(pg_config, NoTls, manager_config),
        };
        let allow_superuser = self.config.allow_superuser_for_tests;
        let pool = Pool::builder(manager)
            .post_create(Hook::async_fn(move |client, _| {
                Box::pin(async move {
                    if allow_superuser {
                        return Ok(());
                    }
                    refuse_privileged(client).await
                })
            }))
            .max_size(self.config.pool_size)
            .wait_timeout(Some(self.config.pool_timeout()))
            .create_timeout(Some(self.config.connect_timeout()))
            .recycle_timeout(Some(self.config.connect_timeout()))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| ProxyError::Unavailable(format!("cannot build pool: {e}")))?;
        pools.insert(connection_string.into(), pool.clone());
        Ok(pool)
    }

    fn registry(&self) -> Result<std::sync::MutexGuard<'_, HashMap<Box<str>, Pool>>, ProxyError> {
        self.pools
            .lock()
            .map_err(|_| ProxyError::Unavailable("pool registry poisoned".into()))
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

    /// The connection's configuration (checked against the allowlists,
    /// with the proxy's own settings) and its host's TLS.
    fn parse(
        &self,
        connection_string: &str,
    ) -> Result<(tokio_postgres::Config, &Option<MakeRustlsConnect>), ProxyError> {
        let bad =
            |why: &str| ProxyError::BadRequest(format!("invalid Neon-Connection-String: {why}"));
        let mut config = tokio_postgres::Config::from_str(connection_string)
            .map_err(|_| bad("not a postgres URL"))?;
        let [Host::Tcp(host)] = config.get_hosts() else {
            return Err(bad("exactly one TCP host is required"));
        };
        let host = host.to_ascii_lowercase();
        let Some(tls) = self.upstreams.get(&host) else {
            return Err(ProxyError::Forbidden(format!(
                "host {host} is not allowed by this proxy"
            )));
        };
        if config.get_ports().len() > 1 {
            return Err(bad("exactly one port is allowed"));
        }
        let user = config
            .get_user()
            .ok_or_else(|| bad("user is required"))?
            .to_owned();
        let dbname = config.get_dbname().unwrap_or(&user).to_owned();
        if !self.config.allows(&user, &dbname) {
            return Err(ProxyError::Forbidden(format!(
                "{user}@{dbname} is not allowed by this proxy"
            )));
        }
        if config.get_password().is_none() {
            return Err(bad("password is required"));
        }
        config
            .ssl_mode(if tls.is_some() {
                SslMode::Require
            } else {
                SslMode::Disable
            })
            .dbname(&dbname)
            .connect_timeout(self.config.connect_timeout())
            .application_name("antevus-sql-proxy")
            .options(format!(
                "-c statement_timeout={} {}",
                self.config.statement_timeout_ms,
                crate::render::SESSION_OPTIONS
            ));
        Ok((config, tls))
    }
}

/// The message of a connection refused for its role's privileges.
pub const PRIVILEGED: &str = "roles that are superusers or bypass row-level security \
                              may not be reached through this proxy";

/// Refuses a new connection whose role is a superuser or bypasses
/// row-level security: tenant isolation rests on the policies those skip.
async fn refuse_privileged(client: &mut ClientWrapper) -> Result<(), HookError> {
    let row = client
        .query_one(
            "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .map_err(HookError::Backend)?;
    if row.get::<_, bool>(0) {
        Err(HookError::message(PRIVILEGED))
    } else {
        Ok(())
    }
}
