//! The Spin host (`wasm32-wasip2`, spin-sdk 7): [`SpinPlatform`] implements
//! the seam with `spin_sdk::http::send`, the WASI clock and WASI random;
//! [`prepare`] turns an incoming request into `(Ctx, http::Request<Bytes>)`;
//! the handler's `http::Response<shared::Body>` goes back as is (a
//! `shared::Body` is an `http_body::Body`: a stream is sent as it comes). Configuration comes
//! from environment variables, so the same component runs under Spin and
//! under `wasmtime serve -Scli --env ...`. Empty on other targets.

#![cfg(target_os = "wasi")]

use std::sync::Once;

use bytes::Bytes;
use http_body_util::Full;
use shared::request::ClientIp;
use shared::routes;
use shared::{ApiError, Body, Config, Ctx, FetchError, Platform};
use spin_sdk::http::body::IncomingBodyExt;
use time::OffsetDateTime;

/// The seam on Spin / WASI.
#[derive(Clone, Copy, Default)]
pub struct SpinPlatform;

impl Platform for SpinPlatform {
    const LIVE_SOCKETS: bool = false;

    async fn fetch(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, FetchError> {
        let response = spin_sdk::http::send(request.map(Full::new))
            .await
            .map_err(|e| FetchError(format!("{e:?}")))?;
        let (parts, body) = response.into_parts();
        let bytes = body
            .bytes()
            .await
            .map_err(|e| FetchError(format!("{e:?}")))?;
        Ok(http::Response::from_parts(parts, bytes))
    }

    async fn fetch_streaming(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Body>, FetchError> {
        use futures::TryStreamExt as _;
        let response = spin_sdk::http::send(request.map(Full::new))
            .await
            .map_err(|e| FetchError(format!("{e:?}")))?;
        let (parts, body) = response.into_parts();
        let chunks = body
            .stream()
            .map_err(|e| shared::body::StreamError(format!("{e:?}")));
        Ok(http::Response::from_parts(parts, Body::stream(chunks)))
    }

    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::from(std::time::SystemTime::now())
    }

    fn fill_random(&self, buf: &mut [u8]) {
        if let Err(e) = getrandom::fill(buf) {
            panic!("WASI random source failed: {e}");
        }
    }

    async fn sleep(&self, duration: std::time::Duration) {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        spin_sdk::wasip3::clocks::monotonic_clock::wait_for(nanos).await;
    }
}

static LOGGING: Once = Once::new();

/// Reads the request (within the body cap) and the configuration. A path
/// that is not `function`'s route answers 404.
pub async fn prepare(
    request: spin_sdk::http::Request,
    function: &str,
) -> Result<(Ctx<SpinPlatform>, http::Request<Bytes>), http::Response<Body>> {
    LOGGING.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .without_time()
            .with_ansi(false)
            .try_init();
    });
    let platform = SpinPlatform;
    let (mut parts, body) = request.into_parts();
    // Each request is a new instance: only the sections this route uses
    // are parsed.
    let config = Config::from_lookup(|name| std::env::var(name).ok());
    let refuse = |headers: &http::HeaderMap, err: &ApiError| {
        shared::request::early_failure(&platform, Some(&config), headers, err)
    };
    if routes::route_for(parts.uri.path()).map(|r| r.function) != Some(function) {
        return Err(refuse(&parts.headers, &ApiError::NotFound));
    }
    let limit = match routes::admit(&config, function) {
        Ok(limit) => limit,
        Err(e) => return Err(refuse(&parts.headers, &ApiError::from(e))),
    };
    let bytes = match shared::request::read_capped(body, limit).await {
        Ok(bytes) => bytes,
        Err(e) => return Err(refuse(&parts.headers, &e)),
    };
    // Spin sets `spin-client-addr` itself; plain `wasmtime serve` passes on
    // whatever the client sent, so the header is believed only when the
    // deployment names it (`CLIENT_ADDRESS_HEADER`, set in spin.toml).
    let client = match config.http() {
        Ok(http) => http.client_address_header.as_ref().and_then(|name| {
            let value = parts.headers.get(name)?.to_str().ok()?;
            shared::request::parse_client_address(value)
        }),
        Err(e) => return Err(refuse(&parts.headers, &ApiError::from(e))),
    };
    if let Some(client) = client {
        parts.extensions.insert(ClientIp(client));
    }
    Ok((
        Ctx::new(platform, config),
        http::Request::from_parts(parts, bytes),
    ))
}

/// The handler's response, as Spin takes it: whole, with its length
/// (WASI's outgoing body does not take it from the body itself), or
/// streamed chunk by chunk (chunked).
pub fn respond(mut response: http::Response<Body>) -> http::Response<Body> {
    let status = response.status();
    let bodiless = status.is_informational()
        || status == http::StatusCode::NO_CONTENT
        || status == http::StatusCode::NOT_MODIFIED;
    if let Body::Full(bytes) = response.body()
        && !bodiless
    {
        let length = http::HeaderValue::from(bytes.len());
        response
            .headers_mut()
            .insert(http::header::CONTENT_LENGTH, length);
    }
    response
}

/// Where the `web` component finds the web application's files: Spin
/// mounts `web/dist` there (`files` in `spin.toml`), `wasmtime serve`
/// with `--dir web/dist::/`.
pub const WEB_ROOT: &str = "/";

/// The `web` component (route `/...`, below every API route): the web
/// application's files, `index.html` for the app's own pages, and the 404
/// envelope for an `/api/` path no route claims.
pub fn web(request: spin_sdk::http::Request) -> http::Response<Body> {
    let (parts, _body) = request.into_parts();
    let path = parts.uri.path();
    if shared::web::is_api(path) {
        let config = Config::from_lookup(|name| std::env::var(name).ok());
        return shared::request::early_failure(
            &SpinPlatform,
            Some(&config),
            &parts.headers,
            &ApiError::NotFound,
        );
    }
    let root = std::path::Path::new(WEB_ROOT);
    respond(shared::web::serve(&parts.method, path, |file| {
        std::fs::read(root.join(file)).ok().map(Bytes::from)
    }))
}

/// Defines the `web` component's Spin entry point (see [`web`]).
#[macro_export]
macro_rules! web_function {
    () => {
        #[::spin_sdk::http_service]
        async fn handle(request: ::spin_sdk::http::Request) -> impl ::spin_sdk::http::IntoResponse {
            $crate::web(request)
        }
    };
}

/// Defines a function crate's Spin entry point:
/// `host_spin::function!("users", shared::routes::users::handle);`
#[macro_export]
macro_rules! function {
    ($name:literal, $handler:path) => {
        #[::spin_sdk::http_service]
        async fn handle(request: ::spin_sdk::http::Request) -> impl ::spin_sdk::http::IntoResponse {
            match $crate::prepare(request, $name).await {
                Ok((ctx, request)) => $crate::respond($handler(&ctx, request).await),
                Err(early) => $crate::respond(early),
            }
        }
    };
}
