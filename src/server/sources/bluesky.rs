//! The `bluesky` source: Bluesky's public firehose through Jetstream
//! (`wantedCollections=app.bsky.feed.post`), free and without an account.
//!
//! - Only `create` commits of posts become posts; updates, deletes, other
//!   collections, `identity` and `account` events are read and let go
//!   (an identity event's handle is remembered for the fallback below).
//! - Jetstream events carry no name or avatar: they are looked up with
//!   `app.bsky.actor.getProfiles` on the AppView, 25 authors a call, a few
//!   calls at once, kept in a bounded cache. A post waits for its author's
//!   profile [`PROFILE_WAIT`] at most; past that, or when the profile
//!   service is slow or failing, it goes out with the handle (or the DID).
//! - Link text in a post is often shortened; the full addresses come from
//!   the link facets (UTF-8 byte offsets) into [`crate::wire::PostLink`].
//! - After a dropped connection the source reconnects within seconds with
//!   `cursor` [`CURSOR_REWIND`] before the last `time_us` seen, and drops
//!   the posts it already delivered: a short outage loses nothing and shows
//!   nothing twice.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::{SinkExt, StreamExt};
use lru::LruCache;
use serde::Deserialize;
use serde_json::value::RawValue;
use time::OffsetDateTime;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, info, warn};

use super::backoff::{describe, Backoff, Growth};
use super::normalize::{to_tweet, RawPost};
use super::{
    check_url, connect_ws, http_client, read_body_capped, SourceError, SourceLink, UpstreamSocket,
};
use crate::server::settings::SourceSettings;
use crate::wire::{PostLink, Tweet, UpstreamState};

/// The collection of posts.
const POST_COLLECTION: &str = "app.bsky.feed.post";

/// How far before the last event seen a reconnect resumes.
pub const CURSOR_REWIND: Duration = Duration::from_secs(5);

/// Longest a post waits for its author's profile.
pub const PROFILE_WAIT: Duration = Duration::from_millis(500);

/// Authors in one `getProfiles` call (the lexicon's maximum).
const PROFILES_PER_CALL: usize = 25;

/// `getProfiles` calls in flight at once.
const LOOKUPS_IN_FLIGHT: usize = 4;

/// A `getProfiles` call that takes longer is given up.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

/// After a failed call, posts go out with the fallback for this long
/// before the profile service is asked again.
const LOOKUP_PAUSE: Duration = Duration::from_secs(15);

/// Authors the AppView does not know are not asked for again this soon.
const UNKNOWN_AUTHOR_TTL: Duration = Duration::from_secs(600);

/// Largest event Jetstream is asked to send; larger ones it skips. The
/// WebSocket refuses anything past [`MAX_FRAME_BYTES`] without buffering it.
const MAX_EVENT_BYTES: usize = 512 * 1024;
const MAX_FRAME_BYTES: usize = 1024 * 1024;

/// Largest `getProfiles` answer read.
const MAX_PROFILES_BODY: usize = 2 * 1024 * 1024;

/// With nothing from Jetstream for this long, ping it; after twice this,
/// give the connection up as dead.
const QUIET: Duration = Duration::from_secs(30);

/// Posts remembered for de-duplication after a resume: those within this
/// window of the newest event, at most [`DELIVERED_MAX`].
const DELIVERED_WINDOW_US: u64 = 60_000_000;
const DELIVERED_MAX: usize = 200_000;

pub struct Bluesky {
    jetstream: reqwest::Url,
    appview: reqwest::Url,
    http: reqwest::Client,
    profile_cache: NonZeroUsize,
}

impl Bluesky {
    pub fn open(settings: &SourceSettings) -> Result<Bluesky, SourceError> {
        let bluesky = &settings.bluesky;
        Ok(Bluesky {
            jetstream: check_url(
                "--jetstream-url",
                &bluesky.jetstream_url,
                &["ws", "wss"],
                "ws(s)",
            )?,
            appview: check_url(
                "--appview-url",
                &bluesky.appview_url,
                &["http", "https"],
                "http(s)",
            )?,
            http: http_client()?,
            profile_cache: NonZeroUsize::new(bluesky.profile_cache.max(1))
                .unwrap_or(NonZeroUsize::MIN),
        })
    }

    pub async fn run(self, link: SourceLink) {
        info!(jetstream = %self.jetstream, appview = %self.appview, "bluesky source started");
        let mut backoff = Backoff::new(
            Duration::from_secs(1),
            Growth::Doubling,
            Duration::from_secs(8),
        )
        .with_jitter();
        let mut resume = Resume {
            last_time_us: link.cursor.as_ref().and_then(|slot| slot.start),
            ..Resume::default()
        };
        let mut authors = Authors::new(self.http.clone(), self.appview.clone(), self.profile_cache);
        loop {
            let url = subscribe_url(&self.jetstream, resume.cursor());
            let outcome = match connect(&url).await {
                Ok(socket) => {
                    link.set_status(UpstreamState::Connected, None);
                    info!(cursor = ?resume.cursor(), "connected to Jetstream");
                    let outcome = stream(socket, &link, &mut resume, &mut authors).await;
                    // Posts waiting for a profile go out now, with what is known.
                    if !authors.flush_all(&link).await {
                        return;
                    }
                    outcome
                }
                Err(reason) => Ended::Failed("connect", reason),
            };
            let (label, reason) = match outcome {
                Ended::Shutdown => return,
                Ended::Failed(label, reason) => (label, reason),
            };
            if resume.events_this_connection > 0 {
                backoff.reset();
            }
            resume.events_this_connection = 0;
            let delay = backoff.next_delay();
            warn!(%reason, retry_in = ?delay, "Jetstream connection lost");
            link.count_reconnect(label);
            link.set_status(
                UpstreamState::Reconnecting,
                Some(format!("{reason}; reconnecting in {}", describe(delay))),
            );
            if !link.sleep(delay).await {
                return;
            }
        }
    }
}

/// `/subscribe` with the post collection, the size cap and the cursor.
fn subscribe_url(base: &reqwest::Url, cursor: Option<u64>) -> reqwest::Url {
    let mut url = base.clone();
    let kept: Vec<(String, String)> = base
        .query_pairs()
        .filter(|(k, _)| !matches!(&**k, "wantedCollections" | "cursor" | "maxMessageSizeBytes"))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    {
        let mut query = url.query_pairs_mut();
        query.clear();
        for (k, v) in &kept {
            query.append_pair(k, v);
        }
        query.append_pair("wantedCollections", POST_COLLECTION);
        query.append_pair("maxMessageSizeBytes", &MAX_EVENT_BYTES.to_string());
        if let Some(cursor) = cursor {
            query.append_pair("cursor", &cursor.to_string());
        }
    }
    url
}

async fn connect(url: &reqwest::Url) -> Result<UpstreamSocket, String> {
    connect_ws("Jetstream", url, None, MAX_FRAME_BYTES)
        .await
        .map_err(|e| e.to_string())
}

enum Ended {
    Shutdown,
    /// A reconnect label for the metrics, and the reason for a person.
    Failed(&'static str, String),
}

/// Reads events until the connection ends.
async fn stream(
    mut socket: UpstreamSocket,
    link: &SourceLink,
    resume: &mut Resume,
    authors: &mut Authors,
) -> Ended {
    let mut last_heard = Instant::now();
    let mut pinged = false;
    loop {
        let quiet_until = last_heard + if pinged { QUIET * 2 } else { QUIET };
        let next_due = authors.next_deadline();
        tokio::select! {
            _ = link.shutdown.cancelled() => {
                let _ = socket.close(None).await;
                return Ended::Shutdown;
            }
            frame = socket.next() => {
                last_heard = Instant::now();
                pinged = false;
                match frame {
                    None => return Ended::Failed("closed", "Jetstream closed the connection".to_owned()),
                    Some(Err(tokio_tungstenite::tungstenite::Error::Capacity(error))) => {
                        link.bad_record(&format!("an event over {MAX_FRAME_BYTES} bytes was refused: {error}"));
                        return Ended::Failed("oversized", "Jetstream sent an oversized event".to_owned());
                    }
                    Some(Err(error)) => return Ended::Failed("network", format!("Jetstream connection error: {error}")),
                    Some(Ok(Message::Text(text))) => {
                        let post = resume.read_event(text.as_str(), link, authors);
                        if let (Some(slot), Some(time_us)) = (&link.cursor, resume.last_time_us) {
                            slot.latest.store(time_us, std::sync::atomic::Ordering::Relaxed);
                        }
                        if let Some(post) = post {
                            authors.admit(post);
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        let why = frame.map(|f| format!(" ({} {})", u16::from(f.code), f.reason)).unwrap_or_default();
                        return Ended::Failed("closed", format!("Jetstream closed the connection{why}"));
                    }
                    Some(Ok(Message::Binary(_))) => {
                        link.bad_record(&"a binary (compressed) event; this client asks for plain JSON");
                    }
                    Some(Ok(_)) => {}
                }
            }
            Some(result) = authors.lookups.next(), if !authors.lookups.is_empty() => {
                authors.finish_lookup(result);
            }
            _ = tokio::time::sleep_until(next_due.unwrap_or(quiet_until)), if next_due.is_some() => {}
            _ = tokio::time::sleep_until(quiet_until) => {
                if pinged {
                    return Ended::Failed("stall", format!("nothing from Jetstream for {} s", (QUIET * 2).as_secs()));
                }
                pinged = true;
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    return Ended::Failed("network", "cannot ping Jetstream".to_owned());
                }
            }
        }
        authors.start_lookups();
        if !authors.flush_ready(link).await {
            return Ended::Shutdown;
        }
    }
}

#[derive(Deserialize)]
struct Event<'a> {
    did: String,
    time_us: u64,
    kind: String,
    #[serde(borrow)]
    commit: Option<Commit<'a>>,
    identity: Option<Identity>,
}

#[derive(Deserialize)]
struct Commit<'a> {
    operation: String,
    collection: String,
    rkey: String,
    #[serde(borrow)]
    record: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Identity {
    handle: Option<String>,
}

/// An `app.bsky.feed.post` record, with the fields a post shows.
#[derive(Deserialize)]
struct PostRecord {
    text: String,
    #[serde(rename = "createdAt")]
    created_at: Option<String>,
    #[serde(default)]
    langs: Vec<String>,
    #[serde(default)]
    facets: Vec<Facet>,
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Deserialize)]
struct Facet {
    index: ByteSlice,
    #[serde(default)]
    features: Vec<Feature>,
}

#[derive(Deserialize)]
struct ByteSlice {
    #[serde(rename = "byteStart")]
    byte_start: u64,
    #[serde(rename = "byteEnd")]
    byte_end: u64,
}

#[derive(Deserialize)]
struct Feature {
    #[serde(rename = "$type", default)]
    kind: String,
    uri: Option<String>,
    tag: Option<String>,
}

/// A post read from Jetstream, waiting for its author's profile.
pub struct PendingPost {
    did: String,
    tweet: Tweet,
    deadline: Instant,
}

/// Where to resume, and what was already delivered.
#[derive(Default)]
struct Resume {
    /// Newest `time_us` seen (events are not strictly in order).
    last_time_us: Option<u64>,
    events_this_connection: u64,
    delivered: HashSet<String>,
    /// `(time_us, id)` in arrival order, to forget old ids.
    delivered_order: VecDeque<(u64, String)>,
}

impl Resume {
    fn cursor(&self) -> Option<u64> {
        self.last_time_us
            .map(|t| t.saturating_sub(CURSOR_REWIND.as_micros() as u64))
    }

    /// Reads one event; a new post comes back, anything else is handled here.
    fn read_event(
        &mut self,
        text: &str,
        link: &SourceLink,
        authors: &mut Authors,
    ) -> Option<PendingPost> {
        let event: Event<'_> = match serde_json::from_str(text) {
            Ok(event) => event,
            Err(error) => {
                link.bad_record(&format!("a Jetstream event that does not parse: {error}"));
                return None;
            }
        };
        self.events_this_connection += 1;
        self.last_time_us = Some(
            self.last_time_us
                .map_or(event.time_us, |t| t.max(event.time_us)),
        );
        match event.kind.as_str() {
            "commit" => {}
            "identity" => {
                if let Some(handle) = event.identity.and_then(|i| i.handle) {
                    authors.learn_handle(&event.did, &handle);
                }
                return None;
            }
            // Account events and kinds added later are not posts.
            _ => return None,
        }
        let commit = event.commit?;
        if commit.operation != "create" || commit.collection != POST_COLLECTION {
            // An edit is not a new post, and a delete has nothing to show.
            return None;
        }
        let Some(record) = commit.record else {
            link.bad_record(&"a post create without its record");
            return None;
        };
        let record: PostRecord = match serde_json::from_str(record.get()) {
            Ok(record) => record,
            Err(error) => {
                link.bad_record(&format!("a post record that does not parse: {error}"));
                return None;
            }
        };
        let id = format!("at://{}/{POST_COLLECTION}/{}", event.did, commit.rkey);
        if !self.remember(event.time_us, &id) {
            debug!(%id, "skipping a post already delivered before the reconnect");
            return None;
        }
        let tweet = post_from_record(&event.did, &commit.rkey, event.time_us, id, record);
        Some(PendingPost {
            did: event.did,
            tweet,
            deadline: Instant::now() + PROFILE_WAIT,
        })
    }

    /// False when `id` was delivered already.
    fn remember(&mut self, time_us: u64, id: &str) -> bool {
        if !self.delivered.insert(id.to_owned()) {
            return false;
        }
        self.delivered_order.push_back((time_us, id.to_owned()));
        let newest = self.last_time_us.unwrap_or(time_us);
        while let Some((t, _)) = self.delivered_order.front() {
            let old = newest.saturating_sub(*t) > DELIVERED_WINDOW_US;
            if !old && self.delivered_order.len() <= DELIVERED_MAX {
                break;
            }
            if let Some((_, id)) = self.delivered_order.pop_front() {
                self.delivered.remove(&id);
            }
        }
        true
    }
}

/// The post's shape, before its author's name and avatar are known.
fn post_from_record(did: &str, rkey: &str, time_us: u64, id: String, record: PostRecord) -> Tweet {
    let mut links = Vec::new();
    let mut tags = Vec::new();
    for facet in &record.facets {
        for feature in &facet.features {
            match feature.kind.as_str() {
                "app.bsky.richtext.facet#link" => {
                    if let Some(uri) = &feature.uri {
                        let (start, end) = visible_range(
                            &record.text,
                            facet.index.byte_start,
                            facet.index.byte_end,
                        );
                        links.push(PostLink {
                            url: uri.clone(),
                            start,
                            end,
                        });
                    }
                }
                "app.bsky.richtext.facet#tag" => {
                    if let Some(tag) = &feature.tag {
                        tags.push(tag.trim_start_matches('#').to_owned());
                    }
                }
                _ => {}
            }
        }
    }
    tags.extend(
        record
            .tags
            .iter()
            .map(|t| t.trim_start_matches('#').to_owned()),
    );
    tags.retain(|t| !t.is_empty());
    tags.dedup();
    let fallback_time = OffsetDateTime::from_unix_timestamp_nanos(i128::from(time_us) * 1000).ok();
    to_tweet(
        "bluesky",
        RawPost {
            id,
            name: "",
            handle: did,
            text: record.text,
            avatar: None,
            url: Some(format!("https://bsky.app/profile/{did}/post/{rkey}")),
            created_at: record.created_at.as_deref(),
            fallback_time,
            lang: record.langs.first().map(String::as_str),
            links,
            tags,
        },
    )
}

/// A facet's byte range when it lies on character boundaries of `text`
/// (facets from the wild may not), else `(0, 0)`.
fn visible_range(text: &str, start: u64, end: u64) -> (u32, u32) {
    let ok = start <= end
        && end <= text.len() as u64
        && text.is_char_boundary(start as usize)
        && text.is_char_boundary(end as usize);
    if ok {
        (start as u32, end as u32)
    } else {
        (0, 0)
    }
}

/// What is known of an author.
#[derive(Clone, Debug, Default)]
struct Author {
    handle: Option<String>,
    name: Option<String>,
    avatar: Option<String>,
    /// Looked up (or found unknown); until then a post may wait for it.
    looked_up: bool,
    /// When an unknown or failed entry should be asked again.
    retry_after: Option<Instant>,
}

#[derive(Deserialize)]
struct ProfilesAnswer {
    profiles: Vec<Profile>,
}

#[derive(Deserialize)]
struct Profile {
    did: String,
    handle: Option<String>,
    #[serde(rename = "displayName")]
    display_name: Option<String>,
    avatar: Option<String>,
}

type Lookup = Pin<Box<dyn Future<Output = (Vec<String>, Result<Vec<Profile>, String>)> + Send>>;

/// Authors' profiles: the cache, the calls in flight, and the posts that
/// wait for them, in arrival order.
struct Authors {
    http: reqwest::Client,
    appview: reqwest::Url,
    cache: LruCache<String, Author>,
    /// Authors to look up, oldest first; each appears once.
    wanted: VecDeque<String>,
    asked: HashSet<String>,
    lookups: FuturesUnordered<Lookup>,
    /// No lookups before this (the profile service just failed).
    paused_until: Option<Instant>,
    pending: VecDeque<PendingPost>,
}

impl Authors {
    fn new(http: reqwest::Client, appview: reqwest::Url, size: NonZeroUsize) -> Authors {
        Authors {
            http,
            appview,
            cache: LruCache::new(size),
            wanted: VecDeque::new(),
            asked: HashSet::new(),
            lookups: FuturesUnordered::new(),
            paused_until: None,
            pending: VecDeque::new(),
        }
    }

    fn learn_handle(&mut self, did: &str, handle: &str) {
        if handle == "handle.invalid" {
            return;
        }
        match self.cache.get_mut(did) {
            Some(author) => author.handle = Some(handle.to_owned()),
            None => {
                self.cache.put(
                    did.to_owned(),
                    Author {
                        handle: Some(handle.to_owned()),
                        ..Author::default()
                    },
                );
            }
        }
    }

    /// Queues a post, asking for its author when not known.
    fn admit(&mut self, post: PendingPost) {
        let now = Instant::now();
        let known = self
            .cache
            .get(&post.did)
            .is_some_and(|a| a.looked_up && a.retry_after.is_none_or(|t| t > now));
        if !known && !self.asked.contains(&post.did) && !self.is_paused(now) {
            self.asked.insert(post.did.clone());
            self.wanted.push_back(post.did.clone());
        }
        self.pending.push_back(post);
    }

    fn is_paused(&self, now: Instant) -> bool {
        self.paused_until.is_some_and(|t| t > now)
    }

    fn start_lookups(&mut self) {
        while self.lookups.len() < LOOKUPS_IN_FLIGHT && !self.wanted.is_empty() {
            let count = self.wanted.len().min(PROFILES_PER_CALL);
            let dids: Vec<String> = self.wanted.drain(..count).collect();
            self.lookups.push(Box::pin(get_profiles(
                self.http.clone(),
                self.appview.clone(),
                dids,
            )));
        }
    }

    fn finish_lookup(&mut self, (dids, result): (Vec<String>, Result<Vec<Profile>, String>)) {
        let now = Instant::now();
        for did in &dids {
            self.asked.remove(did);
        }
        match result {
            Ok(profiles) => {
                let mut found = HashSet::new();
                for profile in profiles {
                    found.insert(profile.did.clone());
                    let handle = profile.handle.filter(|h| h != "handle.invalid");
                    let known_handle = self.cache.get(&profile.did).and_then(|a| a.handle.clone());
                    self.cache.put(
                        profile.did,
                        Author {
                            handle: handle.or(known_handle),
                            name: profile.display_name,
                            avatar: profile.avatar,
                            looked_up: true,
                            retry_after: None,
                        },
                    );
                }
                for did in dids.iter().filter(|d| !found.contains(*d)) {
                    self.mark_unknown(did, now + UNKNOWN_AUTHOR_TTL);
                }
            }
            Err(error) => {
                warn!(%error, authors = dids.len(), "profile lookup failed; posts go out with handles for now");
                self.paused_until = Some(now + LOOKUP_PAUSE);
                for did in &dids {
                    self.mark_unknown(did, now + LOOKUP_PAUSE);
                }
                // Authors still queued are not asked during the pause.
                for did in self.wanted.drain(..) {
                    self.asked.remove(&did);
                }
            }
        }
    }

    fn mark_unknown(&mut self, did: &str, retry_after: Instant) {
        let handle = self.cache.get(did).and_then(|a| a.handle.clone());
        self.cache.put(
            did.to_owned(),
            Author {
                handle,
                looked_up: true,
                retry_after: Some(retry_after),
                ..Author::default()
            },
        );
    }

    /// When the oldest waiting post must go out.
    fn next_deadline(&self) -> Option<Instant> {
        self.pending.front().map(|p| p.deadline)
    }

    /// Sends the waiting posts that can go, in order; false on shutdown.
    async fn flush_ready(&mut self, link: &SourceLink) -> bool {
        let now = Instant::now();
        while let Some(head) = self.pending.front() {
            let ready = head.deadline <= now
                || self.is_paused(now)
                || self.cache.peek(&head.did).is_some_and(|a| a.looked_up);
            if !ready {
                break;
            }
            if !self.send_head(link).await {
                return false;
            }
        }
        true
    }

    /// Sends every waiting post with what is known; false on shutdown.
    async fn flush_all(&mut self, link: &SourceLink) -> bool {
        while !self.pending.is_empty() {
            if !self.send_head(link).await {
                return false;
            }
        }
        true
    }

    async fn send_head(&mut self, link: &SourceLink) -> bool {
        let Some(mut post) = self.pending.pop_front() else {
            return true;
        };
        if let Some(author) = self.cache.get(&post.did) {
            if let Some(handle) = &author.handle {
                post.tweet.screen_name = handle.clone();
            }
            let name = author
                .name
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .unwrap_or(&post.tweet.screen_name);
            post.tweet.name = name.to_owned();
            if let Some(avatar) = author
                .avatar
                .as_deref()
                .filter(|a| super::normalize::is_http_url(a))
            {
                post.tweet.user_profile_image = avatar.to_owned();
            }
        } else {
            post.tweet.name = post.tweet.screen_name.clone();
        }
        link.emit(post.tweet).await
    }
}

/// One `app.bsky.actor.getProfiles` call.
async fn get_profiles(
    http: reqwest::Client,
    appview: reqwest::Url,
    dids: Vec<String>,
) -> (Vec<String>, Result<Vec<Profile>, String>) {
    let mut url = appview;
    url.set_path(&format!(
        "{}/xrpc/app.bsky.actor.getProfiles",
        url.path().trim_end_matches('/')
    ));
    let call = async {
        let query: Vec<(&str, &str)> = dids.iter().map(|d| ("actors", d.as_str())).collect();
        let response = http
            .get(url)
            .query(&query)
            .send()
            .await
            .map_err(|e| super::describe_http_error(&e))?;
        let status = response.status();
        let body = read_body_capped(response, MAX_PROFILES_BODY).await?;
        if !status.is_success() {
            let detail = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            return Err(format!("the profile service answered {status}: {detail}"));
        }
        serde_json::from_slice::<ProfilesAnswer>(&body)
            .map(|answer| answer.profiles)
            .map_err(|e| format!("the profile service's answer does not parse: {e}"))
    };
    let result = match tokio::time::timeout(LOOKUP_TIMEOUT, call).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "the profile service did not answer within {} s",
            LOOKUP_TIMEOUT.as_secs()
        )),
    };
    (dids, result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(json: &str) -> PostRecord {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn subscribe_url_asks_for_posts_and_resumes_before_the_last_event() {
        let base = reqwest::Url::parse("wss://jetstream2.us-east.bsky.network/subscribe").unwrap();
        let url = subscribe_url(&base, None);
        assert_eq!(
            url.as_str(),
            "wss://jetstream2.us-east.bsky.network/subscribe?wantedCollections=app.bsky.feed.post&maxMessageSizeBytes=524288"
        );
        let resume = Resume {
            last_time_us: Some(1_725_911_162_329_308),
            ..Resume::default()
        };
        let url = subscribe_url(&base, resume.cursor());
        assert!(url.as_str().ends_with("&cursor=1725911157329308"), "{url}");
    }

    #[test]
    fn a_post_record_maps_to_the_protocol_post() {
        // The worked example of the richtext facet docs: byte offsets past a
        // two-byte character.
        let r = record(
            r#"{"$type":"app.bsky.feed.post","text":"café @alice.bsky.social example.com/lo… #rust","createdAt":"2024-09-09T19:46:02.102Z","langs":["fr","en"],
               "facets":[
                 {"index":{"byteStart":6,"byteEnd":24},"features":[{"$type":"app.bsky.richtext.facet#mention","did":"did:plc:abc"}]},
                 {"index":{"byteStart":25,"byteEnd":42},"features":[{"$type":"app.bsky.richtext.facet#link","uri":"https://example.com/long/path"}]},
                 {"index":{"byteStart":43,"byteEnd":48},"features":[{"$type":"app.bsky.richtext.facet#tag","tag":"rust"}]}],
               "tags":["extra"]}"#,
        );
        let text = r.text.clone();
        let tweet = post_from_record(
            "did:plc:xyz",
            "3l3qo2vutsw2b",
            1_725_911_162_329_308,
            "id".into(),
            r,
        );
        assert_eq!(
            tweet.url.as_deref(),
            Some("https://bsky.app/profile/did:plc:xyz/post/3l3qo2vutsw2b")
        );
        assert_eq!(tweet.created_at, "2024-09-09T19:46:02.102Z");
        assert_eq!(tweet.lang.as_deref(), Some("fr"));
        assert_eq!(tweet.source, "bluesky");
        assert_eq!(tweet.links.len(), 1);
        let link = &tweet.links[0];
        assert_eq!(
            &text[link.start as usize..link.end as usize],
            "example.com/lo…"
        );
        assert_eq!(tweet.tags, ["rust", "extra"]);
        assert_eq!(
            tweet.screen_name, "did:plc:xyz",
            "the DID until the profile is known"
        );
    }

    #[test]
    fn facets_off_character_boundaries_keep_the_link_without_a_range() {
        assert_eq!(visible_range("café", 0, 4), (0, 0));
        assert_eq!(visible_range("café", 0, 5), (0, 5));
        assert_eq!(visible_range("café", 3, 99), (0, 0));
    }

    #[test]
    fn a_bad_created_at_falls_back_to_the_event_time() {
        let r = record(r#"{"text":"hi","createdAt":"not a time"}"#);
        let tweet = post_from_record("did:plc:x", "k", 1_700_000_000_000_000, "id".into(), r);
        assert_eq!(tweet.created_at, "2023-11-14T22:13:20Z");
        assert_eq!(tweet.lang, None);
    }

    #[test]
    fn delivered_posts_are_remembered_within_a_window() {
        let mut resume = Resume {
            last_time_us: Some(100_000_000),
            ..Resume::default()
        };
        assert!(resume.remember(100_000_000, "a"));
        assert!(!resume.remember(100_000_000, "a"));
        resume.last_time_us = Some(100_000_000 + DELIVERED_WINDOW_US + 1);
        assert!(resume.remember(100_000_000 + DELIVERED_WINDOW_US + 1, "b"));
        assert!(
            resume.remember(100_000_000, "a"),
            "forgotten past the window"
        );
    }
}
