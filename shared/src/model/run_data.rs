//! `run_data` and `run_data_chunks`: a run's raw data file, its upload
//! state, and (in the PostgreSQL backend) its bytes.

use serde::Deserialize;

use super::Scope;
use crate::config::storage::Backend;
use crate::db::{Db, DbError, QueryResult, Statement, statement};
use crate::domain::UploadStatus;
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

/// A run's `run_data` row.
#[derive(Debug, Deserialize)]
pub struct Stored {
    pub filename: String,
    pub content_type: String,
    pub format: Option<String>,
    pub backend: Backend,
    pub object_key: Option<String>,
    pub upload_id: Option<String>,
    pub status: UploadStatus,
    pub total_bytes: i64,
    pub received_bytes: i64,
    pub expected_sha256: Option<String>,
    pub sha256: Option<String>,
    pub hash_state: Option<String>,
    pub parts: i64,
}

impl Stored {
    pub fn complete(&self) -> bool {
        self.status == UploadStatus::Complete
    }

    /// Recorded, whether its bytes are still kept or were removed by the
    /// retention job.
    pub fn recorded(&self) -> bool {
        self.status != UploadStatus::Uploading
    }
}

/// Run `run_id`'s data row, if it has one.
pub async fn stored<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    run_id: uuid::Uuid,
) -> Result<Option<Stored>, DbError> {
    scope
        .fetch_optional(
            db,
            statement(
                "SELECT filename, content_type, format, backend, object_key, upload_id, status, total_bytes, \
                   received_bytes, encode(expected_sha256, 'hex') AS expected_sha256, encode(sha256, 'hex') AS sha256, \
                   encode(hash_state, 'hex') AS hash_state, \
                   (SELECT count(*) FROM run_data_chunks c WHERE c.run_id = d.run_id) AS parts \
                 FROM run_data d WHERE run_id = $1 AND organization_id = $2",
                params![run_id, scope.organization_id()],
            ),
        )
        .await
}

#[derive(Deserialize)]
struct Etag {
    etag: String,
}

/// The S3 part ETags of run `run_id`'s upload, in order.
pub async fn etags<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    run_id: uuid::Uuid,
) -> Result<Vec<String>, DbError> {
    let rows: Vec<Etag> = scope
        .fetch_all(
            db,
            statement(
                "SELECT etag FROM run_data_chunks WHERE organization_id = $1 AND run_id = $2 ORDER BY byte_offset",
                params![scope.organization_id(), run_id],
            ),
        )
        .await?;
    Ok(rows.into_iter().map(|e| e.etag).collect())
}

/// An upload to start (or start over).
pub struct NewUpload<'a> {
    pub run_id: uuid::Uuid,
    pub filename: &'a str,
    pub content_type: &'a str,
    pub format: Option<&'a str>,
    pub backend: Backend,
    pub object_key: Option<&'a str>,
    pub upload_id: Option<&'a str>,
    pub total_bytes: i64,
    /// Hex SHA-256 the client announced.
    pub expected_sha256: Option<&'a str>,
    pub created_by: uuid::Uuid,
}

/// Starts the upload, or starts an unfinished one over (a recorded file is
/// never touched).
pub fn start(scope: &Scope, new: &NewUpload<'_>) -> Statement {
    statement(
        "INSERT INTO run_data (run_id, organization_id, filename, content_type, format, backend, object_key, upload_id, \
           status, total_bytes, received_bytes, expected_sha256, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'uploading', $9, 0, decode($10, 'hex'), $11) \
         ON CONFLICT (run_id) DO UPDATE SET filename = EXCLUDED.filename, content_type = EXCLUDED.content_type, \
           format = EXCLUDED.format, backend = EXCLUDED.backend, object_key = EXCLUDED.object_key, \
           upload_id = EXCLUDED.upload_id, total_bytes = EXCLUDED.total_bytes, received_bytes = 0, \
           expected_sha256 = EXCLUDED.expected_sha256, sha256 = NULL, hash_state = NULL, \
           created_by = EXCLUDED.created_by, created_at = now(), updated_at = now() \
         WHERE run_data.status = 'uploading'",
        params![
            new.run_id,
            scope.organization_id(),
            new.filename,
            new.content_type,
            new.format,
            new.backend.as_str(),
            new.object_key,
            new.upload_id,
            new.total_bytes,
            new.expected_sha256,
            new.created_by,
        ],
    )
}

/// Drops the chunks of an upload that starts over (only while it is at 0).
pub fn clear_chunks(scope: &Scope, run_id: uuid::Uuid) -> Statement {
    statement(
        "DELETE FROM run_data_chunks c WHERE c.organization_id = $2 AND c.run_id = $1 \
           AND EXISTS (SELECT 1 FROM run_data d WHERE d.run_id = $1 AND d.status = 'uploading' AND d.received_bytes = 0)",
        params![run_id, scope.organization_id()],
    )
}

/// One chunk of an upload.
pub struct Chunk<'a> {
    pub offset: i64,
    pub size: i32,
    /// The bytes (PostgreSQL backend), base64.
    pub base64: Option<&'a str>,
    /// The S3 part (object storage backend).
    pub part_number: Option<i32>,
    pub etag: Option<&'a str>,
    pub total_bytes: i64,
}

/// Stores `chunk`, only if the upload is still where the request found it:
/// uploading, at `chunk.offset`, of the same size (the row lock makes
/// concurrent chunks for one offset take turns); returns its offset (no row:
/// someone moved it first).
pub fn store_chunk(scope: &Scope, run_id: uuid::Uuid, chunk: &Chunk<'_>) -> Statement {
    statement(
        "INSERT INTO run_data_chunks (organization_id, run_id, byte_offset, size, data, part_number, etag) \
         SELECT organization_id, run_id, $3, $4, decode($5, 'base64'), $6, $7 FROM run_data \
         WHERE run_id = $1 AND organization_id = $2 AND status = 'uploading' AND received_bytes = $3 AND total_bytes = $8 \
         FOR UPDATE \
         RETURNING byte_offset",
        params![
            run_id,
            scope.organization_id(),
            chunk.offset,
            chunk.size,
            chunk.base64,
            chunk.part_number,
            chunk.etag,
            chunk.total_bytes,
        ],
    )
}

/// How a stored chunk moves the upload forward.
pub struct Progress<'a> {
    pub from: i64,
    pub to: i64,
    /// The SHA-256 state after the chunk (hex), kept until the last.
    pub hash_state: Option<String>,
    pub last: bool,
    /// The file's SHA-256 (hex), with the last chunk.
    pub sha256: Option<&'a str>,
}

/// Moves the upload from `progress.from` to `progress.to` once its chunk at
/// `from` is stored; the last chunk completes it. Returns `run_id AS id`.
pub fn advance(scope: &Scope, run_id: uuid::Uuid, progress: &Progress<'_>) -> Statement {
    statement(
        "UPDATE run_data SET received_bytes = $4, hash_state = decode($5, 'hex'), updated_at = now(), \
           status = CASE WHEN $6 THEN 'complete' ELSE 'uploading' END, sha256 = decode($7, 'hex'), \
           completed_at = CASE WHEN $6 THEN now() END \
         WHERE run_id = $1 AND organization_id = $2 AND status = 'uploading' AND received_bytes = $3 \
           AND EXISTS (SELECT 1 FROM run_data_chunks c WHERE c.run_id = $1 AND c.byte_offset = $3) \
         RETURNING run_id AS id",
        params![
            run_id,
            scope.organization_id(),
            progress.from,
            progress.to,
            progress.hash_state,
            progress.last,
            progress.sha256,
        ],
    )
}

/// Drops an unfinished upload (its chunks go with it).
pub async fn discard<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    run_id: uuid::Uuid,
) -> Result<QueryResult, DbError> {
    scope
        .execute(
            db,
            statement(
                "DELETE FROM run_data WHERE run_id = $1 AND organization_id = $2 AND status = 'uploading'",
                params![run_id, scope.organization_id()],
            ),
        )
        .await
}

/// A complete file whose retention period is over.
#[derive(Debug, Deserialize)]
pub struct Expired {
    pub run_id: uuid::Uuid,
    pub backend: Backend,
    pub object_key: Option<String>,
}

/// Up to `limit` complete files of the organization completed more than
/// `days` ago, oldest first.
pub async fn expired<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    days: i64,
    limit: i64,
) -> Result<Vec<Expired>, DbError> {
    scope
        .fetch_all(
            db,
            statement(
                "SELECT run_id, backend, object_key FROM run_data \
                 WHERE organization_id = $1 AND status = 'complete' \
                   AND completed_at < now() - make_interval(days => $2::int) \
                 ORDER BY completed_at LIMIT $3",
                params![scope.organization_id(), days as i32, limit],
            ),
        )
        .await
}

/// The statements that remove the bytes of runs `run_ids`' files (their
/// records stay, `purged`).
pub fn purge(scope: &Scope, run_ids: &[uuid::Uuid]) -> Vec<Statement> {
    let ids = serde_json::json!(run_ids);
    vec![
        statement(
            "DELETE FROM run_data_chunks WHERE organization_id = $1 \
               AND run_id IN (SELECT value::uuid FROM jsonb_array_elements_text($2::jsonb))",
            params![scope.organization_id(), ids],
        ),
        statement(
            "UPDATE run_data SET status = 'purged', purged_at = now(), hash_state = NULL \
             WHERE organization_id = $1 AND run_id IN (SELECT value::uuid FROM jsonb_array_elements_text($2::jsonb))",
            params![scope.organization_id(), ids],
        ),
    ]
}
