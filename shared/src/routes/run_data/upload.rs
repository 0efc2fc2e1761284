//! `POST`: one chunk (or the whole file) of a run's data, planned by
//! [`super::plan`], hashed, parsed when it completes a parsed format,
//! stored (PostgreSQL or an S3 multipart upload), then recorded in one
//! transaction with its audit events.

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode, header};
use serde_json::json;
use sha2::Digest as _;

use super::{DataView, Progress, UPLOAD_LIMIT, UPLOAD_OFFSET, describe, header_text, plan};
use crate::audit::{self, EventType};
use crate::auth::{self, Permission, Principal};
use crate::ctx::Ctx;
use crate::db::Statement;
use crate::domain::qc;
use crate::envelope::{Reply, header_value};
use crate::error::{ApiError, FieldError};
use crate::model::run;
use crate::model::run_data::{self, Chunk, NewUpload, Progress as Advance, Stored};
use crate::platform::Platform;
use crate::request::Rq;
use crate::storage::{self, Backend, ChunkRange, postgres, s3};

fn offset_conflict(message: String, received: i64) -> Result<Reply, ApiError> {
    Err(ApiError::Conflict {
        message,
        details: vec![FieldError::new(
            "Content-Range",
            format!("Send the bytes from offset {received} next"),
        )],
    })
}

/// Upload a run's data file, whole or in chunks
///
/// Requires `runs:create`. The body is the file's bytes (any media type:
/// `Content-Type` is recorded, default `application/octet-stream`);
/// `filename` names it and `format` also parses it into the run's results
/// (a parse error, naming the line, changes nothing).
///
/// A file larger than one request takes is sent in order as chunks, each
/// with `Content-Range: bytes first-last/total`. Every answer reports
/// `chunkBytes`, the largest chunk this upload's backend takes (larger:
/// `413`; with object storage every chunk but the last must also be at
/// least 5 MiB, at most 10000 chunks); a chunk refused for its size says
/// the sizes that would do in `Upload-Limit` (`min-append-size=…,
/// max-append-size=…`), so a client that does not know the backend can
/// start with a chunk of 2 MiB and adjust. Each chunk but the last answers
/// `202` with `Upload-Offset`, the last `201` with the recorded file. An
/// interrupted upload resumes at `Upload-Offset` (also in the run's
/// `data.receivedBytes` and in the `409` of a chunk at the wrong offset); a
/// chunk at byte 0 starts it over. Without `Content-Range` the body is the
/// whole file.
///
/// `Content-Digest` checks a chunk (a mismatch stores nothing);
/// `Repr-Digest` the whole file, when given with the first chunk (kept: a
/// different one later is refused) or the last; a mismatch when the last
/// chunk lands discards the upload, which starts again at byte 0. The
/// file's SHA-256 is always recorded. Recorded data is never replaced
/// (`409`). Audited when the file is complete (`RUN_DATA_UPLOADED`, and
/// `RUN_RESULTS_RECORDED` for parsed results).
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/v1/runs/{id}/data",
    params(
        ("id" = uuid::Uuid, Path, description = "The run"),
        super::UploadQuery,
        ("Content-Range" = Option<String>, Header, description = "The chunk's place in the file: `bytes first-last/total` (decimal, `last` inclusive, matching the body's length)"),
        ("Content-Digest" = Option<String>, Header, description = "This request's body digest (RFC 9530): `sha-256=:<base64>:`"),
        ("Repr-Digest" = Option<String>, Header, description = "The whole file's digest (RFC 9530): `sha-256=:<base64>:`; must not change during an upload"),
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "The file, or the chunk `Content-Range` names; `Content-Type` is recorded as the file's media type"),
    responses(
        (status = 201, description = "The last chunk: the file is recorded", body = super::DataView,
            headers(
                ("ETag" = String, description = "The file's SHA-256, hex, quoted"),
                ("Repr-Digest" = String, description = "`sha-256=:<base64>:` of the whole file"),
                ("Location" = String, description = "`/api/v1/runs/{id}/data`"),
            )),
        (status = 202, description = "A chunk accepted; send the next from `Upload-Offset`", body = super::Progress,
            headers(("Upload-Offset" = i64, description = "The bytes received so far: where the next chunk starts"))),
        (status = 400, description = "A malformed `Content-Range` or digest, a digest mismatch, a bad `filename`, `format` or `Content-Type`, a file too large to keep, a file that does not parse, or a chunk too small for object storage (`Upload-Limit`)",
            headers(("Upload-Limit" = String, description = "On a chunk refused for its size: `min-append-size=<bytes>, max-append-size=<bytes>`"))),
        (status = 409, description = "A chunk at the wrong offset, no upload in progress, or another request moved it first (`Upload-Offset`: where to continue); or the data is already recorded",
            headers(("Upload-Offset" = i64, description = "Where the upload continues (0: start over)"))),
        (status = 413, description = "The chunk is larger than this backend's `chunkBytes`",
            headers(("Upload-Limit" = String, description = "`min-append-size=<bytes>, max-append-size=<bytes>`"))),
    )))]
pub(super) async fn upload<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
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
    let chunk = plan::Chunk {
        range,
        len: body.len(),
        expected,
        described,
    };
    let plan = match plan::plan(current.as_ref(), chunk, config) {
        Ok(plan) => plan,
        Err(refusal) => {
            if let Some(offset) = refusal.upload_offset {
                rq.add_headers([(UPLOAD_OFFSET, HeaderValue::from(offset))]);
            }
            if let Some(limit) = refusal.limit
                && let Ok(value) = HeaderValue::try_from(limit.header())
            {
                rq.add_headers([(UPLOAD_LIMIT, value)]);
            }
            return Err(refusal.error);
        }
    };
    let resumed = current.as_ref().filter(|_| plan.resumes);

    // The file's SHA-256, carried on from the previous chunk.
    let mut hasher = plan::hasher(&plan, current.as_ref())?;
    hasher.update(&body);
    let digest = range
        .is_last()
        .then(|| hex::encode(hasher.clone().finish()));
    if let (Some(digest), Some(expected)) = (&digest, &plan.expected)
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
    let results = parse_results(ctx, &principal, id, &plan, &range, &body).await?;
    let graded = match &results {
        Some(results) => grade(ctx, &principal, id, results).await?,
        None => None,
    };
    let stored = store_bytes(ctx, &principal, id, &plan, resumed, &range, &body).await?;

    let received = Received {
        id,
        plan: &plan,
        range: &range,
        len: body.len(),
        stored: &stored,
        hash_state: (!range.is_last()).then(|| hex::encode(hasher.state())),
        digest: digest.as_deref(),
    };
    let (statements, chunk_index) = transaction(
        ctx,
        rq,
        &principal,
        &run,
        &received,
        results.as_ref(),
        graded.as_ref(),
    )?;
    let outcome = scope.batch(&db, statements).await?;
    if outcome.get(chunk_index).is_none_or(|r| r.rows.is_empty()) {
        // Another request moved the upload first.
        let now = run_data::stored(&db, &scope, id).await?;
        let received = now.as_ref().map_or(0, |s| s.received_bytes);
        rq.add_headers([(UPLOAD_OFFSET, HeaderValue::from(received))]);
        return offset_conflict("Another request changed this upload first".into(), received);
    }
    if !plan.resumes
        && let Some(old) = current.as_ref().and_then(|s| s.upload_id.as_deref())
        && Some(old) != stored.upload_id.as_deref()
        && let Some(s3) = &config.s3
    {
        // The multipart upload this one replaced; a bucket lifecycle rule
        // cleans up what a failure here leaves.
        let key = s3::object_key(principal.organization_id, id);
        let _ = s3.store(&ctx.platform).abort(&key, old).await;
    }
    finish(ctx, id, &plan, &range, digest, results)
}

/// A chunk this request brought, checked and stored.
struct Received<'a> {
    id: uuid::Uuid,
    plan: &'a plan::Plan,
    range: &'a ChunkRange,
    len: usize,
    stored: &'a StoredBytes,
    /// The file's hash state to carry on (every chunk but the last).
    hash_state: Option<String>,
    /// The file's SHA-256, with the last chunk.
    digest: Option<&'a str>,
}

/// The statements that record a chunk in one transaction: (re)starting the
/// upload, the chunk, the progress (audited with the last chunk) and the
/// parsed results (with their QC grade, which publishes `qc.failed` when a
/// check failed); and the index of the chunk's statement, which returns
/// no row when another request moved the upload first.
fn transaction<P: Platform>(
    ctx: &Ctx<P>,
    rq: &Rq,
    principal: &Principal,
    run: &run::Run,
    received: &Received<'_>,
    results: Option<&serde_json::Value>,
    graded: Option<&qc::Report>,
) -> Result<(Vec<Statement>, usize), ApiError> {
    let Received {
        id,
        plan,
        range,
        stored,
        digest,
        ..
    } = *received;
    let scope = principal.scope();
    let key = s3::object_key(principal.organization_id, id);
    let mut statements: Vec<Statement> = Vec::new();
    if !plan.resumes {
        // Start (or start over): the upload row, reset, and no chunks.
        statements.push(run_data::start(
            &scope,
            &NewUpload {
                run_id: id,
                filename: &plan.described.filename,
                content_type: &plan.described.content_type,
                format: plan.described.format.map(qc::Format::as_str),
                backend: plan.backend,
                object_key: (plan.backend == Backend::S3).then_some(key.as_str()),
                upload_id: stored.upload_id.as_deref(),
                total_bytes: range.total as i64,
                expected_sha256: plan.expected.as_deref(),
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
            size: received.len as i32,
            base64: stored.base64.as_deref(),
            part_number: stored.part_number,
            etag: stored.etag.as_deref(),
            total_bytes: range.total as i64,
        },
    ));
    let advance = run_data::advance(
        &scope,
        id,
        &Advance {
            from: range.first as i64,
            to: range.end as i64,
            hash_state: received.hash_state.clone(),
            last: range.is_last(),
            sha256: digest,
        },
    );
    if range.is_last() {
        let event = audit::Event {
            new_values: Some(json!({
                "filename": plan.described.filename,
                "contentType": plan.described.content_type,
                "sizeBytes": range.total,
                "sha256": digest,
                "backend": plan.backend,
                "format": plan.described.format.map(qc::Format::as_str),
            })),
            ..audit::Event::by(ctx.new_uuid(), principal, EventType::RunDataUploaded, id)
        };
        statements.push(event.record_change(rq, advance)?);
    } else {
        statements.push(advance);
    }
    if let Some(results) = results {
        let event = audit::Event {
            old_values: Some(json!({ "results": run.results })),
            new_values: Some(json!({ "results": results })),
            reason: Some("Parsed from the run's data file"),
            metadata: json!({
                "instrumentId": run.instrument_id,
                "qc": graded.map(|report| json!({
                    "dataQuality": report.data_quality,
                    "failed": report.failed_metrics(),
                })),
            }),
            ..audit::Event::by(ctx.new_uuid(), principal, EventType::RunResultsRecorded, id)
        };
        statements.push(event.record_change(rq, run::record_results(&scope, id, results, digest))?);
    }
    Ok((statements, chunk_index))
}

/// The results of a parsed format, from the whole file once its last chunk
/// is here (parsed files stay in PostgreSQL, so the rest is read back).
async fn parse_results<P: Platform>(
    ctx: &Ctx<P>,
    principal: &Principal,
    id: uuid::Uuid,
    plan: &plan::Plan,
    range: &ChunkRange,
    body: &[u8],
) -> Result<Option<serde_json::Value>, ApiError> {
    let Some(format) = plan.described.format.filter(|_| range.is_last()) else {
        return Ok(None);
    };
    let mut whole = if range.first == 0 {
        Vec::new()
    } else {
        postgres::read(ctx, &principal.scope(), id, 0, range.first).await?
    };
    whole.extend_from_slice(body);
    qc::parse(format, &whole)
        .map(Some)
        .map_err(|e| ApiError::invalid("body", format!("line {}: {}", e.line, e.message)))
}

/// `results` graded against the QC thresholds of run `id`'s instrument
/// (as `GET /api/v1/runs/:id/qc` grades them).
async fn grade<P: Platform>(
    ctx: &Ctx<P>,
    principal: &Principal,
    id: uuid::Uuid,
    results: &serde_json::Value,
) -> Result<Option<qc::Report>, ApiError> {
    let Some(source) = run::qc_source(&ctx.db(), &principal.scope(), id).await? else {
        return Ok(None);
    };
    let Some(kind) = crate::domain::InstrumentType::parse(&source.instrument_type) else {
        return Ok(None);
    };
    let thresholds = qc::thresholds(kind, &source.configuration);
    Ok(Some(qc::evaluate(Some(results), &thresholds)))
}

/// Where a chunk's bytes went: base64 for the PostgreSQL backend, or the
/// S3 part (its number and ETag) of the multipart upload `upload_id`.
struct StoredBytes {
    base64: Option<String>,
    part_number: Option<i32>,
    etag: Option<String>,
    upload_id: Option<String>,
}

/// Sends the chunk to object storage (starting the multipart upload with
/// the first, completing it with the last), or encodes it for PostgreSQL.
async fn store_bytes<P: Platform>(
    ctx: &Ctx<P>,
    principal: &Principal,
    id: uuid::Uuid,
    plan: &plan::Plan,
    resumed: Option<&Stored>,
    range: &ChunkRange,
    body: &Bytes,
) -> Result<StoredBytes, ApiError> {
    let upload_id = resumed.and_then(|s| s.upload_id.clone());
    if plan.backend != Backend::S3 {
        return Ok(StoredBytes {
            base64: Some(base64::engine::general_purpose::STANDARD.encode(body)),
            part_number: None,
            etag: None,
            upload_id,
        });
    }
    let s3 = ctx
        .config
        .storage()?
        .s3
        .as_ref()
        .ok_or_else(|| {
            ApiError::internal("run data is in object storage, which is not configured")
        })?
        .store(&ctx.platform);
    let key = s3::object_key(principal.organization_id, id);
    let upload = match upload_id {
        Some(upload) => upload,
        None => s3.create_upload(&key, &plan.described.content_type).await?,
    };
    let number = resumed.map_or(1, |s| s.parts + 1);
    let number16 = u16::try_from(number)
        .ok()
        .filter(|n| *n <= 10_000)
        .ok_or_else(|| ApiError::invalid("Content-Range", "An upload has at most 10000 chunks"))?;
    let etag = s3
        .upload_part(&key, &upload, number16, body.clone())
        .await?;
    if range.is_last() {
        let mut etags = if resumed.is_some() {
            run_data::etags(&ctx.db(), &principal.scope(), id).await?
        } else {
            Vec::new()
        };
        etags.push(etag.clone());
        s3.complete(&key, &upload, &etags).await?;
    }
    Ok(StoredBytes {
        base64: None,
        part_number: Some(number as i32),
        etag: Some(etag),
        upload_id: Some(upload),
    })
}

/// The answer: `202` with the progress after a chunk, `201` with the file
/// (its SHA-256 as `ETag` and `Repr-Digest`) after the last.
fn finish<P: Platform>(
    ctx: &Ctx<P>,
    id: uuid::Uuid,
    plan: &plan::Plan,
    range: &ChunkRange,
    digest: Option<String>,
    results: Option<serde_json::Value>,
) -> Result<Reply, ApiError> {
    if !range.is_last() {
        return Reply::with_status(
            StatusCode::ACCEPTED,
            Progress {
                run_id: id,
                status: "uploading",
                received_bytes: range.end,
                total_bytes: range.total,
                chunk_bytes: plan.chunk_bytes,
                backend: plan.backend,
            },
        )
        .map(|reply| reply.header(UPLOAD_OFFSET, HeaderValue::from(range.end)));
    }
    let digest = digest.unwrap_or_default();
    let etag = header_value(&format!("\"{digest}\""))?;
    let repr = hex::decode(&digest).map_err(ApiError::internal)?;
    Ok(Reply::created(DataView {
        run_id: id,
        filename: plan.described.filename.clone(),
        content_type: plan.described.content_type.clone(),
        format: plan.described.format.map(|f| f.as_str().to_owned()),
        backend: plan.backend,
        size_bytes: range.total as i64,
        sha256: Some(digest),
        completed_at: Some(ctx.now().into()),
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
