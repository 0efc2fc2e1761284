//! `rate_limits`: one row per limited key (a user, a key, a client address,
//! an account), GCRA state kept by one atomic statement per check.
//! `crate::ratelimit` chooses the policy and reads the verdict.

use serde::Deserialize;

use super::Scope;
use crate::db::{Statement, statement};
use crate::params;

/// The row a check returns.
#[derive(Debug, Clone, Deserialize)]
pub struct Checked {
    pub allowed: bool,
    /// This check started a block (audited once per block).
    #[serde(default)]
    pub block_started: bool,
    pub backlog_secs: f64,
    pub blocked_secs: f64,
}

/// The one statement of a check: GCRA on the row of `key` (of `scope`'s
/// organization, or of none for keys by address), one request costing
/// `emission_secs` of a `window_secs` window, going over blocking for
/// `block_secs`. Every SET expression reads the row as it was, under its
/// lock. Time is `clock_timestamp()`, read after the lock is taken, not the
/// transaction's start (`now()`): concurrent checks then see time move
/// forward in the order they hold the row, and none is refused for an
/// earlier start.
pub fn check(
    key: &str,
    scope: Option<&Scope>,
    emission_secs: f64,
    window_secs: f64,
    block_secs: f64,
) -> Statement {
    statement(
        "WITH p AS (SELECT make_interval(secs => $3) AS t, make_interval(secs => $4) AS w, \
                           make_interval(secs => $5) AS b) \
         INSERT INTO rate_limits AS r (key, organization_id, tat, window_start, count, last_allowed) \
         SELECT $1, $2, clock_timestamp() + p.t, clock_timestamp(), 1, true FROM p \
         ON CONFLICT (key) DO UPDATE SET \
           last_allowed = coalesce(r.blocked_until <= clock_timestamp(), true) \
                          AND greatest(r.tat, clock_timestamp()) + (SELECT t FROM p) <= clock_timestamp() + (SELECT w FROM p), \
           tat = CASE WHEN coalesce(r.blocked_until <= clock_timestamp(), true) \
                       AND greatest(r.tat, clock_timestamp()) + (SELECT t FROM p) <= clock_timestamp() + (SELECT w FROM p) \
                      THEN greatest(r.tat, clock_timestamp()) + (SELECT t FROM p) ELSE r.tat END, \
           blocked_until = CASE WHEN r.blocked_until > clock_timestamp() THEN r.blocked_until \
                                WHEN greatest(r.tat, clock_timestamp()) + (SELECT t FROM p) > clock_timestamp() + (SELECT w FROM p) \
                                     AND $5 > 0 THEN clock_timestamp() + (SELECT b FROM p) \
                                ELSE r.blocked_until END, \
           is_blocked = coalesce(r.blocked_until > clock_timestamp(), false) \
                        OR (greatest(r.tat, clock_timestamp()) + (SELECT t FROM p) > clock_timestamp() + (SELECT w FROM p) AND $5 > 0), \
           block_started = NOT coalesce(r.blocked_until > clock_timestamp(), false) \
                        AND greatest(r.tat, clock_timestamp()) + (SELECT t FROM p) > clock_timestamp() + (SELECT w FROM p) \
                        AND $5 > 0, \
           count = r.count + 1 \
         RETURNING last_allowed AS allowed, block_started, \
                   extract(epoch FROM greatest(tat, clock_timestamp()) - clock_timestamp())::float8 AS backlog_secs, \
                   extract(epoch FROM coalesce(blocked_until, clock_timestamp()) - clock_timestamp())::float8 AS blocked_secs",
        params![
            key,
            scope.map(Scope::organization_id),
            emission_secs,
            window_secs,
            block_secs
        ],
    )
}

/// Deletes the organization's rate-limit state idle for `hours` and not
/// blocking; returns `n`, how many.
pub fn purge_idle(scope: &Scope, hours: i64) -> Statement {
    statement(
        "WITH gone AS (DELETE FROM rate_limits WHERE organization_id = $1 \
           AND tat < now() - make_interval(hours => $2::int) \
           AND coalesce(blocked_until < now(), true) RETURNING 1) \
         SELECT count(*) AS n FROM gone",
        params![scope.organization_id(), hours as i32],
    )
}

/// Deletes the rate-limit state of no organization (keyed by client
/// address) idle for `hours` and not blocking, through migration V16's
/// `SECURITY DEFINER` function; returns `n`, how many. The system's sweep:
/// no tenant is told the count.
pub fn purge_idle_addresses(hours: i64) -> Statement {
    statement(
        "SELECT purge_idle_rate_limits($1::int) AS n",
        params![hours as i32],
    )
}
