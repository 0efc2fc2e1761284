//! Parsing what a request carries: bodies within their cap, JSON, query strings, bearer tokens, fields.

use bytes::{Buf as _, Bytes};
use http::{HeaderMap, Request, header};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldError};

/// Bodies over the cap are still read (and dropped) up to this size, so the
/// client receives the 413 instead of a connection reset mid-upload.
pub const DRAIN_LIMIT: usize = 16 << 20;

/// Reads a body within `max` bytes. A larger one is drained (up to
/// [`DRAIN_LIMIT`]) and refused with 413; hosts call this for every body.
pub async fn read_capped<B>(body: B, max: usize) -> Result<Bytes, ApiError>
where
    B: http_body::Body + Unpin,
{
    use http_body_util::BodyExt as _;
    let mut body = body;
    let mut collected = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(ApiError::invalid("body", "Request body could not be read"));
        };
        if let Ok(data) = frame.into_data() {
            let chunk = data.chunk();
            seen += chunk.len();
            // Over the cap: drained only so far (a cap above the drain
            // limit still reads every byte up to the cap).
            if seen > max && seen > DRAIN_LIMIT {
                break;
            }
            if seen <= max {
                collected.extend_from_slice(chunk);
            }
        }
    }
    if seen > max {
        Err(ApiError::PayloadTooLarge { limit: max })
    } else {
        Ok(Bytes::from(collected))
    }
}

/// Parses a JSON body into `T`, turning every failure into a clear
/// `VALIDATION_ERROR` (or 413 / 415) with field details.
pub fn parse_json<T: DeserializeOwned>(req: &Request<Bytes>, max: usize) -> Result<T, ApiError> {
    let body = req.body();
    if body.len() > max {
        return Err(ApiError::PayloadTooLarge { limit: max });
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid("body", "A JSON request body is required"));
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if let Some(ct) = content_type {
        let essence = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(ApiError::UnsupportedMediaType);
        }
    }
    parse_json_bytes(body)
}

/// Parses JSON bytes into `T` with field-level error details.
pub fn parse_json_bytes<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(value) => Ok(value),
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            Err(ApiError::Validation(vec![json_field_error(&path, &inner)]))
        }
    }
}

/// Deserializes an already parsed JSON value into `T`, with the same
/// field-level errors as [`parse_json_bytes`].
pub fn parse_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(value) => Ok(value),
        Err(err) => {
            let path = err.path().to_string();
            let message = err.into_inner().to_string();
            let field = if path.is_empty() || path == "." {
                "body".to_owned()
            } else {
                path
            };
            Err(ApiError::Validation(vec![FieldError::new(field, message)]))
        }
    }
}

fn json_field_error(path: &str, err: &serde_json::Error) -> FieldError {
    use serde_json::error::Category;
    let message = err.to_string();
    match err.classify() {
        Category::Syntax | Category::Eof | Category::Io => FieldError::new(
            "body",
            format!(
                "Malformed JSON at line {} column {}",
                err.line(),
                err.column()
            ),
        ),
        Category::Data => {
            // serde's own wording, minus the position suffix.
            let text = message
                .split(" at line ")
                .next()
                .unwrap_or(&message)
                .to_owned();
            let named = |prefix: &str| {
                text.strip_prefix(prefix)
                    .and_then(|rest| rest.split('`').next())
                    .map(|name| join_path(path, name))
            };
            // The path of an unknown field already ends with its name; a
            // missing field's path is its parent object.
            let unknown = text.starts_with("unknown field `") && path != ".";
            let field = (if unknown { Some(path.to_owned()) } else { None })
                .or_else(|| named("unknown field `"))
                .or_else(|| named("missing field `"))
                .unwrap_or_else(|| {
                    if path == "." {
                        "body".to_owned()
                    } else {
                        path.to_owned()
                    }
                });
            FieldError::new(field, text)
        }
    }
}

fn join_path(path: &str, name: &str) -> String {
    if path.is_empty() || path == "." {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// Parses the query string into `T` (`?a=1&b=2`); errors are `VALIDATION_ERROR`.
pub fn parse_query<T: DeserializeOwned>(req: &Request<Bytes>) -> Result<T, ApiError> {
    let query = req.uri().query().unwrap_or("");
    serde_urlencoded::from_str(query).map_err(|e| {
        let text = e.to_string();
        let field = text
            .split('`')
            .nth(1)
            .filter(|_| text.starts_with("unknown field") || text.starts_with("missing field"))
            .unwrap_or("query")
            .to_owned();
        ApiError::invalid(field, text)
    })
}

/// The bearer token of `Authorization: Bearer <token>`, if any.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// An optional UUID query field; a malformed one is a problem named `field`.
pub fn uuid_field(
    field: &str,
    raw: Option<&str>,
    problems: &mut Vec<FieldError>,
) -> Option<uuid::Uuid> {
    raw.and_then(|s| {
        uuid::Uuid::parse_str(s).ok().or_else(|| {
            problems.push(FieldError::new(field, "Must be a UUID"));
            None
        })
    })
}

/// An optional RFC 3339 timestamp query field; a malformed one is a
/// problem named `field`.
pub fn time_field(
    field: &str,
    raw: Option<&str>,
    problems: &mut Vec<FieldError>,
) -> Option<time::OffsetDateTime> {
    raw.and_then(|s| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .ok()
            .or_else(|| {
                problems.push(FieldError::new(field, "Must be an RFC 3339 timestamp"));
                None
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;

    /// Polls a future that never waits (the bodies here are in memory).
    fn ready<F: std::future::Future>(future: F) -> F::Output {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut future = std::pin::pin!(future);
        loop {
            if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
                return out;
            }
        }
    }

    #[test]
    fn a_body_within_a_cap_above_the_drain_limit_is_read_whole() {
        let body = Full::new(Bytes::from(vec![1u8; DRAIN_LIMIT + 5]));
        let read = ready(read_capped(body, DRAIN_LIMIT * 2)).map(|b| b.len());
        assert_eq!(read.ok(), Some(DRAIN_LIMIT + 5));
    }

    #[test]
    fn a_body_over_its_cap_is_413() {
        let over = ready(read_capped(Full::new(Bytes::from(vec![1u8; 11])), 10));
        assert!(matches!(over, Err(ApiError::PayloadTooLarge { limit: 10 })));
        let exact = ready(read_capped(Full::new(Bytes::from(vec![1u8; 10])), 10));
        assert_eq!(exact.map(|b| b.len()).ok(), Some(10));
    }
}
