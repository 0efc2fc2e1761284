//! The model layer: every table's row types, column lists and queries.
//!
//! Nothing outside this module names a table in SQL (a test in `xtask`
//! reads every string of the shared crate to hold it so). Routes, the live
//! path and the services call the functions here; routes never call each
//! other.
//!
//! A query of a tenant's data takes a [`Scope`]: the organization it is
//! confined to. A scope comes from an authenticated principal
//! (`auth::Principal::scope`) or, for work that is not a caller's request,
//! from one of the named constructors below; a test restricts each
//! constructor to the modules that may use it. Reads run through the scope
//! ([`Scope::fetch_all`], [`Scope::fetch_optional`]); writes are statements
//! built with the scope and run as one transaction with their audit events
//! ([`Scope::batch`]). Every transaction of a scope starts with the
//! organization setting that row-level security reads
//! (`set_config('app.organization_id', .., true)`), so a read is a
//! transaction too.
//!
//! The few lookups that happen before the organization is known (a login by
//! e-mail, an API key by its prefix, a refresh, reset, invitation or join
//! token by its hash, the system audit chain, rate-limit rows keyed by
//! address) take no scope; their names say what they look up, the same
//! test keeps a list of them, and each calls one of migration V15's
//! `SECURITY DEFINER` functions (the tables are under row-level security,
//! so a plain query without the setting would find nothing).
//!
//! - [`page`]: keyset cursors and pages, shared by every list.
//! - one module per table or group of tables (`instrument`, `run`, ...).

pub mod api_key;
pub mod audit_event;
pub mod bridge;
pub mod command;
pub mod email;
pub mod instrument;
pub mod invitation;
pub mod maintenance;
pub mod organization;
pub mod page;
pub mod password_reset;
pub mod rate_limit;
pub mod reading;
pub mod run;
pub mod run_data;
pub mod second_factor;
pub mod session;
pub mod signature;
pub mod signup_request;
pub mod user;
pub mod watch;
pub mod webhook;

use serde::de::DeserializeOwned;

use crate::db::{BatchOptions, Db, DbError, QueryResult, Statement};
use crate::platform::Platform;

/// The organization a query is confined to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    organization_id: uuid::Uuid,
}

impl Scope {
    /// The organization of an authenticated caller; only
    /// `auth::Principal::scope` calls this, after the credentials checked
    /// out.
    pub fn authenticated(organization_id: uuid::Uuid) -> Scope {
        Scope { organization_id }
    }

    /// The organization of a bridge whose key authenticated the request
    /// (storing what it sent, handing it commands).
    pub fn bridge(organization_id: uuid::Uuid) -> Scope {
        Scope { organization_id }
    }

    /// The organization of an account being signed into, signed up or
    /// recovered: known from the account itself (found by e-mail or by a
    /// token's hash), before anyone is authenticated.
    pub fn account(organization_id: uuid::Uuid) -> Scope {
        Scope { organization_id }
    }

    /// The organization a scheduled job works on, claimed through the
    /// system's own sweep (the retention job's organizations due).
    pub fn scheduled(organization_id: uuid::Uuid) -> Scope {
        Scope { organization_id }
    }

    /// The organization an audit event names, to store the event on its own
    /// (`audit::store`: a refusal, a client's report), not with a change.
    pub fn recorded(organization_id: uuid::Uuid) -> Scope {
        Scope { organization_id }
    }

    pub fn organization_id(&self) -> uuid::Uuid {
        self.organization_id
    }

    /// The statement every transaction of this scope starts with: the
    /// organization setting the row-level security policies read, for this
    /// transaction only (`set_config(..., true)`).
    fn setting(&self) -> Statement {
        crate::db::statement(
            "SELECT set_config('app.organization_id', $1, true)",
            crate::params![self.organization_id],
        )
    }

    /// Runs `statements` as one transaction confined to this organization;
    /// their results, in order.
    pub async fn batch<P: Platform>(
        &self,
        db: &Db<'_, P>,
        statements: Vec<Statement>,
    ) -> Result<Vec<QueryResult>, DbError> {
        self.batch_with(db, statements, BatchOptions::default())
            .await
    }

    /// [`Scope::batch`] with an isolation level or read-only.
    pub async fn batch_with<P: Platform>(
        &self,
        db: &Db<'_, P>,
        statements: Vec<Statement>,
        options: BatchOptions,
    ) -> Result<Vec<QueryResult>, DbError> {
        let mut all = Vec::with_capacity(statements.len() + 1);
        all.push(self.setting());
        all.extend(statements);
        let mut results = db.batch(all, options).await?;
        results.remove(0);
        Ok(results)
    }

    /// Runs one statement of this organization (in a transaction of its
    /// own, after the setting).
    pub async fn execute<P: Platform>(
        &self,
        db: &Db<'_, P>,
        statement: Statement,
    ) -> Result<QueryResult, DbError> {
        self.batch(db, vec![statement])
            .await?
            .pop()
            .ok_or_else(|| DbError::Decode("a batch of one returned no result".into()))
    }

    /// Runs one statement of this organization and decodes every row.
    pub async fn fetch_all<T: DeserializeOwned, P: Platform>(
        &self,
        db: &Db<'_, P>,
        statement: Statement,
    ) -> Result<Vec<T>, DbError> {
        self.execute(db, statement)
            .await?
            .decode()
            .map_err(|e| DbError::Decode(e.to_string()))
    }

    /// Runs one statement of this organization and decodes its first row.
    pub async fn fetch_optional<T: DeserializeOwned, P: Platform>(
        &self,
        db: &Db<'_, P>,
        statement: Statement,
    ) -> Result<Option<T>, DbError> {
        Ok(self.fetch_all(db, statement).await?.into_iter().next())
    }
}

/// The id of a row a statement returns (`RETURNING ... AS id`).
#[derive(Debug, serde::Deserialize)]
pub struct Id {
    pub id: uuid::Uuid,
}

/// A count a statement returns as `n`.
#[derive(Debug, serde::Deserialize)]
pub struct Count {
    pub n: i64,
}

/// The first row of a batch's `index`-th result, decoded.
pub fn first_row<T: DeserializeOwned>(
    results: &[QueryResult],
    index: usize,
) -> Result<Option<T>, DbError> {
    match results.get(index) {
        None => Err(DbError::Decode(format!("no result {index} in the batch"))),
        Some(result) => result
            .decode::<T>()
            .map(|rows| rows.into_iter().next())
            .map_err(|e| DbError::Decode(e.to_string())),
    }
}

/// Every row of a batch's `index`-th result, decoded.
pub fn rows<T: DeserializeOwned>(results: &[QueryResult], index: usize) -> Result<Vec<T>, DbError> {
    match results.get(index) {
        None => Err(DbError::Decode(format!("no result {index} in the batch"))),
        Some(result) => result
            .decode::<T>()
            .map_err(|e| DbError::Decode(e.to_string())),
    }
}
