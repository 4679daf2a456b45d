//! What `GET /metrics` exposes, in the Prometheus text format, through the
//! `prometheus-client` crate. Counters and gauges are atomics: the hot path
//! only adds.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconnectLabels {
    source: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DisconnectLabels {
    reason: &'static str,
}

/// Process-wide metrics. Cloning a counter shares it; the registry holds
/// clones of each, so updating a field updates what `/metrics` shows.
#[derive(Debug)]
pub struct Metrics {
    pub connections_open: Gauge,
    pub connections_total: Counter,
    pub connections_refused_busy: Counter,
    pub upgrades_refused_origin: Counter,
    pub posts_received: Counter,
    pub posts_delivered: Counter,
    pub posts_skipped: Counter,
    pub source_bad_records: Counter,
    pub messages_received: Counter,
    pub messages_invalid: Counter,
    pub messages_rate_limited: Counter,
    pub closed_frame_too_large: Counter,
    pub closed_flood: Counter,
    pub closed_idle: Counter,
    pub closed_slow: Counter,
    /// Set from the hub when `/metrics` is read.
    active_searches: Gauge,
    /// Seconds from a post's arrival at the server to the write of the
    /// frame that carries it, per post and browser.
    pub delivery_seconds: Histogram,
    reconnects: Family<ReconnectLabels, Counter>,
    disconnects: Family<DisconnectLabels, Counter>,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("twitter_search");
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let gauge = Gauge::default();
            registry.register(name, help, gauge.clone());
            gauge
        };
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let counter = Counter::default();
            registry.register(name, help, counter.clone());
            counter
        };
        let connections_open = gauge(&mut registry, "connections_open", "WebSockets open now");
        let connections_total = counter(
            &mut registry,
            "connections",
            "WebSockets accepted since start",
        );
        let connections_refused_busy = counter(
            &mut registry,
            "connections_refused_busy",
            "WebSockets closed with 1013 because the server was full",
        );
        let upgrades_refused_origin = counter(
            &mut registry,
            "upgrades_refused_origin",
            "upgrades refused with 403 for their Origin",
        );
        let active_searches = gauge(
            &mut registry,
            "active_searches",
            "distinct searches with at least one streaming connection",
        );
        let posts_received = counter(
            &mut registry,
            "posts_received",
            "posts received from the source",
        );
        let posts_delivered = counter(
            &mut registry,
            "posts_delivered",
            "posts queued for a connection (one per post and connection)",
        );
        let posts_skipped = counter(
            &mut registry,
            "posts_skipped",
            "posts dropped for a slow connection and reported to it with skipped",
        );
        let source_bad_records = counter(
            &mut registry,
            "source_bad_records",
            "upstream records that could not be read and were skipped",
        );
        let messages_received = counter(
            &mut registry,
            "messages_received",
            "messages received from browsers",
        );
        let messages_invalid = counter(
            &mut registry,
            "messages_invalid",
            "browser messages answered with invalidMessage",
        );
        let messages_rate_limited = counter(
            &mut registry,
            "messages_rate_limited",
            "browser messages refused with rateLimited",
        );
        let closed_frame_too_large = counter(
            &mut registry,
            "closed_frame_too_large",
            "connections closed with 1009",
        );
        let closed_flood = counter(
            &mut registry,
            "closed_flood",
            "connections closed with 1008 for flooding",
        );
        let closed_idle = counter(
            &mut registry,
            "closed_idle",
            "connections closed for not answering pings",
        );
        let closed_slow = counter(
            &mut registry,
            "closed_slow",
            "connections dropped for not taking a frame within the write timeout",
        );
        // 100 µs to about 6.5 s, doubling.
        let delivery_seconds = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.0001, 2.0, 17),
        );
        registry.register(
            "delivery_seconds",
            "time from a post's arrival at the server to the write of its frame, per post and browser",
            delivery_seconds.clone(),
        );
        let reconnects = Family::<ReconnectLabels, Counter>::default();
        registry.register(
            "source_reconnects",
            "reconnects to the upstream, by source and reason",
            reconnects.clone(),
        );
        let disconnects = Family::<DisconnectLabels, Counter>::default();
        registry.register(
            "disconnects",
            "WebSockets ended, by reason",
            disconnects.clone(),
        );
        Metrics {
            connections_open,
            connections_total,
            connections_refused_busy,
            upgrades_refused_origin,
            posts_received,
            posts_delivered,
            posts_skipped,
            source_bad_records,
            messages_received,
            messages_invalid,
            messages_rate_limited,
            closed_frame_too_large,
            closed_flood,
            closed_idle,
            closed_slow,
            active_searches,
            delivery_seconds,
            reconnects,
            disconnects,
            registry,
        }
    }

    /// Counts one reconnect of `source` for `reason` (a short label such as
    /// `network`, `http`, `rate_limited`, `stall`).
    pub fn count_reconnect(&self, source: &'static str, reason: &'static str) {
        self.reconnects
            .get_or_create(&ReconnectLabels { source, reason })
            .inc();
    }

    /// Reconnects of `source` for `reason` so far.
    pub fn reconnects(&self, source: &'static str, reason: &'static str) -> u64 {
        self.reconnects
            .get_or_create(&ReconnectLabels { source, reason })
            .get()
    }

    /// Counts a WebSocket that ended for `reason` (a short label).
    pub fn count_disconnect(&self, reason: &'static str) {
        self.disconnects
            .get_or_create(&DisconnectLabels { reason })
            .inc();
    }

    /// The Prometheus exposition text; `active_searches` comes from the hub.
    pub fn render(&self, active_searches: usize) -> String {
        self.active_searches.set(active_searches as i64);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let metrics = Metrics::default();
        metrics.posts_received.inc();
        let text = metrics.render(3);
        assert!(
            text.contains("# TYPE twitter_search_posts_received counter\ntwitter_search_posts_received_total 1\n"),
            "{text}"
        );
        assert!(
            text.contains("twitter_search_active_searches 3\n"),
            "{text}"
        );
        metrics.count_reconnect("x", "network");
        metrics.count_reconnect("x", "network");
        metrics.count_disconnect("idle");
        metrics.delivery_seconds.observe(0.002);
        let text = metrics.render(3);
        assert!(
            text.contains(
                "twitter_search_source_reconnects_total{source=\"x\",reason=\"network\"} 2\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("twitter_search_disconnects_total{reason=\"idle\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("twitter_search_delivery_seconds_count 1\n"),
            "{text}"
        );
        assert_eq!(metrics.reconnects("x", "network"), 2);
    }
}
