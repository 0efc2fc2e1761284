//! The platform seam.
//!
//! [`Platform`] is all a handler may ask of its host: outbound HTTP, the
//! clock, randomness and a pause. It has exactly three implementations (Spin, Workers,
//! native). Traits here use plain `async fn` without `Send`: the wasm hosts
//! are single-threaded.

use bytes::Bytes;
use time::OffsetDateTime;

/// Failure of an outbound request before any HTTP response arrived.
#[derive(Debug, thiserror::Error)]
#[error("outbound request failed: {0}")]
pub struct FetchError(pub String);

/// What a handler may ask of the platform it runs on.
#[allow(async_fn_in_trait)]
pub trait Platform {
    /// Sends one HTTP request and returns the whole response.
    async fn fetch(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, FetchError>;
    /// The current time (UTC).
    fn now(&self) -> OffsetDateTime;
    /// Fills `buf` from a cryptographically secure source.
    fn fill_random(&self, buf: &mut [u8]);
    /// Waits `duration` without blocking other work (a long poll's pause).
    async fn sleep(&self, duration: std::time::Duration);
}

/// `platform.fetch(request)` within `limit`, else a [`FetchError`]: Workers
/// and Spin give outbound fetches no deadline of their own.
pub async fn fetch_within<P: Platform>(
    platform: &P,
    request: http::Request<bytes::Bytes>,
    limit: std::time::Duration,
) -> Result<http::Response<bytes::Bytes>, FetchError> {
    let sent = std::pin::pin!(platform.fetch(request));
    let deadline = std::pin::pin!(platform.sleep(limit));
    match futures::future::select(sent, deadline).await {
        futures::future::Either::Left((answer, _)) => answer,
        futures::future::Either::Right(((), _)) => Err(FetchError(format!(
            "no answer within {} ms",
            limit.as_millis()
        ))),
    }
}
