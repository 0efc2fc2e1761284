//! `organizations`: the tenants.

use super::Scope;
use crate::db::{Statement, statement};
use crate::params;

/// Creates organization `scope` (a new one, at signup).
pub fn insert(scope: &Scope, name: &str, slug: &str) -> Statement {
    statement(
        "INSERT INTO organizations (id, name, slug) VALUES ($1, $2, $3)",
        params![scope.organization_id(), name, slug],
    )
}
