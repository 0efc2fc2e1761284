//! Talking to the cloud over HTTP: the client (requests in the envelope,
//! errors read as what they mean for the uplink), the link a batch takes
//! (HTTP or the hub's socket), the drivers' view of the cloud ([`Cloud`])
//! and the reconnect backoff.

use std::time::Duration;

use rand::Rng as _;
use serde::Deserialize;
use serde_json::Value;
use shared::ErrorCode;
use shared::envelope::{Envelope, ErrorBody};
use shared::live::{Batch, BatchAck, CommandOrder};
use tokio::sync::{mpsc, oneshot};

use crate::enroll::{self, Credentials};
use crate::tls::{Trust, TrustError};
use crate::websocket::Pending;

/// The HTTP side of the cloud.
#[derive(Clone)]
pub(super) struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    #[error("the cloud cannot be reached: {0}")]
    Unreachable(String),
    #[error("the cloud answered {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("the stream continues at {expected} in the cloud")]
    Gap { expected: u64 },
}

/// How batches reach the cloud.
pub(super) enum Link {
    /// `POST /api/v1/bridges/ingest`, one request per batch.
    Http(Client),
    /// The hub's socket, kept by [`websocket`]: a batch and where to answer.
    Websocket(mpsc::Sender<Pending>),
}

impl Link {
    pub(super) async fn send(&self, batch: &Batch) -> Result<BatchAck, SendError> {
        match self {
            Link::Http(client) => client.send(batch).await,
            Link::Websocket(requests) => {
                let (reply, answer) = oneshot::channel();
                requests
                    .send((batch.clone(), reply))
                    .await
                    .map_err(|_| SendError::Unreachable("the hub connection stopped".into()))?;
                answer.await.unwrap_or_else(|_| {
                    Err(SendError::Unreachable("the hub connection stopped".into()))
                })
            }
        }
    }
}

/// What an error answer (HTTP or hub message) means for the uplink.
pub(crate) fn refusal(status: u16, error: Option<ErrorBody>) -> SendError {
    match error {
        Some(error) if status == 409 && error.code == ErrorCode::Conflict => {
            // The cloud names the sequence it expects as the detail for
            // the batch's first record (`shared::live::persist::ingest`).
            let expected = error
                .details
                .iter()
                .find(|d| d.field == "records[0].seq")
                .and_then(|d| d.message.parse().ok())
                .unwrap_or(0);
            SendError::Gap { expected }
        }
        Some(error) if status >= 500 || status == 429 => {
            SendError::Unreachable(format!("{status} {}", error.code.as_str()))
        }
        error => SendError::Refused {
            status,
            message: error.map_or_else(
                || "no data".to_owned(),
                |e| format!("{}: {} {:?}", e.code.as_str(), e.message, e.details),
            ),
        },
    }
}

impl Client {
    pub(super) fn new(
        base: &str,
        credentials: &Credentials,
        trust: &Trust,
    ) -> Result<Client, TrustError> {
        Ok(Client {
            http: trust.http_client(Duration::from_secs(40))?,
            base: base.trim_end_matches('/').to_owned(),
            key: credentials.api_key.clone(),
        })
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, SendError> {
        let response = request
            .header("x-api-key", &self.key)
            .send()
            .await
            .map_err(|e| SendError::Unreachable(enroll::chain(e)))?;
        let status = response.status().as_u16();
        let envelope: Envelope<T> = response.json().await.map_err(|e| {
            if status >= 500 {
                SendError::Unreachable(format!("{status}"))
            } else {
                SendError::Refused {
                    status,
                    message: e.to_string(),
                }
            }
        })?;
        match (envelope.data, envelope.error) {
            (Some(data), None) if status < 300 => Ok(data),
            (_, error) => Err(refusal(status, error)),
        }
    }

    async fn send(&self, batch: &Batch) -> Result<BatchAck, SendError> {
        self.call(
            self.http
                .post(format!("{}/api/v1/bridges/ingest", self.base))
                .json(batch),
        )
        .await
    }

    pub(super) async fn commands(&self, wait: u64) -> Result<Vec<CommandOrder>, SendError> {
        #[derive(Deserialize)]
        struct Items {
            items: Vec<CommandOrder>,
        }
        let items: Items = self
            .call(
                self.http
                    .get(format!("{}/api/v1/bridges/commands?wait={wait}", self.base)),
            )
            .await?;
        Ok(items.items)
    }
}

/// The cloud's API as the bridge's drivers use it (with the bridge's key).
#[derive(Clone)]
pub struct Cloud(pub(super) Client);

/// The answer to an upload chunk.
pub struct Answer {
    pub status: u16,
    pub upload_offset: Option<u64>,
    pub message: String,
}

impl Cloud {
    /// `GET path`: the envelope's `data`, or why not.
    pub async fn get(&self, path: &str) -> Result<Value, String> {
        let client = &self.0;
        client
            .call::<Value>(client.http.get(format!("{}{path}", client.base)))
            .await
            .map_err(|e| e.to_string())
    }

    /// `POST path?query` with raw bytes as one chunk of an upload.
    pub async fn post_bytes(
        &self,
        path: &str,
        query: &[(&str, &str)],
        body: Vec<u8>,
        content_range: &str,
        repr_digest: Option<&str>,
    ) -> Result<Answer, String> {
        let client = &self.0;
        let mut request = client
            .http
            .post(format!("{}{path}", client.base))
            .query(query)
            .header("x-api-key", &client.key)
            .header("content-type", "application/octet-stream")
            .header("content-range", content_range)
            .body(body);
        if let Some(digest) = repr_digest {
            request = request.header("repr-digest", digest);
        }
        let response = request.send().await.map_err(enroll::chain)?;
        let status = response.status().as_u16();
        let upload_offset = response
            .headers()
            .get("upload-offset")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let message = response
            .json::<Envelope>()
            .await
            .ok()
            .and_then(|envelope| envelope.error)
            .map(|error| error.message)
            .unwrap_or_default();
        Ok(Answer {
            status,
            upload_offset,
            message,
        })
    }
}

/// Jittered exponential backoff: 250 ms doubling to 30 s, a random part of it.
pub(crate) struct Backoff(pub(crate) u32);

impl Backoff {
    pub(crate) fn next(&mut self) -> Duration {
        let ceiling = 250u64.saturating_mul(1 << self.0.min(7)).min(30_000);
        self.0 += 1;
        Duration::from_millis(rand::rng().random_range(ceiling / 2..=ceiling))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(code: &str, details: Value) -> Option<ErrorBody> {
        serde_json::from_value(serde_json::json!({
            "code": code, "message": "m", "details": details
        }))
        .ok()
    }

    #[test]
    fn an_error_answer_tells_the_uplink_what_to_do() {
        let gap = refusal(
            409,
            error(
                "CONFLICT",
                serde_json::json!([{"field": "other", "message": "x"},
                                   {"field": "records[0].seq", "message": "7"}]),
            ),
        );
        assert!(matches!(gap, SendError::Gap { expected: 7 }), "{gap:?}");
        for status in [429, 500, 503] {
            let later = refusal(status, error("RATE_LIMIT_EXCEEDED", serde_json::json!([])));
            assert!(matches!(later, SendError::Unreachable(_)), "{later:?}");
        }
        let refused = refusal(400, error("VALIDATION_ERROR", serde_json::json!([])));
        assert!(
            matches!(refused, SendError::Refused { status: 400, ref message } if message.starts_with("VALIDATION_ERROR")),
            "{refused:?}"
        );
        assert!(matches!(
            refusal(502, None),
            SendError::Refused { status: 502, .. }
        ));
    }
}
