//! Rate limits: GCRA with its state in PostgreSQL, one atomic statement per
//! check, correct when many function instances run at once.
//!
//! Classes and defaults (design document): authentication 5/min with a
//! 15-minute block, public 100/min (5-minute block), authenticated 1000/min
//! (5 minutes), admin 2000/min (1 minute); and every anonymous client
//! report together, 5000 a day (no block). Each is configurable as
//! `limit/window_secs/block_secs` (`RATE_LIMIT_AUTH`, `RATE_LIMIT_PUBLIC`,
//! `RATE_LIMIT_AUTHENTICATED`, `RATE_LIMIT_ADMIN`, `RATE_LIMIT_CLIENT_REPORTS`).
//!
//! Answers carry `RateLimit-Policy` and `RateLimit`
//! (draft-ietf-httpapi-ratelimit-headers); a refusal is `429
//! RATE_LIMIT_EXCEEDED` with `Retry-After`.

use http::{HeaderName, HeaderValue};

pub use crate::config::{Limits, Policy};
use crate::ctx::Ctx;
use crate::db::Statement;
use crate::domain::roles::Role;
use crate::error::{ApiError, Caller};
pub use crate::model::rate_limit::Checked;
use crate::model::{Scope, rate_limit};
use crate::platform::Platform;
use crate::request::Rq;

/// Which limit applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Auth,
    Public,
    Authenticated,
    Admin,
    /// Every anonymous client report together.
    ClientReports,
}

impl Class {
    /// The class of a signed-in caller (a user or an API key) of `role`.
    pub fn of(role: Role) -> Class {
        match role {
            Role::Admin | Role::SuperAdmin => Class::Admin,
            _ => Class::Authenticated,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Class::Auth => "auth",
            Class::Public => "public",
            Class::Authenticated => "authenticated",
            Class::Admin => "admin",
            Class::ClientReports => "client-reports",
        }
    }
}

impl Limits {
    pub fn policy(&self, class: Class) -> Policy {
        match class {
            Class::Auth => self.auth,
            Class::Public => self.public,
            Class::Authenticated => self.authenticated,
            Class::Admin => self.admin,
            Class::ClientReports => self.client_reports,
        }
    }
}

/// The most requests per minute `policy` admits (at least one).
pub fn per_minute(policy: Policy) -> i64 {
    (i64::from(policy.limit) * 60 / i64::from(policy.window_secs)).max(1)
}

/// The policy of an API key with its own limit of `per_minute`: the key's
/// when it is slower than its class's `policy`, else the class's. A key
/// only ever slows its holder down.
pub fn key_policy(policy: Policy, per_minute_limit: Option<i64>) -> Policy {
    match per_minute_limit {
        Some(own) if own > 0 && own < per_minute(policy) => Policy {
            limit: u32::try_from(own).unwrap_or(u32::MAX),
            window_secs: 60,
            block_secs: policy.block_secs,
        },
        _ => policy,
    }
}

/// The one statement of a check (see [`rate_limit::check`]).
pub fn check_statement(policy: Policy, key: &str, scope: Option<&Scope>) -> Statement {
    let emission = f64::from(policy.window_secs) / f64::from(policy.limit);
    rate_limit::check(
        key,
        scope,
        emission,
        f64::from(policy.window_secs),
        f64::from(policy.block_secs),
    )
}

/// The outcome of a check: headers for the answer, or the refusal.
#[derive(Debug)]
pub struct Verdict {
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub refusal: Option<ApiError>,
}

/// Applies the `class` limit to `key` (one statement, for requests that are
/// limited before anyone is authenticated: by client address or account;
/// with `scope`, in that organization's transaction, as row-level security
/// wants); the answer gets the rate-limit headers, and over the limit this
/// fails with 429.
pub async fn check<P: Platform>(
    ctx: &Ctx<P>,
    rq: &mut Rq,
    class: Class,
    key: &str,
    scope: Option<&Scope>,
) -> Result<(), ApiError> {
    let policy = ctx.config.rate_limits()?.policy(class);
    let statement = check_statement(policy, &format!("{}:{key}", class.name()), scope);
    let db = ctx.db();
    let checked: Option<Checked> = match scope {
        Some(scope) => scope.fetch_optional(&db, statement).await?,
        None => {
            db.fetch_optional(&statement.query, statement.params)
                .await?
        }
    };
    let checked = checked.ok_or_else(|| ApiError::internal("rate limit check returned no row"))?;
    apply(rq, class, policy, &checked, None)
}

/// Puts a check's verdict on the request (its headers) and turns a
/// refusal into the error, naming `caller` for the audit trail.
pub fn apply(
    rq: &mut Rq,
    class: Class,
    policy: Policy,
    checked: &Checked,
    caller: Option<Caller>,
) -> Result<(), ApiError> {
    let verdict = verdict(class, policy, checked, caller);
    rq.add_headers(verdict.headers);
    verdict.refusal.map_or(Ok(()), Err)
}

/// Interprets a check's row under `policy`.
pub fn verdict(class: Class, policy: Policy, checked: &Checked, caller: Option<Caller>) -> Verdict {
    let window = f64::from(policy.window_secs);
    let emission = window / f64::from(policy.limit);
    let remaining = ((window - checked.backlog_secs) / emission)
        .floor()
        .clamp(0.0, f64::from(policy.limit)) as u64;
    let reset = checked.backlog_secs.max(0.0).ceil() as u64;
    let name = class.name();
    let mut headers = vec![
        (
            HeaderName::from_static("ratelimit-policy"),
            header(format!(
                "\"{name}\";q={};w={}",
                policy.limit, policy.window_secs
            )),
        ),
        (
            HeaderName::from_static("ratelimit"),
            header(format!("\"{name}\";r={remaining};t={reset}")),
        ),
    ];
    let refusal = (!checked.allowed).then(|| {
        let retry = if checked.blocked_secs > 0.0 {
            checked.blocked_secs
        } else {
            (checked.backlog_secs + emission - window).max(1.0)
        };
        let retry_after_secs = retry.ceil().max(1.0) as u64;
        headers[1].1 = header(format!("\"{name}\";r=0;t={retry_after_secs}"));
        ApiError::RateLimited {
            retry_after_secs,
            started_block: checked.block_started,
            caller,
        }
    });
    Verdict { headers, refusal }
}

fn header(text: String) -> HeaderValue {
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse() {
        assert_eq!(
            Policy::parse("5/60/900"),
            Some(Policy {
                limit: 5,
                window_secs: 60,
                block_secs: 900
            })
        );
        assert_eq!(Policy::parse("0/60/0"), None);
        assert_eq!(Policy::parse("5/60"), None);
        assert_eq!(Policy::parse("5/60/1/2"), None);
    }

    #[test]
    fn verdicts_report_remaining_and_retry() {
        let policy = Policy {
            limit: 5,
            window_secs: 60,
            block_secs: 900,
        };
        let ok = verdict(
            Class::Auth,
            policy,
            &Checked {
                allowed: true,
                block_started: false,
                backlog_secs: 12.0,
                blocked_secs: 0.0,
            },
            None,
        );
        assert!(ok.refusal.is_none());
        assert_eq!(ok.headers[0].1, "\"auth\";q=5;w=60");
        assert_eq!(ok.headers[1].1, "\"auth\";r=4;t=12");
        let no = verdict(
            Class::Auth,
            policy,
            &Checked {
                allowed: false,
                block_started: true,
                backlog_secs: 60.0,
                blocked_secs: 900.0,
            },
            None,
        );
        assert!(matches!(
            no.refusal,
            Some(ApiError::RateLimited {
                retry_after_secs: 900,
                started_block: true,
                caller: None,
            })
        ));
    }
}
