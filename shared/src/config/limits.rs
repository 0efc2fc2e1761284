//! The rate-limit policies (design document defaults), configurable as
//! `limit/window_secs/block_secs` in `RATE_LIMIT_AUTH`, `RATE_LIMIT_PUBLIC`,
//! `RATE_LIMIT_AUTHENTICATED` and `RATE_LIMIT_ADMIN`, and the cap on every
//! client report without credentials together (`RATE_LIMIT_CLIENT_REPORTS`,
//! 5,000 a day). The limits themselves are applied by `crate::ratelimit`.

use super::{ConfigError, Vars};

/// `limit` requests per `window_secs`; going over blocks for `block_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub limit: u32,
    pub window_secs: u32,
    pub block_secs: u32,
}

impl Policy {
    /// Parses `limit/window_secs/block_secs`.
    pub fn parse(text: &str) -> Option<Policy> {
        let mut parts = text.trim().split('/').map(|p| p.trim().parse::<u32>().ok());
        let policy = Policy {
            limit: parts.next()??,
            window_secs: parts.next()??,
            block_secs: parts.next()??,
        };
        (parts.next().is_none() && policy.limit > 0 && policy.window_secs > 0).then_some(policy)
    }
}

/// The policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub auth: Policy,
    pub public: Policy,
    pub authenticated: Policy,
    pub admin: Policy,
    /// Every anonymous client report together (`POST /api/audit`).
    pub client_reports: Policy,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            auth: Policy {
                limit: 5,
                window_secs: 60,
                block_secs: 900,
            },
            public: Policy {
                limit: 100,
                window_secs: 60,
                block_secs: 300,
            },
            authenticated: Policy {
                limit: 1000,
                window_secs: 60,
                block_secs: 300,
            },
            admin: Policy {
                limit: 2000,
                window_secs: 60,
                block_secs: 60,
            },
            client_reports: Policy {
                limit: 5000,
                window_secs: 86_400,
                block_secs: 0,
            },
        }
    }
}

impl Limits {
    pub(super) fn parse(vars: &Vars) -> Result<Limits, ConfigError> {
        let defaults = Limits::default();
        let policy = |name: &str, default: Policy| match vars.get(name) {
            None => Ok(default),
            Some(text) => Policy::parse(&text)
                .ok_or_else(|| ConfigError(format!("{name} must be limit/window_secs/block_secs"))),
        };
        Ok(Limits {
            auth: policy("RATE_LIMIT_AUTH", defaults.auth)?,
            public: policy("RATE_LIMIT_PUBLIC", defaults.public)?,
            authenticated: policy("RATE_LIMIT_AUTHENTICATED", defaults.authenticated)?,
            admin: policy("RATE_LIMIT_ADMIN", defaults.admin)?,
            client_reports: policy("RATE_LIMIT_CLIENT_REPORTS", defaults.client_reports)?,
        })
    }
}
