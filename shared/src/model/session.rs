//! `sessions`: logins. A login opens a session family; each refresh token
//! is a row of it, stored as its SHA-256 and rotated on every use (see
//! `auth::session`).

use serde::{Deserialize, Serialize};

use super::Scope;
use crate::db::{Db, DbError, Statement, statement};
use crate::domain::Timestamp;
use crate::params;
use crate::platform::Platform;

/// The role of a user whose login is live.
#[derive(Debug, Deserialize)]
pub struct LiveRole {
    pub role: String,
}

/// The current role of `user` if the user is active and the login `family`
/// is live (not revoked, not expired).
pub fn live_role(scope: &Scope, user: uuid::Uuid, family: uuid::Uuid) -> Statement {
    statement(
        "SELECT u.role FROM users u WHERE u.id = $1 AND u.organization_id = $2 AND u.is_active \
         AND EXISTS (SELECT 1 FROM sessions s WHERE s.family_id = $3 AND s.user_id = u.id \
                     AND s.organization_id = u.organization_id \
                     AND s.revoked_at IS NULL AND s.expires_at > now())",
        params![user, scope.organization_id(), family],
    )
}

/// Where a login comes from.
pub struct Client {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Opens login `family` of `user` with its first refresh token (`token_hash`,
/// a bytea literal), valid `ttl_secs`.
pub fn open(
    scope: &Scope,
    family: uuid::Uuid,
    user: uuid::Uuid,
    token_hash: &str,
    client: &Client,
    ttl_secs: i64,
) -> Statement {
    statement(
        "INSERT INTO sessions (id, organization_id, user_id, token_hash, family_id, ip_address, user_agent, expires_at) \
         VALUES ($1, $2, $3, $4::text::bytea, $1, $5::inet, $6, now() + make_interval(secs => $7))",
        params![
            family,
            scope.organization_id(),
            user,
            token_hash,
            client.ip,
            client.user_agent,
            ttl_secs,
        ],
    )
}

/// A refresh token spent for its successor.
#[derive(Debug, Deserialize)]
pub struct Rotated {
    pub family_id: uuid::Uuid,
    pub user_id: uuid::Uuid,
    pub organization_id: uuid::Uuid,
    pub email: String,
    pub name: String,
    pub role: String,
    pub expires_in: f64,
}

/// Spends the live refresh token `presented` (its hash) and issues its
/// successor (`successor`, `next_hash`) in the same family, in one
/// statement, if the user is still active. Looked up by the token alone:
/// the organization is not known before.
pub async fn rotate_refresh_token<P: Platform>(
    db: &Db<'_, P>,
    presented: &str,
    successor: uuid::Uuid,
    next_hash: &str,
    client: &Client,
) -> Result<Option<Rotated>, DbError> {
    db.fetch_optional(
        "SELECT * FROM rotate_refresh_token($1, $2, $3, $4, $5)",
        params![
            presented,
            successor,
            next_hash,
            client.ip,
            client.user_agent
        ],
    )
    .await
}

/// A refresh token that was not rotated: its family, and whether it had
/// been spent before (reuse).
#[derive(Debug, Deserialize)]
pub struct Spent {
    pub family_id: uuid::Uuid,
    pub user_id: uuid::Uuid,
    pub organization_id: uuid::Uuid,
    pub reused: bool,
}

/// The refresh token `presented` (its hash), whatever its state. Looked up
/// by the token alone.
pub async fn refresh_token_state<P: Platform>(
    db: &Db<'_, P>,
    presented: &str,
) -> Result<Option<Spent>, DbError> {
    db.fetch_optional("SELECT * FROM refresh_token_state($1)", params![presented])
        .await
}

/// Why a family is ended (`sessions.revoked_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Logout,
    Reuse,
    Deactivated,
    PasswordReset,
    /// Its user ended it from another login.
    Revoked,
    /// Its user changed their password in another login.
    PasswordChanged,
}

impl Ending {
    fn as_str(self) -> &'static str {
        match self {
            Ending::Logout => "logout",
            Ending::Reuse => "reuse",
            Ending::Deactivated => "deactivated",
            Ending::PasswordReset => "password_reset",
            Ending::Revoked => "revoked",
            Ending::PasswordChanged => "password_changed",
        }
    }
}

/// Ends login `family` (its live tokens).
pub fn end_family(scope: &Scope, family: uuid::Uuid, why: Ending) -> Statement {
    statement(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = $3 \
         WHERE family_id = $1 AND organization_id = $2 AND revoked_at IS NULL",
        params![family, scope.organization_id(), why.as_str()],
    )
}

/// Ends every login of `user`.
pub fn end_all_of(scope: &Scope, user: uuid::Uuid, why: Ending) -> Statement {
    statement(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = $3 \
         WHERE user_id = $1 AND organization_id = $2 AND revoked_at IS NULL",
        params![user, scope.organization_id(), why.as_str()],
    )
}

/// One live login (session family) of a user, as its user sees it.
#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(as = OwnLogin, rename_all = "camelCase")
)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct Login {
    /// The login's id (its session family): `sessionId` in `/api/auth/me`.
    pub id: uuid::Uuid,
    pub signed_in_at: Timestamp,
    /// When it last refreshed its access token.
    pub last_refreshed_at: Timestamp,
    /// Where it last refreshed from.
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    /// When it ends unless refreshed.
    pub expires_at: Timestamp,
}

/// The live logins of `user`, the most recently active first (at most 100).
pub async fn logins_of<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    user: uuid::Uuid,
) -> Result<Vec<Login>, DbError> {
    scope
        .fetch_all(
            db,
            statement(
                "SELECT family_id AS id, min(created_at) AS signed_in_at,                         max(created_at) AS last_refreshed_at,                         (array_agg(host(ip_address) ORDER BY created_at DESC))[1] AS ip_address,                         (array_agg(user_agent ORDER BY created_at DESC))[1] AS user_agent,                         max(expires_at) AS expires_at                    FROM sessions WHERE organization_id = $1 AND user_id = $2                   GROUP BY family_id                  HAVING bool_or(revoked_at IS NULL AND expires_at > now())                   ORDER BY max(created_at) DESC LIMIT 100",
                params![scope.organization_id(), user],
            ),
        )
        .await
}

/// Ends login `family` of `user` only; returns its tokens that were live
/// (`family_id`), none when it is no live login of theirs.
pub fn end_login_of(scope: &Scope, user: uuid::Uuid, family: uuid::Uuid, why: Ending) -> Statement {
    statement(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = $4 \
          WHERE family_id = $1 AND organization_id = $2 AND user_id = $3 \
            AND revoked_at IS NULL AND expires_at > now() RETURNING family_id",
        params![family, scope.organization_id(), user, why.as_str()],
    )
}

/// Ends every login of `user` but `keep`.
pub fn end_others_of(scope: &Scope, user: uuid::Uuid, keep: uuid::Uuid, why: Ending) -> Statement {
    statement(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = $4          WHERE user_id = $1 AND organization_id = $2 AND family_id <> $3 AND revoked_at IS NULL",
        params![user, scope.organization_id(), keep, why.as_str()],
    )
}

/// Deletes the organization's logins that expired or ended more than
/// `days` ago; returns `n`, how many.
pub fn purge_ended(scope: &Scope, days: i64) -> Statement {
    statement(
        "WITH gone AS (DELETE FROM sessions WHERE organization_id = $1 \
           AND (expires_at < now() - make_interval(days => $2::int) \
                OR revoked_at < now() - make_interval(days => $2::int)) RETURNING 1) \
         SELECT count(*) AS n FROM gone",
        params![scope.organization_id(), days as i32],
    )
}
