//! The hub: every connection's search and stop/start state, and the fan-out
//! of each post to the connections whose search matches it.
//!
//! Connections with the same search (after white space is normalised) share
//! one entry, so a post is checked once per distinct active search, not once
//! per browser.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::{mpsc, watch};

use super::metrics::Metrics;
use super::sources::{ActiveSearches, SearchGate, SearchWatch, SourcePost};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::query::{PreparedPost, Query, SearchId, SearchIndex};
use crate::wire::Tweet;

pub type ConnectionId = u64;

/// A post with its JSON written once, however many connections it goes to.
#[derive(Debug)]
pub struct EncodedPost {
    pub tweet: Arc<Tweet>,
    pub json: Box<RawValue>,
    /// When the source handed the post over, for the delivery-time metric.
    pub received_at: Instant,
}

impl EncodedPost {
    pub fn new(tweet: Arc<Tweet>, received_at: Instant) -> EncodedPost {
        // A post is strings and options of strings: serialising cannot fail.
        let json = serde_json::value::to_raw_value(&*tweet).expect("posts always serialize");
        EncodedPost {
            tweet,
            json,
            received_at,
        }
    }
}

/// The `tweets` message over posts already encoded; the same JSON as
/// [`crate::wire::ServerMessage::Tweets`] (a unit test holds them equal).
pub fn tweets_frame(posts: &[Arc<EncodedPost>]) -> String {
    #[derive(Serialize)]
    struct TweetsFrame<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        tweets: Vec<&'a RawValue>,
    }
    let frame = TweetsFrame {
        kind: "tweets",
        tweets: posts.iter().map(|p| &*p.json).collect(),
    };
    serde_json::to_string(&frame).expect("raw JSON values always serialize")
}

/// A post queued for one connection. A search change or a stop gives the
/// connection a fresh queue (swapped in under the registry lock), so a new
/// search never shows the old one's posts and they never cost it `skipped`.
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

/// What the socket task keeps of its registration. Dropping it unregisters.
pub struct Registration {
    pub id: ConnectionId,
    /// Posts for this connection. Sender: the hub's dispatch, with
    /// `try_send`; a full queue adds to `skipped` instead of waiting. The
    /// sender lives in the hub's registry; it is replaced (and this receiver
    /// with it, see [`Hub::set_query`]) when the search changes or stops,
    /// and dropped on unregister.
    /// `None` while the connection has no search or is stopped: an idle
    /// browser holds no queue.
    pub outbox: Option<mpsc::Receiver<Delivery>>,
    /// Matching posts dropped because `outbox` was full, not yet reported.
    /// The hub adds; the socket task takes the count and sends `skipped`.
    pub skipped: Arc<AtomicU64>,
    hub: Arc<Hub>,
}

impl Registration {
    /// Takes the queue a search change or a stop hands over.
    pub fn apply(&mut self, change: OutboxChange) {
        if let OutboxChange::Replace(outbox) = change {
            self.outbox = outbox;
        }
    }
}

/// What a connection's queue becomes after a change of search or state.
#[derive(Debug)]
pub enum OutboxChange {
    /// Nothing changed: what is queued stays.
    Keep,
    /// A fresh queue (or none, when stopped): posts queued before go.
    Replace(Option<mpsc::Receiver<Delivery>>),
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.unregister(self.id);
    }
}

struct Connection {
    query: Option<Arc<Query>>,
    streaming: bool,
    /// Sender half of the connection's outbox (see [`Registration::outbox`]).
    outbox: Option<mpsc::Sender<Delivery>>,
    skipped: Arc<AtomicU64>,
}

struct SearchGroup {
    /// The search's entry in [`Registry::index`].
    id: SearchId,
    query: Arc<Query>,
    /// Connections with this search that are streaming.
    members: Vec<ConnectionId>,
}

#[derive(Default)]
struct Registry {
    next_id: ConnectionId,
    connections: HashMap<ConnectionId, Connection>,
    /// Keyed by [`Query::term`]; only groups with streaming members exist.
    searches: HashMap<String, SearchGroup>,
    /// Every group's search, filed under its anchors: a post is checked
    /// only against the searches it can match.
    index: SearchIndex,
    /// The term of each indexed search.
    terms: HashMap<SearchId, String>,
    next_search_id: SearchId,
}

impl Registry {
    /// True when the search lost its last member and is no longer active.
    fn leave_group(&mut self, id: ConnectionId, term: &str) -> bool {
        if let Some(group) = self.searches.get_mut(term) {
            group.members.retain(|&m| m != id);
            if group.members.is_empty() {
                let id = group.id;
                self.searches.remove(term);
                self.index.remove(id);
                self.terms.remove(&id);
                return true;
            }
        }
        false
    }

    /// True when the search was not active before.
    fn join_group(&mut self, id: ConnectionId, query: Arc<Query>) -> bool {
        if let Some(group) = self.searches.get_mut(query.term()) {
            group.members.push(id);
            return false;
        }
        let search_id = self.next_search_id;
        // Ids are reused only after 2^32 distinct searches, long gone by then.
        self.next_search_id = self.next_search_id.wrapping_add(1);
        self.index.insert(search_id, &query);
        self.terms.insert(search_id, query.term().to_owned());
        self.searches.insert(
            query.term().to_owned(),
            SearchGroup {
                id: search_id,
                query,
                members: vec![id],
            },
        );
        true
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

/// Shared by the dispatch task (reads, per post) and the socket tasks
/// (write, per command).
pub struct Hub {
    /// Held only for map updates and one post's fan-out; never across an
    /// `.await`.
    registry: Mutex<Registry>,
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
        // A panic while holding the lock leaves plain maps behind, still
        // consistent enough to keep serving everyone else.
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
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
        let skipped = Arc::new(AtomicU64::new(0));
        registry.connections.insert(
            id,
            Connection {
                query: None,
                streaming: true,
                outbox: None,
                skipped: skipped.clone(),
            },
        );
        Ok(Registration {
            id,
            outbox: None,
            skipped,
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
    }

    /// Sets a connection's search and resumes it. When that changes what
    /// the connection gets, it gets a fresh queue: the receiver comes back
    /// and replaces [`Registration::outbox`] (posts queued for the old
    /// search go with the old one). The same search again, while
    /// streaming, changes nothing and keeps what is queued. A search the
    /// source cannot take is refused and the previous one stays.
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
                                .is_some_and(|g| g.members.len() == 1)
                        })
                });
                let distinct_after = registry.searches.len() + 1 - usize::from(frees_one);
                gate.admit(&query, distinct_after)
                    .map_err(SearchRefused::SourceLimit)?;
            }
        }
        let outbox_size = self.outbound_queue;
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
        let (sender, receiver) = mpsc::channel(outbox_size);
        connection.outbox = Some(sender);
        let old = connection.query.replace(query.clone());
        let was_streaming = std::mem::replace(&mut connection.streaming, true);
        let mut changed = false;
        if let (Some(old), true) = (old, was_streaming) {
            changed |= registry.leave_group(id, old.term());
        }
        changed |= registry.join_group(id, query);
        if changed {
            self.publish();
        }
        Ok(OutboxChange::Replace(Some(receiver)))
    }

    /// Stops or resumes delivery. A change gives the connection a fresh
    /// queue, as [`Hub::set_query`] does (posts queued before a stop are
    /// not shown after it); no change keeps everything.
    pub fn set_streaming(&self, id: ConnectionId, streaming: bool) -> OutboxChange {
        let mut registry = self.lock();
        let outbox_size = self.outbound_queue;
        let Some(connection) = registry.connections.get_mut(&id) else {
            return OutboxChange::Keep;
        };
        let was = std::mem::replace(&mut connection.streaming, streaming);
        if was == streaming {
            return OutboxChange::Keep;
        }
        // A stopped connection, or one without a search, needs no queue.
        let (sender, receiver) = if streaming && connection.query.is_some() {
            let (sender, receiver) = mpsc::channel(outbox_size);
            (Some(sender), Some(receiver))
        } else {
            (None, None)
        };
        connection.outbox = sender;
        if let Some(query) = connection.query.clone() {
            let changed = if streaming {
                registry.join_group(id, query)
            } else {
                registry.leave_group(id, query.term())
            };
            if changed {
                self.publish();
            }
        }
        OutboxChange::Replace(receiver)
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
        if self.lock().searches.is_empty() || routes.is_some_and(<[String]>::is_empty) {
            // Nobody is searching: do not cut the post into words for nothing.
            return 0;
        }
        let prepared = PreparedPost::new(tweet);
        let registry = self.lock();
        let mut delivered = 0;
        // Encoded on the first match only: most posts match no one.
        let mut encoded: Option<Arc<EncodedPost>> = None;
        let mut candidates = Vec::new();
        let groups: Box<dyn Iterator<Item = &SearchGroup>> = match routes {
            Some(terms) => Box::new(terms.iter().filter_map(|t| registry.searches.get(t))),
            None => {
                registry.index.candidates(&prepared, &mut candidates);
                Box::new(
                    candidates
                        .iter()
                        .filter_map(|id| registry.terms.get(id))
                        .filter_map(|term| registry.searches.get(term)),
                )
            }
        };
        for group in groups {
            if !group.query.matches(&prepared) {
                continue;
            }
            let post = encoded
                .get_or_insert_with(|| Arc::new(EncodedPost::new(tweet.clone(), received_at)))
                .clone();
            for id in &group.members {
                let Some(connection) = registry.connections.get(id) else {
                    continue;
                };
                let delivery = Delivery { post: post.clone() };
                let Some(outbox) = &connection.outbox else {
                    continue;
                };
                match outbox.try_send(delivery) {
                    Ok(()) => delivered += 1,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        connection.skipped.fetch_add(1, Ordering::Relaxed);
                        self.metrics.posts_skipped.inc();
                    }
                    // The socket task is gone and will unregister shortly.
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                }
            }
        }
        self.metrics.posts_delivered.inc_by(delivered as u64);
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
        while let Some(Ok(d)) = registration.outbox.as_mut().map(|o| o.try_recv()) {
            out.push(d.post.tweet.text.clone());
        }
        out
    }

    #[test]
    fn tweets_frame_is_the_protocol_message() {
        let posts = [tweet("1", "a \"quoted\" <b>"), tweet("2", "é 🎉")];
        let encoded: Vec<_> = posts
            .iter()
            .map(|t| Arc::new(EncodedPost::new(t.clone(), Instant::now())))
            .collect();
        let typed = crate::wire::ServerMessage::Tweets {
            tweets: posts.to_vec(),
        };
        assert_eq!(tweets_frame(&encoded), typed.to_json());
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
        assert_eq!(a.skipped.load(Ordering::Relaxed), 3);
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
        assert_eq!(
            a.skipped.load(Ordering::Relaxed),
            2,
            "queue of 2: 1 and 2 kept"
        );
        // A new search: the old queue goes, and the count not yet reported stays.
        search(&hub, &mut a, "y");
        hub.dispatch(&tweet("5", "y"));
        hub.dispatch(&tweet("6", "y"));
        assert_eq!(texts(&mut a), ["y", "y"]);
        assert_eq!(
            a.skipped.load(Ordering::Relaxed),
            2,
            "never zeroed silently"
        );
        streaming(&hub, &mut a, false);
        hub.dispatch(&tweet("7", "y"));
        assert!(texts(&mut a).is_empty());
    }
}
