//! The platform seam.
//!
//! [`Platform`] is all a handler may ask of its host: outbound HTTP, the
//! clock, randomness and a pause. It has exactly three implementations (Spin, Workers,
//! native). Its futures are `Send` only natively ([`MaybeSend`]): the wasm
//! hosts are single-threaded, and the native one can then run a streamed
//! body (which owns a clone of the platform) on any thread.

use std::future::Future;

use bytes::Bytes;
use time::OffsetDateTime;

use crate::body::{Body, MaybeSend, MaybeSync};

/// Failure of an outbound request before any HTTP response arrived.
#[derive(Debug, thiserror::Error)]
#[error("outbound request failed: {0}")]
pub struct FetchError(pub String);

/// What a handler may ask of the platform it runs on. A platform is a
/// cheap handle (cloned into a streamed body that outlives its handler).
pub trait Platform: Clone + MaybeSend + MaybeSync + 'static {
    /// Whether this host keeps WebSockets open, so `GET /api/v1/live`
    /// upgrades: Workers (a Durable Object per organization) and the native
    /// host do, Spin does not (its dashboards poll).
    const LIVE_SOCKETS: bool;
    /// Sends one HTTP request and returns the whole response.
    fn fetch(
        &self,
        request: http::Request<Bytes>,
    ) -> impl Future<Output = Result<http::Response<Bytes>, FetchError>> + MaybeSend;
    /// Sends one HTTP request and returns the response as it arrives: its
    /// head, then its body as a [`Body::Stream`] (a stored file passed on,
    /// a model's answer as it is written). A body that fails midway ends
    /// its stream with an error.
    fn fetch_streaming(
        &self,
        request: http::Request<Bytes>,
    ) -> impl Future<Output = Result<http::Response<Body>, FetchError>> + MaybeSend;
    /// The current time (UTC).
    fn now(&self) -> OffsetDateTime;
    /// Fills `buf` from a cryptographically secure source.
    fn fill_random(&self, buf: &mut [u8]);
    /// Waits `duration` without blocking other work (a long poll's pause).
    fn sleep(&self, duration: std::time::Duration) -> impl Future<Output = ()> + MaybeSend;
    /// The addresses `host` resolves to, where the platform lets a function
    /// resolve names (the native host): an error when the name does not
    /// resolve; `None` where names cannot be resolved (Workers, Spin).
    fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> impl Future<Output = Option<Result<Vec<std::net::IpAddr>, FetchError>>> + MaybeSend {
        let _ = (host, port);
        async { None }
    }
}

/// A mark on an outbound request (in its extensions) that it may reach
/// only public addresses (a webhook endpoint): a platform that resolves
/// names connects only to addresses it checked at that moment, so a name
/// that resolves to a public address when checked and to a private one
/// when connecting (DNS rebinding) is refused. Workers and Spin resolve
/// out of a function's reach and ignore it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicAddressesOnly {
    /// Loopback is allowed too (`WEBHOOK_ALLOW_LOOPBACK`, development).
    pub allow_loopback: bool,
}

/// `platform.fetch(request)` within `limit`, else a [`FetchError`]: Workers
/// and Spin give outbound fetches no deadline of their own.
pub async fn fetch_within<P: Platform>(
    platform: &P,
    request: http::Request<bytes::Bytes>,
    limit: std::time::Duration,
) -> Result<http::Response<bytes::Bytes>, FetchError> {
    within(platform, platform.fetch(request), limit).await
}

/// `sent` (an outbound exchange) within `limit`, else a [`FetchError`].
pub async fn within<P: Platform, T>(
    platform: &P,
    sent: impl Future<Output = Result<T, FetchError>>,
    limit: std::time::Duration,
) -> Result<T, FetchError> {
    let sent = std::pin::pin!(sent);
    let deadline = std::pin::pin!(platform.sleep(limit));
    match futures::future::select(sent, deadline).await {
        futures::future::Either::Left((answer, _)) => answer,
        futures::future::Either::Right(((), _)) => Err(FetchError(format!(
            "no answer within {} ms",
            limit.as_millis()
        ))),
    }
}
