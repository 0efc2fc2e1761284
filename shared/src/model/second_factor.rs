//! `user_second_factors` and `mfa_recovery_codes`: a user's TOTP key
//! (sealed), whether it is confirmed, the last step used, and the
//! single-use recovery codes (hashed); `organizations.mfa_required_roles`,
//! the roles that must have one.

use serde::Deserialize;

use super::Scope;
use crate::db::{Db, DbError, Statement, statement};
use crate::params;
use crate::platform::Platform;

/// A user's second factor as stored.
#[derive(Debug, Clone, Deserialize)]
pub struct Factor {
    pub secret_sealed: String,
    pub confirmed: bool,
    pub last_used_step: i64,
}

/// The second factor of user `user_id`, confirmed or not.
pub async fn load<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    user_id: uuid::Uuid,
) -> Result<Option<Factor>, DbError> {
    scope
        .fetch_optional(
            db,
            statement(
                "SELECT secret_sealed, confirmed_at IS NOT NULL AS confirmed, last_used_step \
                 FROM user_second_factors WHERE user_id = $1 AND organization_id = $2",
                params![user_id, scope.organization_id()],
            ),
        )
        .await
}

/// Whether a user has a confirmed factor, and whether their role must.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Standing {
    pub has_factor: bool,
    pub required: bool,
}

/// [`Standing`] of `user_id` with `role`, in one query.
pub async fn standing<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    user_id: uuid::Uuid,
    role: &str,
) -> Result<Standing, DbError> {
    let standing: Option<Standing> = scope
        .fetch_optional(
            db,
            statement(
                "SELECT EXISTS (SELECT 1 FROM user_second_factors \
                          WHERE user_id = $1 AND organization_id = $2 AND confirmed_at IS NOT NULL) AS has_factor, \
                        $3 = ANY (o.mfa_required_roles) AS required \
                 FROM organizations o WHERE o.id = $2",
                params![user_id, scope.organization_id(), role],
            ),
        )
        .await?;
    Ok(standing.unwrap_or(Standing {
        has_factor: false,
        required: false,
    }))
}

/// What a user sees of their own second factor.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Status {
    pub enabled: bool,
    pub pending: bool,
    pub recovery_codes_left: i64,
    pub required: bool,
}

/// [`Status`] of `user_id` with `role`, in one query.
pub async fn status<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    user_id: uuid::Uuid,
    role: &str,
) -> Result<Status, DbError> {
    let status: Option<Status> = scope
        .fetch_optional(
            db,
            statement(
                "SELECT (f.user_id IS NOT NULL AND f.confirmed_at IS NOT NULL) AS enabled, \
                        (f.user_id IS NOT NULL AND f.confirmed_at IS NULL) AS pending, \
                        (SELECT count(*) FROM mfa_recovery_codes c \
                          WHERE c.user_id = $1 AND c.organization_id = $2 AND c.used_at IS NULL) AS recovery_codes_left, \
                        $3 = ANY (o.mfa_required_roles) AS required \
                 FROM organizations o \
                 LEFT JOIN user_second_factors f ON f.user_id = $1 AND f.organization_id = o.id \
                 WHERE o.id = $2",
                params![user_id, scope.organization_id(), role],
            ),
        )
        .await?;
    Ok(status.unwrap_or(Status {
        enabled: false,
        pending: false,
        recovery_codes_left: 0,
        required: false,
    }))
}

/// Starts an enrolment: stores a new, unconfirmed key for `user_id`,
/// replacing an unconfirmed one; a confirmed factor is kept (no row
/// returned). Returns `user_id`.
pub fn begin(scope: &Scope, user_id: uuid::Uuid, secret_sealed: &str) -> Statement {
    statement(
        "INSERT INTO user_second_factors AS f (user_id, organization_id, secret_sealed) \
         VALUES ($1, $2, $3) \
         ON CONFLICT (user_id) DO UPDATE SET secret_sealed = EXCLUDED.secret_sealed, \
           created_at = now(), last_used_step = 0 \
         WHERE f.confirmed_at IS NULL AND f.organization_id = EXCLUDED.organization_id \
         RETURNING f.user_id AS id",
        params![user_id, scope.organization_id(), secret_sealed],
    )
}

/// Confirms `user_id`'s pending factor with the code of `step`; returns
/// its `id` (the user's) only when it was pending.
pub fn confirm(scope: &Scope, user_id: uuid::Uuid, step: i64) -> Statement {
    statement(
        "UPDATE user_second_factors SET confirmed_at = now(), last_used_step = $3 \
         WHERE user_id = $1 AND organization_id = $2 AND confirmed_at IS NULL AND last_used_step < $3 \
         RETURNING user_id AS id",
        params![user_id, scope.organization_id(), step],
    )
}

/// Spends `step` of `user_id`'s confirmed factor: only a step later than
/// the last one used counts, so of two requests with one code only one
/// gets a row back.
pub fn use_step(scope: &Scope, user_id: uuid::Uuid, step: i64) -> Statement {
    statement(
        "UPDATE user_second_factors SET last_used_step = $3 \
         WHERE user_id = $1 AND organization_id = $2 AND confirmed_at IS NOT NULL AND last_used_step < $3 \
         RETURNING user_id AS id",
        params![user_id, scope.organization_id(), step],
    )
}

/// Removes `user_id`'s factor; returns its `id` when there was one.
pub fn remove(scope: &Scope, user_id: uuid::Uuid) -> Statement {
    statement(
        "DELETE FROM user_second_factors WHERE user_id = $1 AND organization_id = $2 \
         RETURNING user_id AS id",
        params![user_id, scope.organization_id()],
    )
}

/// Replaces `user_id`'s recovery codes with `hashes`, only when its factor
/// was confirmed by this transaction (after [`confirm`] in the same batch):
/// a confirmation that lost a race issues nothing.
pub fn issue_recovery_codes(
    scope: &Scope,
    user_id: uuid::Uuid,
    hashes: &[String],
) -> Vec<Statement> {
    let confirmed_now = "EXISTS (SELECT 1 FROM user_second_factors \
         WHERE user_id = $1 AND organization_id = $2 AND confirmed_at = now())";
    vec![
        statement(
            format!(
                "DELETE FROM mfa_recovery_codes WHERE user_id = $1 AND organization_id = $2 AND {confirmed_now}"
            ),
            params![user_id, scope.organization_id()],
        ),
        statement(
            format!(
                "INSERT INTO mfa_recovery_codes (user_id, organization_id, code_hash) \
                 SELECT $1, $2, h FROM unnest($3::text[]) AS h WHERE {confirmed_now}"
            ),
            params![user_id, scope.organization_id(), hashes],
        ),
    ]
}

/// Removes every recovery code of `user_id`.
pub fn remove_recovery_codes(scope: &Scope, user_id: uuid::Uuid) -> Statement {
    statement(
        "DELETE FROM mfa_recovery_codes WHERE user_id = $1 AND organization_id = $2",
        params![user_id, scope.organization_id()],
    )
}

/// Spends the unused recovery code of `user_id` with `hash`; returns its
/// `id`, none when there is no such unused code.
pub fn use_recovery_code(scope: &Scope, user_id: uuid::Uuid, hash: &str) -> Statement {
    statement(
        "UPDATE mfa_recovery_codes SET used_at = now() \
         WHERE user_id = $1 AND organization_id = $2 AND code_hash = $3 AND used_at IS NULL \
         RETURNING id",
        params![user_id, scope.organization_id(), hash],
    )
}

/// The organization's policy: the roles that must have a second factor.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub required_roles: Vec<String>,
}

/// The organization's policy.
pub async fn policy<P: Platform>(db: &Db<'_, P>, scope: &Scope) -> Result<Policy, DbError> {
    let policy: Option<Policy> = scope
        .fetch_optional(
            db,
            statement(
                "SELECT mfa_required_roles AS \"requiredRoles\" FROM organizations WHERE id = $1",
                params![scope.organization_id()],
            ),
        )
        .await?;
    Ok(policy.unwrap_or(Policy {
        required_roles: Vec::new(),
    }))
}

/// Sets the organization's policy to `required_roles` if it is still
/// `current` (compared as sets); returns the new one (`requiredRoles`),
/// none when it changed meanwhile.
pub fn set_policy(scope: &Scope, current: &[String], required_roles: &[String]) -> Statement {
    statement(
        "UPDATE organizations SET mfa_required_roles = $3::text[] \
         WHERE id = $1 AND mfa_required_roles @> $2::text[] AND mfa_required_roles <@ $2::text[] \
         RETURNING mfa_required_roles AS \"requiredRoles\"",
        params![scope.organization_id(), current, required_roles],
    )
}
