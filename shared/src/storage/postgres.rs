//! The PostgreSQL backend: a file is the rows of `run_data_chunks`, in
//! order of `byte_offset`. Writing a chunk is part of the statement that
//! advances the upload (`model::run_data`); this module reads it back in
//! windows under the proxy's reply cap.

use base64::Engine as _;

use super::PG_CHUNK_BYTES;
use crate::ctx::Ctx;
use crate::error::ApiError;
use crate::model::{Scope, run_data};
use crate::platform::Platform;

/// Most bytes fetched per query: base64 makes 4 MiB about 5.4 MiB of
/// answer, under the proxy's (and Neon's) 10 MiB reply cap.
const READ_WINDOW: u64 = 4 << 20;

/// The bytes `[start, end)` of a run's stored file.
pub async fn read<P: Platform>(
    ctx: &Ctx<P>,
    scope: &Scope,
    run_id: uuid::Uuid,
    start: u64,
    end: u64,
) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::with_capacity(usize::try_from(end - start).map_err(ApiError::internal)?);
    let mut at = start;
    while at < end {
        let until = end.min(at + READ_WINDOW);
        let pieces =
            run_data::chunk_pieces(&ctx.db(), scope, run_id, at, until, PG_CHUNK_BYTES as u64)
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
