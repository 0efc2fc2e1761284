//! Prometheus metrics of the proxy (`/metrics`, OpenMetrics text).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: String,
}

/// Every metric the proxy exports.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<OutcomeLabel, Counter>,
    pub statements: Counter,
    pub duration: Histogram,
    pub pools: Gauge,
    pub connections: Gauge,
    pub idle_connections: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("sql_proxy");
        let requests = Family::<OutcomeLabel, Counter>::default();
        let statements = Counter::default();
        let duration = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        let pools = Gauge::default();
        let connections = Gauge::default();
        let idle_connections = Gauge::default();
        registry.register("requests", "SQL requests by outcome", requests.clone());
        registry.register("statements", "Statements executed", statements.clone());
        registry.register(
            "request_duration_seconds",
            "Time to serve a SQL request",
            duration.clone(),
        );
        registry.register("pools", "Connection pools (credential sets)", pools.clone());
        registry.register(
            "connections",
            "Upstream connections held",
            connections.clone(),
        );
        registry.register(
            "idle_connections",
            "Upstream connections idle in a pool",
            idle_connections.clone(),
        );
        Metrics {
            registry,
            requests,
            statements,
            duration,
            pools,
            connections,
            idle_connections,
        }
    }
}

impl Metrics {
    pub fn count(&self, outcome: &str) {
        self.requests
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
