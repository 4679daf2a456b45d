//! The list of post cards: newest first, at most `limit` that are not
//! fading out. Pure logic, so it is tested without a browser.

use std::sync::Arc;

use super::text::safe_href;
use crate::wire::Tweet;

/// How long a card takes to fade in or out (matches `style/main.css`).
pub const FADE_MS: u64 = 250;

#[derive(Clone, Debug, PartialEq)]
pub struct Card {
    /// Stable identity for the keyed list; never reused on one page.
    pub key: u64,
    pub tweet: Arc<Tweet>,
    /// Fading out: no longer counted against the limit, removed after [`FADE_MS`].
    pub leaving: bool,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Feed {
    /// Newest first.
    pub cards: Vec<Card>,
    next_key: u64,
}

impl Feed {
    /// Adds posts (given oldest first, as in a `tweets` message) on top and
    /// returns the keys of the cards that must now fade out.
    pub fn admit(&mut self, tweets: Vec<Arc<Tweet>>, limit: usize) -> Vec<u64> {
        // Posts that would start fading out at once are not shown at all.
        let skip = tweets.len().saturating_sub(limit);
        for tweet in tweets.into_iter().skip(skip) {
            self.next_key += 1;
            self.cards.insert(
                0,
                Card {
                    key: self.next_key,
                    tweet,
                    leaving: false,
                },
            );
        }
        self.enforce_limit(limit)
    }

    /// Marks the oldest cards beyond `limit` as leaving; returns their keys.
    pub fn enforce_limit(&mut self, limit: usize) -> Vec<u64> {
        let mut staying = 0;
        let mut leaving = Vec::new();
        for card in self.cards.iter_mut().filter(|c| !c.leaving) {
            staying += 1;
            if staying > limit {
                card.leaving = true;
                leaving.push(card.key);
            }
        }
        leaving
    }

    /// Drops cards whose fade-out has finished.
    pub fn remove(&mut self, keys: &[u64]) {
        self.cards.retain(|c| !keys.contains(&c.key));
    }

    pub fn clear(&mut self) {
        self.cards.clear();
    }
}

/// A column's matching posts over the last minute, for its `.rate`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RateWindow {
    /// Arrival time (milliseconds) and number of posts, oldest first.
    arrivals: std::collections::VecDeque<(f64, u32)>,
}

const MINUTE_MS: f64 = 60_000.0;

impl RateWindow {
    pub fn record(&mut self, now_ms: f64, posts: usize) {
        self.arrivals.push_back((now_ms, posts as u32));
        while self
            .arrivals
            .front()
            .is_some_and(|(at, _)| *at <= now_ms - MINUTE_MS)
        {
            self.arrivals.pop_front();
        }
    }

    /// Posts that arrived in the minute before `now_ms`.
    pub fn per_minute(&self, now_ms: f64) -> u64 {
        self.arrivals
            .iter()
            .filter(|(at, _)| *at > now_ms - MINUTE_MS)
            .map(|(_, n)| u64::from(*n))
            .sum()
    }
}

/// A post's age as the card shows it: `now` under 10 s, then `12s`, `5m`,
/// `3h`, and from a day on the date (`Nov 25`, with the year when it is
/// not `current_year`). `created_at` is RFC 3339; an unreadable one shows
/// as it is.
pub fn age_label(age_seconds: f64, created_at: &str, current_year: i32) -> String {
    if !age_seconds.is_finite() {
        return date_label(created_at, current_year).unwrap_or_else(|| created_at.to_owned());
    }
    let seconds = age_seconds.max(0.0) as u64;
    match seconds {
        0..=9 => "now".to_owned(),
        10..=59 => format!("{seconds}s"),
        60..=3_599 => format!("{}m", seconds / 60),
        3_600..=86_399 => format!("{}h", seconds / 3_600),
        _ => date_label(created_at, current_year).unwrap_or_else(|| created_at.to_owned()),
    }
}

fn date_label(created_at: &str, current_year: i32) -> Option<String> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let year: i32 = created_at.get(..4)?.parse().ok()?;
    let month: usize = created_at.get(5..7)?.parse().ok()?;
    let day: u32 = created_at.get(8..10)?.parse().ok()?;
    let name = MONTHS.get(month.checked_sub(1)?)?;
    Some(if year == current_year {
        format!("{name} {day}")
    } else {
        format!("{name} {day}, {year}")
    })
}

/// The avatar to show: the post's own when it is an http(s) URL or a path
/// on this site, otherwise the local placeholder.
pub fn avatar_src(raw: &str) -> String {
    // Browsers read `\` as `/`: `/\host/x` would leave the site.
    let same_site_path = raw.starts_with('/') && !raw.starts_with("//") && !raw.contains('\\');
    if safe_href(raw).is_some() || same_site_path {
        raw.to_owned()
    } else {
        PLACEHOLDER_AVATAR.to_owned()
    }
}

/// The post's permalink, when it is a plain http(s) URL (the same check as
/// every other `href` on the page).
pub fn safe_link(raw: Option<&str>) -> Option<String> {
    raw.and_then(safe_href)
}

pub const PLACEHOLDER_AVATAR: &str = "/avatar-placeholder.svg";

#[cfg(test)]
mod tests {
    use super::*;

    fn tweet(text: &str) -> Arc<Tweet> {
        Arc::new(Tweet {
            id: text.into(),
            name: "n".into(),
            screen_name: "n".into(),
            text: text.into(),
            user_profile_image: String::new(),
            url: None,
            created_at: String::new(),
            lang: None,
            source: "t".into(),
            ..Default::default()
        })
    }

    fn texts(feed: &Feed) -> Vec<(&str, bool)> {
        feed.cards
            .iter()
            .map(|c| (c.tweet.text.as_str(), c.leaving))
            .collect()
    }

    #[test]
    fn newest_first_and_oldest_fade_out_past_the_limit() {
        let mut feed = Feed::default();
        assert!(feed.admit(vec![tweet("a"), tweet("b")], 2).is_empty());
        let leaving = feed.admit(vec![tweet("c")], 2);
        assert_eq!(texts(&feed), [("c", false), ("b", false), ("a", true)]);
        feed.remove(&leaving);
        assert_eq!(texts(&feed), [("c", false), ("b", false)]);
    }

    #[test]
    fn leaving_cards_do_not_count() {
        let mut feed = Feed::default();
        feed.admit(vec![tweet("a"), tweet("b"), tweet("c")], 3);
        let leaving = feed.enforce_limit(1);
        assert_eq!(leaving.len(), 2);
        feed.admit(vec![tweet("d")], 1);
        assert_eq!(
            texts(&feed),
            [("d", false), ("c", true), ("b", true), ("a", true)]
        );
    }

    #[test]
    fn a_big_batch_shows_only_its_newest() {
        let mut feed = Feed::default();
        let batch = (0..30).map(|i| tweet(&i.to_string())).collect();
        feed.admit(batch, 5);
        assert_eq!(feed.cards.len(), 5);
        assert_eq!(feed.cards[0].tweet.text, "29");
        assert_eq!(feed.cards[4].tweet.text, "25");
    }

    #[test]
    fn the_rate_counts_the_last_minute() {
        let mut rate = RateWindow::default();
        rate.record(0.0, 2);
        rate.record(30_000.0, 3);
        assert_eq!(rate.per_minute(30_000.0), 5);
        assert_eq!(rate.per_minute(60_000.0), 3);
        rate.record(90_001.0, 1);
        assert_eq!(rate.per_minute(90_001.0), 1);
        assert_eq!(rate.arrivals.len(), 1, "old arrivals are dropped");
    }

    #[test]
    fn ages_read_like_a_timeline() {
        let at = "2026-11-25T12:00:00Z";
        assert_eq!(age_label(-3.0, at, 2026), "now");
        assert_eq!(age_label(9.9, at, 2026), "now");
        assert_eq!(age_label(12.0, at, 2026), "12s");
        assert_eq!(age_label(300.0, at, 2026), "5m");
        assert_eq!(age_label(3.0 * 3600.0 + 5.0, at, 2026), "3h");
        assert_eq!(age_label(2.0 * 86400.0, at, 2026), "Nov 25");
        assert_eq!(age_label(400.0 * 86400.0, at, 2027), "Nov 25, 2026");
        assert_eq!(age_label(2.0 * 86400.0, "yesterday", 2026), "yesterday");
        assert_eq!(age_label(f64::NAN, at, 2026), "Nov 25");
    }

    #[test]
    fn avatars_must_be_http_or_local() {
        assert_eq!(
            avatar_src("https://a.example/x.png"),
            "https://a.example/x.png"
        );
        assert_eq!(avatar_src("/avatars/ada.svg"), "/avatars/ada.svg");
        assert_eq!(avatar_src(""), PLACEHOLDER_AVATAR);
        assert_eq!(avatar_src("javascript:alert(1)"), PLACEHOLDER_AVATAR);
        assert_eq!(avatar_src("data:image/svg+xml,<svg>"), PLACEHOLDER_AVATAR);
        assert_eq!(avatar_src("//evil.example/x"), PLACEHOLDER_AVATAR);
        assert_eq!(avatar_src("/\\evil.example/x.png"), PLACEHOLDER_AVATAR);
        assert_eq!(safe_link(Some("JavaScript:x")), None);
        assert_eq!(
            safe_link(Some("HTTPS://x.example/1")).as_deref(),
            Some("HTTPS://x.example/1")
        );
    }
}
