//! Error replies in Neon's format: a JSON object with `message` and, for
//! PostgreSQL errors, the SQLSTATE `code` and the other error fields.

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::Full;
use shared::db::wire::ErrorReply;
use tokio_postgres::error::ErrorPosition;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("too many failed authentications from this address; retry later")]
    TooManyFailures { retry_after: std::time::Duration },
    #[error("{0}")]
    Forbidden(String),
    #[error("request body is too large (max is {0} bytes)")]
    RequestTooLarge(usize),
    #[error("response is too large (max is {0} bytes)")]
    ResponseTooLarge(usize),
    #[error("{0}")]
    Unavailable(String),
    #[error("postgres error")]
    Postgres(Box<ErrorReply>),
}

impl ProxyError {
    pub fn status(&self) -> u16 {
        match self {
            ProxyError::BadRequest(_) | ProxyError::Postgres(_) => 400,
            ProxyError::Unauthorized(_) => 401,
            ProxyError::TooManyFailures { .. } => 429,
            ProxyError::Forbidden(_) => 403,
            ProxyError::RequestTooLarge(_) => 413,
            ProxyError::ResponseTooLarge(_) => 507,
            ProxyError::Unavailable(_) => 503,
        }
    }

    /// Label for the requests metric.
    pub fn outcome(&self) -> &'static str {
        match self {
            ProxyError::BadRequest(_) => "bad_request",
            ProxyError::Unauthorized(_) => "unauthorized",
            ProxyError::TooManyFailures { .. } => "too_many_failures",
            ProxyError::Forbidden(_) => "forbidden",
            ProxyError::RequestTooLarge(_) => "request_too_large",
            ProxyError::ResponseTooLarge(_) => "response_too_large",
            ProxyError::Unavailable(_) => "unavailable",
            ProxyError::Postgres(_) => "postgres_error",
        }
    }

    /// Converts a driver error: a server error keeps its fields, anything
    /// else (closed connection, I/O) is unavailability.
    pub fn from_pg(err: &tokio_postgres::Error) -> ProxyError {
        match err.as_db_error() {
            Some(db) => ProxyError::Postgres(Box::new(ErrorReply {
                message: db.message().to_owned(),
                code: Some(db.code().code().to_owned()),
                detail: db.detail().map(str::to_owned),
                hint: db.hint().map(str::to_owned),
                position: match db.position() {
                    Some(ErrorPosition::Original(n)) => Some(n.to_string()),
                    _ => None,
                },
                internal_position: match db.position() {
                    Some(ErrorPosition::Internal { position, .. }) => Some(position.to_string()),
                    _ => None,
                },
                internal_query: match db.position() {
                    Some(ErrorPosition::Internal { query, .. }) => Some(query.clone()),
                    _ => None,
                },
                file: db.file().map(str::to_owned),
                line: db.line().map(|n| n.to_string()),
                routine: db.routine().map(str::to_owned),
                severity: Some(db.severity().to_owned()),
                schema: db.schema().map(str::to_owned),
                table: db.table().map(str::to_owned),
                column: db.column().map(str::to_owned),
                data_type: db.datatype().map(str::to_owned),
                constraint: db.constraint().map(str::to_owned),
                where_: db.where_().map(str::to_owned),
            })),
            None if err.is_closed() => ProxyError::Unavailable("database connection closed".into()),
            None => match std::error::Error::source(err) {
                // A parameter that did not convert: report it like
                // PostgreSQL reports bad text input.
                Some(source) if err.to_string().contains("serializing parameter") => {
                    ProxyError::Postgres(Box::new(ErrorReply {
                        message: format!("invalid input for parameter: {source}"),
                        code: Some("22P02".into()),
                        severity: Some("ERROR".into()),
                        ..Default::default()
                    }))
                }
                _ => ProxyError::Unavailable(format!("database error: {err}")),
            },
        }
    }

    pub fn reply(&self) -> ErrorReply {
        match self {
            ProxyError::Postgres(reply) => (**reply).clone(),
            other => ErrorReply {
                message: other.to_string(),
                ..Default::default()
            },
        }
    }
}

impl IntoResponse for ProxyError {
    fn into_response(self) -> Response {
        let mut response = json_response(self.status(), &self.reply());
        if let ProxyError::TooManyFailures { retry_after } = self {
            response.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from(retry_after.as_secs().max(1)),
            );
        }
        response
    }
}

/// An error and its sources, `outer: inner: innermost`.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let next = inner.to_string();
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = inner.source();
    }
    text
}

/// A JSON response with the given status.
pub fn json_response(status: u16, body: &impl serde::Serialize) -> Response {
    let bytes = serde_json::to_vec(body)
        .unwrap_or_else(|_| br#"{"message":"serialization failed"}"#.to_vec());
    let mut response = Response::new(axum::body::Body::new(Full::new(Bytes::from(bytes))));
    *response.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}
