//! `run_data` and `run_data_chunks`: a run's raw data file, its upload
//! state, and (in the PostgreSQL backend) its bytes.

use serde::Deserialize;

use super::Scope;
use crate::db::{Db, DbError, statement};
use crate::params;
use crate::platform::Platform;

/// Base64 text of part of a stored chunk.
#[derive(Deserialize)]
pub struct Piece {
    pub data: String,
}

/// The stored bytes `[start, end)` of run `run_id`'s file, as the base64
/// pieces of the chunks that cover them, in order (chunks are at most
/// `chunk_bytes` long).
pub async fn chunk_pieces<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    run_id: uuid::Uuid,
    start: u64,
    end: u64,
    chunk_bytes: u64,
) -> Result<Vec<Piece>, DbError> {
    scope
        .fetch_all(
            db,
            statement(
                "SELECT translate(encode(substring(data \
                   FROM (greatest($3::bigint, byte_offset) - byte_offset + 1)::int \
                   FOR (least($4::bigint, byte_offset + size) - greatest($3::bigint, byte_offset))::int), \
                   'base64'), E'\\n', '') AS data \
                 FROM run_data_chunks \
                 WHERE organization_id = $1 AND run_id = $2 \
                   AND byte_offset < $4 AND byte_offset > $3::bigint - $5 AND byte_offset + size > $3 \
                 ORDER BY byte_offset",
                params![
                    scope.organization_id(),
                    run_id,
                    start as i64,
                    end as i64,
                    chunk_bytes as i64
                ],
            ),
        )
        .await
}
