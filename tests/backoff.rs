//! The WebSocket sources' reconnect schedules on tokio's paused clock: the
//! fakes refuse connections, and the times of the attempts they see are
//! read off the paused clock, so minutes of backoff take milliseconds and
//! the waits are exact.
//!
//! The X source's schedules are tested as functions (`x.rs` unit tests) and
//! in real time (`tests/x.rs`): its HTTP client keeps timers of its own
//! (connection pool, timeouts) that a paused clock fires out of turn.

#![cfg(feature = "ssr")]

mod support;

use std::time::Duration;

use support::fakes::{FakeJetstream, FakeMastodon};
use support::TestServer;
use tokio::time::Instant;
use twitter_search::server::settings::{Settings, SourceKind};

const MASTODON_TOKEN: &str = "mastodon-backoff-token";

/// Waits (on the paused clock) until `count` attempts were seen.
async fn attempts(seen: impl Fn() -> Vec<Instant>, count: usize) -> Vec<Duration> {
    let deadline = Instant::now() + Duration::from_secs(3600);
    loop {
        let times = seen();
        if times.len() >= count {
            return times.windows(2).map(|w| w[1] - w[0]).collect();
        }
        assert!(Instant::now() < deadline, "only {} attempts", times.len());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn mastodon_retries_with_jitter_the_first_within_seconds() {
    let fake = FakeMastodon::start("the-instance-wants-another-token").await;
    std::env::set_var("MASTODON_TOKEN", MASTODON_TOKEN);
    let mut settings = Settings::default();
    settings.source.kind = SourceKind::Mastodon;
    settings.source.mastodon.url = Some(fake.url());
    let server = TestServer::start(settings).await;
    let gaps = attempts(|| fake.attempt_times(), 7).await;
    // Jittered doubling from 2 s: each wait in [plain/2, plain], capped at 120 s.
    for (gap, plain) in gaps.iter().zip([2u64, 4, 8, 16, 32, 64]) {
        let plain = Duration::from_secs(plain);
        assert!(
            *gap >= plain / 2 && *gap <= plain + Duration::from_millis(100),
            "{gaps:?}"
        );
    }
    assert!(
        gaps[0] <= Duration::from_secs(10),
        "the first try within 10 s"
    );
    server.shut_down().await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn jetstream_reconnects_within_seconds_never_more_than_eight() {
    let fake = FakeJetstream::start().await;
    let mut settings = Settings::default();
    settings.source.kind = SourceKind::Bluesky;
    settings.source.bluesky.jetstream_url = fake.subscribe_url();
    settings.source.bluesky.appview_url = fake.appview_url();
    fake.refuse_connections(true);
    let server = TestServer::start(settings).await;
    let gaps = attempts(|| fake.attempt_times(), 7).await;
    for (gap, plain) in gaps.iter().zip([1u64, 2, 4, 8, 8, 8]) {
        let plain = Duration::from_secs(plain);
        assert!(
            *gap >= plain / 2 && *gap <= plain + Duration::from_millis(100),
            "{gaps:?}"
        );
    }
    server.shut_down().await;
}
