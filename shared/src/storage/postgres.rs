//! The PostgreSQL backend: a file is the rows of `run_data_chunks`, in
//! order of `byte_offset`. Writing a chunk is part of the statement that
//! advances the upload (see `routes::run_data`); this module reads.

use base64::Engine as _;
use serde::Deserialize;

use super::PG_CHUNK_BYTES;
use crate::ctx::Ctx;
use crate::error::ApiError;
use crate::params;
use crate::platform::Platform;

/// Most bytes fetched per query: base64 makes 4 MiB about 5.4 MiB of
/// answer, under the proxy's (and Neon's) 10 MiB reply cap.
const READ_WINDOW: u64 = 4 << 20;

#[derive(Deserialize)]
struct Piece {
    data: String,
}

/// The bytes `[start, end)` of a run's stored file.
pub async fn read<P: Platform>(
    ctx: &Ctx<P>,
    organization_id: uuid::Uuid,
    run_id: uuid::Uuid,
    start: u64,
    end: u64,
) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::with_capacity(usize::try_from(end - start).map_err(ApiError::internal)?);
    let mut at = start;
    while at < end {
        let until = end.min(at + READ_WINDOW);
        let pieces: Vec<Piece> = ctx
            .db()
            .fetch_all(
                "SELECT translate(encode(substring(data \
                   FROM (greatest($3::bigint, byte_offset) - byte_offset + 1)::int \
                   FOR (least($4::bigint, byte_offset + size) - greatest($3::bigint, byte_offset))::int), \
                   'base64'), E'\\n', '') AS data \
                 FROM run_data_chunks \
                 WHERE organization_id = $1 AND run_id = $2 \
                   AND byte_offset < $4 AND byte_offset > $3::bigint - $5 AND byte_offset + size > $3 \
                 ORDER BY byte_offset",
                params![
                    organization_id,
                    run_id,
                    at as i64,
                    until as i64,
                    PG_CHUNK_BYTES as i64
                ],
            )
            .await?;
        for piece in pieces {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(piece.data)
                .map_err(ApiError::internal)?;
            out.extend_from_slice(&bytes);
        }
        if out.len() as u64 != until - start {
            return Err(ApiError::internal(format!(
                "run {run_id}: stored chunks do not cover bytes {at}..{until}"
            )));
        }
        at = until;
    }
    Ok(out)
}
