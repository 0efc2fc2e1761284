//! `GET`: the recorded file, whole or one byte range, with its SHA-256 as
//! `ETag` and `Repr-Digest`; a file in object storage is a redirect to a
//! presigned URL (or that URL as JSON), or with `?via=api` its bytes passed
//! through the API as they come from the store (for clients that cannot
//! reach it). More than one read window is streamed (chunked): a download
//! holds a window at a time, whatever the file.

use crate::domain::Timestamp;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};

use super::{UPLOAD_OFFSET, header_text};
use crate::auth::{self, Permission};
use crate::body::Body;
use crate::ctx::Ctx;
use crate::domain::UploadStatus;
use crate::envelope::{Reply, header_value};
use crate::error::ApiError;
use crate::model::run_data;
use crate::platform::Platform;
use crate::request::Rq;
use crate::storage::{self, Backend, postgres, s3};

/// Where to download a file kept in object storage (`?redirect=false`).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
struct DownloadLink {
    /// A presigned URL of the object store.
    url: String,
    /// When the URL stops working (five minutes after it was made).
    expires_at: Timestamp,
    size_bytes: u64,
    /// Hex SHA-256 of the file.
    sha256: String,
}

#[derive(Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
struct DownloadQuery {
    /// `false`: for a file in object storage, answer its presigned URL as
    /// JSON instead of a `302` to it. No effect on a file kept in
    /// PostgreSQL or with `via=api`.
    redirect: Option<bool>,
    /// How a file in object storage reaches the client (default `storage`).
    #[cfg_attr(feature = "openapi", param(inline))]
    via: Option<Via>,
}

/// How a file in object storage reaches the client.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
enum Via {
    /// A presigned URL of the store (the default).
    Storage,
    /// Through the API, streamed.
    Api,
}

/// Download a run's data file
///
/// Requires `data:export`. The recorded file, whole (`200`) or one byte
/// range (`206`, `Range: bytes=first-last`, `bytes=first-` or `bytes=-n`;
/// several ranges are `416`), with its SHA-256 as `ETag` and `Repr-Digest`
/// (RFC 9530), `Content-Disposition: attachment` with its name, and
/// `Accept-Ranges: bytes`. `If-Range` keeps a `Range` only while it names
/// the current `ETag`; `If-None-Match` matching it answers `304`. Large
/// files are streamed (chunked).
///
/// A file in object storage answers `302` to a presigned URL of the store
/// (valid five minutes; `Range` and `If-None-Match` are then the store's
/// to answer), or, with `redirect=false`, that URL as JSON; with `via=api`
/// its bytes come through the API as above. A file still being uploaded is
/// `409` with `Upload-Offset`; one removed under the retention policy is
/// `409` (its record remains).
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/v1/runs/{id}/data",
    params(
        ("id" = uuid::Uuid, Path, description = "The run"),
        DownloadQuery,
        ("Range" = Option<String>, Header, description = "One byte range: `bytes=first-last`, `bytes=first-` or `bytes=-n`; other units are ignored"),
        ("If-Range" = Option<String>, Header, description = "The `ETag` the client holds: the `Range` applies only while it is current"),
        ("If-None-Match" = Option<String>, Header, description = "`ETag`s (or `*`): `304` when one is the file's"),
    ),
    responses(
        (status = 200, description = "The whole file, in its recorded media type; or, with `redirect=false` for a file in object storage, where to fetch it",
            content(
                (Vec<u8> = "application/octet-stream"),
                (DownloadLink = "application/json"),
            ),
            headers(
                ("ETag" = String, description = "The file's SHA-256, hex, quoted"),
                ("Repr-Digest" = String, description = "`sha-256=:<base64>:` of the whole file"),
                ("Content-Disposition" = String, description = "`attachment` with the file's name (ASCII and UTF-8); not with the JSON link"),
                ("Accept-Ranges" = String, description = "`bytes`; not with the JSON link"),
            )),
        (status = 206, description = "The byte range asked for", content_type = "application/octet-stream", body = Vec<u8>,
            headers(
                ("Content-Range" = String, description = "`bytes first-last/size`"),
                ("ETag" = String, description = "The file's SHA-256, hex, quoted"),
                ("Repr-Digest" = String, description = "`sha-256=:<base64>:` of the whole file"),
                ("Content-Disposition" = String, description = "`attachment` with the file's name"),
                ("Accept-Ranges" = String, description = "`bytes`"),
            )),
        (status = 302, description = "The file is in object storage: fetch it from the presigned URL (valid five minutes)",
            headers(
                ("Location" = String, description = "The presigned URL"),
                ("Cache-Control" = String, description = "`no-store`"),
                ("ETag" = String, description = "The file's SHA-256, hex, quoted"),
                ("Repr-Digest" = String, description = "`sha-256=:<base64>:` of the whole file"),
            )),
        (status = 304, description = "`If-None-Match` names the file's `ETag`",
            headers(
                ("ETag" = String, description = "The file's SHA-256, hex, quoted"),
                ("Repr-Digest" = String, description = "`sha-256=:<base64>:` of the whole file"),
            )),
        (status = 404, description = "No such run, or it has no data file"),
        (status = 409, description = "The file is still being uploaded (`Upload-Offset` says how far), or was removed under the retention policy",
            headers(("Upload-Offset" = i64, description = "The bytes received so far, while it is being uploaded"))),
        (status = 416, description = "The range cannot be served (`Content-Range: bytes */size`)"),
    )))]
pub(super) async fn download<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
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

    let object = match data.backend {
        Backend::Postgres => None,
        Backend::S3 => {
            let s3 = ctx.config.storage()?.s3.as_ref().ok_or_else(|| {
                ApiError::internal("run data is in object storage, which is not configured")
            })?;
            let key = data
                .object_key
                .as_deref()
                .ok_or_else(|| ApiError::internal("object storage data without a key"))?;
            Some((s3, key))
        }
    };
    if let Some((s3, key)) = object
        && query.via != Some(Via::Api)
    {
        let url = s3
            .store(&ctx.platform)
            .download_url(key, &data.filename, &data.content_type);
        if query.redirect == Some(false) {
            let expires = ctx.now() + s3::DOWNLOAD_VALIDITY;
            return common(Reply::ok(DownloadLink {
                url: url.to_string(),
                expires_at: expires.into(),
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
    // One window is sent whole, with its length; more stream a window at
    // a time (chunked), so a download holds one window whatever the file.
    let body = match object {
        Some((s3, key)) => s3.store(&ctx.platform).open(key, start, end).await?,
        None if end - start <= postgres::READ_WINDOW => {
            Body::from(postgres::read(ctx, &principal.scope(), id, start, end).await?)
        }
        None => postgres::stream(ctx.clone(), principal.scope(), id, start, end),
    };
    let status = if range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let mut reply = Reply::raw(status, body)
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
