//! Run data storage: one interface ([`Store`]), two backends.
//!
//! - **PostgreSQL** (the embedded default): each uploaded chunk is a row of
//!   `run_data_chunks`, written in the same transaction that advances the
//!   upload, so the database alone holds the file. Kept for files up to
//!   [`StorageConfig::pg_max_bytes`].
//! - **S3-compatible object storage** (S3, R2, MinIO): a multipart upload,
//!   one part per chunk, signed with AWS SigV4 (rusty-s3, sans-IO, sent
//!   through the platform's fetch); downloads are presigned URLs. Used, when
//!   configured, for files larger than [`StorageConfig::inline_max_bytes`].
//!
//! Uploads are resumable and their SHA-256 is computed as the bytes arrive:
//! chunks must come in order, and the hash state between chunks is kept in
//! the `run_data` row ([`ResumableSha256`]), so the digest of a file of any
//! size is known the moment its last byte lands, whatever the backend.

pub mod postgres;
pub mod s3;

use base64::Engine as _;
use sha2_resumable::digest::Digest as _;
use sha2_resumable::digest::common::hazmat::{SerializableState, SerializedState};

pub use crate::config::storage::{Backend, S3_MIN_PART_BYTES};
pub use crate::config::{S3Config, StorageConfig};
use crate::error::{ApiError, FieldError};

/// Largest chunk the PostgreSQL backend takes per request: a chunk travels
/// base64-encoded in one SQL-over-HTTP request, which the proxy (like
/// Neon's) caps at 4 MiB.
pub const PG_CHUNK_BYTES: usize = 2 << 20;

impl StorageConfig {
    /// The largest request body an upload takes (one chunk).
    pub fn max_chunk_bytes(&self) -> usize {
        self.s3
            .as_ref()
            .map_or(PG_CHUNK_BYTES, |s3| s3.part_bytes.max(PG_CHUNK_BYTES))
    }

    /// Where a new file of `total` bytes goes. Files whose results are
    /// parsed (`parsed`) stay in PostgreSQL.
    pub fn choose(&self, total: u64, parsed: bool) -> Result<Backend, ApiError> {
        let too_large = |limit: u64| {
            ApiError::Validation(vec![FieldError::new(
                "Content-Range",
                format!("The file is {total} bytes; at most {limit} bytes are kept here"),
            )])
        };
        if total > self.max_bytes {
            return Err(too_large(self.max_bytes));
        }
        match &self.s3 {
            Some(_) if !parsed && total > self.inline_max_bytes => Ok(Backend::S3),
            _ if total > self.pg_max_bytes => Err(too_large(self.pg_max_bytes)),
            _ => Ok(Backend::Postgres),
        }
    }

    /// The chunk size a client must use with `backend`: every chunk but the
    /// last has this many bytes at most (and, for S3, at least
    /// [`S3_MIN_PART_BYTES`]).
    pub fn chunk_bytes(&self, backend: Backend) -> usize {
        match (&self.s3, backend) {
            (Some(s3), Backend::S3) => s3.part_bytes,
            _ => PG_CHUNK_BYTES,
        }
    }
}

/// SHA-256 whose state survives between requests: chunk by chunk, the
/// state is saved in the upload's row and resumed with the next chunk.
#[derive(Clone, Default)]
pub struct ResumableSha256(sha2_resumable::Sha256);

impl ResumableSha256 {
    pub fn new() -> Self {
        Self::default()
    }

    /// Resumes from [`ResumableSha256::state`]; `None` for a damaged state.
    pub fn resume(state: &[u8]) -> Option<Self> {
        let state = SerializedState::<sha2_resumable::Sha256>::try_from(state).ok()?;
        sha2_resumable::Sha256::deserialize(&state).ok().map(Self)
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The state to store between chunks.
    pub fn state(&self) -> Vec<u8> {
        self.0.serialize().to_vec()
    }

    pub fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

/// A `Content-Disposition` naming `filename` for a download: an ASCII
/// fallback and the exact UTF-8 name (RFC 6266).
pub fn attachment(filename: &str) -> String {
    let fallback: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let exact = percent_encoding::utf8_percent_encode(filename, percent_encoding::NON_ALPHANUMERIC);
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{exact}")
}

/// Whether `name` may name a stored file: 1..=255 characters, no path
/// separators, no control characters, no quotes.
pub fn valid_filename(name: &str) -> bool {
    (1..=255).contains(&name.chars().count())
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c.is_control() || matches!(c, '/' | '\\' | '"'))
}

/// An upload request's byte range: `Content-Range: bytes first-last/total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRange {
    pub first: u64,
    /// Exclusive end.
    pub end: u64,
    pub total: u64,
}

impl ChunkRange {
    /// The range of this request's `body_len` bytes; the whole file when
    /// the request has no `Content-Range`.
    pub fn of_request(header: Option<&str>, body_len: usize) -> Result<ChunkRange, ApiError> {
        let invalid = |message: &str| ApiError::invalid("Content-Range", message);
        let body_len = body_len as u64;
        let Some(header) = header else {
            if body_len == 0 {
                return Err(ApiError::invalid("body", "The request body is empty"));
            }
            return Ok(ChunkRange {
                first: 0,
                end: body_len,
                total: body_len,
            });
        };
        let (first, last, total) = header
            .trim()
            .strip_prefix("bytes ")
            .and_then(|rest| rest.split_once('/'))
            .and_then(|(range, total)| {
                let (first, last) = range.split_once('-')?;
                Some((
                    first.trim().parse::<u64>().ok()?,
                    last.trim().parse::<u64>().ok()?,
                    total.trim().parse::<u64>().ok()?,
                ))
            })
            .ok_or_else(|| invalid("Must be `bytes first-last/total` with decimal numbers"))?;
        if first > last || last >= total {
            return Err(invalid("Needs first <= last < total"));
        }
        if last - first + 1 != body_len {
            return Err(invalid(&format!(
                "Names {} bytes but the body has {body_len}",
                last - first + 1
            )));
        }
        Ok(ChunkRange {
            first,
            end: last + 1,
            total,
        })
    }

    pub fn is_last(&self) -> bool {
        self.end == self.total
    }
}

/// The SHA-256 named in a digest field (`Repr-Digest` / `Content-Digest`,
/// RFC 9530: `sha-256=:<base64>:`); `None` when the header is absent or
/// names only other algorithms.
pub fn sha256_field(
    headers: &http::HeaderMap,
    name: &'static str,
) -> Result<Option<[u8; 32]>, ApiError> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    let invalid = || ApiError::invalid(name, "Must be a structured digest: sha-256=:<base64>:");
    let value = value.to_str().map_err(|_| invalid())?;
    for member in value.split(',') {
        let Some((algorithm, digest)) = member.split_once('=') else {
            return Err(invalid());
        };
        if !algorithm.trim().eq_ignore_ascii_case("sha-256") {
            continue;
        }
        let encoded = digest
            .trim()
            .strip_prefix(':')
            .and_then(|d| d.strip_suffix(':'))
            .ok_or_else(invalid)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| invalid())?;
        return <[u8; 32]>::try_from(bytes).map(Some).map_err(|_| invalid());
    }
    Ok(None)
}

/// `sha-256=:<base64>:` for a digest header.
pub fn sha256_header(digest: &[u8]) -> String {
    format!(
        "sha-256=:{}:",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// What a `Range` request asks of a file of `size` bytes: `None` for the
/// whole file (no header, or one this server ignores), else the single
/// byte range `[start, end)`. Unsatisfiable ranges are 416.
pub fn requested_range(header: Option<&str>, size: u64) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        // Other units are ignored (RFC 9110 14.2).
        return Ok(None);
    };
    let unsatisfiable = ApiError::RangeNotSatisfiable { size };
    if spec.contains(',') {
        // One range per request: a multipart/byteranges answer is not offered.
        return Err(unsatisfiable);
    }
    let (first, last) = spec
        .trim()
        .split_once('-')
        .ok_or(ApiError::RangeNotSatisfiable { size })?;
    let (first, last) = (first.trim(), last.trim());
    let range = match (first.is_empty(), last.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => {
            let n: u64 = last
                .parse()
                .map_err(|_| ApiError::RangeNotSatisfiable { size })?;
            if n == 0 || size == 0 {
                return Err(unsatisfiable);
            }
            (size.saturating_sub(n), size)
        }
        (false, _) => {
            let first: u64 = first
                .parse()
                .map_err(|_| ApiError::RangeNotSatisfiable { size })?;
            let end = if last.is_empty() {
                size
            } else {
                let last: u64 = last
                    .parse()
                    .map_err(|_| ApiError::RangeNotSatisfiable { size })?;
                if last < first {
                    return Err(unsatisfiable);
                }
                last.saturating_add(1).min(size)
            };
            if first >= size {
                return Err(unsatisfiable);
            }
            (first, end)
        }
        (true, true) => return Err(unsatisfiable),
    };
    Ok(Some(range))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn resumed_hash_equals_one_pass_hash() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let mut hasher = ResumableSha256::new();
        for chunk in data.chunks(777) {
            let state = hasher.state();
            hasher = ResumableSha256::resume(&state).expect("state");
            hasher.update(chunk);
        }
        let expected: [u8; 32] = sha2_resumable::Sha256::digest(&data).into();
        assert_eq!(hasher.finish(), expected);
        assert!(ResumableSha256::resume(b"short").is_none());
    }

    #[test]
    fn content_range_is_checked_against_the_body() {
        assert_eq!(
            ChunkRange::of_request(Some("bytes 0-9/20"), 10).expect("valid"),
            ChunkRange {
                first: 0,
                end: 10,
                total: 20
            }
        );
        assert!(
            ChunkRange::of_request(Some("bytes 10-19/20"), 10)
                .expect("valid")
                .is_last()
        );
        for bad in [
            "bytes 0-9/20x",
            "bytes 5-4/20",
            "bytes 0-19/19",
            "bytes 0-8/20",
            "items 0-9/20",
            "bytes */20",
        ] {
            assert!(ChunkRange::of_request(Some(bad), 10).is_err(), "{bad}");
        }
        assert!(ChunkRange::of_request(None, 0).is_err());
    }

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(requested_range(None, 100).expect("ok"), None);
        assert_eq!(requested_range(Some("items=0-1"), 100).expect("ok"), None);
        assert_eq!(
            requested_range(Some("bytes=0-9"), 100).expect("ok"),
            Some((0, 10))
        );
        assert_eq!(
            requested_range(Some("bytes=90-"), 100).expect("ok"),
            Some((90, 100))
        );
        assert_eq!(
            requested_range(Some("bytes=-10"), 100).expect("ok"),
            Some((90, 100))
        );
        assert_eq!(
            requested_range(Some("bytes=-500"), 100).expect("ok"),
            Some((0, 100))
        );
        assert_eq!(
            requested_range(Some("bytes=50-500"), 100).expect("ok"),
            Some((50, 100))
        );
        for bad in [
            "bytes=100-",
            "bytes=5-4",
            "bytes=-0",
            "bytes=0-1,5-6",
            "bytes=x-1",
            "bytes=-",
        ] {
            assert!(requested_range(Some(bad), 100).is_err(), "{bad}");
        }
    }

    #[test]
    fn digest_fields_pick_sha_256() {
        let mut headers = http::HeaderMap::new();
        let digest = [7u8; 32];
        headers.insert(
            "repr-digest",
            format!("sha-512=:AAAA:, {}", sha256_header(&digest))
                .parse()
                .expect("header"),
        );
        assert_eq!(
            sha256_field(&headers, "repr-digest").expect("valid"),
            Some(digest)
        );
        headers.insert("repr-digest", "sha-256=:AAAA:".parse().expect("header"));
        assert!(sha256_field(&headers, "repr-digest").is_err());
        assert_eq!(
            sha256_field(&headers, "content-digest").expect("absent"),
            None
        );
    }

    fn config(s3: bool) -> StorageConfig {
        let lookup = |name: &str| match name {
            "S3_ENDPOINT" if s3 => Some("http://127.0.0.1:9000".to_owned()),
            "S3_BUCKET" => Some("runs".to_owned()),
            "S3_ACCESS_KEY_ID" => Some("key".to_owned()),
            "S3_SECRET_ACCESS_KEY" => Some("secret".to_owned()),
            _ => None,
        };
        StorageConfig::from_lookup(&lookup).expect("config")
    }

    #[test]
    fn backend_choice_by_size_and_configuration() {
        let pg = config(false);
        assert_eq!(pg.choose(1 << 20, false).expect("fits"), Backend::Postgres);
        assert!(pg.choose(33 << 20, false).is_err());
        let s3 = config(true);
        assert_eq!(s3.choose(1 << 20, false).expect("fits"), Backend::Postgres);
        assert_eq!(s3.choose(9 << 20, false).expect("fits"), Backend::S3);
        assert_eq!(s3.choose(9 << 20, true).expect("fits"), Backend::Postgres);
        assert!(s3.choose(11 << 30, false).is_err());
        assert_eq!(s3.max_chunk_bytes(), 8 << 20);
    }

    proptest! {
        #[test]
        fn range_parsing_never_panics(header in ".{0,40}", size in 0u64..1_000_000) {
            if let Ok(Some((start, end))) = requested_range(Some(&header), size) {
                prop_assert!(start < end && end <= size);
            }
            let _ = ChunkRange::of_request(Some(&header), size as usize);
        }
    }
}
