//! `signup_requests`: a signup waiting for its address's owner to follow
//! the link mailed to it. The organization and its first admin exist only
//! once the link is followed; until then nobody holds the address. No
//! application request reaches the table but through migration V19's
//! `SECURITY DEFINER` functions (it belongs to no organization yet).

use serde::Deserialize;

use crate::db::{Db, DbError, Statement, statement};
use crate::params;
use crate::platform::Platform;

/// A signup to record, and its confirmation's sealed message.
pub struct NewRequest<'a> {
    pub id: uuid::Uuid,
    pub email: &'a str,
    pub organization_name: &'a str,
    pub name: &'a str,
    pub password_hash: &'a str,
    /// The token's stored hash (a bytea literal).
    pub token_hash: &'a str,
    pub ttl_hours: i64,
    pub mail_id: uuid::Uuid,
    pub subject: &'a str,
    pub body_sealed: &'a str,
}

/// Records the request and queues its confirmation e-mail, in one
/// statement; the address's expired requests go.
pub fn request_signup(new: &NewRequest<'_>) -> Statement {
    statement(
        "SELECT request_signup($1, $2, $3, $4, $5, $6, $7::int, $8, $9, $10)",
        params![
            new.id,
            new.email,
            new.organization_name,
            new.name,
            new.password_hash,
            new.token_hash,
            new.ttl_hours as i32,
            new.mail_id,
            new.subject,
            new.body_sealed
        ],
    )
}

/// A live request, as [`signup_request_for`] finds it.
#[derive(Debug, Deserialize)]
pub struct Requested {
    pub email: String,
    pub organization_name: String,
    pub name: String,
    /// What the person confirming must match.
    pub password_hash: String,
}

/// The live request whose token hashes to `token_hash`. Spends nothing.
pub async fn signup_request_for<P: Platform>(
    db: &Db<'_, P>,
    token_hash: &str,
) -> Result<Option<Requested>, DbError> {
    db.fetch_optional("SELECT * FROM signup_request_for($1)", params![token_hash])
        .await
}

/// Spends the live request whose token hashes to `token_hash`: creates
/// organization `organization_id` (with `slug`) and its first admin
/// `user_id` in one statement, to run in that organization's scope with
/// its audit event; returns the account ([`super::user::Joined`]), none
/// when the request was spent meanwhile.
pub fn confirm_signup(
    token_hash: &str,
    organization_id: uuid::Uuid,
    slug: &str,
    user_id: uuid::Uuid,
) -> Statement {
    statement(
        "SELECT * FROM confirm_signup($1, $2, $3, $4)",
        params![token_hash, organization_id, slug, user_id],
    )
}

/// Deletes the requests whose link expired (V20's definer, for the
/// scheduled retention job); returns `n`, how many.
pub fn purge_expired_signup_requests() -> Statement {
    statement("SELECT purge_expired_signup_requests() AS n", Vec::new())
}
