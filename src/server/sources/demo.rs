//! The built-in offline source: a seeded generator of lively posts, so the
//! app runs with no account and no network.

use time::OffsetDateTime;
use tracing::info;

use super::demo_posts::DemoPosts;
use super::{Pacer, SourceLink};
use crate::server::settings::SourceSettings;
use crate::wire::UpstreamState;

/// Posts per second when `--rate` is not given: lively but readable.
pub const DEFAULT_RATE: f64 = 4.0;

pub struct Demo {
    rate: f64,
    seed: u64,
}

impl Demo {
    pub fn new(settings: &SourceSettings) -> Demo {
        Demo {
            rate: settings.rate.unwrap_or(DEFAULT_RATE),
            seed: settings.seed,
        }
    }

    pub async fn run(self, link: SourceLink) {
        info!(rate = self.rate, seed = self.seed, "demo source started");
        link.set_status(UpstreamState::Connected, None);
        let mut posts = DemoPosts::new(self.seed);
        let mut pacer = Pacer::new(self.rate);
        while pacer.wait(&link.shutdown).await {
            let post = posts.next_post(OffsetDateTime::now_utc());
            if !link.emit(post).await {
                return;
            }
        }
    }
}
