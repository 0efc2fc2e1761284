//! The native host: [`NativePlatform`] implements the seam with reqwest, the
//! system clock and the OS random source; [`serve`] mounts every route of
//! `shared::routes::ROUTES` on one HTTP server. Used by the fast test host,
//! benchmarks and tools; the wasm hosts run the very same handlers.

pub mod hub;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::response::IntoResponse;
use axum::response::Response;
use bytes::Bytes;
use shared::platform::PublicAddressesOnly;
use shared::request::{ClientIp, early_failure};
use shared::{ApiError, Config, Ctx, FetchError, Platform};
use shared::{routes, web};
use time::OffsetDateTime;
use tokio::net::TcpListener;

/// The seam on tokio.
#[derive(Clone)]
pub struct NativePlatform {
    client: reqwest::Client,
    /// For streamed answers: no limit on the whole exchange (a large
    /// file takes as long as it takes), but on connecting and on each read.
    streaming: reqwest::Client,
    /// For requests marked [`PublicAddressesOnly`]: streamed, and
    /// connecting only to public addresses (the second, loopback too).
    public: [reqwest::Client; 2],
}

impl Default for NativePlatform {
    fn default() -> Self {
        NativePlatform {
            client: client_builder().build().unwrap_or_default(),
            streaming: streaming_builder().build().unwrap_or_default(),
            public: [false, true]
                .map(|loopback| public_builder(loopback).build().unwrap_or_default()),
        }
    }
}

/// Resolves names to public addresses only (loopback too when allowed),
/// so the address a request connects to is the one checked.
struct PublicResolver {
    allow_loopback: bool,
}

impl reqwest::dns::Resolve for PublicResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_loopback = self.allow_loopback;
        Box::pin(async move {
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let ips: Vec<std::net::IpAddr> = addresses.iter().map(SocketAddr::ip).collect();
            shared::webhook::target::check_resolved(&ips, allow_loopback)
                .map_err(|why| Box::new(std::io::Error::other(why)) as Box<_>)?;
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

fn public_builder(allow_loopback: bool) -> reqwest::ClientBuilder {
    streaming_builder().dns_resolver(Arc::new(PublicResolver { allow_loopback }))
}

fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
}

fn streaming_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(std::time::Duration::from_secs(10))
        .read_timeout(std::time::Duration::from_secs(30))
}

impl NativePlatform {
    /// A platform that also trusts the CA certificates of `pem` (a
    /// private CA in front of the proxy, or a test's own).
    pub fn trusting(pem: &[u8]) -> anyhow::Result<Self> {
        let (mut builder, mut streaming) = (client_builder(), streaming_builder());
        let mut public = [public_builder(false), public_builder(true)];
        for certificate in reqwest::Certificate::from_pem_bundle(pem)? {
            builder = builder.add_root_certificate(certificate.clone());
            streaming = streaming.add_root_certificate(certificate.clone());
            public = public.map(|b| b.add_root_certificate(certificate.clone()));
        }
        let [only, or_loopback] = public;
        Ok(NativePlatform {
            client: builder.build()?,
            streaming: streaming.build()?,
            public: [only.build()?, or_loopback.build()?],
        })
    }
}

/// Sends `request` with `client`: the answer's head, and the answer to
/// read its body from.
async fn send(
    client: &reqwest::Client,
    request: http::Request<Bytes>,
) -> Result<(http::response::Builder, reqwest::Response), FetchError> {
    let request = reqwest::Request::try_from(request.map(reqwest::Body::from))
        .map_err(|e| FetchError(e.to_string()))?;
    let response = client
        .execute(request)
        .await
        .map_err(|e| FetchError(e.to_string()))?;
    let mut builder = http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    Ok((builder, response))
}

impl NativePlatform {
    /// The client for `request`: a public-addresses-only one when it is
    /// marked so, else `otherwise`.
    fn client_for<'a>(
        &'a self,
        request: &http::Request<Bytes>,
        otherwise: &'a reqwest::Client,
    ) -> &'a reqwest::Client {
        match request.extensions().get::<PublicAddressesOnly>() {
            Some(mark) => &self.public[usize::from(mark.allow_loopback)],
            None => otherwise,
        }
    }
}

impl Platform for NativePlatform {
    const LIVE_SOCKETS: bool = true;

    async fn fetch(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, FetchError> {
        let client = self.client_for(&request, &self.client);
        let (builder, response) = send(client, request).await?;
        let body = response
            .bytes()
            .await
            .map_err(|e| FetchError(e.to_string()))?;
        builder.body(body).map_err(|e| FetchError(e.to_string()))
    }

    async fn fetch_streaming(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<shared::Body>, FetchError> {
        use futures::TryStreamExt as _;
        let client = self.client_for(&request, &self.streaming);
        let (builder, response) = send(client, request).await?;
        let chunks = response
            .bytes_stream()
            .map_err(|e| shared::body::StreamError(e.to_string()));
        builder
            .body(shared::Body::stream(chunks))
            .map_err(|e| FetchError(e.to_string()))
    }

    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn fill_random(&self, buf: &mut [u8]) {
        // The OS source failing is unrecoverable: no secure randomness, no service.
        if let Err(e) = getrandom::fill(buf) {
            panic!("operating system random source failed: {e}");
        }
    }

    async fn sleep(&self, duration: std::time::Duration) {
        tokio::time::sleep(duration).await;
    }

    async fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> Option<Result<Vec<std::net::IpAddr>, shared::platform::FetchError>> {
        Some(
            tokio::net::lookup_host((host, port))
                .await
                .map(|addresses| addresses.map(|a| a.ip()).collect())
                .map_err(|e| shared::platform::FetchError(e.to_string())),
        )
    }
}

struct HostState {
    /// Each function's own configuration: the process holds every secret,
    /// a function sees only those its route declares.
    configs: std::collections::HashMap<&'static str, Arc<Config>>,
    platform: NativePlatform,
    hub: Arc<hub::Registry>,
    /// The built web application (`WEB_ROOT`, e.g. `web/dist`), served
    /// for every path outside `/api`.
    web_root: Option<std::path::PathBuf>,
}

/// Serves every route until `shutdown` resolves. `config` comes from
/// [`Config::from_lookup`]; a request that needs a broken section of it is
/// answered with a generic 500.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_with(listener, config, NativePlatform::default(), shutdown).await
}

/// [`serve`] on a given platform (one that trusts a private CA).
pub async fn serve_with(
    listener: TcpListener,
    config: Config,
    platform: NativePlatform,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let configs = routes::ROUTES
        .iter()
        .map(|route| {
            let own = routes::function_config(&config, route.function);
            (route.function, Arc::new(own))
        })
        .collect();
    let state = Arc::new(HostState {
        configs,
        platform,
        hub: Arc::default(),
        web_root: config.web_root().map(std::path::PathBuf::from),
    });
    let app = Router::new().fallback(handle).with_state(state);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    Ok(())
}

async fn handle(
    State(state): State<Arc<HostState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: http::Request<Body>,
) -> Response {
    let live = routes::route_for(request.uri().path())
        .is_some_and(|r| r.function == shared::live::hub::FUNCTION);
    if live && request.headers().contains_key(http::header::UPGRADE) {
        return upgrade(state, peer, request).await;
    }
    let response = route(&state, peer, request).await;
    // A `shared::Body` is an `http_body::Body`: a stream goes out chunked.
    response.map(Body::new)
}

/// A WebSocket for the live hub: admitted by `shared::live::hub`, then
/// served by [`hub::serve`].
async fn upgrade(
    state: Arc<HostState>,
    peer: SocketAddr,
    request: http::Request<Body>,
) -> Response {
    let platform = &state.platform;
    let (mut parts, _body) = request.into_parts();
    let Some(config) = state.configs.get(shared::live::hub::FUNCTION).cloned() else {
        return early_failure(platform, None, &parts.headers, &ApiError::NotFound).map(Body::new);
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            let err = ApiError::invalid("upgrade", rejection.body_text());
            return early_failure(platform, Some(&config), &parts.headers, &err).map(Body::new);
        }
    };
    match client_address(&config, &parts.headers, peer) {
        Ok(Some(client)) => {
            parts.extensions.insert(ClientIp(client));
        }
        Ok(None) => {}
        Err(err) => {
            return early_failure(platform, Some(&config), &parts.headers, &err).map(Body::new);
        }
    }
    let ctx = Ctx::new(platform.clone(), config);
    let admitted = match shared::live::hub::admit(
        &ctx,
        http::Request::from_parts(parts, Bytes::new()),
    )
    .await
    {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal.map(Body::new),
    };
    let upgrade = match admitted.protocol {
        Some(protocol) => upgrade.protocols([protocol]),
        None => upgrade,
    };
    let registry = state.hub.clone();
    upgrade
        .on_upgrade(move |socket| hub::serve(registry, ctx, socket, admitted.peer))
        .into_response()
}

async fn route(
    state: &HostState,
    peer: SocketAddr,
    request: http::Request<Body>,
) -> http::Response<shared::Body> {
    let platform = &state.platform;
    let (mut parts, body) = request.into_parts();
    let Some(route) = routes::route_for(parts.uri.path()) else {
        if let Some(root) = state
            .web_root
            .clone()
            .filter(|_| !web::is_api(parts.uri.path()))
        {
            let (method, path) = (parts.method.clone(), parts.uri.path().to_owned());
            let read = move |file: &str| std::fs::read(root.join(file)).ok().map(Bytes::from);
            return tokio::task::spawn_blocking(move || web::serve(&method, &path, read))
                .await
                .unwrap_or_else(|_| {
                    early_failure(platform, None, &parts.headers, &ApiError::NotFound)
                });
        }
        return early_failure(platform, None, &parts.headers, &ApiError::NotFound);
    };
    let Some(config) = state.configs.get(route.function).cloned() else {
        return early_failure(platform, None, &parts.headers, &ApiError::NotFound);
    };
    let refuse = |headers: &http::HeaderMap, err: &ApiError| {
        early_failure(platform, Some(&config), headers, err)
    };
    let max = match routes::admit(&config, route.function) {
        Ok(max) => max,
        Err(e) => return refuse(&parts.headers, &ApiError::from(e)),
    };
    let bytes = match shared::request::read_capped(body, max).await {
        Ok(bytes) => bytes,
        Err(e) => return refuse(&parts.headers, &e),
    };
    let client = match client_address(&config, &parts.headers, peer) {
        Ok(client) => client,
        Err(e) => return refuse(&parts.headers, &e),
    };
    if let Some(client) = client {
        parts.extensions.insert(ClientIp(client));
    }
    let request = http::Request::from_parts(parts, bytes);
    let ctx = Ctx::new(platform.clone(), config.clone());
    let headers = request.headers().clone();
    match routes::dispatch(route.function, &ctx, request).await {
        Some(response) => response,
        None => refuse(&headers, &ApiError::NotFound),
    }
}

/// The client's address: the peer's, unless the deployment names a header
/// its own proxy sets (`CLIENT_ADDRESS_HEADER`); then that header's, and
/// unknown when the header is missing or malformed (a request that did not
/// come through the proxy is not believed about its address).
fn client_address(
    config: &Config,
    headers: &http::HeaderMap,
    peer: SocketAddr,
) -> Result<Option<std::net::IpAddr>, ApiError> {
    Ok(match &config.http()?.client_address_header {
        None => Some(peer.ip()),
        Some(name) => headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(shared::request::parse_client_address),
    })
}

/// Reads the configuration from the process environment.
pub fn config_from_env() -> Config {
    Config::from_lookup(|name| std::env::var(name).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::dns::Resolve as _;

    fn name(host: &str) -> reqwest::dns::Name {
        host.parse().expect("a host name")
    }

    #[tokio::test]
    async fn a_marked_request_connects_only_where_its_name_was_checked() {
        // `localhost` resolves (from /etc/hosts) to loopback: refused at
        // connection time unless loopback is allowed.
        let refused = PublicResolver {
            allow_loopback: false,
        }
        .resolve(name("localhost"))
        .await;
        let why = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(why.contains("public address"), "{why}");
        let allowed = PublicResolver {
            allow_loopback: true,
        }
        .resolve(name("localhost"))
        .await;
        let addresses: Vec<SocketAddr> = allowed.expect("loopback allowed").collect();
        assert!(addresses.iter().all(|a| a.ip().is_loopback()) && !addresses.is_empty());
    }

    #[tokio::test]
    async fn a_marked_request_to_a_loopback_name_is_not_sent() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let port = listener.local_addr().expect("an address").port();
        tokio::spawn(async move {
            let _ = axum::serve(listener, Router::new().fallback(|| async { "ok" })).await;
        });
        let platform = NativePlatform::default();
        let marked = |allow_loopback: bool| {
            let mut request = http::Request::new(Bytes::new());
            *request.uri_mut() = format!("http://localhost:{port}/").parse().expect("a uri");
            request
                .extensions_mut()
                .insert(PublicAddressesOnly { allow_loopback });
            request
        };
        let allowed = platform
            .fetch(marked(true))
            .await
            .expect("loopback allowed");
        assert_eq!(allowed.status(), 200);
        assert!(
            platform.fetch(marked(false)).await.is_err(),
            "sent to a name that resolves to loopback"
        );
    }
}
