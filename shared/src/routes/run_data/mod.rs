//! `/api/v1/runs/:id/data`: a run's raw data file.
//!
//! `POST` (`runs:create`) uploads it, whole or in chunks. The body is the
//! file's bytes; `?filename=` and `Content-Type` describe it, `?format=`
//! (`plate_reader_csv`, `qpcr_ct_csv`) also parses it into the run's
//! results. A file larger than one request takes (`chunkBytes`, reported in
//! every answer) is sent in order as `Content-Range: bytes first-last/total`
//! chunks; each accepted chunk answers `202` with `Upload-Offset`, the last
//! `201`. An interrupted upload resumes at `Upload-Offset` (also in the
//! `409` for a chunk at the wrong offset, and in the run's `data`); a chunk
//! at byte 0 starts over. `Content-Digest` checks a chunk, `Repr-Digest` the
//! whole file (RFC 9530, `sha-256`): on a mismatch the upload is discarded.
//! The file's SHA-256 is always recorded. Recorded data is never replaced.
//!
//! `GET` (`data:export`) downloads it: `ETag` (the SHA-256), `Repr-Digest`,
//! single byte ranges (`Range`, `If-Range`), `If-None-Match`. Files in
//! object storage answer `302` to a presigned URL (`?redirect=false`: the
//! URL as JSON).

use crate::domain::Timestamp;
use http::{HeaderName, header};
use serde::{Deserialize, Serialize};

use crate::domain::qc;
use crate::error::{ApiError, FieldError};
use crate::model::run::Run;
use crate::request::Rq;
use crate::storage::{self, Backend};

mod download;
mod plan;
mod upload;

use download::download;
use plan::Described;
use upload::upload;
#[cfg(feature = "openapi")]
pub use {download::__path_download, upload::__path_upload};

super::methods! {
    GET => download,
    POST => upload,
}

/// Where an interrupted upload continues.
const UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");
/// The chunk sizes an upload takes, on a chunk refused for its size.
const UPLOAD_LIMIT: HeaderName = HeaderName::from_static("upload-limit");

/// A recorded file as the API shows it.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
struct DataView {
    run_id: uuid::Uuid,
    filename: String,
    content_type: String,
    /// The format it was parsed as (`plate_reader_csv`, `qpcr_ct_csv`), if any.
    format: Option<String>,
    /// Where the bytes are kept: `postgres` or `s3`.
    backend: Backend,
    size_bytes: i64,
    /// Hex SHA-256 of the whole file.
    sha256: Option<String>,
    completed_at: Option<Timestamp>,
    /// The run's results parsed from the file (with `?format=`), with the
    /// computed QC metrics under `metrics`.
    #[serde(skip_serializing_if = "Option::is_none")]
    results: Option<serde_json::Value>,
}

/// Where an unfinished upload stands.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
struct Progress {
    run_id: uuid::Uuid,
    /// Always `uploading`.
    status: &'static str,
    /// The bytes received so far: the next chunk starts here.
    received_bytes: u64,
    total_bytes: u64,
    /// The largest chunk this upload's backend takes; with object storage
    /// every chunk but the last must also be at least 5 MiB.
    chunk_bytes: usize,
    /// Where the bytes are kept: `postgres` or `s3`.
    backend: Backend,
}

#[derive(Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    /// The file's name (default `run-data`): 1 to 255 characters without
    /// control characters, quotes or path separators. Read from the first
    /// chunk; a resumed upload keeps what it started with.
    filename: Option<String>,
    /// Parse the file into the run's results: a format of the run's
    /// instrument type; the file stays in PostgreSQL and is at most 8 MiB.
    #[cfg_attr(feature = "openapi", param(value_type = Option<qc::Format>, inline))]
    format: Option<String>,
}

fn describe(rq: &Rq, run: &Run) -> Result<Described, ApiError> {
    let query: UploadQuery = rq.query()?;
    let mut problems = Vec::new();
    let filename = query.filename.unwrap_or_else(|| "run-data".to_owned());
    if !storage::valid_filename(&filename) {
        problems.push(FieldError::new(
            "filename",
            "Must be 1 to 255 characters without control characters, quotes or path separators",
        ));
    }
    let content_type = match rq.req.headers().get(header::CONTENT_TYPE) {
        None => "application/octet-stream".to_owned(),
        Some(value) => match value.to_str() {
            Ok(text) if text.len() <= 255 && text.contains('/') && !text.trim().is_empty() => {
                text.trim().to_owned()
            }
            _ => {
                problems.push(FieldError::new(
                    "Content-Type",
                    "Must be a media type of at most 255 characters",
                ));
                String::new()
            }
        },
    };
    let format = match query.format.as_deref() {
        None => None,
        Some(raw) => match qc::Format::parse(raw) {
            Some(format) if format.instrument_type().as_str() == run.instrument_type => {
                Some(format)
            }
            Some(format) => {
                problems.push(FieldError::new(
                    "format",
                    format!(
                        "{} is output of a {} instrument; this run is on a {}",
                        format.as_str(),
                        format.instrument_type().as_str(),
                        run.instrument_type
                    ),
                ));
                None
            }
            None => {
                problems.push(FieldError::new(
                    "format",
                    format!(
                        "Must be one of: {}",
                        qc::Format::ALL.map(qc::Format::as_str).join(", ")
                    ),
                ));
                None
            }
        },
    };
    if problems.is_empty() {
        Ok(Described {
            filename,
            content_type,
            format,
        })
    } else {
        Err(ApiError::Validation(problems))
    }
}

fn header_text(rq: &Rq, name: impl http::header::AsHeaderName) -> Option<&str> {
    rq.req.headers().get(name).and_then(|v| v.to_str().ok())
}
