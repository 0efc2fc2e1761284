//! `invitations`: a single-use link, stored as its hash, that lets someone
//! join an organization with a role.

use crate::domain::Timestamp;
use serde::{Deserialize, Serialize};

use super::Scope;
use crate::db::{Db, DbError, Statement, statement};
use crate::domain::roles::Role;
use crate::params;
use crate::platform::Platform;

/// An invitation to create.
pub struct NewInvitation<'a> {
    pub id: uuid::Uuid,
    pub email: &'a str,
    pub role: Role,
    /// The token's stored hash (a bytea literal).
    pub token_hash: &'a str,
    pub invited_by: uuid::Uuid,
    pub ttl_days: i64,
}

/// Creates the invitation unless the address already has an account
/// (then nothing is inserted); returns `id, expires_at`.
pub fn insert(scope: &Scope, new: &NewInvitation<'_>) -> Statement {
    statement(
        "INSERT INTO invitations (id, organization_id, email, role, token_hash, invited_by, expires_at) \
         SELECT $1, $2, $3, $4, $5::text::bytea, $6, now() + make_interval(days => $7) \
         WHERE NOT EXISTS (SELECT 1 FROM users WHERE email = $3) \
         RETURNING id, expires_at",
        params![
            new.id,
            scope.organization_id(),
            new.email,
            new.role.as_str(),
            new.token_hash,
            new.invited_by,
            new.ttl_days
        ],
    )
}

/// Queues the invitation's e-mail, only if invitation `id` exists.
pub fn queue_mail(
    scope: &Scope,
    id: uuid::Uuid,
    message_id: uuid::Uuid,
    to: &str,
    subject: &str,
    body_sealed: &str,
) -> Statement {
    statement(
        "INSERT INTO email_outbox (id, organization_id, to_address, template, subject, body_sealed) \
         SELECT $5, $1, $2, 'invitation', $6, $3 FROM invitations WHERE id = $4 AND organization_id = $1",
        params![
            scope.organization_id(),
            to,
            body_sealed,
            id,
            message_id,
            subject
        ],
    )
}

/// When an invitation expires.
#[derive(Debug, Deserialize)]
pub struct Created {
    pub id: uuid::Uuid,
    pub expires_at: Timestamp,
}

/// Invitation `id`.
pub async fn load<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    id: uuid::Uuid,
) -> Result<Option<Created>, DbError> {
    scope
        .fetch_optional(
            db,
            statement(
                "SELECT id, expires_at FROM invitations WHERE id = $1 AND organization_id = $2",
                params![id, scope.organization_id()],
            ),
        )
        .await
}

/// A live invitation, as [`invitation_for`] finds it.
#[derive(Debug, Deserialize)]
pub struct Invited {
    pub organization_id: uuid::Uuid,
    pub email: String,
    pub role: String,
}

/// The live invitation whose token hashes to `token_hash`, found by the
/// token alone (the organization is not known before). Spends nothing.
pub async fn invitation_for<P: Platform>(
    db: &Db<'_, P>,
    token_hash: &str,
) -> Result<Option<Invited>, DbError> {
    db.fetch_optional("SELECT * FROM invitation_for($1)", params![token_hash])
        .await
}

/// Spends the live invitation whose token hashes to `token_hash` and
/// creates its account `user_id` in the inviting organization with the
/// invited e-mail and role, in one statement (to run with its audit event,
/// in the organization [`invitation_for`] named); returns the account
/// ([`super::user::Joined`]), none when the invitation was spent meanwhile.
pub fn accept(token_hash: &str, user_id: uuid::Uuid, password_hash: &str, name: &str) -> Statement {
    statement(
        "SELECT * FROM accept_invitation($1, $2, $3, $4)",
        params![token_hash, user_id, password_hash, name],
    )
}

/// Where an invitation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = InvitationStatus))]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Its link still works.
    Pending,
    /// Its link made an account.
    Accepted,
    /// Its link ran out unused.
    Expired,
    /// An administrator withdrew it.
    Revoked,
}

/// An invitation as administrators see it (never its link).
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(rename_all = "camelCase")
)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct Invitation {
    pub id: uuid::Uuid,
    pub email: String,
    pub role: Role,
    pub status: Status,
    pub invited_by: Option<uuid::Uuid>,
    /// The inviter's name, when the account still exists.
    pub invited_by_name: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub accepted_at: Option<Timestamp>,
    /// The account it made.
    pub accepted_user_id: Option<uuid::Uuid>,
    pub revoked_at: Option<Timestamp>,
    pub revoked_by: Option<uuid::Uuid>,
}

const COLUMNS: &str = "i.id, i.email, i.role, \
     CASE WHEN i.revoked_at IS NOT NULL THEN 'revoked' WHEN i.accepted_at IS NOT NULL THEN 'accepted' \
          WHEN i.expires_at <= now() THEN 'expired' ELSE 'pending' END AS status, \
     i.invited_by, u.name AS invited_by_name, i.created_at, i.expires_at, i.accepted_at, i.accepted_user_id, \
     i.revoked_at, i.revoked_by";

/// `FROM` clause matching [`COLUMNS`].
const FROM: &str = "invitations i LEFT JOIN users u ON u.id = i.invited_by AND u.organization_id = i.organization_id";

/// The organization's invitations, newest first (at most 500).
pub async fn list<P: Platform>(db: &Db<'_, P>, scope: &Scope) -> Result<Vec<Invitation>, DbError> {
    scope
        .fetch_all(
            db,
            statement(
                format!(
                    "SELECT {COLUMNS} FROM {FROM} WHERE i.organization_id = $1 ORDER BY i.created_at DESC, i.id DESC LIMIT 500"
                ),
                params![scope.organization_id()],
            ),
        )
        .await
}

/// Invitation `id` as administrators see it.
pub async fn get<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    id: uuid::Uuid,
) -> Result<Option<Invitation>, DbError> {
    scope
        .fetch_optional(
            db,
            statement(
                format!("SELECT {COLUMNS} FROM {FROM} WHERE i.organization_id = $1 AND i.id = $2"),
                params![scope.organization_id(), id],
            ),
        )
        .await
}

/// Revokes invitation `id` if it is still pending: its link stops working
/// at once; returns `id` (no row: it was not pending).
pub fn revoke(scope: &Scope, id: uuid::Uuid, by: uuid::Uuid) -> Statement {
    statement(
        "UPDATE invitations SET revoked_at = now(), revoked_by = $3, expires_at = now() \
          WHERE organization_id = $1 AND id = $2 AND revoked_at IS NULL AND accepted_at IS NULL \
            AND expires_at > now() RETURNING id",
        params![scope.organization_id(), id, by],
    )
}
