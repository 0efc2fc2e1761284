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

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Digest as _;
use time::OffsetDateTime;

use crate::audit::{self, EventType};
use crate::auth::{self, Permission, Principal};
use crate::ctx::Ctx;
use crate::db::Statement;
use crate::domain::{UploadStatus, qc};
use crate::envelope::{Reply, header_value};
use crate::error::{ApiError, FieldError};
use crate::model::run::{self, Run};
use crate::model::run_data::{self, Chunk, NewUpload, Progress as Advance, Stored};
use crate::platform::Platform;
use crate::request::Rq;
use crate::storage::{self, Backend, ChunkRange, ResumableSha256, postgres, s3};

super::methods! {
    GET => download,
    POST => upload,
}

/// Where an interrupted upload continues.
const UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");

/// A recorded file as the API shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DataView {
    run_id: uuid::Uuid,
    filename: String,
    content_type: String,
    format: Option<String>,
    backend: Backend,
    size_bytes: i64,
    sha256: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    completed_at: Option<OffsetDateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    results: Option<serde_json::Value>,
}

/// Where an unfinished upload stands.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Progress {
    run_id: uuid::Uuid,
    status: &'static str,
    received_bytes: u64,
    total_bytes: u64,
    chunk_bytes: usize,
    backend: Backend,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    filename: Option<String>,
    format: Option<String>,
}

/// What the first chunk says about the file.
struct Described {
    filename: String,
    content_type: String,
    format: Option<qc::Format>,
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

fn offset_conflict(message: String, received: i64) -> Result<Reply, ApiError> {
    Err(ApiError::Conflict {
        message,
        details: vec![FieldError::new(
            "Content-Range",
            format!("Send the bytes from offset {received} next"),
        )],
    })
}

async fn upload<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::RunsCreate)?;
    let id = rq.uuid_param("id")?;
    let body = rq.req.body().clone();
    let range = ChunkRange::of_request(header_text(rq, header::CONTENT_RANGE), body.len())?;
    if let Some(expected) = storage::sha256_field(rq.req.headers(), "Content-Digest")?
        && sha2::Sha256::digest(&body)[..] != expected[..]
    {
        return Err(ApiError::invalid(
            "Content-Digest",
            "The body does not match its digest; nothing was stored",
        ));
    }
    let expected = storage::sha256_field(rq.req.headers(), "Repr-Digest")?;
    let scope = principal.scope();
    let db = ctx.db();
    let run = run::get(&db, &scope, id).await?;
    let described = describe(rq, &run)?;
    let config = ctx.config.storage()?;
    let current = run_data::stored(&db, &scope, id).await?;

    // Which upload this chunk belongs to.
    let (backend, resumed) = match (&current, range.first) {
        (Some(s), _) if s.recorded() => {
            return Err(ApiError::conflict(
                "This run's data is already recorded; recorded data is never replaced",
            ));
        }
        (_, 0) => {
            let backend = config.choose(range.total, described.format.is_some())?;
            if described.format.is_some() && range.total > qc::MAX_PARSE_BYTES as u64 {
                return Err(ApiError::invalid(
                    "format",
                    format!(
                        "Files parsed into results are at most {} bytes",
                        qc::MAX_PARSE_BYTES
                    ),
                ));
            }
            (backend, None)
        }
        (Some(s), first)
            if s.received_bytes as u64 == first && s.total_bytes as u64 == range.total =>
        {
            (s.backend, Some(s))
        }
        (Some(s), _) => {
            let received = s.received_bytes;
            rq.add_headers(vec![(UPLOAD_OFFSET, HeaderValue::from(received))]);
            return offset_conflict(
                format!(
                    "The upload continues at byte {received} of {} (this chunk starts at {} of {})",
                    s.total_bytes, range.first, range.total
                ),
                received,
            );
        }
        (None, _) => {
            rq.add_headers(vec![(UPLOAD_OFFSET, HeaderValue::from(0))]);
            return offset_conflict("No upload is in progress for this run's data".into(), 0);
        }
    };
    let chunk_bytes = config.chunk_bytes(backend);
    if body.len() > chunk_bytes {
        return Err(ApiError::PayloadTooLarge { limit: chunk_bytes });
    }
    if backend == Backend::S3 && !range.is_last() && body.len() < storage::S3_MIN_PART_BYTES {
        return Err(ApiError::invalid(
            "Content-Range",
            format!(
                "Every chunk but the last must be at least {} bytes",
                storage::S3_MIN_PART_BYTES
            ),
        ));
    }
    let stored_expected = resumed.and_then(|s| s.expected_sha256.as_deref());
    if let (Some(given), Some(kept)) = (expected, stored_expected)
        && hex::encode(given) != kept
    {
        return Err(ApiError::invalid(
            "Repr-Digest",
            "Differs from the digest given when the upload started",
        ));
    }
    let expected_hex = expected
        .map(hex::encode)
        .or_else(|| stored_expected.map(str::to_owned));
    let (filename, content_type, format) = match resumed {
        Some(s) => (
            s.filename.clone(),
            s.content_type.clone(),
            s.format.as_deref().and_then(qc::Format::parse),
        ),
        None => (described.filename, described.content_type, described.format),
    };

    // The file's SHA-256, carried on from the previous chunk.
    let mut hasher = match resumed {
        None => ResumableSha256::new(),
        Some(s) => s
            .hash_state
            .as_deref()
            .and_then(|h| hex::decode(h).ok())
            .and_then(|state| ResumableSha256::resume(&state))
            .ok_or_else(|| ApiError::internal(format!("run {id}: upload hash state is damaged")))?,
    };
    hasher.update(&body);
    let digest = range
        .is_last()
        .then(|| hex::encode(hasher.clone().finish()));
    if let (Some(digest), Some(expected)) = (&digest, &expected_hex)
        && digest != expected
    {
        discard(ctx, &principal, id, current.as_ref()).await;
        return Err(ApiError::invalid(
            "Repr-Digest",
            format!(
                "The file received has SHA-256 {digest}, not the one given; the upload was discarded, start again at byte 0"
            ),
        ));
    }

    // Parse before anything is stored: a file that does not parse changes nothing.
    let results = match format.filter(|_| range.is_last()) {
        None => None,
        Some(format) => {
            let mut whole = if range.first == 0 {
                Vec::new()
            } else {
                postgres::read(ctx, &principal.scope(), id, 0, range.first).await?
            };
            whole.extend_from_slice(&body);
            Some(qc::parse(format, &whole).map_err(|e| {
                ApiError::invalid("body", format!("line {}: {}", e.line, e.message))
            })?)
        }
    };

    // Store the chunk.
    let key = s3::object_key(principal.organization_id, id);
    let mut part = (None::<i32>, None::<String>, None::<String>);
    let mut upload_id = resumed.and_then(|s| s.upload_id.clone());
    if backend == Backend::S3 {
        let s3 = config
            .s3
            .as_ref()
            .ok_or_else(|| {
                ApiError::internal("run data is in object storage, which is not configured")
            })?
            .store(&ctx.platform);
        if resumed.is_none() {
            upload_id = Some(s3.create_upload(&key, &content_type).await?);
        }
        let upload = upload_id.clone().unwrap_or_default();
        let number = resumed.map_or(1, |s| s.parts + 1);
        let number16 = u16::try_from(number)
            .ok()
            .filter(|n| *n <= 10_000)
            .ok_or_else(|| {
                ApiError::invalid("Content-Range", "An upload has at most 10000 chunks")
            })?;
        let etag = s3
            .upload_part(&key, &upload, number16, body.clone())
            .await?;
        if range.is_last() {
            let mut etags = if resumed.is_some() {
                run_data::etags(&db, &scope, id).await?
            } else {
                Vec::new()
            };
            etags.push(etag.clone());
            s3.complete(&key, &upload, &etags).await?;
        }
        part = (Some(number as i32), Some(etag), None);
    } else {
        part.2 = Some(base64::engine::general_purpose::STANDARD.encode(&body));
    }

    let mut statements: Vec<Statement> = Vec::new();
    if resumed.is_none() {
        // Start (or start over): the upload row, reset, and no chunks.
        statements.push(run_data::start(
            &scope,
            &NewUpload {
                run_id: id,
                filename: &filename,
                content_type: &content_type,
                format: format.map(qc::Format::as_str),
                backend,
                object_key: (backend == Backend::S3).then_some(key.as_str()),
                upload_id: upload_id.as_deref(),
                total_bytes: range.total as i64,
                expected_sha256: expected_hex.as_deref(),
                created_by: principal.user_id,
            },
        ));
        statements.push(run_data::clear_chunks(&scope, id));
    }
    // The chunk, only if the upload is still where this request found it
    // (the row lock makes concurrent chunks for one offset take turns).
    let chunk_index = statements.len();
    statements.push(run_data::store_chunk(
        &scope,
        id,
        &Chunk {
            offset: range.first as i64,
            size: body.len() as i32,
            base64: part.2.as_deref(),
            part_number: part.0,
            etag: part.1.as_deref(),
            total_bytes: range.total as i64,
        },
    ));
    let advance = run_data::advance(
        &scope,
        id,
        &Advance {
            from: range.first as i64,
            to: range.end as i64,
            hash_state: (!range.is_last()).then(|| hex::encode(hasher.state())),
            last: range.is_last(),
            sha256: digest.as_deref(),
        },
    );
    if range.is_last() {
        let event = audit::Event {
            new_values: Some(json!({
                "filename": filename,
                "contentType": content_type,
                "sizeBytes": range.total,
                "sha256": digest,
                "backend": backend,
                "format": format.map(qc::Format::as_str),
            })),
            ..audit::Event::by(ctx.new_uuid(), &principal, EventType::RunDataUploaded, id)
        };
        statements.push(event.record_change(rq, advance));
    } else {
        statements.push(advance);
    }
    if let Some(results) = &results {
        let event = audit::Event {
            old_values: Some(json!({ "results": run.results })),
            new_values: Some(json!({ "results": results })),
            reason: Some("Parsed from the run's data file"),
            ..audit::Event::by(
                ctx.new_uuid(),
                &principal,
                EventType::RunResultsRecorded,
                id,
            )
        };
        statements.push(event.record_change(
            rq,
            run::record_results(&scope, id, results, digest.as_deref()),
        ));
    }
    let outcome = scope.batch(&db, statements).await?;
    if outcome.get(chunk_index).is_none_or(|r| r.rows.is_empty()) {
        // Another request moved the upload first.
        let now = run_data::stored(&db, &scope, id).await?;
        let received = now.as_ref().map_or(0, |s| s.received_bytes);
        rq.add_headers(vec![(UPLOAD_OFFSET, HeaderValue::from(received))]);
        return offset_conflict("Another request changed this upload first".into(), received);
    }
    if let (Some(old), None) = (
        current.as_ref().and_then(|s| s.upload_id.as_deref()),
        resumed,
    ) && let Some(s3) = &config.s3
        && Some(old) != upload_id.as_deref()
    {
        // The multipart upload this one replaced; a bucket lifecycle rule
        // cleans up what a failure here leaves.
        let _ = s3.store(&ctx.platform).abort(&key, old).await;
    }

    if !range.is_last() {
        return Reply::with_status(
            StatusCode::ACCEPTED,
            Progress {
                run_id: id,
                status: "uploading",
                received_bytes: range.end,
                total_bytes: range.total,
                chunk_bytes,
                backend,
            },
        )
        .map(|reply| reply.header(UPLOAD_OFFSET, HeaderValue::from(range.end)));
    }
    let digest = digest.unwrap_or_default();
    let etag = header_value(&format!("\"{digest}\""))?;
    let repr = hex::decode(&digest).map_err(ApiError::internal)?;
    Ok(Reply::created(DataView {
        run_id: id,
        filename,
        content_type,
        format: format.map(|f| f.as_str().to_owned()),
        backend,
        size_bytes: range.total as i64,
        sha256: Some(digest),
        completed_at: Some(ctx.now()),
        results,
    })?
    .header(header::ETAG, etag)
    .header(
        header::LOCATION,
        header_value(&format!("/api/v1/runs/{id}/data"))?,
    )
    .header(
        HeaderName::from_static("repr-digest"),
        header_value(&storage::sha256_header(&repr))?,
    ))
}

/// Drops an unfinished upload whose bytes proved wrong.
async fn discard<P: Platform>(
    ctx: &Ctx<P>,
    principal: &Principal,
    id: uuid::Uuid,
    current: Option<&Stored>,
) {
    let deleted = run_data::discard(&ctx.db(), &principal.scope(), id).await;
    if let Err(e) = deleted {
        tracing::warn!(run_id = %id, error = %e, "could not discard a failed upload");
    }
    let s3 = ctx
        .config
        .storage()
        .ok()
        .and_then(|storage| storage.s3.as_ref());
    if let (Some(upload), Some(s3)) = (current.and_then(|s| s.upload_id.as_deref()), s3) {
        let key = s3::object_key(principal.organization_id, id);
        let _ = s3.store(&ctx.platform).abort(&key, upload).await;
    }
}

/// Where to download a file kept in object storage (`?redirect=false`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DownloadLink {
    url: String,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
    size_bytes: u64,
    sha256: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DownloadQuery {
    redirect: Option<bool>,
}

async fn download<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::DataExport)?;
    let id = rq.uuid_param("id")?;
    let query: DownloadQuery = rq.query()?;
    let Some(data) = run_data::stored(&ctx.db(), &principal.scope(), id).await? else {
        return Err(ApiError::NotFound);
    };
    if data.status == UploadStatus::Purged {
        return Err(ApiError::conflict(format!(
            "The run's data was removed under the retention policy; its record remains (SHA-256 {})",
            data.sha256.as_deref().unwrap_or("unknown")
        )));
    }
    if !data.complete() {
        rq.add_headers(vec![(
            UPLOAD_OFFSET,
            HeaderValue::from(data.received_bytes),
        )]);
        return Err(ApiError::conflict(format!(
            "The run's data is still being uploaded ({} of {} bytes received)",
            data.received_bytes, data.total_bytes
        )));
    }
    let digest = data
        .sha256
        .clone()
        .ok_or_else(|| ApiError::internal("complete run data without a digest"))?;
    let etag = format!("\"{digest}\"");
    let size = data.total_bytes as u64;
    let repr = hex::decode(&digest).map_err(ApiError::internal)?;
    let common = |reply: Reply| -> Result<Reply, ApiError> {
        Ok(reply.header(header::ETAG, header_value(&etag)?).header(
            HeaderName::from_static("repr-digest"),
            header_value(&storage::sha256_header(&repr))?,
        ))
    };

    if data.backend == Backend::S3 {
        let s3 = ctx.config.storage()?.s3.as_ref().ok_or_else(|| {
            ApiError::internal("run data is in object storage, which is not configured")
        })?;
        let key = data
            .object_key
            .as_deref()
            .ok_or_else(|| ApiError::internal("object storage data without a key"))?;
        let url = s3
            .store(&ctx.platform)
            .download_url(key, &data.filename, &data.content_type);
        if query.redirect == Some(false) {
            let expires = ctx.now() + s3::DOWNLOAD_VALIDITY;
            return common(Reply::ok(DownloadLink {
                url: url.to_string(),
                expires_at: expires,
                size_bytes: size,
                sha256: digest.clone(),
            })?);
        }
        return common(
            Reply::raw(StatusCode::FOUND, Bytes::new())
                .header(header::LOCATION, header_value(url.as_str())?)
                .header(header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        );
    }

    let matches = |value: Option<&str>| {
        value.is_some_and(|v| {
            v.split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        })
    };
    if matches(header_text(rq, header::IF_NONE_MATCH)) {
        return common(Reply::raw(StatusCode::NOT_MODIFIED, Bytes::new()));
    }
    // A Range applies only while the representation is the one the client
    // holds (If-Range names it).
    let range_header = match header_text(rq, header::IF_RANGE) {
        Some(tag) if tag.trim() != etag => None,
        _ => header_text(rq, header::RANGE),
    };
    let range = storage::requested_range(range_header, size)?;
    let (start, end) = range.unwrap_or((0, size));
    let bytes = postgres::read(ctx, &principal.scope(), id, start, end).await?;
    let status = if range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let mut reply = Reply::raw(status, Bytes::from(bytes))
        .header(
            header::CONTENT_TYPE,
            HeaderValue::from_str(&data.content_type)
                .unwrap_or(HeaderValue::from_static("application/octet-stream")),
        )
        .header(
            header::CONTENT_DISPOSITION,
            header_value(&storage::attachment(&data.filename))?,
        )
        .header(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if range.is_some() {
        reply = reply.header(
            header::CONTENT_RANGE,
            header_value(&format!("bytes {start}-{}/{size}", end - 1))?,
        );
    }
    common(reply)
}
