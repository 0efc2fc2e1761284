//! Response bodies: whole ([`Body::Full`]) or a stream of chunks the host
//! sends as they are made ([`Body::Stream`]), so an answer larger than a
//! function's memory (a whole audit trail) never sits in it at once.
//!
//! [`Body`] is an [`http_body::Body`], which is what Spin and the native
//! host (axum) take as is; the Workers host turns a stream into
//! `Response::from_stream`. On the wasm hosts a stream need not be `Send`
//! (they are single-threaded); natively it must be, which [`MaybeSend`]
//! says once for both.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use http_body::{Frame, SizeHint};

/// `Send` where the host is multi-threaded (native), nothing on wasm.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSend: Send {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + ?Sized> MaybeSend for T {}
/// `Send` where the host is multi-threaded (native), nothing on wasm.
#[cfg(target_arch = "wasm32")]
pub trait MaybeSend {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSend for T {}

/// `Sync` where the host is multi-threaded (native), nothing on wasm.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSync: Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Sync + ?Sized> MaybeSync for T {}
/// `Sync` where the host is multi-threaded (native), nothing on wasm.
#[cfg(target_arch = "wasm32")]
pub trait MaybeSync {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSync for T {}

/// A stream failed after its answer began: the host cuts the body short
/// (the client sees a truncated transfer, never a wrong ending).
#[derive(Debug, thiserror::Error)]
#[error("the response stream failed: {0}")]
pub struct StreamError(pub String);

/// The chunks of a streamed body.
#[cfg(not(target_arch = "wasm32"))]
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, StreamError>> + Send>>;
/// The chunks of a streamed body.
#[cfg(target_arch = "wasm32")]
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, StreamError>>>>;

/// A response body.
pub enum Body {
    /// The whole body, known before the answer starts (its length is sent).
    Full(Bytes),
    /// Chunks sent as they come (chunked transfer, no length).
    Stream(BodyStream),
}

impl Body {
    /// A body streamed from `chunks`.
    pub fn stream(
        chunks: impl Stream<Item = Result<Bytes, StreamError>> + MaybeSend + 'static,
    ) -> Body {
        Body::Stream(Box::pin(chunks))
    }

    /// The whole body, when it is not a stream.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            Body::Full(bytes) => Some(bytes),
            Body::Stream(_) => None,
        }
    }

    /// Every chunk, joined (a test, or a host that cannot stream).
    pub async fn collect(self) -> Result<Bytes, StreamError> {
        use futures::TryStreamExt as _;
        match self {
            Body::Full(bytes) => Ok(bytes),
            Body::Stream(chunks) => {
                let parts: Vec<Bytes> = chunks.try_collect().await?;
                Ok(parts.concat().into())
            }
        }
    }
}

impl Default for Body {
    fn default() -> Self {
        Body::Full(Bytes::new())
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Body::Full(bytes)
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Body::Full(bytes.into())
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Full(bytes) => f.debug_tuple("Full").field(&bytes.len()).finish(),
            Body::Stream(_) => f.write_str("Stream"),
        }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = StreamError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StreamError>>> {
        match self.get_mut() {
            Body::Full(bytes) if bytes.is_empty() => Poll::Ready(None),
            Body::Full(bytes) => Poll::Ready(Some(Ok(Frame::data(std::mem::take(bytes))))),
            Body::Stream(chunks) => chunks
                .as_mut()
                .poll_next(cx)
                .map(|chunk| chunk.map(|chunk| chunk.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full(bytes) if bytes.is_empty())
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(bytes) => SizeHint::with_exact(bytes.len() as u64),
            Body::Stream(_) => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn a_full_body_is_one_frame_of_known_length() {
        let body = Body::from(Bytes::from_static(b"whole"));
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(5));
        let collected = futures::executor::block_on(Body::collect(body)).map(|b| b.to_vec());
        assert_eq!(collected.ok(), Some(b"whole".to_vec()));
    }

    #[test]
    fn a_stream_has_no_length_and_yields_its_chunks_in_order() {
        let chunks = futures::stream::iter(["a", "b", "c"].map(|c| Ok(Bytes::from(c))));
        let body = Body::stream(chunks);
        assert_eq!(http_body::Body::size_hint(&body).exact(), None);
        let frames = futures::executor::block_on(BodyExt::collect(body)).map(|c| c.to_bytes());
        assert_eq!(frames.ok(), Some(Bytes::from_static(b"abc")));
    }

    #[test]
    fn a_failing_stream_fails_the_body() {
        let chunks = futures::stream::iter([
            Ok(Bytes::from_static(b"a")),
            Err(StreamError("gone".into())),
        ]);
        let failed = futures::executor::block_on(Body::collect(Body::stream(chunks)));
        assert!(failed.is_err());
    }
}
