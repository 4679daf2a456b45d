//! Upstream sources, one file each. A source is one task per server that
//! produces posts into the hub, whatever the number of browsers.

pub mod demo;
pub mod demo_posts;
pub mod replay;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;
use super::settings::{SourceKind, SourceSettings};
use super::{check_source, ServerError, UpstreamStatus};
use crate::wire::{Tweet, UpstreamState};

/// What a source task holds to talk to the rest of the server.
pub struct SourceLink {
    /// Receiver: the hub's dispatch task. Bounded: `send().await` waits when
    /// the hub is behind. If the receiver is gone the server is stopping and
    /// the source returns.
    pub posts: mpsc::Sender<Tweet>,
    /// Receivers: every socket task, which forwards changes as `upstream`.
    pub status: watch::Sender<UpstreamStatus>,
    pub metrics: Arc<Metrics>,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
}

impl SourceLink {
    pub fn set_status(&self, state: UpstreamState, detail: Option<String>) {
        self.status.send_replace(UpstreamStatus::new(state, detail));
    }

    /// Hands one post to the hub; false when the server is stopping.
    pub async fn emit(&self, tweet: Tweet) -> bool {
        tokio::select! {
            sent = self.posts.send(tweet) => sent.is_ok(),
            _ = self.shutdown.cancelled() => false,
        }
    }
}

/// A source ready to run.
pub enum Source {
    Demo(demo::Demo),
    Replay(replay::Replay),
}

impl Source {
    /// Checks what can be checked before the server starts listening, so a
    /// wrong setting stops the server with a clear message.
    pub async fn open(settings: &SourceSettings) -> Result<Source, ServerError> {
        check_source(settings.kind)?;
        match settings.kind {
            SourceKind::Replay => Ok(Source::Replay(replay::Replay::open(settings).await?)),
            _ => Ok(Source::Demo(demo::Demo::new(settings))),
        }
    }

    pub async fn run(self, link: SourceLink) {
        match self {
            Source::Demo(demo) => demo.run(link).await,
            Source::Replay(replay) => replay.run(link).await,
        }
    }
}

/// Spaces posts evenly at `rate` per second, catching up after a stall
/// rather than drifting; a rate of 0 never waits.
pub struct Pacer {
    interval: Option<Duration>,
    next: Instant,
}

impl Pacer {
    pub fn new(rate: f64) -> Pacer {
        let interval = (rate > 0.0).then(|| Duration::from_secs_f64(1.0 / rate));
        Pacer {
            interval,
            next: Instant::now(),
        }
    }

    /// Waits until the next post is due; false if shutdown came first.
    pub async fn wait(&mut self, shutdown: &CancellationToken) -> bool {
        let Some(interval) = self.interval else {
            // As fast as possible, but other tasks on this thread still run.
            tokio::task::yield_now().await;
            return !shutdown.is_cancelled();
        };
        let now = Instant::now();
        if self.next < now.checked_sub(interval * 8).unwrap_or(now) {
            // Far behind (the machine stalled): do not burst to catch up.
            self.next = now;
        }
        let due = self.next;
        self.next += interval;
        tokio::select! {
            _ = tokio::time::sleep_until(due) => true,
            _ = shutdown.cancelled() => false,
        }
    }
}
