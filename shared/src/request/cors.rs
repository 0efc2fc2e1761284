//! Pages of other origins (CORS) and the headers that depend on the
//! request: [`seal`] finishes every answer, [`preflight`] answers a
//! browser's `OPTIONS` before a cross-origin call.
//!
//! Only the origins of `CORS_ORIGIN` are allowed, each with credentials
//! (the API's callers send bearer tokens and API keys); any other origin
//! gets no `Access-Control-*` header, so its pages cannot read an answer.
//! CORS is not authorization: a request is served (and refused) the same
//! whatever its origin.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};

use crate::body::Body;
use crate::config::{Config, HttpConfig};
use crate::ctx::Ctx;
use crate::envelope::{self, Metadata};
use crate::error::ApiError;
use crate::platform::Platform;

/// The request headers a page may send (lowercase, as browsers list them
/// in `Access-Control-Request-Headers`).
pub const ALLOWED_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "x-api-key",
    "x-request-id",
    "idempotency-key",
    "if-match",
    "range",
    "content-range",
    "content-digest",
    "repr-digest",
];

/// The answer headers a page may read beyond the CORS-safelisted ones.
const EXPOSED_HEADERS: &str = "x-request-id, etag, location, retry-after, ratelimit, ratelimit-policy, upload-offset, upload-limit, content-range, content-disposition, repr-digest, idempotent-replayed, antevus-manifest, www-authenticate, allow";

/// How long a browser may keep a preflight's answer.
const PREFLIGHT_MAX_AGE_SECS: u32 = 600;

/// `Strict-Transport-Security` for a deployment served over TLS: two years,
/// subdomains included.
const HSTS: &str = "max-age=63072000; includeSubDomains";

/// Adds what the answer to a request with `headers` (and `uri`) needs:
/// `Access-Control-Allow-*` for an allowed origin, `Vary: Origin` when the
/// deployment allows any, `Strict-Transport-Security` over TLS. A broken
/// `CORS_ORIGIN` adds nothing (it is logged; a preflight reports it).
pub fn seal<B>(config: &Config, headers: &HeaderMap, https: bool, response: &mut Response<B>) {
    let Ok(http) = config.http() else {
        tracing::error!("CORS_ORIGIN or CLIENT_ADDRESS_HEADER is invalid; no CORS headers");
        return;
    };
    let out = response.headers_mut();
    if http.hsts || https {
        out.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    if http.cors_origins.is_empty() {
        return;
    }
    out.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = allowed_origin(http, headers) {
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        out.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        out.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED_HEADERS),
        );
    }
}

/// Whether the request is a CORS preflight (an `OPTIONS` naming the method
/// it asks for).
pub fn is_preflight(req: &Request<Bytes>) -> bool {
    req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// The answer to an `OPTIONS` request of a route serving `methods`: a
/// preflight from an allowed origin for one of them is `204` with what it
/// may send; from any other origin `403`; for a method the route does not
/// serve `405`. A plain `OPTIONS` is `204` with `Allow`.
pub fn preflight<P: Platform>(
    ctx: &Ctx<P>,
    req: &Request<Bytes>,
    methods: &'static [Method],
) -> Response<Body> {
    let headers = req.headers();
    let refuse = |err: ApiError| {
        // One id for the log line and the answer.
        let metadata = Metadata::new(ctx.now(), &envelope::request_id(headers, || ctx.new_uuid()));
        super::log_error(&metadata.request_id, &err);
        let mut response = envelope::failure(&err, metadata);
        seal(&ctx.config, headers, is_https(req), &mut response);
        response
    };
    let http = match ctx.config.http() {
        Ok(http) => http,
        Err(e) => return refuse(ApiError::from(e)),
    };
    let allow = methods
        .iter()
        .map(Method::as_str)
        .chain(["OPTIONS"])
        .collect::<Vec<_>>()
        .join(", ");
    let mut response = Response::new(Body::default());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let out = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&allow) {
        out.insert(header::ALLOW, value);
    }
    if is_preflight(req) {
        if allowed_origin(http, headers).is_none() {
            return refuse(ApiError::OriginNotAllowed);
        }
        let asked = headers
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|v| Method::from_bytes(v.as_bytes()).ok());
        if !asked.is_some_and(|m| methods.contains(&m)) {
            return refuse(ApiError::MethodNotAllowed { allow: methods });
        }
        let methods = methods
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        if let Ok(value) = HeaderValue::from_str(&methods) {
            out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, value);
        }
        if let Ok(value) = HeaderValue::from_str(&ALLOWED_HEADERS.join(", ")) {
            out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, value);
        }
        out.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from(PREFLIGHT_MAX_AGE_SECS),
        );
        out.append(
            header::VARY,
            HeaderValue::from_static(
                "Access-Control-Request-Method, Access-Control-Request-Headers",
            ),
        );
    }
    envelope::secure(response.headers_mut());
    seal(&ctx.config, headers, is_https(req), &mut response);
    response
}

/// Whether the request's URI says it came over TLS.
pub fn is_https<B>(req: &Request<B>) -> bool {
    req.uri().scheme() == Some(&http::uri::Scheme::HTTPS)
}

/// The request's `Origin`, when the deployment allows it.
fn allowed_origin(http: &HttpConfig, headers: &HeaderMap) -> Option<HeaderValue> {
    let origin = headers.get(header::ORIGIN)?;
    http.allows(origin.to_str().ok()?).then(|| origin.clone())
}
