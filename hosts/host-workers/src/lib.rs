//! The Workers host (`wasm32-unknown-unknown`, worker 0.8): [`WorkersPlatform`]
//! implements the seam with the Fetch API, `Date.now()` and
//! `crypto.getRandomValues`; [`prepare`] turns a `worker::Request` into
//! `(Ctx, http::Request<Bytes>)`, [`respond`] turns the handler's response
//! into a `worker::Response` (a streamed body with `Response::from_stream`). Configuration comes from the worker's vars and
//! secrets. Empty on other targets.

#![cfg(all(target_arch = "wasm32", target_os = "unknown"))]

pub mod hub;

use std::io::Write;
use std::net::IpAddr;
use std::sync::{Arc, Once};

use bytes::Bytes;
use shared::request::ClientIp;
use shared::routes;
use shared::{ApiError, Body, Config, Ctx, FetchError, Platform};
use time::OffsetDateTime;
use wasm_bindgen::{JsCast, JsValue};

/// The seam on Workers.
#[derive(Clone, Copy, Default)]
pub struct WorkersPlatform;

fn js_error(e: impl std::fmt::Debug) -> FetchError {
    FetchError(format!("{e:?}"))
}

/// Sends `request` with the Fetch API; the response's head, and the
/// response itself to read the body from.
async fn send(
    request: http::Request<Bytes>,
) -> Result<(http::response::Builder, worker::Response), FetchError> {
    let (parts, body) = request.into_parts();
    let headers = worker::Headers::new();
    for (name, value) in &parts.headers {
        headers
            .append(name.as_str(), value.to_str().map_err(js_error)?)
            .map_err(js_error)?;
    }
    let mut init = worker::RequestInit::new();
    init.with_method(worker::Method::from(parts.method.as_str().to_owned()))
        .with_headers(headers)
        .with_redirect(worker::RequestRedirect::Manual);
    if !body.is_empty() {
        init.with_body(Some(JsValue::from(js_sys::Uint8Array::from(body.as_ref()))));
    }
    let request =
        worker::Request::new_with_init(&parts.uri.to_string(), &init).map_err(js_error)?;
    let response = worker::Fetch::Request(request)
        .send()
        .await
        .map_err(js_error)?;
    let mut builder = http::Response::builder().status(response.status_code());
    for (name, value) in response.headers().entries() {
        builder = builder.header(name, value);
    }
    Ok((builder, response))
}

impl Platform for WorkersPlatform {
    const LIVE_SOCKETS: bool = true;

    async fn fetch(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, FetchError> {
        let (builder, mut response) = send(request).await?;
        let bytes = response.bytes().await.map_err(js_error)?;
        builder.body(Bytes::from(bytes)).map_err(js_error)
    }

    async fn fetch_streaming(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Body>, FetchError> {
        use futures::TryStreamExt as _;
        let (builder, mut response) = send(request).await?;
        let chunks = response
            .stream()
            .map_err(js_error)?
            .map_ok(Bytes::from)
            .map_err(|e| shared::body::StreamError(e.to_string()));
        builder.body(Body::stream(chunks)).map_err(js_error)
    }

    fn now(&self) -> OffsetDateTime {
        let millis = worker::Date::now().as_millis();
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    fn fill_random(&self, buf: &mut [u8]) {
        let crypto = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("crypto"))
            .ok()
            .and_then(|c| c.dyn_into::<web_sys::Crypto>().ok());
        // Workers cap one call at 65536 bytes.
        let filled = crypto.is_some_and(|crypto| {
            buf.chunks_mut(65_536)
                .all(|chunk| crypto.get_random_values_with_u8_array(chunk).is_ok())
        });
        if !filled {
            panic!("crypto.getRandomValues is unavailable");
        }
    }

    async fn sleep(&self, duration: std::time::Duration) {
        worker::Delay::from(duration).await;
    }
}

/// Writes formatted log lines to `console.log`.
struct Console(Vec<u8>);

impl Write for Console {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if !self.0.is_empty() {
            web_sys::console::log_1(&JsValue::from_str(
                String::from_utf8_lossy(&self.0).trim_end(),
            ));
            self.0.clear();
        }
        Ok(())
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

static LOGGING: Once = Once::new();

/// A request answered (or handed on) before the handler ran.
pub enum Early {
    /// An answer in the envelope (404, 413, configuration problem, ...).
    Answer(http::Response<Body>),
    /// The answer of the function that owns the path.
    Forwarded(worker::Response),
}

impl Early {
    pub fn into_response(self) -> worker::Result<worker::Response> {
        match self {
            Early::Answer(response) => respond(response),
            Early::Forwarded(response) => Ok(response),
        }
    }
}

/// The service-binding name under which a function is reachable from the
/// functions whose Workers route pattern also covers its paths.
pub fn binding_name(function: &str) -> String {
    format!("FN_{}", function.replace('-', "_").to_ascii_uppercase())
}

/// Reads the request (within the body cap) and the configuration.
///
/// Workers route patterns only end in a wildcard, so the pattern of an exact
/// route (`*/api/v1/api-keys*`, needed to match query strings) also covers
/// its subtree (`/api/v1/api-keys/:id`) and, by Workers' specificity rules,
/// wins. A request for a path that belongs to another function is handed to
/// that function through its service binding; a path no function owns is 404.
pub async fn prepare(
    request: worker::Request,
    env: &worker::Env,
    function: &str,
) -> Result<(Ctx<WorkersPlatform>, http::Request<Bytes>), Early> {
    let platform = WorkersPlatform;
    match routes::route_for(&request.path()) {
        Some(route) if route.function == function => {
            read(request, env, function).await.map_err(Early::Answer)
        }
        Some(route) => match env.service(&binding_name(route.function)) {
            Ok(owner) => match owner.fetch_request(request).await {
                Ok(response) => Err(Early::Forwarded(response)),
                Err(e) => Err(Early::Answer(shared::request::early_failure(
                    &platform,
                    Some(&config(env)),
                    &http::HeaderMap::new(),
                    &ApiError::Unavailable(format!("forwarding to {}: {e}", route.function)),
                ))),
            },
            Err(_) => Err(Early::Answer(shared::request::early_failure(
                &platform,
                Some(&config(env)),
                &headers_of(&request),
                &ApiError::NotFound,
            ))),
        },
        None => Err(Early::Answer(shared::request::early_failure(
            &platform,
            Some(&config(env)),
            &headers_of(&request),
            &ApiError::NotFound,
        ))),
    }
}

/// The request's headers as `http` types.
fn headers_of(request: &worker::Request) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    for (name, value) in request.headers().entries() {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            headers.append(name, value);
        }
    }
    headers
}

fn init_logging() {
    LOGGING.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_writer(|| Console(Vec::new()))
            .without_time()
            .with_ansi(false)
            .try_init();
    });
}

thread_local! {
    /// The configuration of this isolate, read from its first request's
    /// environment. Bindings are fixed for an isolate's life (a deploy
    /// starts new isolates), so each section parses once per isolate.
    static CONFIG: std::cell::OnceCell<Arc<Config>> = const { std::cell::OnceCell::new() };
}

/// The configuration from the worker's secrets and vars (read once per
/// isolate).
pub fn config(env: &worker::Env) -> Arc<Config> {
    CONFIG.with(|cell| {
        cell.get_or_init(|| {
            Arc::new(Config::from_lookup(|name: &str| {
                env.secret(name)
                    .map(|s| s.to_string())
                    .or_else(|_| env.var(name).map(|v| v.to_string()))
                    .ok()
            }))
        })
        .clone()
    })
}

async fn read(
    mut request: worker::Request,
    env: &worker::Env,
    function: &str,
) -> Result<(Ctx<WorkersPlatform>, http::Request<Bytes>), http::Response<Body>> {
    init_logging();
    let platform = WorkersPlatform;
    let headers = headers_of(&request);
    let config = config(env);
    let refuse =
        |err: &ApiError| shared::request::early_failure(&platform, Some(&config), &headers, err);
    // The body is read whole before the size check (Workers caps request
    // bodies itself): answering before the client finished sending makes
    // workerd reset the connection instead of delivering the 413.
    let max = match routes::admit(&config, function) {
        Ok(max) => max,
        Err(e) => return Err(refuse(&ApiError::from(e))),
    };
    let body = match request.method() {
        worker::Method::Get | worker::Method::Head => Vec::new(),
        _ => match request.bytes().await {
            Ok(bytes) => bytes,
            Err(e) => {
                let err = ApiError::invalid("body", format!("Request body could not be read: {e}"));
                return Err(refuse(&err));
            }
        },
    };
    if body.len() > max {
        return Err(refuse(&ApiError::PayloadTooLarge { limit: max }));
    }
    let url = match request.url() {
        Ok(url) => url,
        Err(e) => {
            return Err(refuse(&ApiError::internal(e)));
        }
    };
    let method =
        http::Method::from_bytes(request.method().as_ref().as_bytes()).unwrap_or(http::Method::GET);
    let mut builder = http::Request::builder().method(method).uri(url.as_str());
    if let Some(map) = builder.headers_mut() {
        *map = headers.clone();
    }
    let mut req = match builder.body(Bytes::from(body)) {
        Ok(req) => req,
        Err(e) => {
            return Err(refuse(&ApiError::internal(e)));
        }
    };
    if let Some(ip) = headers
        .get("cf-connecting-ip")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<IpAddr>().ok())
    {
        req.extensions_mut().insert(ClientIp(ip));
    }
    Ok((Ctx::new(platform, config), req))
}

/// The handler's response as a `worker::Response`: a streamed body goes
/// out chunk by chunk (a `ReadableStream`), a failed stream errors it.
pub fn respond(response: http::Response<Body>) -> worker::Result<worker::Response> {
    use futures::TryStreamExt as _;
    let headers = worker::Headers::new();
    for (name, value) in response.headers() {
        if let Ok(value) = value.to_str() {
            headers.append(name.as_str(), value)?;
        }
    }
    let status = response.status().as_u16();
    let response = match response.into_body() {
        Body::Full(bytes) => worker::Response::from_bytes(bytes.to_vec())?,
        Body::Stream(chunks) => worker::Response::from_stream(
            chunks
                .map_ok(Vec::from)
                .map_err(|e| worker::Error::RustError(e.to_string())),
        )?,
    };
    Ok(response.with_status(status).with_headers(headers))
}

/// Defines a function crate's Workers entry point:
/// `host_workers::function!("users", shared::routes::users::handle);`
#[macro_export]
macro_rules! function {
    ($name:literal, $handler:path) => {
        #[::worker::event(fetch)]
        async fn fetch(
            request: ::worker::Request,
            env: ::worker::Env,
            _ctx: ::worker::Context,
        ) -> ::worker::Result<::worker::Response> {
            match $crate::prepare(request, &env, $name).await {
                Ok((ctx, request)) => $crate::respond($handler(&ctx, request).await),
                Err(early) => early.into_response(),
            }
        }
    };
}

/// The `web` Worker's answer. Its static assets (`web/dist`) answer every
/// path but `/api/*` (`run_worker_first`) without running it; an `/api/`
/// path that reaches it is one no route claims: the 404 envelope.
pub fn web(request: &worker::Request, env: &worker::Env) -> worker::Result<worker::Response> {
    init_logging();
    respond(shared::request::early_failure(
        &WorkersPlatform,
        Some(&config(env)),
        &headers_of(request),
        &ApiError::NotFound,
    ))
}

/// Defines the `web` function's Workers entry point (see [`web`]).
#[macro_export]
macro_rules! web_function {
    () => {
        #[::worker::event(fetch)]
        async fn fetch(
            request: ::worker::Request,
            env: ::worker::Env,
            _ctx: ::worker::Context,
        ) -> ::worker::Result<::worker::Response> {
            $crate::web(&request, &env)
        }
    };
}

/// The context of a scheduled job's run (a cron trigger, no request): the
/// isolate's configuration, admitted like a request's (a function holding
/// a secret it does not declare runs nothing).
pub fn job_context(env: &worker::Env, function: &str) -> Option<Ctx<WorkersPlatform>> {
    init_logging();
    let config = config(env);
    if let Err(e) = routes::admit(&config, function) {
        tracing::error!(job = function, error = %e, "the scheduled job cannot run");
        return None;
    }
    Some(Ctx::new(WorkersPlatform, config))
}

/// Logs what a scheduled job's run did.
pub fn log_job<T: std::fmt::Debug>(function: &str, outcome: Result<T, ApiError>) {
    match outcome {
        Ok(outcome) => tracing::info!(job = function, ?outcome, "scheduled job ran"),
        Err(err) => tracing::error!(job = function, error = %err, "scheduled job failed"),
    }
}

/// Defines a scheduled job's Workers entry points: its tick route (as
/// [`function!`]) and the cron trigger's handler, which runs `$run`:
/// `host_workers::job_function!("job-send-mail", shared::routes::job_send_mail::handle, shared::routes::job_send_mail::run);`
#[macro_export]
macro_rules! job_function {
    ($name:literal, $handler:path, $run:path) => {
        $crate::function!($name, $handler);

        #[::worker::event(scheduled)]
        async fn scheduled(
            _event: ::worker::ScheduledEvent,
            env: ::worker::Env,
            _ctx: ::worker::ScheduleContext,
        ) {
            if let Some(ctx) = $crate::job_context(&env, $name) {
                $crate::log_job($name, $run(&ctx).await);
            }
        }
    };
}
