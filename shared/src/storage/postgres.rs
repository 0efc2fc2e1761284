//! The PostgreSQL backend: a file is the rows of `run_data_chunks`, in
//! order of `byte_offset`. Writing a chunk is part of the statement that
//! advances the upload (`model::run_data`); this module reads it back in
//! windows under the proxy's reply cap, whole or streamed.

use base64::Engine as _;

use bytes::Bytes;

use super::PG_CHUNK_BYTES;
use crate::body::{Body, StreamError};
use crate::ctx::Ctx;
use crate::error::ApiError;
use crate::model::{Scope, run_data};
use crate::platform::Platform;

/// Most bytes fetched per query (and held by a streamed download): base64 makes 4 MiB about 5.4 MiB of
/// answer, under the proxy's (and Neon's) 10 MiB reply cap.
pub const READ_WINDOW: u64 = 4 << 20;

/// The bytes `[start, end)` of a run's stored file, whole (results
/// parsing needs the file at once).
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
        out.extend(window(ctx, scope, run_id, at, until).await?);
        at = until;
    }
    Ok(out)
}

/// The bytes `[start, end)` of a run's stored file as a streamed body, a
/// window at a time: a download holds one window, whatever the file's
/// size. A window that cannot be read cuts the body short (the client's
/// transfer fails; it never gets wrong bytes as whole).
pub fn stream<P: Platform>(
    ctx: Ctx<P>,
    scope: Scope,
    run_id: uuid::Uuid,
    start: u64,
    end: u64,
) -> Body {
    Body::stream(futures::stream::try_unfold(start, move |at| {
        let ctx = ctx.clone();
        async move {
            if at >= end {
                return Ok(None);
            }
            let until = end.min(at + READ_WINDOW);
            match window(&ctx, &scope, run_id, at, until).await {
                Ok(bytes) => Ok(Some((Bytes::from(bytes), until))),
                Err(err) => {
                    tracing::error!(%run_id, at, until, error = %err, "a window of run data could not be read; the download was cut short");
                    Err(StreamError(format!("bytes {at}..{until} of run {run_id}")))
                }
            }
        }
    }))
}

/// One window of at most [`READ_WINDOW`] bytes, checked whole.
async fn window<P: Platform>(
    ctx: &Ctx<P>,
    scope: &Scope,
    run_id: uuid::Uuid,
    at: u64,
    until: u64,
) -> Result<Vec<u8>, ApiError> {
    let pieces =
        run_data::chunk_pieces(&ctx.db(), scope, run_id, at, until, PG_CHUNK_BYTES as u64).await?;
    let mut out = Vec::with_capacity(usize::try_from(until - at).map_err(ApiError::internal)?);
    for piece in pieces {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(piece.data)
            .map_err(ApiError::internal)?;
        out.extend_from_slice(&bytes);
    }
    if out.len() as u64 != until - at {
        return Err(ApiError::internal(format!(
            "run {run_id}: stored chunks do not cover bytes {at}..{until}"
        )));
    }
    Ok(out)
}
