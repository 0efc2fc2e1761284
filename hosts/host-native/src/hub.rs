//! The live hub on the native host: the same `shared::live::hub` the
//! Durable Object runs, with the sockets of every organization in one
//! in-process [`Registry`] (the suites and local tools; one process, so no
//! state is shared between hosts). Each socket's outgoing messages wait in
//! a queue of at most [`OUTGOING`]; a socket that falls that far behind
//! (a client that stopped reading) is closed rather than buffered for.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::{SinkExt, StreamExt};
use shared::Ctx;
use shared::live::hub::{self, Broadcast, Memory, Peer, Reaction};
use tokio::sync::mpsc;

use crate::NativePlatform;

/// The most messages waiting to be written to one socket.
pub const OUTGOING: usize = 256;

struct Socket {
    peer: Arc<Mutex<Peer>>,
    out: Outgoing,
}

/// A socket's queue of outgoing messages, and whether it overflowed.
#[derive(Clone)]
struct Outgoing {
    queue: mpsc::Sender<Message>,
    overflowed: Arc<AtomicBool>,
}

impl Outgoing {
    /// Queues `message`; a full queue marks the socket for closing.
    fn send(&self, message: Message) {
        if self.queue.try_send(message).is_err() {
            self.overflowed.store(true, Ordering::Relaxed);
        }
    }

    fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Relaxed)
    }
}

/// Every open socket, and what the hub last told dashboards per organization.
#[derive(Default)]
pub struct Registry {
    next: AtomicU64,
    sockets: Mutex<HashMap<u64, Socket>>,
    memory: Mutex<HashMap<uuid::Uuid, Memory>>,
}

impl Registry {
    fn deliver(&self, peer: &Peer, out: &Outgoing, reaction: &Reaction) {
        for reply in &reaction.replies {
            out.send(Message::text(reply.clone()));
        }
        let mut broadcasts: Vec<Broadcast> = reaction.broadcasts.clone();
        if let Ok(mut memory) = self.memory.lock() {
            broadcasts.extend(
                memory
                    .entry(peer.organization_id)
                    .or_default()
                    .changes(peer.organization_id, reaction),
            );
        }
        if broadcasts.is_empty() {
            return;
        }
        let Ok(sockets) = self.sockets.lock() else {
            return;
        };
        for socket in sockets.values() {
            let Ok(follower) = socket.peer.lock() else {
                continue;
            };
            for broadcast in broadcasts.iter().filter(|b| follower.wants(b)) {
                socket.out.send(Message::text(broadcast.text.clone()));
            }
        }
    }
}

/// Serves one admitted socket until either side closes it.
pub async fn serve(
    registry: Arc<Registry>,
    ctx: Ctx<NativePlatform>,
    socket: WebSocket,
    peer: Peer,
) {
    let id = registry.next.fetch_add(1, Ordering::Relaxed);
    let (mut sink, mut stream) = socket.split();
    let (queue, mut outgoing) = mpsc::channel::<Message>(OUTGOING);
    let out = Outgoing {
        queue,
        overflowed: Arc::new(AtomicBool::new(false)),
    };
    let shared_peer = Arc::new(Mutex::new(peer));
    if let Ok(mut sockets) = registry.sockets.lock() {
        sockets.insert(
            id,
            Socket {
                peer: shared_peer.clone(),
                out: out.clone(),
            },
        );
    }
    let writer = tokio::spawn(async move {
        while let Some(message) = outgoing.recv().await {
            let closing = matches!(message, Message::Close(_));
            if sink.send(message).await.is_err() || closing {
                break;
            }
        }
    });
    let mut ticks = tokio::time::interval(hub::TICK);
    loop {
        let Ok(mut peer) = shared_peer.lock().map(|p| p.clone()) else {
            break;
        };
        let reaction = tokio::select! {
            message = stream.next() => match message {
                Some(Ok(Message::Text(text))) => hub::on_text(&ctx, &mut peer, text.as_str()).await,
                Some(Ok(Message::Binary(_))) => Reaction {
                    replies: vec![hub::error_text(&shared::ApiError::invalid("message", "Messages are JSON text"))],
                    ..Reaction::default()
                },
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => break,
            },
            _ = ticks.tick() => hub::tick(&ctx, &mut peer).await,
        };
        if let Ok(mut current) = shared_peer.lock() {
            *current = peer.clone();
        }
        registry.deliver(&peer, &out, &reaction);
        // A client that stopped reading is closed, not buffered for (its
        // close frame may not fit in the queue either: the connection is
        // dropped once the writer has sent what is queued).
        let close = if out.overflowed() {
            Some((hub::CLOSE_POLICY, "too far behind"))
        } else {
            reaction.close
        };
        if let Some((code, reason)) = close {
            out.send(Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })));
            break;
        }
    }
    if let Ok(mut sockets) = registry.sockets.lock() {
        sockets.remove(&id);
    }
    // A client that stopped reading may never take what is queued: its
    // writer is stopped, not waited for.
    let overflowed = out.overflowed();
    drop(out);
    if overflowed {
        writer.abort();
    } else {
        let _ = writer.await;
    }
}
