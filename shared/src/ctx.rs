//! [`Ctx`]: what every handler receives, the platform and the configuration.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::config::Config;
use crate::platform::{FetchError, Platform};

/// The platform a request runs on and the deployment's configuration
/// (shared: on Workers one per isolate, on the native host one per process).
/// Cloning is cheap: a streamed body takes its own.
#[derive(Clone)]
pub struct Ctx<P> {
    pub platform: P,
    pub config: Arc<Config>,
}

impl<P: Platform> Ctx<P> {
    pub fn new(platform: P, config: impl Into<Arc<Config>>) -> Self {
        Ctx {
            platform,
            config: config.into(),
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        self.platform.now()
    }

    pub fn random_bytes<const N: usize>(&self) -> [u8; N] {
        let mut buf = [0u8; N];
        self.platform.fill_random(&mut buf);
        buf
    }

    /// A random (version 4) UUID from the platform's randomness.
    pub fn new_uuid(&self) -> uuid::Uuid {
        uuid::Builder::from_random_bytes(self.random_bytes::<16>()).into_uuid()
    }

    /// [`Platform::fetch`] within `limit`: every outbound call but the
    /// database's (whose proxy has its own statement timeout) goes through
    /// this, on every host (Workers and Spin give outbound fetches no
    /// deadline of their own).
    pub async fn fetch_within(
        &self,
        request: http::Request<bytes::Bytes>,
        limit: std::time::Duration,
    ) -> Result<http::Response<bytes::Bytes>, FetchError> {
        crate::platform::fetch_within(&self.platform, request, limit).await
    }

    /// [`Platform::fetch_streaming`] whose head arrives within `limit` (the
    /// body then takes as long as it takes, read as it is sent on).
    pub async fn fetch_streaming_within(
        &self,
        request: http::Request<bytes::Bytes>,
        limit: std::time::Duration,
    ) -> Result<http::Response<crate::body::Body>, FetchError> {
        crate::platform::within(
            &self.platform,
            self.platform.fetch_streaming(request),
            limit,
        )
        .await
    }
}
