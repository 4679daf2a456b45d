//! The hub: every connection's search and stop/start state, and the fan-out
//! of each post to the connections whose search matches it.
//!
//! Connections with the same search (after white space is normalised) share
//! one entry, so a post is checked once per distinct active search, not once
//! per browser.

use std::collections::HashMap;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use axum::extract::ws::Utf8Bytes;
use tokio::sync::{mpsc, watch};

use super::metrics::Metrics;
use super::sources::{ActiveSearches, SearchGate, SearchWatch, SourcePost};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::query::highlight::{Highlighter, Range};
use crate::query::{text_spans, PreparedPost, Query, SearchId, SearchIndex};
use crate::wire::{TextRange, Tweet};

pub type ConnectionId = u64;

/// A post with its JSON written once, however many connections it goes to
/// (once per search when the searches mark different parts of it).
#[derive(Debug)]
pub struct EncodedPost {
    pub tweet: Arc<Tweet>,
    pub json: Box<RawValue>,
    /// When the source handed the post over, for the delivery-time metric.
    pub received_at: Instant,
    /// The `tweets` frame of this post alone, written by the first
    /// connection that sends it so: at a steady rate most posts go out
    /// alone, and every connection then shares one buffer.
    alone: OnceLock<Utf8Bytes>,
}

impl EncodedPost {
    /// The post as sent, with the spans of its text (see [`Tweet::spans`])
    /// unless it carries its own.
    pub fn new(tweet: Arc<Tweet>, received_at: Instant) -> EncodedPost {
        // A post is strings and options of strings: serialising cannot fail.
        let mut json = serde_json::value::to_raw_value(&*tweet).expect("posts always serialize");
        if tweet.spans.is_empty() {
            let spans = text_spans(&tweet.text);
            if !spans.is_empty() {
                json = with_field(&json, "spans", &spans);
            }
        }
        EncodedPost {
            tweet,
            json,
            received_at,
            alone: OnceLock::new(),
        }
    }

    /// The post with the marks of one search (see [`Tweet::marks`]),
    /// written from this encoding.
    fn with_marks(&self, marks: &[Range]) -> EncodedPost {
        let marks: Vec<TextRange> = marks
            .iter()
            .map(|&(start, end)| TextRange {
                start: start as u32,
                end: end as u32,
            })
            .collect();
        EncodedPost {
            tweet: self.tweet.clone(),
            json: with_field(&self.json, "marks", &marks),
            received_at: self.received_at,
            alone: OnceLock::new(),
        }
    }

    /// The `tweets` frame of this post alone (see [`tweets_frame`]).
    pub fn alone_frame(&self) -> Utf8Bytes {
        self.alone
            .get_or_init(|| frame_of([&*self.json]).into())
            .clone()
    }
}

/// `object` (a JSON object) with one more field, `name`, last.
fn with_field<T: Serialize + ?Sized>(object: &RawValue, name: &str, value: &T) -> Box<RawValue> {
    let object = object.get();
    // Numbers and fixed names only: serialising cannot fail.
    let value = serde_json::to_string(value).expect("spans and marks always serialize");
    // The field goes in before the object's last brace.
    let mut json = String::with_capacity(object.len() + name.len() + value.len() + 4);
    json.push_str(&object[..object.len() - 1]);
    json.push_str(",\"");
    json.push_str(name);
    json.push_str("\":");
    json.push_str(&value);
    json.push('}');
    RawValue::from_string(json).expect("an object with one more field")
}

/// The `tweets` message over posts already encoded; the same JSON as
/// [`crate::wire::ServerMessage::Tweets`] (a unit test holds them equal).
pub fn tweets_frame(posts: &[Arc<EncodedPost>]) -> Utf8Bytes {
    match posts {
        [post] => post.alone_frame(),
        _ => frame_of(posts.iter().map(|p| &*p.json)).into(),
    }
}

fn frame_of<'a>(posts: impl IntoIterator<Item = &'a RawValue>) -> String {
    #[derive(Serialize)]
    struct TweetsFrame<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        tweets: Vec<&'a RawValue>,
    }
    let frame = TweetsFrame {
        kind: "tweets",
        tweets: posts.into_iter().collect(),
    };
    serde_json::to_string(&frame).expect("raw JSON values always serialize")
}

/// A post queued for one connection. A search change or a stop gives the
/// connection a fresh queue, so a new search never shows the old one's
/// posts and they never cost it `skipped`.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub post: Arc<EncodedPost>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegisterError {
    /// Raise `limits.max_connections` to accept more.
    #[error("the server is full ({max} connections); try again later")]
    Full { max: usize },
}

/// One queue of posts for a connection, for one search (a change of
/// search or a stop gives it a new one).
#[derive(Debug)]
pub struct Outbox {
    /// Sender: the dispatch, with `try_send`; a full queue adds to
    /// `skipped` instead of waiting.
    receiver: mpsc::Receiver<Delivery>,
    /// Matching posts dropped because this queue was full.
    skipped: Arc<AtomicU64>,
}

/// The dispatch's end of an [`Outbox`].
#[derive(Debug, Clone)]
struct Member {
    sender: mpsc::Sender<Delivery>,
    skipped: Arc<AtomicU64>,
}

fn outbox(size: usize) -> (Member, Outbox) {
    let (sender, receiver) = mpsc::channel(size);
    let skipped = Arc::new(AtomicU64::new(0));
    (
        Member {
            sender,
            skipped: skipped.clone(),
        },
        Outbox { receiver, skipped },
    )
}

/// What the socket task keeps of its registration. Dropping it unregisters.
pub struct Registration {
    pub id: ConnectionId,
    /// Posts for this connection; `None` while it has no search or is
    /// stopped: an idle browser holds no queue.
    outbox: Option<Outbox>,
    /// The skip counters of queues already replaced, kept until reported
    /// and no longer shared with the dispatch: a post it found a full old
    /// queue for just before the switch is still counted.
    retired: Vec<Arc<AtomicU64>>,
    hub: Arc<Hub>,
}

impl Registration {
    /// Takes the queue a search change or a stop hands over. Posts queued
    /// in the old one go with it; the count of its skipped posts does not:
    /// it is reported like any other.
    pub fn apply(&mut self, change: OutboxChange) {
        if let OutboxChange::Replace(outbox) = change {
            if let Some(old) = std::mem::replace(&mut self.outbox, outbox) {
                // Dropping the receiver closes the queue: no more posts,
                // and no more skips, once the dispatch sees it.
                self.retired.push(old.skipped);
            }
        }
    }

    /// The next posts (at most `limit`) into `batch`; never ready while
    /// the connection has no queue. 0 when the queue was closed.
    pub async fn next_batch(&mut self, batch: &mut Vec<Delivery>, limit: usize) -> usize {
        match &mut self.outbox {
            Some(outbox) => outbox.receiver.recv_many(batch, limit).await,
            None => std::future::pending().await,
        }
    }

    /// A post already queued, if any.
    pub fn try_next(&mut self) -> Option<Delivery> {
        self.outbox.as_mut()?.receiver.try_recv().ok()
    }

    #[cfg(test)]
    fn unreported_skips(&self) -> u64 {
        let current = self
            .outbox
            .as_ref()
            .map_or(0, |o| o.skipped.load(Ordering::Relaxed));
        let retired: u64 = self.retired.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        retired + current
    }

    /// Matching posts dropped for this connection since the last call.
    pub fn take_skipped(&mut self) -> u64 {
        let current = self
            .outbox
            .as_ref()
            .map_or(0, |o| o.skipped.swap(0, Ordering::Relaxed));
        let mut retired = 0;
        self.retired.retain(|counter| {
            retired += counter.swap(0, Ordering::Relaxed);
            // Still shared: the dispatch has not let go of the old queue.
            Arc::strong_count(counter) > 1
        });
        retired + current
    }
}

/// What a connection's queue becomes after a change of search or state.
#[derive(Debug)]
pub enum OutboxChange {
    /// Nothing changed: what is queued stays.
    Keep,
    /// A fresh queue (or none, when stopped): posts queued before go.
    Replace(Option<Outbox>),
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.unregister(self.id);
    }
}

struct Connection {
    query: Option<Arc<Query>>,
    streaming: bool,
}

struct SearchGroup {
    /// The search's entry in the dispatch's [`Routing`].
    id: SearchId,
    query: Arc<Query>,
    /// Connections with this search that are streaming.
    members: usize,
}

/// The connections and their searches, as the socket tasks change them.
/// The dispatch does not read it: it keeps its own [`Routing`], which
/// follows the registry through [`Change`]s.
#[derive(Default)]
struct Registry {
    next_id: ConnectionId,
    connections: HashMap<ConnectionId, Connection>,
    /// Keyed by [`Query::term`]; only groups with streaming members exist.
    searches: HashMap<String, SearchGroup>,
    next_search_id: SearchId,
    /// Changes made under the current lock, moved to [`Hub::pending`]
    /// before it is released.
    changes: Vec<Change>,
}

/// A change of who gets which search's posts, from the registry to the
/// dispatch's routing.
enum Change {
    Join {
        search: SearchId,
        query: Arc<Query>,
        connection: ConnectionId,
        member: Member,
    },
    Leave {
        search: SearchId,
        connection: ConnectionId,
    },
}

impl Registry {
    /// True when the search lost its last member and is no longer active.
    fn leave_group(&mut self, id: ConnectionId, term: &str) -> bool {
        let Some(group) = self.searches.get_mut(term) else {
            return false;
        };
        group.members -= 1;
        let search = group.id;
        let emptied = group.members == 0;
        if emptied {
            self.searches.remove(term);
        }
        self.changes.push(Change::Leave {
            search,
            connection: id,
        });
        emptied
    }

    /// True when the search was not active before.
    fn join_group(&mut self, id: ConnectionId, query: Arc<Query>, member: Member) -> bool {
        let (search, new) = match self.searches.get_mut(query.term()) {
            Some(group) => {
                group.members += 1;
                (group.id, false)
            }
            None => {
                let search = self.next_search_id;
                self.next_search_id = self.next_search_id.wrapping_add(1);
                self.searches.insert(
                    query.term().to_owned(),
                    SearchGroup {
                        id: search,
                        query: query.clone(),
                        members: 1,
                    },
                );
                (search, true)
            }
        };
        self.changes.push(Change::Join {
            search,
            query,
            connection: id,
            member,
        });
        new
    }

    fn snapshot(&self) -> ActiveSearches {
        Arc::new(
            self.searches
                .iter()
                .map(|(term, group)| (term.clone(), group.query.clone()))
                .collect(),
        )
    }
}

/// The dispatch's own copy of who wants which posts: every active search
/// filed in an index, with the queues of its streaming connections.
#[derive(Default)]
struct Routing {
    index: SearchIndex,
    routes: HashMap<SearchId, Route>,
    /// For posts the upstream routed by search (X's rules).
    by_term: HashMap<Box<str>, SearchId>,
    /// Reused for every post.
    candidates: Vec<SearchId>,
}

struct Route {
    query: Arc<Query>,
    members: Vec<(ConnectionId, Member)>,
}

impl Routing {
    fn apply(&mut self, changes: Vec<Change>) {
        for change in changes {
            match change {
                Change::Join {
                    search,
                    query,
                    connection,
                    member,
                } => {
                    let route = self.routes.entry(search).or_insert_with(|| {
                        self.index.insert(search, &query);
                        self.by_term.insert(query.term().into(), search);
                        Route {
                            query,
                            members: Vec::new(),
                        }
                    });
                    route.members.push((connection, member));
                }
                Change::Leave { search, connection } => {
                    let Some(route) = self.routes.get_mut(&search) else {
                        continue;
                    };
                    route.members.retain(|(id, _)| *id != connection);
                    if route.members.is_empty() {
                        let route = self.routes.remove(&search).expect("present");
                        self.index.remove(search);
                        self.by_term.remove(route.query.term());
                    }
                }
            }
        }
    }
}

/// Shared by the dispatch (per post) and the socket tasks (per command).
///
/// The two sides never wait on each other's work. Socket tasks change the
/// [`Registry`] under its lock, which the dispatch never takes; each
/// change is queued there as a [`Change`]. The dispatch holds the
/// [`Routing`] lock while it matches and fans out one post, and first
/// applies the changes queued so far: every post dispatched after a
/// command returns sees that command's effect, and a post being
/// dispatched never sees half of one. A socket task that finds the
/// dispatch idle applies the changes itself (with `try_lock`, never
/// waiting), so changes do not pile up while no posts come.
pub struct Hub {
    /// Held for map updates only; never across an `.await`, never by the
    /// dispatch.
    registry: Mutex<Registry>,
    /// Held by the dispatch for one post at a time, and by a socket task
    /// only when it is free.
    routing: Mutex<Routing>,
    /// Changes not yet applied to the routing, in the order they were made
    /// (moved here under the registry lock). Its lock is only ever held to
    /// move the list, so the dispatch and the socket tasks share it
    /// without waiting on each other's work.
    pending: Mutex<Vec<Change>>,
    /// Whether `pending` holds anything, read without its lock on every post.
    has_pending: AtomicBool,
    max_connections: usize,
    outbound_queue: usize,
    metrics: Arc<Metrics>,
    /// A version of the set of distinct active searches, bumped on every
    /// change (under the registry lock). Receivers: the source task, which
    /// then asks for the set ([`Hub::active_set`]).
    active: watch::Sender<u64>,
    /// Asked before a search that is not active yet is accepted.
    gate: Option<Arc<dyn SearchGate>>,
}

/// Why a search was not taken.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SearchRefused {
    /// The source cannot take it; the sentence says why.
    #[error("{0}")]
    SourceLimit(String),
}

/// A panic while holding a lock leaves plain maps behind, still
/// consistent enough to keep serving everyone else.
fn unpoisoned<T>(result: std::sync::LockResult<MutexGuard<'_, T>>) -> MutexGuard<'_, T> {
    result.unwrap_or_else(|e| e.into_inner())
}

impl Hub {
    pub fn new(max_connections: usize, outbound_queue: usize, metrics: Arc<Metrics>) -> Arc<Hub> {
        Self::with_gate(max_connections, outbound_queue, metrics, None)
    }

    pub fn with_gate(
        max_connections: usize,
        outbound_queue: usize,
        metrics: Arc<Metrics>,
        gate: Option<Arc<dyn SearchGate>>,
    ) -> Arc<Hub> {
        Arc::new(Hub {
            registry: Mutex::new(Registry::default()),
            routing: Mutex::new(Routing::default()),
            pending: Mutex::new(Vec::new()),
            has_pending: AtomicBool::new(false),
            max_connections,
            outbound_queue,
            metrics,
            active: watch::Sender::new(0),
            gate,
        })
    }

    /// Follows the set of distinct active searches.
    pub fn watch_searches(self: &Arc<Self>) -> SearchWatch {
        let hub = self.clone();
        SearchWatch::new(self.active.subscribe(), Arc::new(move || hub.active_set()))
    }

    /// The distinct active searches now.
    pub fn active_set(&self) -> ActiveSearches {
        self.lock().snapshot()
    }

    fn publish(&self) {
        self.active.send_modify(|version| *version += 1);
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        unpoisoned(self.registry.lock())
    }

    /// Queues the changes made under `registry` for the routing (in the
    /// order of the registry's lock), lets go of the registry, and applies
    /// them if the dispatch is not busy.
    fn commit(&self, mut registry: MutexGuard<'_, Registry>) {
        if !registry.changes.is_empty() {
            let mut pending = unpoisoned(self.pending.lock());
            pending.append(&mut registry.changes);
            self.has_pending.store(true, Ordering::SeqCst);
        }
        drop(registry);
        self.settle();
    }

    /// The changes queued so far.
    fn take_pending(&self) -> Vec<Change> {
        if !self.has_pending.load(Ordering::SeqCst) {
            return Vec::new();
        }
        let mut pending = unpoisoned(self.pending.lock());
        self.has_pending.store(false, Ordering::SeqCst);
        std::mem::take(&mut *pending)
    }

    /// Applies the queued changes to the routing if the dispatch is not
    /// using it; if it is, the dispatch applies them when it lets go.
    fn settle(&self) {
        loop {
            // Pairs with the fence after the routing is let go below: either
            // this `try_lock` finds the routing free, or its holder sees
            // `has_pending` set afterwards. No change is left behind.
            fence(Ordering::SeqCst);
            let mut routing = match self.routing.try_lock() {
                Ok(routing) => routing,
                Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => return,
            };
            routing.apply(self.take_pending());
            drop(routing);
            fence(Ordering::SeqCst);
            if !self.has_pending.load(Ordering::SeqCst) {
                return;
            }
        }
    }

    pub fn register(self: &Arc<Self>) -> Result<Registration, RegisterError> {
        let mut registry = self.lock();
        if registry.connections.len() >= self.max_connections {
            return Err(RegisterError::Full {
                max: self.max_connections,
            });
        }
        registry.next_id += 1;
        let id = registry.next_id;
        registry.connections.insert(
            id,
            Connection {
                query: None,
                streaming: true,
            },
        );
        Ok(Registration {
            id,
            outbox: None,
            retired: Vec::new(),
            hub: self.clone(),
        })
    }

    fn unregister(&self, id: ConnectionId) {
        let mut registry = self.lock();
        if let Some(connection) = registry.connections.remove(&id) {
            if let (Some(query), true) = (connection.query, connection.streaming) {
                if registry.leave_group(id, query.term()) {
                    self.publish();
                }
            }
        }
        self.commit(registry);
    }

    /// Sets a connection's search and resumes it. When that changes what
    /// the connection gets, it gets a fresh queue: it comes back and
    /// replaces the registration's (posts queued for the old search go
    /// with the old one). The same search again, while streaming, changes
    /// nothing and keeps what is queued. A search the source cannot take
    /// is refused and the previous one stays.
    pub fn set_query(
        &self,
        id: ConnectionId,
        query: Arc<Query>,
    ) -> Result<OutboxChange, SearchRefused> {
        let mut registry = self.lock();
        if let Some(gate) = &self.gate {
            if !registry.searches.contains_key(query.term()) {
                let current = registry.connections.get(&id);
                let frees_one = current.is_some_and(|c| {
                    c.streaming
                        && c.query.as_ref().is_some_and(|q| {
                            registry
                                .searches
                                .get(q.term())
                                .is_some_and(|g| g.members == 1)
                        })
                });
                let distinct_after = registry.searches.len() + 1 - usize::from(frees_one);
                gate.admit(&query, distinct_after)
                    .map_err(SearchRefused::SourceLimit)?;
            }
        }
        let Some(connection) = registry.connections.get_mut(&id) else {
            return Ok(OutboxChange::Keep);
        };
        let unchanged = connection.streaming
            && connection
                .query
                .as_ref()
                .is_some_and(|q| q.term() == query.term());
        if unchanged {
            return Ok(OutboxChange::Keep);
        }
        // Made before any state changes, so nothing is left half-changed
        // if it fails.
        let (member, outbox) = outbox(self.outbound_queue);
        let old = connection.query.replace(query.clone());
        let was_streaming = std::mem::replace(&mut connection.streaming, true);
        let mut changed = false;
        if let (Some(old), true) = (old, was_streaming) {
            changed |= registry.leave_group(id, old.term());
        }
        changed |= registry.join_group(id, query, member);
        if changed {
            self.publish();
        }
        self.commit(registry);
        Ok(OutboxChange::Replace(Some(outbox)))
    }

    /// Stops or resumes delivery. A change gives the connection a fresh
    /// queue, as [`Hub::set_query`] does (posts queued before a stop are
    /// not shown after it); no change keeps everything.
    pub fn set_streaming(&self, id: ConnectionId, streaming: bool) -> OutboxChange {
        let mut registry = self.lock();
        let Some(connection) = registry.connections.get_mut(&id) else {
            return OutboxChange::Keep;
        };
        if connection.streaming == streaming {
            return OutboxChange::Keep;
        }
        // A stopped connection, or one without a search, needs no queue.
        // Made before any state changes, as in `set_query`.
        let (member, fresh) = match (&connection.query, streaming) {
            (Some(_), true) => {
                let (member, outbox) = outbox(self.outbound_queue);
                (Some(member), Some(outbox))
            }
            _ => (None, None),
        };
        connection.streaming = streaming;
        if let Some(query) = connection.query.clone() {
            let changed = match member {
                Some(member) => registry.join_group(id, query, member),
                None => registry.leave_group(id, query.term()),
            };
            if changed {
                self.publish();
            }
        }
        self.commit(registry);
        OutboxChange::Replace(fresh)
    }

    /// Checks `tweet` against every active search and queues it for the
    /// connections that match. Never waits: a full queue is counted as skipped.
    pub fn dispatch(&self, tweet: &Arc<Tweet>) -> usize {
        self.dispatch_routed(tweet, None)
    }

    /// As [`Hub::dispatch`], checking only the searches in `routes` when
    /// the upstream says which ones the post matched (X's rules).
    pub fn dispatch_routed(&self, tweet: &Arc<Tweet>, routes: Option<&[String]>) -> usize {
        self.dispatch_received(tweet, routes, Instant::now())
    }

    /// As [`Hub::dispatch_routed`], for a post the source handed over at
    /// `received_at`.
    pub fn dispatch_received(
        &self,
        tweet: &Arc<Tweet>,
        routes: Option<&[String]>,
        received_at: Instant,
    ) -> usize {
        // Marks (per search) and spans are the server's to write.
        let unmarked;
        let tweet = if tweet.marks.is_empty() && tweet.spans.is_empty() {
            tweet
        } else {
            unmarked = Arc::new(Tweet {
                marks: Vec::new(),
                spans: Vec::new(),
                ..Tweet::clone(tweet)
            });
            &unmarked
        };
        let delivered =
            self.with_routing(|routing| self.fan_out(routing, tweet, routes, received_at));
        self.metrics.posts_delivered.inc_by(delivered as u64);
        delivered
    }

    /// Runs `work` on the routing as of now (every change made before
    /// this call applied), as the dispatch does for each post.
    fn with_routing<R>(&self, work: impl FnOnce(&mut Routing) -> R) -> R {
        let mut routing = unpoisoned(self.routing.lock());
        routing.apply(self.take_pending());
        let result = work(&mut routing);
        drop(routing);
        // Changes queued meanwhile, by socket tasks that left them to us.
        self.settle();
        result
    }

    fn fan_out(
        &self,
        routing: &mut Routing,
        tweet: &Arc<Tweet>,
        routes: Option<&[String]>,
        received_at: Instant,
    ) -> usize {
        if routing.routes.is_empty() || routes.is_some_and(<[String]>::is_empty) {
            // Nobody is searching: do not cut the post into words for nothing.
            return 0;
        }
        let prepared = PreparedPost::new(tweet);
        let mut candidates = std::mem::take(&mut routing.candidates);
        match routes {
            Some(terms) => {
                candidates.clear();
                candidates.extend(terms.iter().filter_map(|t| routing.by_term.get(t.as_str())));
                // A search the upstream names twice still gets the post once.
                candidates.sort_unstable();
                candidates.dedup();
            }
            None => routing.index.candidates(&prepared, &mut candidates),
        }
        let mut delivered = 0;
        // Encoded and cut for marks on the first match only: most posts
        // match no one.
        let mut encoded: Option<Arc<EncodedPost>> = None;
        let mut highlighter: Option<Highlighter> = None;
        let mut marked: Vec<(Vec<Range>, Arc<EncodedPost>)> = Vec::new();
        for route in candidates.iter().filter_map(|id| routing.routes.get(id)) {
            if !route.query.matches(&prepared) {
                continue;
            }
            let plain = encoded
                .get_or_insert_with(|| Arc::new(EncodedPost::new(tweet.clone(), received_at)));
            let marks = highlighter
                .get_or_insert_with(|| Highlighter::new(tweet))
                .marks(&route.query, &prepared);
            // Searches that mark the same parts share one encoding (and
            // one frame): a post matched by many searches is usually
            // marked in a few ways only.
            let post = if marks.is_empty() {
                plain.clone()
            } else if let Some((_, post)) = marked.iter().find(|(m, _)| *m == marks) {
                post.clone()
            } else {
                let post = Arc::new(plain.with_marks(&marks));
                marked.push((marks, post.clone()));
                post
            };
            for (_, member) in &route.members {
                let delivery = Delivery { post: post.clone() };
                match member.sender.try_send(delivery) {
                    Ok(()) => delivered += 1,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        member.skipped.fetch_add(1, Ordering::Relaxed);
                        self.metrics.posts_skipped.inc();
                    }
                    // The connection changed its search or left; its
                    // change is queued and this post was not for it.
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                }
            }
        }
        routing.candidates = candidates;
        delivered
    }

    /// Distinct searches with at least one streaming connection.
    pub fn active_searches(&self) -> usize {
        self.lock().searches.len()
    }

    pub fn connection_count(&self) -> usize {
        self.lock().connections.len()
    }
}

/// Feeds every post from the source to the hub until the source ends, on
/// a thread of its own: matching and fan-out never run on (or stall) the
/// runtime's workers that serve the sockets.
///
/// `posts` — sender: the source task; receiver: this thread. Bounded, so a
/// source faster than the fan-out is slowed down rather than buffered
/// without limit. When the source ends and drops its sender, the thread ends.
pub fn spawn_dispatch(
    hub: Arc<Hub>,
    mut posts: mpsc::Receiver<SourcePost>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("dispatch".to_owned())
        .spawn(move || {
            while let Some(post) = posts.blocking_recv() {
                hub.metrics.posts_received.inc();
                hub.dispatch_received(
                    &Arc::new(post.tweet),
                    post.routes.as_deref(),
                    post.received_at,
                );
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{SpanKind, TextSpan};

    fn tweet(id: &str, text: &str) -> Arc<Tweet> {
        Arc::new(Tweet {
            id: id.into(),
            name: "N".into(),
            screen_name: "n".into(),
            text: text.into(),
            user_profile_image: String::new(),
            url: None,
            created_at: "2026-11-25T12:00:00Z".into(),
            lang: None,
            source: "test".into(),
            ..Default::default()
        })
    }

    fn query(term: &str) -> Arc<Query> {
        Arc::new(Query::parse(term, 512).unwrap())
    }

    /// Sets the search as a socket task would, taking the fresh queue.
    fn search(hub: &Hub, registration: &mut Registration, term: &str) {
        registration.apply(hub.set_query(registration.id, query(term)).unwrap());
    }

    fn streaming(hub: &Hub, registration: &mut Registration, on: bool) {
        registration.apply(hub.set_streaming(registration.id, on));
    }

    fn texts(registration: &mut Registration) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(d) = registration.try_next() {
            out.push(d.post.tweet.text.clone());
        }
        out
    }

    #[test]
    fn tweets_frame_is_the_protocol_message() {
        let posts = [
            tweet("1", "a \"quoted\" <b>"),
            tweet("2", "é 🎉 #tag @ada https://x.example"),
        ];
        let encoded: Vec<_> = posts
            .iter()
            .map(|t| Arc::new(EncodedPost::new(t.clone(), Instant::now())))
            .collect();
        // As the server sends them: with the spans of their text.
        let posts: Vec<_> = posts
            .iter()
            .map(|t| {
                Arc::new(Tweet {
                    spans: text_spans(&t.text),
                    ..Tweet::clone(t)
                })
            })
            .collect();
        assert_eq!(posts[1].spans.len(), 3);
        let typed = crate::wire::ServerMessage::Tweets {
            tweets: posts.to_vec(),
        };
        assert_eq!(tweets_frame(&encoded).as_str(), typed.to_json());
        let alone = crate::wire::ServerMessage::Tweets {
            tweets: vec![posts[1].clone()],
        };
        assert_eq!(tweets_frame(&encoded[1..]).as_str(), alone.to_json());
        assert_eq!(encoded[1].alone_frame().as_str(), alone.to_json());
        let marked = encoded[1].with_marks(&[(0, 2), (3, 7)]);
        let typed = crate::wire::ServerMessage::Tweets {
            tweets: vec![Arc::new(Tweet {
                marks: vec![
                    TextRange { start: 0, end: 2 },
                    TextRange { start: 3, end: 7 },
                ],
                ..Tweet::clone(&posts[1])
            })],
        };
        assert_eq!(marked.alone_frame().as_str(), typed.to_json());
    }

    #[test]
    fn each_connection_gets_only_its_own_matches() {
        let hub = Hub::new(10, 16, Arc::default());
        let mut cats = hub.register().unwrap();
        let mut dogs = hub.register().unwrap();
        let mut idle = hub.register().unwrap();
        search(&hub, &mut cats, "cats");
        search(&hub, &mut dogs, "dogs");
        hub.dispatch(&tweet("1", "cats nap"));
        hub.dispatch(&tweet("2", "dogs run"));
        hub.dispatch(&tweet("3", "cats and dogs"));
        assert_eq!(texts(&mut cats), ["cats nap", "cats and dogs"]);
        assert_eq!(texts(&mut dogs), ["dogs run", "cats and dogs"]);
        assert!(texts(&mut idle).is_empty());
    }

    #[test]
    fn same_search_is_evaluated_once_for_all_its_connections() {
        let hub = Hub::new(10, 16, Arc::default());
        let mut a = hub.register().unwrap();
        let mut b = hub.register().unwrap();
        search(&hub, &mut a, "rust");
        search(&hub, &mut b, "  rust ");
        assert_eq!(hub.active_searches(), 1);
        assert_eq!(hub.dispatch(&tweet("1", "rust")), 2);
    }

    #[test]
    fn stopped_connections_get_nothing_and_resume() {
        let hub = Hub::new(10, 16, Arc::default());
        let mut a = hub.register().unwrap();
        search(&hub, &mut a, "rust");
        streaming(&hub, &mut a, false);
        assert_eq!(hub.active_searches(), 0);
        hub.dispatch(&tweet("1", "rust"));
        assert!(texts(&mut a).is_empty());
        streaming(&hub, &mut a, true);
        hub.dispatch(&tweet("2", "rust"));
        assert_eq!(texts(&mut a), ["rust"]);
    }

    #[test]
    fn full_queue_counts_skipped_instead_of_blocking() {
        let hub = Hub::new(10, 2, Arc::default());
        let mut a = hub.register().unwrap();
        search(&hub, &mut a, "x");
        for i in 0..5 {
            hub.dispatch(&tweet(&i.to_string(), "x"));
        }
        assert_eq!(texts(&mut a).len(), 2);
        assert_eq!(a.unreported_skips(), 3);
    }

    #[test]
    fn server_full_is_refused_and_dropping_frees_a_slot() {
        let hub = Hub::new(1, 2, Arc::default());
        let first = hub.register().unwrap();
        assert_eq!(hub.register().err(), Some(RegisterError::Full { max: 1 }));
        drop(first);
        assert!(hub.register().is_ok());
    }

    #[test]
    fn unregister_leaves_search_groups() {
        let hub = Hub::new(10, 2, Arc::default());
        let mut a = hub.register().unwrap();
        search(&hub, &mut a, "x");
        assert_eq!(hub.active_searches(), 1);
        drop(a);
        assert_eq!(hub.active_searches(), 0);
        assert_eq!(hub.connection_count(), 0);
    }

    #[test]
    fn active_searches_are_published_on_change_only() {
        let hub = Hub::new(10, 8, Arc::default());
        let mut active = hub.watch_searches();
        let mut a = hub.register().unwrap();
        let mut b = hub.register().unwrap();
        search(&hub, &mut a, "rust");
        assert!(active.has_changed());
        assert_eq!(active.current().keys().collect::<Vec<_>>(), ["rust"]);
        search(&hub, &mut b, "rust");
        assert!(!active.has_changed(), "a shared search is no change");
        drop(a);
        assert!(!active.has_changed());
        streaming(&hub, &mut b, false);
        assert!(active.has_changed());
        assert!(active.current().is_empty());
    }

    struct AtMost(usize);

    impl SearchGate for AtMost {
        fn admit(&self, query: &Query, distinct_after: usize) -> Result<(), String> {
            if query.term().contains("banned") {
                return Err("no rule for that".into());
            }
            if distinct_after > self.0 {
                return Err(format!("at most {} searches", self.0));
            }
            Ok(())
        }
    }

    #[test]
    fn the_source_gate_refuses_new_searches_and_the_old_one_stays() {
        let hub = Hub::with_gate(10, 8, Arc::default(), Some(Arc::new(AtMost(2))));
        let mut a = hub.register().unwrap();
        let mut b = hub.register().unwrap();
        let mut c = hub.register().unwrap();
        search(&hub, &mut a, "one");
        search(&hub, &mut b, "two");
        assert!(matches!(
            hub.set_query(c.id, query("three")),
            Err(SearchRefused::SourceLimit(_))
        ));
        search(&hub, &mut c, "two");
        // Replacing a connection's only search frees its slot.
        search(&hub, &mut a, "three");
        assert!(hub.set_query(a.id, query("banned")).is_err());
        hub.dispatch(&tweet("1", "three"));
        assert_eq!(texts(&mut a), ["three"]);
    }

    #[test]
    fn routed_posts_are_checked_against_their_routes_only() {
        let hub = Hub::new(10, 8, Arc::default());
        let mut a = hub.register().unwrap();
        let mut b = hub.register().unwrap();
        search(&hub, &mut a, "cats");
        search(&hub, &mut b, "dogs");
        let routes = ["cats".to_owned()];
        hub.dispatch_routed(&tweet("1", "cats and dogs"), Some(&routes));
        assert_eq!(texts(&mut a), ["cats and dogs"]);
        assert!(texts(&mut b).is_empty());
        // Routes are confirmed by the matcher.
        hub.dispatch_routed(&tweet("2", "dogs only"), Some(&routes));
        assert!(texts(&mut a).is_empty());
    }

    #[test]
    fn a_new_search_gets_a_fresh_queue_and_the_same_one_keeps_its_posts() {
        let hub = Hub::new(10, 2, Arc::default());
        let mut a = hub.register().unwrap();
        search(&hub, &mut a, "x");
        hub.dispatch(&tweet("1", "x"));
        // The same search again changes nothing: the queued post stays.
        search(&hub, &mut a, "x");
        for i in 2..5 {
            hub.dispatch(&tweet(&i.to_string(), "x y"));
        }
        assert_eq!(a.unreported_skips(), 2, "queue of 2: 1 and 2 kept");
        // A new search: the old queue goes, and the count not yet reported stays.
        search(&hub, &mut a, "y");
        hub.dispatch(&tweet("5", "y"));
        hub.dispatch(&tweet("6", "y"));
        assert_eq!(texts(&mut a), ["y", "y"]);
        assert_eq!(a.unreported_skips(), 2, "never zeroed silently");
        streaming(&hub, &mut a, false);
        hub.dispatch(&tweet("7", "y"));
        assert!(texts(&mut a).is_empty());
    }

    #[test]
    fn changes_never_wait_for_a_dispatch_in_progress() {
        let hub = Hub::new(10, 8, Arc::default());
        // The dispatch is in the middle of a post, for as long as it likes.
        let in_progress = hub.routing.lock().unwrap();
        let (done, finished) = std::sync::mpsc::channel();
        let socket_side = {
            let hub = hub.clone();
            std::thread::spawn(move || {
                let mut leaving = hub.register().unwrap();
                search(&hub, &mut leaving, "cats");
                drop(leaving);
                let mut me = hub.register().unwrap();
                search(&hub, &mut me, "dogs");
                streaming(&hub, &mut me, false);
                streaming(&hub, &mut me, true);
                let active = hub.active_set();
                let connections = hub.connection_count();
                done.send((active.len(), connections)).unwrap();
                me
            })
        };
        let (active, connections) = finished
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("socket tasks do not wait for the dispatch");
        assert_eq!((active, connections), (1, 1));
        drop(in_progress);
        let mut me = socket_side.join().unwrap();
        // The next post sees every change made meanwhile, in order.
        assert_eq!(hub.dispatch(&tweet("1", "cats and dogs")), 1);
        assert_eq!(texts(&mut me), ["cats and dogs"]);
    }

    /// What each connection should get, kept the plain way.
    #[derive(Clone, Default)]
    struct Expected {
        term: Option<&'static str>,
        streaming: bool,
    }

    #[test]
    fn every_post_sees_exactly_the_changes_made_before_it() {
        const TERMS: [&str; 5] = ["cats", "dogs", "cats OR birds", "-cats dogs", "#rust"];
        const TEXTS: [&str; 6] = [
            "cats nap",
            "dogs run",
            "birds sing",
            "cats and dogs",
            "learning #rust",
            "nothing",
        ];
        let hub = Hub::new(64, 1024, Arc::default());
        let mut connections: Vec<(Registration, Expected)> = Vec::new();
        let mut rng = fastrand::Rng::with_seed(7);
        for step in 0..3000 {
            // Half of the time the changes wait in the queue for the
            // dispatch, as when it is busy with a post.
            let busy = rng.bool().then(|| hub.routing.lock().unwrap());
            let len = connections.len();
            match rng.u8(0..10) {
                0 | 1 if connections.len() < 12 => {
                    let streaming = Expected {
                        term: None,
                        streaming: true,
                    };
                    connections.push((hub.register().unwrap(), streaming));
                }
                2 if !connections.is_empty() => {
                    connections.swap_remove(rng.usize(..connections.len()));
                }
                3 | 4 if !connections.is_empty() => {
                    let (registration, expected) = connections.get_mut(rng.usize(..len)).unwrap();
                    let on = rng.bool();
                    streaming(&hub, registration, on);
                    expected.streaming = on;
                }
                _ if !connections.is_empty() => {
                    let (registration, expected) = connections.get_mut(rng.usize(..len)).unwrap();
                    let term = TERMS[rng.usize(..TERMS.len())];
                    search(&hub, registration, term);
                    *expected = Expected {
                        term: Some(term),
                        streaming: true,
                    };
                }
                _ => {}
            }
            drop(busy);
            let text = TEXTS[rng.usize(..TEXTS.len())];
            hub.dispatch(&tweet(&step.to_string(), text));
            for (registration, expected) in &mut connections {
                let wanted = expected.streaming
                    && expected.term.is_some_and(|term| {
                        query(term).matches(&PreparedPost::new(&tweet("0", text)))
                    });
                let got = texts(registration);
                assert_eq!(
                    got,
                    if wanted {
                        vec![text.to_owned()]
                    } else {
                        vec![]
                    },
                    "step {step}: {:?} streaming {} on {text:?}",
                    expected.term,
                    expected.streaming
                );
            }
        }
        assert!(connections.iter_mut().all(|(r, _)| r.take_skipped() == 0));
    }

    #[test]
    fn changes_from_many_threads_during_dispatch_all_land() {
        let hub = Hub::new(1000, 4, Arc::default());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let dispatcher = {
            let (hub, stop) = (hub.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    hub.dispatch(&tweet(&n.to_string(), "cats dogs birds"));
                }
            })
        };
        let churners: Vec<_> = (0..4)
            .map(|seed| {
                let hub = hub.clone();
                std::thread::spawn(move || {
                    let mut rng = fastrand::Rng::with_seed(seed);
                    let mut mine = Vec::new();
                    for _ in 0..2000 {
                        match rng.u8(0..4) {
                            0 => mine.push(hub.register().unwrap()),
                            1 if !mine.is_empty() => {
                                mine.swap_remove(rng.usize(..mine.len()));
                            }
                            2 if !mine.is_empty() => {
                                let i = rng.usize(..mine.len());
                                streaming(&hub, &mut mine[i], rng.bool());
                            }
                            _ if !mine.is_empty() => {
                                let i = rng.usize(..mine.len());
                                let term = ["cats", "dogs", "birds", "fish"][rng.usize(..4)];
                                search(&hub, &mut mine[i], term);
                            }
                            _ => {}
                        }
                    }
                    mine
                })
            })
            .collect();
        let mut survivors: Vec<Registration> = churners
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect();
        stop.store(true, Ordering::Relaxed);
        dispatcher.join().unwrap();
        // Nothing is left in the queue of changes, and the routing is the
        // registry's: same searches, same streaming members.
        assert!(hub.take_pending().is_empty());
        let routing = hub.routing.lock().unwrap();
        let registry = hub.lock();
        assert_eq!(routing.routes.len(), registry.searches.len());
        for group in registry.searches.values() {
            let route = &routing.routes[&group.id];
            assert_eq!(route.members.len(), group.members, "{}", group.query.term());
            assert_eq!(routing.by_term[group.query.term()], group.id);
        }
        assert_eq!(routing.index.len(), registry.searches.len());
        drop((routing, registry));
        for registration in &mut survivors {
            while registration.try_next().is_some() {}
        }
        let streaming_on_fish_or_cats = hub.dispatch(&tweet("last", "cats fish"));
        let expected: usize = ["cats", "fish"]
            .iter()
            .map(|t| hub.lock().searches.get(*t).map_or(0, |g| g.members))
            .sum();
        assert_eq!(streaming_on_fish_or_cats, expected);
    }

    #[test]
    fn a_change_made_during_a_dispatch_is_applied_when_it_ends() {
        let hub = Hub::new(10, 8, Arc::default());
        let mut me = hub.register().unwrap();
        hub.with_routing(|_| {
            // A socket task changes its search while the post is matched.
            search(&hub, &mut me, "cats");
            assert!(hub.has_pending.load(Ordering::SeqCst));
        });
        assert!(
            !hub.has_pending.load(Ordering::SeqCst),
            "applied, no post needed"
        );
        assert_eq!(hub.routing.lock().unwrap().routes.len(), 1);
    }

    #[test]
    fn each_search_gets_its_own_marks_and_incoming_ones_are_dropped() {
        let hub = Hub::new(10, 8, Arc::default());
        let mut cats = hub.register().unwrap();
        let mut author = hub.register().unwrap();
        search(&hub, &mut cats, "cats");
        search(&hub, &mut author, "from:n");
        let post = Arc::new(Tweet {
            marks: vec![TextRange { start: 0, end: 3 }],
            ..Tweet::clone(&tweet("1", "big cats nap"))
        });
        assert_eq!(hub.dispatch(&post), 2);
        let json = |r: &mut Registration| r.try_next().unwrap().post.json.get().to_owned();
        assert!(
            json(&mut cats).ends_with(r#","marks":[{"start":4,"end":8}]}"#),
            "the server's own marks for the search"
        );
        let plain = json(&mut author);
        assert!(!plain.contains("marks"), "{plain}");
    }

    #[test]
    fn posts_carry_the_servers_spans_and_incoming_ones_are_dropped() {
        let hub = Hub::new(10, 8, Arc::default());
        let mut reader = hub.register().unwrap();
        search(&hub, &mut reader, "cats");
        let text = "cats #Nap with @ada.bsky.social: https://example.com/x.";
        let post = Arc::new(Tweet {
            spans: vec![TextSpan {
                start: 0,
                end: 4,
                kind: SpanKind::Link,
            }],
            ..Tweet::clone(&tweet("1", text))
        });
        assert_eq!(hub.dispatch(&post), 1);
        let delivery = reader.try_next().unwrap();
        let sent: Tweet = serde_json::from_str(delivery.post.json.get()).unwrap();
        let spans: Vec<_> = sent
            .spans
            .iter()
            .map(|s| (&text[s.start as usize..s.end as usize], s.kind))
            .collect();
        assert_eq!(
            spans,
            [
                ("#Nap", SpanKind::Hashtag),
                ("@ada.bsky.social", SpanKind::Mention),
                ("https://example.com/x", SpanKind::Link),
            ]
        );
        assert_eq!(sent.marks, [TextRange { start: 0, end: 4 }]);
        // A post without any is sent in its original shape.
        let plain = EncodedPost::new(tweet("2", "just words"), Instant::now());
        assert!(!plain.json.get().contains("spans"), "{}", plain.json.get());
    }

    #[test]
    fn a_skip_on_the_old_queue_during_a_switch_is_still_reported() {
        let hub = Hub::new(10, 1, Arc::default());
        let mut me = hub.register().unwrap();
        search(&hub, &mut me, "x");
        // The dispatch is in the middle of a post for "x" when the search
        // changes: the old queue is still in its table.
        let mut in_progress = hub.routing.lock().unwrap();
        search(&hub, &mut me, "y");
        let old = in_progress
            .routes
            .values_mut()
            .find(|r| r.query.term() == "x");
        // It found the old queue full just before the switch.
        old.unwrap().members[0]
            .1
            .skipped
            .fetch_add(1, Ordering::Relaxed);
        drop(in_progress);
        assert_eq!(me.take_skipped(), 1);
        // Once the dispatch has let go of the old queue, its counter goes.
        hub.dispatch(&tweet("1", "y"));
        assert_eq!(me.take_skipped(), 0);
        assert!(me.retired.is_empty());
    }

    #[test]
    fn a_search_named_twice_by_the_upstream_gets_the_post_once() {
        let hub = Hub::new(10, 8, Arc::default());
        let mut me = hub.register().unwrap();
        search(&hub, &mut me, "cats");
        let routes = ["cats".to_owned(), "cats".to_owned()];
        assert_eq!(hub.dispatch_routed(&tweet("1", "cats"), Some(&routes)), 1);
        assert_eq!(texts(&mut me), ["cats"]);
    }
}
