//! `users`: people of an organization, their role, sign-in state (failed
//! attempts, lock) and profile; e-mail addresses are unique across all
//! organizations.

use crate::domain::Timestamp;
use serde::{Deserialize, Serialize};

use super::Scope;
use crate::db::{Db, DbError, Statement, statement};
use crate::domain::roles::Role;
use crate::error::{ApiError, FieldError};
use crate::params;
use crate::platform::Platform;

/// A user as admins see them.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(rename_all = "camelCase")
)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct User {
    pub id: uuid::Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub department: Option<String>,
    /// A deactivated user cannot sign in, and their sessions ended.
    pub is_active: bool,
    /// When they last signed in; none before their first login.
    pub last_login_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

pub const COLUMNS: &str = "id, email, name, role, department, is_active, last_login_at, created_at";

/// The organization's users, oldest first.
pub async fn list<P: Platform>(db: &Db<'_, P>, scope: &Scope) -> Result<Vec<User>, DbError> {
    scope
        .fetch_all(
            db,
            statement(
                format!(
                    "SELECT {COLUMNS} FROM users WHERE organization_id = $1 ORDER BY created_at, id"
                ),
                params![scope.organization_id()],
            ),
        )
        .await
}

/// User `id`; 404 when the organization has none.
pub async fn get<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    id: uuid::Uuid,
) -> Result<User, ApiError> {
    scope
        .fetch_optional(
            db,
            statement(
                format!("SELECT {COLUMNS} FROM users WHERE id = $1 AND organization_id = $2"),
                params![id, scope.organization_id()],
            ),
        )
        .await?
        .ok_or(ApiError::NotFound)
}

/// What an admin may change of a user.
pub struct Profile<'a> {
    pub name: &'a str,
    pub department: Option<&'a str>,
    pub role: Role,
    pub is_active: bool,
}

/// Sets user `id`'s profile.
pub fn update(scope: &Scope, id: uuid::Uuid, profile: &Profile<'_>) -> Statement {
    statement(
        "UPDATE users SET name = $3, department = $4, role = $5, is_active = $6, updated_at = now() \
         WHERE id = $1 AND organization_id = $2",
        params![
            id,
            scope.organization_id(),
            profile.name,
            profile.department,
            profile.role.as_str(),
            profile.is_active
        ],
    )
}

/// A user with their organization, for `GET /api/auth/me`.
#[derive(Debug, Deserialize)]
pub struct WithOrganization {
    pub id: uuid::Uuid,
    pub email: String,
    pub name: String,
    pub department: Option<String>,
    pub last_login_at: Option<Timestamp>,
    pub organization_id: uuid::Uuid,
    pub organization_name: String,
    pub organization_slug: String,
}

/// User `id` and their organization.
pub async fn with_organization<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    id: uuid::Uuid,
) -> Result<Option<WithOrganization>, DbError> {
    scope
        .fetch_optional(
            db,
            statement(
                "SELECT u.id, u.email, u.name, u.department, u.last_login_at, o.id AS organization_id, \
                        o.name AS organization_name, o.slug AS organization_slug \
                 FROM users u JOIN organizations o ON o.id = u.organization_id \
                 WHERE u.id = $1 AND u.organization_id = $2",
                params![id, scope.organization_id()],
            ),
        )
        .await
}

/// Replaces the password of active user `id` (`password_hash`, PHC), and
/// clears a lockout; returns the id, none when the user is gone.
pub fn set_password(scope: &Scope, id: uuid::Uuid, password_hash: &str) -> Statement {
    statement(
        "UPDATE users SET password_hash = $3, failed_login_attempts = 0, account_locked_until = NULL,                 updated_at = now()           WHERE id = $1 AND organization_id = $2 AND is_active RETURNING id",
        params![id, scope.organization_id(), password_hash],
    )
}

/// An account as a login sees it.
#[derive(Debug, Deserialize)]
pub struct Account {
    pub id: uuid::Uuid,
    pub organization_id: uuid::Uuid,
    pub email: String,
    pub name: String,
    pub role: String,
    pub password_hash: String,
    pub is_active: bool,
    /// Locked by repeated failures, for now.
    pub locked: bool,
}

/// The account with e-mail `email`, for signing in: e-mails are unique
/// across organizations, and none is known before.
pub async fn account_for_login<P: Platform>(
    db: &Db<'_, P>,
    email: &str,
) -> Result<Option<Account>, DbError> {
    db.fetch_optional("SELECT * FROM account_for_login($1)", params![email])
        .await
}

/// Account `id` of the organization, as [`account_for_login`] reads it:
/// the second step of a login (its second factor) and re-authentication.
pub async fn account<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    id: uuid::Uuid,
) -> Result<Option<Account>, DbError> {
    scope
        .fetch_optional(
            db,
            statement(
                "SELECT id, organization_id, email, name, role, password_hash, is_active, \
                        coalesce(account_locked_until > now(), false) AS locked \
                 FROM users WHERE id = $1 AND organization_id = $2",
                params![id, scope.organization_id()],
            ),
        )
        .await
}

/// An active account found by e-mail for a password reset.
#[derive(Debug, Deserialize)]
pub struct Recoverable {
    pub id: uuid::Uuid,
    pub organization_id: uuid::Uuid,
    pub name: String,
}

/// The active account with e-mail `email`, for a password reset (before
/// anyone is authenticated).
pub async fn account_for_reset<P: Platform>(
    db: &Db<'_, P>,
    email: &str,
) -> Result<Option<Recoverable>, DbError> {
    db.fetch_optional("SELECT * FROM account_for_reset($1)", params![email])
        .await
}

/// A successful login of `id`: its time, and the failure count cleared.
pub fn record_login(scope: &Scope, id: uuid::Uuid) -> Statement {
    statement(
        "UPDATE users SET last_login_at = now(), failed_login_attempts = 0, account_locked_until = NULL \
         WHERE id = $1 AND organization_id = $2",
        params![id, scope.organization_id()],
    )
}

/// Counts a wrong password of `id`; the failure that reaches `max` in a row
/// locks the account for `lock_minutes` (and starts the count again);
/// returns `locked_now`, whether this failure locked it.
pub fn count_failed_login(scope: &Scope, id: uuid::Uuid, max: i32, lock_minutes: i64) -> Statement {
    statement(
        "UPDATE users SET \
           failed_login_attempts = CASE WHEN failed_login_attempts + 1 >= $3 THEN 0 ELSE failed_login_attempts + 1 END, \
           account_locked_until = CASE WHEN failed_login_attempts + 1 >= $3 \
                                       THEN now() + make_interval(mins => $4) ELSE account_locked_until END \
         WHERE id = $1 AND organization_id = $2 RETURNING coalesce(account_locked_until > now(), false) AS locked_now",
        params![id, scope.organization_id(), max, lock_minutes],
    )
}

/// A user just created (signup).
#[derive(Debug, Deserialize)]
pub struct Joined {
    pub user_id: uuid::Uuid,
    pub organization_id: uuid::Uuid,
    pub email: String,
    pub role: String,
}

/// An e-mail already taken, as the client should see it.
pub fn email_taken(err: DbError) -> ApiError {
    if err.constraint() == Some("users_email_key") {
        ApiError::Conflict {
            message: "A user with this e-mail already exists".into(),
            details: vec![FieldError::new("email", "Already has an account")],
        }
    } else {
        err.into()
    }
}
