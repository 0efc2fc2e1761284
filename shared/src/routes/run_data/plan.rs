//! What to do with one chunk of a run data upload, decided from what is
//! stored and what the request says, without I/O: [`plan`] answers either a
//! [`Plan`] or a [`Refusal`] (with the offset the upload continues at, when
//! the client should resume). Unit-tested below.

use crate::config::StorageConfig;
use crate::domain::qc;
use crate::error::{ApiError, FieldError};
use crate::model::run_data::Stored;
use crate::storage::{Backend, ChunkRange, ResumableSha256, S3_MIN_PART_BYTES};

/// What the first chunk says about the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    pub filename: String,
    pub content_type: String,
    pub format: Option<qc::Format>,
}

/// What the request asks, as far as the plan needs it.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub range: ChunkRange,
    pub len: usize,
    /// The file's SHA-256 the request announces (`Repr-Digest`).
    pub expected: Option<[u8; 32]>,
    pub described: Described,
}

/// How to store a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub backend: Backend,
    /// The chunk continues the stored upload (else it starts one, or starts
    /// an unfinished one over, at byte 0).
    pub resumes: bool,
    /// The file's description: the stored one when resuming.
    pub described: Described,
    /// The file's expected SHA-256 (hex): announced now or at the start.
    pub expected: Option<String>,
    /// The largest chunk this backend takes.
    pub chunk_bytes: usize,
}

/// Why a chunk is refused, and where the upload continues when the client
/// should resume there (`Upload-Offset`), or the chunk sizes it takes when
/// the chunk's size was wrong (`Upload-Limit`).
#[derive(Debug)]
pub struct Refusal {
    pub error: ApiError,
    pub upload_offset: Option<i64>,
    pub limit: Option<ChunkLimit>,
}

/// The chunk sizes an upload's backend takes: every chunk at most
/// `max_bytes`, and every one but the last at least `min_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkLimit {
    pub min_bytes: usize,
    pub max_bytes: usize,
}

impl ChunkLimit {
    /// As the `Upload-Limit` header says it (the field of the IETF's
    /// resumable uploads draft): `min-append-size=…, max-append-size=…`.
    pub fn header(&self) -> String {
        format!(
            "min-append-size={}, max-append-size={}",
            self.min_bytes, self.max_bytes
        )
    }
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        Refusal {
            error,
            upload_offset: None,
            limit: None,
        }
    }
}

/// A 409 that tells the client where to continue.
fn resume_at(message: String, received: i64) -> Refusal {
    Refusal {
        error: ApiError::Conflict {
            message,
            details: vec![FieldError::new(
                "Content-Range",
                format!("Send the bytes from offset {received} next"),
            )],
        },
        upload_offset: Some(received),
        limit: None,
    }
}

/// Decides what to do with `chunk` given the upload `current` (if any).
pub fn plan(
    current: Option<&Stored>,
    chunk: Chunk,
    config: &StorageConfig,
) -> Result<Plan, Refusal> {
    let range = chunk.range;
    // Which upload this chunk belongs to.
    let (backend, resumed) = match (current, range.first) {
        (Some(s), _) if s.recorded() => {
            return Err(ApiError::conflict(
                "This run's data is already recorded; recorded data is never replaced",
            )
            .into());
        }
        (_, 0) => {
            let parsed = chunk.described.format.is_some();
            let backend = config.choose(range.total, parsed)?;
            if parsed && range.total > qc::MAX_PARSE_BYTES as u64 {
                return Err(ApiError::invalid(
                    "format",
                    format!(
                        "Files parsed into results are at most {} bytes",
                        qc::MAX_PARSE_BYTES
                    ),
                )
                .into());
            }
            (backend, None)
        }
        (Some(s), first)
            if s.received_bytes as u64 == first && s.total_bytes as u64 == range.total =>
        {
            (s.backend, Some(s))
        }
        (Some(s), _) => {
            return Err(resume_at(
                format!(
                    "The upload continues at byte {} of {} (this chunk starts at {} of {})",
                    s.received_bytes, s.total_bytes, range.first, range.total
                ),
                s.received_bytes,
            ));
        }
        (None, _) => {
            return Err(resume_at(
                "No upload is in progress for this run's data".into(),
                0,
            ));
        }
    };
    let chunk_bytes = config.chunk_bytes(backend);
    let limit = ChunkLimit {
        min_bytes: if backend == Backend::S3 {
            S3_MIN_PART_BYTES
        } else {
            1
        },
        max_bytes: chunk_bytes,
    };
    if chunk.len > chunk_bytes {
        return Err(Refusal {
            limit: Some(limit),
            ..ApiError::PayloadTooLarge { limit: chunk_bytes }.into()
        });
    }
    if !range.is_last() && chunk.len < limit.min_bytes {
        return Err(Refusal {
            limit: Some(limit),
            ..ApiError::invalid(
                "Content-Range",
                format!(
                    "Every chunk but the last must be at least {} bytes",
                    limit.min_bytes
                ),
            )
            .into()
        });
    }
    let kept = resumed.and_then(|s| s.expected_sha256.as_deref());
    if let (Some(given), Some(kept)) = (chunk.expected, kept)
        && hex::encode(given) != kept
    {
        return Err(ApiError::invalid(
            "Repr-Digest",
            "Differs from the digest given when the upload started",
        )
        .into());
    }
    let expected = chunk
        .expected
        .map(hex::encode)
        .or_else(|| kept.map(str::to_owned));
    let described = match resumed {
        Some(s) => Described {
            filename: s.filename.clone(),
            content_type: s.content_type.clone(),
            format: s.format.as_deref().and_then(qc::Format::parse),
        },
        None => chunk.described,
    };
    Ok(Plan {
        backend,
        resumes: resumed.is_some(),
        described,
        expected,
        chunk_bytes,
    })
}

/// The file's SHA-256 so far: carried on from the stored upload's state
/// when the plan resumes it, else a fresh one.
pub fn hasher(plan: &Plan, current: Option<&Stored>) -> Result<ResumableSha256, ApiError> {
    match current.filter(|_| plan.resumes) {
        None => Ok(ResumableSha256::new()),
        Some(stored) => stored
            .hash_state
            .as_deref()
            .and_then(|h| hex::decode(h).ok())
            .and_then(|state| ResumableSha256::resume(&state))
            .ok_or_else(|| ApiError::internal("upload hash state is damaged")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::UploadStatus;

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

    fn described(format: Option<qc::Format>) -> Described {
        Described {
            filename: "plate.csv".into(),
            content_type: "text/csv".into(),
            format,
        }
    }

    fn chunk(first: u64, len: usize, total: u64) -> Chunk {
        Chunk {
            range: ChunkRange {
                first,
                end: first + len as u64,
                total,
            },
            len,
            expected: None,
            described: described(None),
        }
    }

    fn uploading(received: i64, total: i64, backend: Backend) -> Stored {
        Stored {
            filename: "stored.csv".into(),
            content_type: "text/plain".into(),
            format: None,
            backend,
            object_key: None,
            upload_id: None,
            status: UploadStatus::Uploading,
            total_bytes: total,
            received_bytes: received,
            expected_sha256: None,
            sha256: None,
            hash_state: None,
            parts: 1,
        }
    }

    fn refused(result: Result<Plan, Refusal>) -> Refusal {
        match result {
            Ok(plan) => panic!("planned {plan:?}"),
            Err(refusal) => refusal,
        }
    }

    #[test]
    fn a_first_chunk_starts_an_upload_in_postgres() {
        let plan = plan(None, chunk(0, 100, 100), &config(false)).expect("a plan");
        assert_eq!(plan.backend, Backend::Postgres);
        assert!(!plan.resumes);
        assert_eq!(plan.described, described(None));
        assert_eq!(plan.expected, None);
    }

    #[test]
    fn a_large_file_goes_to_object_storage_unless_it_is_parsed() {
        let big = 20 << 20;
        let s3 = plan(None, chunk(0, 8 << 20, big), &config(true)).expect("a plan");
        assert_eq!(s3.backend, Backend::S3);
        let mut parsed = chunk(0, 1 << 20, big);
        parsed.described.format = Some(qc::Format::PlateReaderCsv);
        let refusal = refused(plan(None, parsed, &config(true)));
        assert!(
            matches!(&refusal.error, ApiError::Validation(d) if d[0].field == "format"),
            "{:?}",
            refusal.error
        );
    }

    #[test]
    fn a_chunk_at_the_stored_offset_resumes_with_the_stored_description() {
        let current = uploading(100, 300, Backend::Postgres);
        let plan = plan(Some(&current), chunk(100, 100, 300), &config(false)).expect("a plan");
        assert!(plan.resumes);
        assert_eq!(plan.described.filename, "stored.csv");
    }

    #[test]
    fn a_chunk_elsewhere_is_told_where_to_continue() {
        let current = uploading(100, 300, Backend::Postgres);
        let refusal = refused(plan(Some(&current), chunk(200, 100, 300), &config(false)));
        assert_eq!(refusal.upload_offset, Some(100));
        assert!(matches!(refusal.error, ApiError::Conflict { .. }));
        // Another total is another file.
        let refusal = refused(plan(Some(&current), chunk(100, 100, 400), &config(false)));
        assert_eq!(refusal.upload_offset, Some(100));
        // Nothing to continue: start at 0.
        let refusal = refused(plan(None, chunk(100, 100, 300), &config(false)));
        assert_eq!(refusal.upload_offset, Some(0));
    }

    #[test]
    fn byte_zero_starts_over_but_recorded_data_is_never_replaced() {
        let current = uploading(100, 300, Backend::Postgres);
        let over = plan(Some(&current), chunk(0, 100, 300), &config(false)).expect("a plan");
        assert!(!over.resumes);
        let recorded = Stored {
            status: UploadStatus::Complete,
            ..uploading(300, 300, Backend::Postgres)
        };
        let refusal = refused(plan(Some(&recorded), chunk(0, 100, 300), &config(false)));
        assert_eq!(refusal.upload_offset, None);
        assert!(matches!(refusal.error, ApiError::Conflict { .. }));
        let purged = Stored {
            status: UploadStatus::Purged,
            ..recorded
        };
        assert!(plan(Some(&purged), chunk(0, 100, 300), &config(false)).is_err());
    }

    #[test]
    fn chunks_keep_to_the_backends_sizes() {
        let too_big = refused(plan(
            None,
            chunk(0, (2 << 20) + 1, 10 << 20),
            &config(false),
        ));
        assert!(matches!(too_big.error, ApiError::PayloadTooLarge { .. }));
        // The refusal says which sizes would do.
        assert_eq!(
            too_big.limit.map(|l| l.header()),
            Some(format!("min-append-size=1, max-append-size={}", 2 << 20))
        );
        let current = uploading(0, 20 << 20, Backend::S3);
        let small = refused(plan(
            Some(&current),
            chunk(0, 1 << 20, 20 << 20),
            &config(true),
        ));
        assert!(
            matches!(small.error, ApiError::Validation(_)),
            "{:?}",
            small.error
        );
        assert_eq!(
            small.limit,
            Some(ChunkLimit {
                min_bytes: S3_MIN_PART_BYTES,
                max_bytes: 8 << 20
            })
        );
    }

    #[test]
    fn the_announced_digest_must_not_change() {
        let current = Stored {
            expected_sha256: Some(hex::encode([1u8; 32])),
            ..uploading(100, 300, Backend::Postgres)
        };
        let mut same = chunk(100, 100, 300);
        same.expected = Some([1; 32]);
        let plan_same = plan(Some(&current), same, &config(false)).expect("a plan");
        assert_eq!(plan_same.expected, Some(hex::encode([1u8; 32])));
        let silent = plan(Some(&current), chunk(100, 100, 300), &config(false)).expect("a plan");
        assert_eq!(silent.expected, Some(hex::encode([1u8; 32])));
        let mut other = chunk(100, 100, 300);
        other.expected = Some([2; 32]);
        let refusal = refused(plan(Some(&current), other, &config(false)));
        assert!(matches!(refusal.error, ApiError::Validation(_)));
    }

    #[test]
    fn a_resumed_hash_needs_its_stored_state() {
        let current = uploading(100, 300, Backend::Postgres);
        let resumed = plan(Some(&current), chunk(100, 100, 300), &config(false)).expect("a plan");
        assert!(hasher(&resumed, Some(&current)).is_err());
        let mut state = ResumableSha256::new();
        state.update(b"abc");
        let kept = Stored {
            hash_state: Some(hex::encode(state.state())),
            ..current
        };
        let mut carried = hasher(&resumed, Some(&kept)).expect("resumed");
        carried.update(b"def");
        let mut whole = ResumableSha256::new();
        whole.update(b"abcdef");
        assert_eq!(carried.finish(), whole.finish());
    }
}
