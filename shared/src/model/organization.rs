//! `organizations`: the tenants. They are created with their first admin
//! when a signup is confirmed (`signup_request::confirm_signup`).

use serde::Deserialize;

use crate::db::{Db, DbError};
use crate::params;
use crate::platform::Platform;

/// An organization claimed for a scheduled job.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Claimed {
    pub id: uuid::Uuid,
}

/// Claims up to `limit` organizations whose retention has not run within
/// `hours` (never-run ones first, newest first), marked as run now, through
/// migration V20's `SECURITY DEFINER` function (the job is the system's, of
/// no organization; two ticks never take the same one).
pub async fn claim_retention_due<P: Platform>(
    db: &Db<'_, P>,
    limit: i64,
    hours: i64,
) -> Result<Vec<Claimed>, DbError> {
    db.fetch_all(
        "SELECT * FROM claim_retention_due($1::int, $2::int)",
        params![limit as i32, hours as i32],
    )
    .await
}
