//! `organizations`: the tenants. They are created with their first admin
//! when a signup is confirmed (`signup_request::confirm_signup`).

use serde::Deserialize;

use crate::db::{Db, DbError, Statement, statement};
use crate::params;
use crate::platform::Platform;

/// An organization claimed for a scheduled job.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Claimed {
    pub id: uuid::Uuid,
}

/// Claims up to `limit` organizations whose retention has not run within
/// `hours` and that no unfinished run holds (never-run ones first, newest
/// first), leased for `lease_secs`, through migration V23's `SECURITY
/// DEFINER` function (the job is the system's, of no organization; two
/// ticks never take the same one, and a run that never finished is taken
/// again once its lease is over).
pub async fn claim_retention_due<P: Platform>(
    db: &Db<'_, P>,
    limit: i64,
    hours: i64,
    lease_secs: i64,
) -> Result<Vec<Claimed>, DbError> {
    db.fetch_all(
        "SELECT * FROM claim_retention_due($1::int, $2::int, $3::int)",
        params![limit as i32, hours as i32, lease_secs as i32],
    )
    .await
}

/// Marks the leased organization `id`'s retention as run now and releases
/// its lease (V23's definer).
pub fn finish_retention(id: uuid::Uuid) -> Statement {
    statement("SELECT finish_retention($1) AS finished", params![id])
}
