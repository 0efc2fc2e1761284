//! Where run data goes: `RUN_DATA_PG_MAX_BYTES`, `RUN_DATA_INLINE_MAX_BYTES`,
//! `RUN_DATA_MAX_BYTES`, and object storage when `S3_ENDPOINT` is set
//! (`S3_BUCKET`, `S3_REGION`, `S3_URL_STYLE`, `S3_ACCESS_KEY_ID`,
//! `S3_SECRET_ACCESS_KEY`, `S3_PART_BYTES`). The backends are in
//! `crate::storage`.

use std::fmt;

use rusty_s3::{Bucket, Credentials, UrlStyle};

use super::{ConfigError, Secret};

/// Where a run's data lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = StorageBackend))]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Postgres,
    S3,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::S3 => "s3",
        }
    }
}

/// Smallest part S3 accepts, except the last.
pub const S3_MIN_PART_BYTES: usize = 5 << 20;

/// Storage settings, from the environment.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// `RUN_DATA_PG_MAX_BYTES` (default 32 MiB): the largest file kept in
    /// PostgreSQL.
    pub pg_max_bytes: u64,
    /// `RUN_DATA_INLINE_MAX_BYTES` (default 8 MiB): with object storage
    /// configured, files up to this size still go to PostgreSQL.
    pub inline_max_bytes: u64,
    /// `RUN_DATA_MAX_BYTES` (default 10 GiB): the largest file at all.
    pub max_bytes: u64,
    /// Object storage, when `S3_ENDPOINT` is set.
    pub s3: Option<S3Config>,
}

impl StorageConfig {
    pub fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let bytes = |name: &str, default: u64| -> Result<u64, ConfigError> {
            match lookup(name).filter(|v| !v.trim().is_empty()) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| ConfigError(format!("{name} must be a positive number"))),
            }
        };
        let pg_max_bytes = bytes("RUN_DATA_PG_MAX_BYTES", 32 << 20)?;
        let inline_max_bytes = bytes("RUN_DATA_INLINE_MAX_BYTES", 8 << 20)?.min(pg_max_bytes);
        let max_bytes = bytes("RUN_DATA_MAX_BYTES", 10 << 30)?;
        let s3 = match lookup("S3_ENDPOINT").filter(|v| !v.trim().is_empty()) {
            None => None,
            Some(endpoint) => {
                let required = |name: &str| {
                    lookup(name)
                        .filter(|v| !v.trim().is_empty())
                        .ok_or_else(|| ConfigError(format!("{name} is not set (S3_ENDPOINT is)")))
                };
                let part_bytes = bytes("S3_PART_BYTES", 8 << 20)?;
                if part_bytes < S3_MIN_PART_BYTES as u64 || part_bytes > 64 << 20 {
                    return Err(ConfigError(
                        "S3_PART_BYTES must be within 5 MiB..=64 MiB".into(),
                    ));
                }
                let path_style = match lookup("S3_URL_STYLE").as_deref().map(str::trim) {
                    None | Some("") | Some("path") => true,
                    Some("virtual") => false,
                    Some(_) => {
                        return Err(ConfigError("S3_URL_STYLE must be path or virtual".into()));
                    }
                };
                Some(S3Config::new(
                    &endpoint,
                    required("S3_BUCKET")?,
                    lookup("S3_REGION").unwrap_or_else(|| "us-east-1".into()),
                    path_style,
                    required("S3_ACCESS_KEY_ID")?,
                    Secret::new(required("S3_SECRET_ACCESS_KEY")?),
                    part_bytes as usize,
                )?)
            }
        };
        Ok(StorageConfig {
            pg_max_bytes,
            inline_max_bytes,
            max_bytes,
            s3,
        })
    }
}

/// An S3-compatible bucket and the credentials to use it.
#[derive(Clone)]
pub struct S3Config {
    pub(crate) bucket: Bucket,
    pub(crate) credentials: Credentials,
    /// `S3_PART_BYTES` (default 8 MiB): the chunk size of uploads.
    pub part_bytes: usize,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket.name())
            .field("endpoint", &self.bucket.base_url().as_str())
            .field("part_bytes", &self.part_bytes)
            .finish_non_exhaustive()
    }
}

impl S3Config {
    pub fn new(
        endpoint: &str,
        bucket: String,
        region: String,
        path_style: bool,
        access_key_id: String,
        secret_access_key: Secret,
        part_bytes: usize,
    ) -> Result<S3Config, ConfigError> {
        let endpoint = url::Url::parse(endpoint)
            .map_err(|_| ConfigError("S3_ENDPOINT must be an http(s) URL".into()))?;
        let style = if path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        let bucket = Bucket::new(endpoint, style, bucket, region)
            .map_err(|e| ConfigError(format!("S3 bucket settings: {e}")))?;
        Ok(S3Config {
            bucket,
            credentials: Credentials::new(access_key_id, secret_access_key.expose()),
            part_bytes,
        })
    }
}
