//! Data access: a PostgreSQL client over SQL-over-HTTP (Neon's wire format),
//! sent through the platform's outbound HTTP.
//!
//! [`Db::query`] runs one statement; [`Db::batch`] runs several as one
//! transaction. Parameters are bound positionally with [`params!`](crate::params); rows
//! decode into structs by column name ([`codec`]). Postgres failures become
//! [`DbError`]s, which map onto [`ApiError`] in one place ([`From`] below):
//! constraint violations are `409 CONFLICT`, unavailability is `503`,
//! everything else a generic `500`.

pub mod codec;
pub mod signing;
pub mod wire;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, header};
use serde::de::DeserializeOwned;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::{ConfigError, Database};
use crate::ctx::Ctx;
use crate::error::ApiError;
use crate::platform::Platform;
pub use wire::{IsolationLevel, QueryResult, Statement};

/// Converts a Rust value into a wire parameter (Neon's driver sends text).
pub trait ToParam {
    fn to_param(&self) -> Value;
}

impl ToParam for str {
    fn to_param(&self) -> Value {
        Value::String(self.to_owned())
    }
}
impl ToParam for String {
    fn to_param(&self) -> Value {
        Value::String(self.clone())
    }
}
impl ToParam for uuid::Uuid {
    fn to_param(&self) -> Value {
        Value::String(self.to_string())
    }
}
impl ToParam for bool {
    fn to_param(&self) -> Value {
        Value::String(self.to_string())
    }
}
impl ToParam for i32 {
    fn to_param(&self) -> Value {
        Value::String(self.to_string())
    }
}
impl ToParam for i64 {
    fn to_param(&self) -> Value {
        Value::String(self.to_string())
    }
}
impl ToParam for f64 {
    fn to_param(&self) -> Value {
        Value::String(self.to_string())
    }
}
impl ToParam for OffsetDateTime {
    fn to_param(&self) -> Value {
        self.format(&Rfc3339)
            .map(Value::String)
            .unwrap_or(Value::Null)
    }
}
/// JSON parameters (for `json`/`jsonb` columns) travel as JSON text.
impl ToParam for Value {
    fn to_param(&self) -> Value {
        Value::String(self.to_string())
    }
}
/// Arrays (for `text[]`, `uuid[]`, ... placeholders) travel as JSON arrays,
/// which Neon and our proxy bind as PostgreSQL array literals.
impl<T: ToParam> ToParam for [T] {
    fn to_param(&self) -> Value {
        Value::Array(self.iter().map(ToParam::to_param).collect())
    }
}
impl<T: ToParam> ToParam for Vec<T> {
    fn to_param(&self) -> Value {
        self.as_slice().to_param()
    }
}
impl<T: ToParam + ?Sized> ToParam for &T {
    fn to_param(&self) -> Value {
        (**self).to_param()
    }
}
impl<T: ToParam> ToParam for Option<T> {
    fn to_param(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToParam::to_param)
    }
}

/// `params![a, b, c]` builds a statement's parameter list.
#[macro_export]
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        vec![$($crate::db::ToParam::to_param(&$value)),*]
    };
}

/// Builds a [`Statement`].
pub fn statement(query: impl Into<String>, params: Vec<Value>) -> Statement {
    Statement {
        query: query.into(),
        params,
    }
}

/// Why a database call failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// PostgreSQL refused the statement.
    #[error("postgres error {}: {}", .0.code.as_deref().unwrap_or("?"), .0.message)]
    Postgres(Box<wire::ErrorReply>),
    /// The proxy answered with an error that is not a Postgres error.
    #[error("sql proxy replied {status}: {message}")]
    Proxy { status: u16, message: String },
    /// The proxy could not be reached.
    #[error("sql proxy unreachable: {0}")]
    Transport(String),
    /// The reply did not have the expected shape.
    #[error("unexpected reply: {0}")]
    Decode(String),
    /// The database settings are missing or broken.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl DbError {
    /// SQLSTATE of a Postgres error.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            DbError::Postgres(e) => e.code.as_deref(),
            _ => None,
        }
    }

    /// Name of the violated constraint, if any.
    pub fn constraint(&self) -> Option<&str> {
        match self {
            DbError::Postgres(e) => e.constraint.as_deref(),
            _ => None,
        }
    }
}

impl From<DbError> for ApiError {
    fn from(err: DbError) -> Self {
        match err.sqlstate() {
            // integrity_constraint_violation: unique, foreign key, exclusion, ...
            Some(code) if code.starts_with("23") => {
                ApiError::conflict("The request conflicts with existing data")
            }
            // serialization failure / deadlock: the client may retry.
            Some("40001" | "40P01") => ApiError::Unavailable(err.to_string()),
            // query_canceled (statement timeout), insufficient resources,
            // connection exceptions, operator intervention.
            Some(code)
                if code == "57014"
                    || code.starts_with("53")
                    || code.starts_with("08")
                    || code.starts_with("57P") =>
            {
                ApiError::Unavailable(err.to_string())
            }
            _ => match &err {
                DbError::Transport(_) => ApiError::Unavailable(err.to_string()),
                DbError::Proxy { status, .. }
                    if *status == 503 || *status == 502 || *status == 504 =>
                {
                    ApiError::Unavailable(err.to_string())
                }
                _ => ApiError::Internal(err.to_string()),
            },
        }
    }
}

/// Options of a batch transaction.
#[derive(Debug, Clone, Copy, Default)]
pub struct BatchOptions {
    pub isolation: IsolationLevel,
    pub read_only: bool,
}

impl<P: Platform> Ctx<P> {
    /// The SQL-over-HTTP client for this request. Broken database settings
    /// surface as [`DbError::Config`] on the first statement.
    pub fn db(&self) -> Db<'_, P> {
        Db::new(&self.platform, self.config.database())
    }
}

/// The SQL-over-HTTP client of one request.
pub struct Db<'a, P> {
    platform: &'a P,
    database: Result<&'a Database, ConfigError>,
}

impl<'a, P: Platform> Db<'a, P> {
    pub fn new(platform: &'a P, database: Result<&'a Database, ConfigError>) -> Self {
        Db { platform, database }
    }

    /// Runs one statement.
    pub async fn query(&self, query: &str, params: Vec<Value>) -> Result<QueryResult, DbError> {
        let body = wire::SqlRequest::Single(statement(query, params));
        let reply = self.send(&body, None).await?;
        serde_json::from_slice(&reply).map_err(|e| DbError::Decode(e.to_string()))
    }

    /// Runs one statement and decodes every row.
    pub async fn fetch_all<T: DeserializeOwned>(
        &self,
        query: &str,
        params: Vec<Value>,
    ) -> Result<Vec<T>, DbError> {
        let result = self.query(query, params).await?;
        result.decode().map_err(|e| DbError::Decode(e.to_string()))
    }

    /// Runs one statement and decodes its first row, if any.
    pub async fn fetch_optional<T: DeserializeOwned>(
        &self,
        query: &str,
        params: Vec<Value>,
    ) -> Result<Option<T>, DbError> {
        Ok(self.fetch_all(query, params).await?.into_iter().next())
    }

    /// Runs statements as one transaction; all or nothing.
    pub async fn batch(
        &self,
        queries: Vec<Statement>,
        options: BatchOptions,
    ) -> Result<Vec<QueryResult>, DbError> {
        let expected = queries.len();
        let body = wire::SqlRequest::Batch(wire::Batch { queries });
        let reply = self.send(&body, Some(options)).await?;
        let batch: wire::BatchResult =
            serde_json::from_slice(&reply).map_err(|e| DbError::Decode(e.to_string()))?;
        if batch.results.len() != expected {
            return Err(DbError::Decode(format!(
                "{} results for {expected} statements",
                batch.results.len()
            )));
        }
        Ok(batch.results)
    }

    async fn send(
        &self,
        body: &wire::SqlRequest,
        batch: Option<BatchOptions>,
    ) -> Result<Bytes, DbError> {
        let database = self.database.clone()?;
        let payload = serde_json::to_vec(body).map_err(|e| DbError::Decode(e.to_string()))?;
        let connection = HeaderValue::from_str(database.url.expose())
            .map_err(|_| DbError::Transport("DATABASE_URL is not a valid header value".into()))?;
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(&database.sql_endpoint)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json")
            .header(wire::CONNECTION_STRING, connection);
        if let Some(options) = batch {
            builder = builder
                .header(
                    wire::BATCH_ISOLATION_LEVEL,
                    options.isolation.header_value(),
                )
                .header(
                    wire::BATCH_READ_ONLY,
                    if options.read_only { "true" } else { "false" },
                );
        }
        if let (Some(key), Some(headers)) = (&database.proxy_key, builder.headers_mut()) {
            let mut nonce = [0u8; 16];
            self.platform.fill_random(&mut nonce);
            let signature = signing::Request {
                method: Method::POST.as_str(),
                path: &database.sql_path,
                headers,
                body: &payload,
            }
            .sign(key, self.platform.now().unix_timestamp(), &nonce);
            let value =
                HeaderValue::from_str(&signature).map_err(|e| DbError::Transport(e.to_string()))?;
            headers.insert(signing::SIGNATURE, value);
        }
        let request = builder
            .body(Bytes::from(payload))
            .map_err(|e| DbError::Transport(e.to_string()))?;
        let response = self
            .platform
            .fetch(request)
            .await
            .map_err(|e| DbError::Transport(e.0))?;
        let status = response.status();
        let body = response.into_body();
        if status.is_success() {
            return Ok(body);
        }
        let reply: wire::ErrorReply =
            serde_json::from_slice(&body).unwrap_or_else(|_| wire::ErrorReply {
                message: String::from_utf8_lossy(&body).chars().take(200).collect(),
                ..Default::default()
            });
        if status.as_u16() == 400 && reply.code.is_some() {
            Err(DbError::Postgres(Box::new(reply)))
        } else {
            Err(DbError::Proxy {
                status: status.as_u16(),
                message: reply.message,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn postgres(code: &str, constraint: Option<&str>) -> DbError {
        DbError::Postgres(Box::new(wire::ErrorReply {
            message: "secret detail of the database".into(),
            code: Some(code.into()),
            constraint: constraint.map(str::to_owned),
            ..Default::default()
        }))
    }

    #[test]
    fn database_errors_map_onto_the_api_in_one_place() {
        // Constraint violations are conflicts, named in the error only.
        let unique = postgres(
            "23505",
            Some("instruments_organization_id_serial_number_key"),
        );
        assert_eq!(
            unique.constraint(),
            Some("instruments_organization_id_serial_number_key")
        );
        assert!(matches!(ApiError::from(unique), ApiError::Conflict { .. }));
        assert!(matches!(
            ApiError::from(postgres("23503", None)),
            ApiError::Conflict { .. }
        ));
        // Retryable or overload: 503.
        for code in ["40001", "40P01", "57014", "53300", "08006", "57P01"] {
            assert!(
                matches!(
                    ApiError::from(postgres(code, None)),
                    ApiError::Unavailable(_)
                ),
                "{code}"
            );
        }
        assert!(matches!(
            ApiError::from(DbError::Transport("refused".into())),
            ApiError::Unavailable(_)
        ));
        for status in [502, 503, 504] {
            let proxy = DbError::Proxy {
                status,
                message: "busy".into(),
            };
            assert!(matches!(ApiError::from(proxy), ApiError::Unavailable(_)));
        }
        // Anything else is internal, and its text never reaches a client.
        let internal = ApiError::from(postgres("42P01", None));
        assert!(internal.is_internal());
        assert!(!internal.public_message().contains("secret"));
        assert!(matches!(
            ApiError::from(DbError::Proxy {
                status: 507,
                message: "too large".into(),
            }),
            ApiError::Internal(_)
        ));
        assert!(matches!(
            ApiError::from(DbError::Config(ConfigError("no URL".into()))),
            ApiError::Internal(_)
        ));
    }
}
