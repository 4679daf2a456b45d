//! Counters exposed at `GET /metrics` in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Process-wide counters. Plain atomics: the hot path only ever adds.
#[derive(Debug, Default)]
pub struct Metrics {
    pub connections_open: AtomicU64,
    pub connections_total: AtomicU64,
    pub connections_refused_busy: AtomicU64,
    pub upgrades_refused_origin: AtomicU64,
    pub posts_received: AtomicU64,
    pub posts_delivered: AtomicU64,
    pub posts_skipped: AtomicU64,
    pub source_bad_records: AtomicU64,
    pub messages_received: AtomicU64,
    pub messages_invalid: AtomicU64,
    pub messages_rate_limited: AtomicU64,
    pub closed_frame_too_large: AtomicU64,
    pub closed_flood: AtomicU64,
    pub closed_idle: AtomicU64,
    pub closed_slow: AtomicU64,
    /// Upstream reconnects by source and reason. Touched once per
    /// reconnect, never per post.
    reconnects: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn dec(counter: &AtomicU64) {
        counter.fetch_sub(1, Ordering::Relaxed);
    }

    /// Counts one reconnect of `source` for `reason` (a short label such as
    /// `network`, `http`, `rate_limited`, `stall`).
    pub fn count_reconnect(&self, source: &'static str, reason: &'static str) {
        let mut reconnects = self.reconnects.lock().unwrap_or_else(|e| e.into_inner());
        *reconnects.entry((source, reason)).or_default() += 1;
    }

    /// Reconnects of `source` for `reason` so far.
    pub fn reconnects(&self, source: &str, reason: &str) -> u64 {
        let reconnects = self.reconnects.lock().unwrap_or_else(|e| e.into_inner());
        reconnects
            .iter()
            .filter(|((s, r), _)| *s == source && *r == reason)
            .map(|(_, n)| n)
            .sum()
    }

    /// The Prometheus exposition text; `active_searches` comes from the hub.
    pub fn render(&self, active_searches: usize) -> String {
        let rows: [(&str, &str, &str, u64); 16] = [
            (
                "twitter_search_connections_open",
                "gauge",
                "WebSockets open now",
                self.get(&self.connections_open),
            ),
            (
                "twitter_search_connections_total",
                "counter",
                "WebSockets accepted since start",
                self.get(&self.connections_total),
            ),
            (
                "twitter_search_connections_refused_busy_total",
                "counter",
                "WebSockets closed with 1013 because the server was full",
                self.get(&self.connections_refused_busy),
            ),
            (
                "twitter_search_upgrades_refused_origin_total",
                "counter",
                "upgrades refused with 403 for their Origin",
                self.get(&self.upgrades_refused_origin),
            ),
            (
                "twitter_search_active_searches",
                "gauge",
                "distinct searches with at least one streaming connection",
                active_searches as u64,
            ),
            (
                "twitter_search_posts_received_total",
                "counter",
                "posts received from the source",
                self.get(&self.posts_received),
            ),
            (
                "twitter_search_posts_delivered_total",
                "counter",
                "posts queued for a connection (one per post and connection)",
                self.get(&self.posts_delivered),
            ),
            (
                "twitter_search_posts_skipped_total",
                "counter",
                "posts dropped for a slow connection and reported to it with skipped",
                self.get(&self.posts_skipped),
            ),
            (
                "twitter_search_source_bad_records_total",
                "counter",
                "upstream records that could not be read and were skipped",
                self.get(&self.source_bad_records),
            ),
            (
                "twitter_search_messages_received_total",
                "counter",
                "messages received from browsers",
                self.get(&self.messages_received),
            ),
            (
                "twitter_search_messages_invalid_total",
                "counter",
                "browser messages answered with invalidMessage",
                self.get(&self.messages_invalid),
            ),
            (
                "twitter_search_messages_rate_limited_total",
                "counter",
                "browser messages refused with rateLimited",
                self.get(&self.messages_rate_limited),
            ),
            (
                "twitter_search_closed_frame_too_large_total",
                "counter",
                "connections closed with 1009",
                self.get(&self.closed_frame_too_large),
            ),
            (
                "twitter_search_closed_flood_total",
                "counter",
                "connections closed with 1008 for flooding",
                self.get(&self.closed_flood),
            ),
            (
                "twitter_search_closed_idle_total",
                "counter",
                "connections closed for not answering pings",
                self.get(&self.closed_idle),
            ),
            (
                "twitter_search_closed_slow_total",
                "counter",
                "connections dropped for not taking a frame within the write timeout",
                self.get(&self.closed_slow),
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, value) in rows {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        let name = "twitter_search_source_reconnects_total";
        let _ = writeln!(
            out,
            "# HELP {name} reconnects to the upstream, by source and reason\n# TYPE {name} counter"
        );
        let reconnects = self.reconnects.lock().unwrap_or_else(|e| e.into_inner());
        for ((source, reason), value) in reconnects.iter() {
            let _ = writeln!(
                out,
                "{name}{{source=\"{source}\",reason=\"{reason}\"}} {value}"
            );
        }
        out
    }

    fn get(&self, counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let metrics = Metrics::default();
        Metrics::inc(&metrics.posts_received);
        let text = metrics.render(3);
        assert!(text.contains("# TYPE twitter_search_posts_received_total counter\ntwitter_search_posts_received_total 1\n"));
        assert!(text.contains("twitter_search_active_searches 3\n"));
        metrics.count_reconnect("x", "network");
        metrics.count_reconnect("x", "network");
        let text = metrics.render(3);
        assert!(text.contains(
            "twitter_search_source_reconnects_total{source=\"x\",reason=\"network\"} 2\n"
        ));
        assert_eq!(metrics.reconnects("x", "network"), 2);
    }
}
