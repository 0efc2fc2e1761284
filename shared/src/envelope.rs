//! The response envelope of the design document:
//!
//! ```json
//! {"success": true,  "data": {...}, "metadata": {"timestamp", "version", "requestId"}}
//! {"success": false, "error": {"code", "message", "details": [{"field", "message"}]}, "metadata": {...}}
//! ```

use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode, header};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::body::Body;
use crate::error::{ApiError, ErrorCode, FieldError};

/// The API version reported in every envelope's `metadata.version`.
pub const API_VERSION: &str = "1.0.0";

/// `metadata` of every envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub timestamp: String,
    pub version: String,
    pub request_id: String,
}

impl Metadata {
    pub fn new(now: OffsetDateTime, request_id: &str) -> Self {
        let timestamp = now
            .replace_nanosecond(now.millisecond() as u32 * 1_000_000)
            .unwrap_or(now)
            .format(&Rfc3339)
            .unwrap_or_default();
        Metadata {
            timestamp,
            version: API_VERSION.to_owned(),
            request_id: request_id.to_owned(),
        }
    }
}

/// `error` of a failure envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    /// One entry per input field at fault (`{field, message}`).
    #[serde(default)]
    pub details: Vec<FieldError>,
}

impl ErrorBody {
    /// What a client sees of `err`: its code, public message and details.
    pub fn of(err: &ApiError) -> ErrorBody {
        ErrorBody {
            code: err.code(),
            message: err.public_message(),
            details: err.details(),
        }
    }
}

/// The whole envelope, for rendering and for clients (the bridge, tests,
/// SDKs) to parse: `data` as `T` (any JSON by default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T = serde_json::Value> {
    pub success: bool,
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub data: Option<T>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
    pub metadata: Metadata,
}

/// A successful handler result: status, `data`, extra headers. A raw
/// reply (a file download, a redirect, a streamed export) carries its own
/// body instead of the envelope.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub data: serde_json::Value,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub raw: Option<Body>,
}

impl Reply {
    pub fn ok(data: impl Serialize) -> Result<Reply, ApiError> {
        Reply::with_status(StatusCode::OK, data)
    }

    pub fn created(data: impl Serialize) -> Result<Reply, ApiError> {
        Reply::with_status(StatusCode::CREATED, data)
    }

    pub fn with_status(status: StatusCode, data: impl Serialize) -> Result<Reply, ApiError> {
        let data = serde_json::to_value(data).map_err(ApiError::internal)?;
        Ok(Reply {
            status,
            data,
            headers: Vec::new(),
            raw: None,
        })
    }

    /// A reply whose body is `body` as is, whole or streamed (set
    /// `Content-Type` with [`Reply::header`]); errors still use the
    /// envelope.
    pub fn raw(status: StatusCode, body: impl Into<Body>) -> Reply {
        Reply {
            status,
            data: serde_json::Value::Null,
            headers: Vec::new(),
            raw: Some(body.into()),
        }
    }

    /// Marks the answer as the replay of an earlier request with the same
    /// `Idempotency-Key` (`Idempotent-Replayed: true`).
    pub fn replayed(self) -> Self {
        self.header(
            HeaderName::from_static("idempotent-replayed"),
            HeaderValue::from_static("true"),
        )
    }

    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
}

/// Renders a success envelope.
pub fn success(reply: Reply, metadata: Metadata) -> Response<Body> {
    if let Some(body) = reply.raw {
        let mut response = Response::new(body);
        *response.status_mut() = reply.status;
        let headers = response.headers_mut();
        secure(headers);
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-cache"),
        );
        if let Ok(id) = HeaderValue::from_str(&metadata.request_id) {
            headers.insert(REQUEST_ID_HEADER, id);
        }
        for (name, value) in reply.headers {
            headers.insert(name, value);
        }
        return response;
    }
    let envelope = Envelope {
        success: true,
        data: Some(reply.data),
        error: None,
        metadata,
    };
    let mut response = json_response(reply.status, &envelope);
    for (name, value) in reply.headers {
        response.headers_mut().append(name, value);
    }
    response
}

/// Renders a failure envelope. Internal causes never reach the body.
pub fn failure(err: &ApiError, metadata: Metadata) -> Response<Body> {
    let envelope = Envelope {
        success: false,
        data: None,
        error: Some(ErrorBody::of(err)),
        metadata,
    };
    let mut response = json_response(err.status(), &envelope);
    let headers = response.headers_mut();
    match err {
        ApiError::MethodNotAllowed { allow } => {
            let allow = allow
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            if let Ok(value) = HeaderValue::from_str(&allow) {
                headers.insert(header::ALLOW, value);
            }
        }
        ApiError::TokenExpired | ApiError::TokenInvalid(_) => {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        ApiError::PreconditionFailed { current, .. } => {
            if let Ok(value) = HeaderValue::from_str(&format!("\"{current}\"")) {
                headers.insert(header::ETAG, value);
            }
        }
        ApiError::RangeNotSatisfiable { size } => {
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                headers.insert(header::CONTENT_RANGE, value);
            }
        }
        ApiError::RateLimited {
            retry_after_secs, ..
        } => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        _ => {}
    }
    response
}

fn json_response(status: StatusCode, envelope: &Envelope) -> Response<Body> {
    // Serializing these plain structs cannot fail; fall back to a fixed body anyway.
    let body = serde_json::to_vec(envelope).unwrap_or_else(|_| {
        br#"{"success":false,"error":{"code":"INTERNAL_ERROR","message":"An internal error occurred","details":[]}}"#.to_vec()
    });
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    secure(headers);
    if let Ok(value) = HeaderValue::from_str(&envelope.metadata.request_id) {
        headers.insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// The headers every answer carries, whatever its request: no sniffing of
/// its type, no referrer to whatever it links to, and a content policy
/// under which a body (an uploaded HTML file among run data, say) can run
/// nothing, load nothing and be framed nowhere. Those that depend on the
/// request (CORS, HSTS) are `request::cors::seal`'s.
pub fn secure(headers: &mut HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

/// The content security policy of every API answer: nothing may load or
/// run, and no page may frame it.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; sandbox";

/// Header carrying the request id, honoured when a client sends a sane one.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The incoming `x-request-id` when it is 1..=128 characters of
/// `[A-Za-z0-9._:-]`, else a fresh `req_<uuid>`.
pub fn request_id(headers: &HeaderMap, fresh: impl FnOnce() -> uuid::Uuid) -> String {
    headers
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_valid_request_id(v))
        .map(str::to_owned)
        .unwrap_or_else(|| format!("req_{}", fresh().simple()))
}

fn is_valid_request_id(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// The `ETag` of a row's version: `"3"`.
pub fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// A header value the API made itself (a digest, a range, a file name
/// already checked); one that cannot be a header is a bug, answered 500.
pub fn header_value(text: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(text).map_err(ApiError::internal)
}

/// `data` is absent from a failure (whatever `T` is).
fn none<T>() -> Option<T> {
    None
}
