//! `run_signatures`: electronic signatures of runs, append-only, each
//! sealed over the signer, meaning, time and the run version it signed.

use crate::domain::Timestamp;
use serde::Deserialize;
use time::OffsetDateTime;

use super::Scope;
use crate::db::{Db, DbError, Statement, statement};
use crate::params;
use crate::platform::Platform;

/// A signature as stored.
#[derive(Debug, Deserialize)]
pub struct Stored {
    pub id: uuid::Uuid,
    pub organization_id: uuid::Uuid,
    pub run_id: uuid::Uuid,
    pub signer_id: uuid::Uuid,
    pub printed_name: String,
    pub meaning: String,
    pub comment: Option<String>,
    pub run_version: i64,
    pub run_hash: String,
    pub signed_at: Timestamp,
    pub key_id: String,
    pub signature: String,
}

pub const COLUMNS: &str = "id, organization_id, run_id, signer_id, printed_name, meaning, comment, run_version, \
     encode(run_hash, 'hex') AS run_hash, signed_at, key_id, encode(signature, 'hex') AS signature";

/// Run `run_id`'s signatures, oldest first.
pub async fn of_run<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    run_id: uuid::Uuid,
) -> Result<Vec<Stored>, DbError> {
    scope
        .fetch_all(
            db,
            statement(
                format!(
                    "SELECT {COLUMNS} FROM run_signatures WHERE organization_id = $1 AND run_id = $2 \
                     ORDER BY signed_at, id"
                ),
                params![scope.organization_id(), run_id],
            ),
        )
        .await
}

/// Signature `id`.
pub async fn load<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    id: uuid::Uuid,
) -> Result<Option<Stored>, DbError> {
    scope
        .fetch_optional(
            db,
            statement(
                format!(
                    "SELECT {COLUMNS} FROM run_signatures WHERE id = $1 AND organization_id = $2"
                ),
                params![id, scope.organization_id()],
            ),
        )
        .await
}

/// The signer, re-authenticating.
#[derive(Debug, Deserialize)]
pub struct Signer {
    pub email: String,
    pub name: String,
    pub password_hash: String,
    /// Whether this login signed before (later signatures need only the
    /// password).
    pub signed_in_session: bool,
}

/// Active user `id` as a signer in login `session_id`.
pub async fn signer<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    id: uuid::Uuid,
    session_id: uuid::Uuid,
) -> Result<Option<Signer>, DbError> {
    scope
        .fetch_optional(
            db,
            statement(
                "SELECT email, name, password_hash, \
                   EXISTS (SELECT 1 FROM run_signatures WHERE session_id = $2 AND organization_id = $3) \
                   AS signed_in_session \
                 FROM users WHERE id = $1 AND organization_id = $3 AND is_active",
                params![id, session_id, scope.organization_id()],
            ),
        )
        .await
}

/// A signature to store.
pub struct NewSignature<'a> {
    pub id: uuid::Uuid,
    pub run_id: uuid::Uuid,
    pub signer_id: uuid::Uuid,
    pub printed_name: &'a str,
    pub meaning: &'a str,
    pub comment: Option<&'a str>,
    pub run_version: i64,
    pub run_hash: &'a [u8],
    pub signed_at: OffsetDateTime,
    pub session_id: uuid::Uuid,
    pub key_id: &'a str,
    pub seal: &'a [u8],
}

/// Stores the signature only while the run is still the version signed;
/// returns its `id` (no row: the run changed).
pub fn insert(scope: &Scope, new: &NewSignature<'_>) -> Statement {
    statement(
        "INSERT INTO run_signatures (id, organization_id, run_id, signer_id, printed_name, meaning, comment, \
           run_version, run_hash, signed_at, session_id, key_id, signature) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, decode($9, 'hex'), $10, $11, $12, decode($13, 'hex') \
           FROM runs WHERE id = $3 AND organization_id = $2 AND version = $8 \
         RETURNING id",
        params![
            new.id,
            scope.organization_id(),
            new.run_id,
            new.signer_id,
            new.printed_name,
            new.meaning,
            new.comment,
            new.run_version,
            hex::encode(new.run_hash),
            new.signed_at,
            new.session_id,
            new.key_id,
            hex::encode(new.seal),
        ],
    )
}
