//! The WebSocket transport: one connection to the hub (`GET /api/v1/live`,
//! TLS when the cloud's URL is `https`), authenticated with the bridge's key.
//! The uplink hands it one batch at a time and gets the hub's cumulative
//! acknowledgement (or its refusal) back; commands the hub pushes go to
//! the command runner. When the connection drops, the batch in flight is
//! answered "unreachable" (the uplink backs off and sends it again: the
//! cloud stores each record once) and the connection is made again with
//! jittered exponential backoff.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use shared::live::hub::PROTOCOL;
use shared::live::{Batch, BatchAck, CommandOrder};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use shared::envelope::ErrorBody;

use crate::agent::{Backoff, SendError, refusal};
use crate::tls::Trust;

/// A batch for the hub and where its answer goes.
pub(crate) type Pending = (Batch, oneshot::Sender<Result<BatchAck, SendError>>);

/// The longest the hub may take to answer a batch before the connection
/// is taken for dead.
const ANSWER_WITHIN: Duration = Duration::from_secs(45);

/// The hub's address for the cloud at `base` (`https` -> `wss`).
pub(crate) fn hub_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    let base = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_owned()
    };
    format!("{base}/api/v1/live")
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
enum FromHub {
    Ack { ack: BatchAck },
    Commands { commands: Vec<CommandOrder> },
    Error { status: u16, error: ErrorBody },
}

/// Keeps the connection to the hub at `url`, forever.
pub(crate) async fn websocket(
    url: String,
    trust: Trust,
    key: String,
    mut requests: mpsc::Receiver<Pending>,
    commands: mpsc::Sender<Vec<CommandOrder>>,
) {
    let mut backoff = Backoff(0);
    let mut connected_before = false;
    loop {
        let connection = match request(&url, &key) {
            Ok(request) => tokio_tungstenite::connect_async_tls_with_config(
                request,
                None,
                true,
                Some(trust.websocket_connector()),
            )
            .await
            .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        let socket = match connection {
            Ok((socket, _)) => socket,
            Err(e) => {
                if connected_before {
                    tracing::debug!("hub: cannot connect: {e}");
                } else {
                    tracing::warn!("hub: cannot connect to {url}: {e}; readings stay on disk");
                    connected_before = true;
                }
                // The uplink's batch waiting meanwhile learns the hub is away.
                let pause = tokio::time::sleep(backoff.next());
                tokio::pin!(pause);
                loop {
                    tokio::select! {
                        _ = &mut pause => break,
                        request = requests.recv() => match request {
                            Some((_, reply)) => {
                                let _ = reply.send(Err(SendError::Unreachable(e.clone())));
                            }
                            None => return,
                        },
                    }
                }
                continue;
            }
        };
        tracing::info!(%url, "hub connected");
        connected_before = false;
        backoff = Backoff(0);
        let (mut sink, mut stream) = socket.split();
        let mut pending: Option<oneshot::Sender<Result<BatchAck, SendError>>> = None;
        let deadline = tokio::time::sleep(ANSWER_WITHIN);
        tokio::pin!(deadline);
        let why = loop {
            tokio::select! {
                request = requests.recv(), if pending.is_none() => {
                    let Some((batch, reply)) = request else { return };
                    let text = serde_json::json!({ "type": "batch", "batch": batch }).to_string();
                    if let Err(e) = sink.send(Message::text(text)).await {
                        let _ = reply.send(Err(SendError::Unreachable(e.to_string())));
                        break e.to_string();
                    }
                    pending = Some(reply);
                    deadline.as_mut().reset(tokio::time::Instant::now() + ANSWER_WITHIN);
                }
                message = stream.next() => match message {
                    Some(Ok(Message::Text(text))) => match serde_json::from_str::<FromHub>(text.as_str()) {
                        Ok(FromHub::Ack { ack }) => {
                            if let Some(reply) = pending.take() {
                                let _ = reply.send(Ok(ack));
                            }
                        }
                        Ok(FromHub::Error { status, error }) => match pending.take() {
                            Some(reply) => {
                                let _ = reply.send(Err(refusal(status, Some(error))));
                            }
                            None => tracing::warn!("hub: {}", refusal(status, Some(error))),
                        },
                        Ok(FromHub::Commands { commands: taken }) => {
                            if commands.send(taken).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => tracing::warn!("hub: a message this agent does not understand: {e}"),
                    },
                    Some(Ok(Message::Close(frame))) => {
                        break frame.map_or_else(
                            || "closed by the hub".to_owned(),
                            |f| format!("closed by the hub: {} {}", u16::from(f.code), f.reason),
                        );
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break e.to_string(),
                    None => break "the connection ended".to_owned(),
                },
                _ = &mut deadline, if pending.is_some() => {
                    break format!("no answer within {} s", ANSWER_WITHIN.as_secs());
                }
            }
        };
        if let Some(reply) = pending.take() {
            let _ = reply.send(Err(SendError::Unreachable(why.clone())));
        }
        tracing::warn!("hub connection lost: {why}; reconnecting");
        tokio::time::sleep(backoff.next()).await;
    }
}

fn request(
    url: &str,
    key: &str,
) -> Result<tokio_tungstenite::tungstenite::handshake::client::Request, String> {
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    let headers = request.headers_mut();
    headers.insert(
        "x-api-key",
        HeaderValue::from_str(key).map_err(|_| "the bridge key is not a valid header")?,
    );
    headers.insert("sec-websocket-protocol", HeaderValue::from_static(PROTOCOL));
    headers.insert(
        "user-agent",
        HeaderValue::from_static(concat!("antevus-edge-bridge/", env!("CARGO_PKG_VERSION"))),
    );
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hub_is_reached_over_tls_when_the_cloud_is() {
        assert_eq!(
            hub_url("https://api.example.com/"),
            "wss://api.example.com/api/v1/live"
        );
        assert_eq!(
            hub_url("http://127.0.0.1:8787"),
            "ws://127.0.0.1:8787/api/v1/live"
        );
    }
}
