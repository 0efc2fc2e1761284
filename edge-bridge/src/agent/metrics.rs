//! `/healthz` and `/metrics` (Prometheus text): the queue's depth, size and
//! oldest unsent record, and the agent's counters.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::Agent;

/// Counters for `/metrics`.
#[derive(Default)]
pub struct Metrics {
    pub records_stored: AtomicU64,
    pub records_refused: AtomicU64,
    pub batches_sent: AtomicU64,
    pub records_sent: AtomicU64,
    pub records_rejected: AtomicU64,
    pub reconnects: AtomicU64,
    pub commands_received: AtomicU64,
    pub queue_full: AtomicBool,
    pub uplink_up: AtomicBool,
}

impl Agent {
    fn render_metrics(&self) -> String {
        let (depth, bytes, age) = self.queue_state();
        let m = &self.metrics;
        let counter = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let flag = |a: &AtomicBool| u8::from(a.load(Ordering::Relaxed));
        format!(
            "# TYPE edge_bridge_queue_depth gauge\nedge_bridge_queue_depth {depth}\n\
             # TYPE edge_bridge_queue_bytes gauge\nedge_bridge_queue_bytes {bytes}\n\
             # TYPE edge_bridge_oldest_unsent_seconds gauge\nedge_bridge_oldest_unsent_seconds {age:.3}\n\
             # TYPE edge_bridge_queue_full gauge\nedge_bridge_queue_full {}\n\
             # TYPE edge_bridge_uplink_up gauge\nedge_bridge_uplink_up {}\n\
             # TYPE edge_bridge_records_stored_total counter\nedge_bridge_records_stored_total {}\n\
             # TYPE edge_bridge_records_refused_total counter\nedge_bridge_records_refused_total {}\n\
             # TYPE edge_bridge_batches_sent_total counter\nedge_bridge_batches_sent_total {}\n\
             # TYPE edge_bridge_records_sent_total counter\nedge_bridge_records_sent_total {}\n\
             # TYPE edge_bridge_records_rejected_total counter\nedge_bridge_records_rejected_total {}\n\
             # TYPE edge_bridge_reconnects_total counter\nedge_bridge_reconnects_total {}\n\
             # TYPE edge_bridge_commands_received_total counter\nedge_bridge_commands_received_total {}\n",
            flag(&m.queue_full),
            flag(&m.uplink_up),
            counter(&m.records_stored),
            counter(&m.records_refused),
            counter(&m.batches_sent),
            counter(&m.records_sent),
            counter(&m.records_rejected),
            counter(&m.reconnects),
            counter(&m.commands_received),
        )
    }
}

pub(super) async fn serve_metrics(agent: Arc<Agent>, listener: tokio::net::TcpListener) {
    use axum::routing::get;
    let health = agent.clone();
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let agent = agent.clone();
                async move {
                    (
                        [("content-type", "text/plain; version=0.0.4")],
                        agent.render_metrics(),
                    )
                }
            }),
        )
        .route(
            "/healthz",
            get(move || {
                let agent = health.clone();
                async move {
                    let (depth, _, age) = agent.queue_state();
                    let full = agent.metrics.queue_full.load(Ordering::Relaxed);
                    let up = agent.metrics.uplink_up.load(Ordering::Relaxed);
                    let status = if full {
                        axum::http::StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        axum::http::StatusCode::OK
                    };
                    (
                        status,
                        axum::Json(serde_json::json!({
                            "status": if full { "queue_full" } else if up { "ok" } else { "buffering" },
                            "uplink": up,
                            "queueDepth": depth,
                            "oldestUnsentSeconds": age,
                        })),
                    )
                }
            }),
        );
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!("metrics endpoint stopped: {e}");
    }
}
