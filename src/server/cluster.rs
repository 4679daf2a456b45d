//! Several nodes as one app through Redis (docs/protocol.md, "Several
//! nodes"). Without `--redis-url` none of this runs: the single node feeds
//! its source straight to its hub.
//!
//! The seams are the same as a single node's: a source hands posts to a
//! channel and reads the set of searches from a [`SearchWatch`]; the hub
//! reads posts from a channel. In a cluster:
//!
//! - **Leadership** is a lease, `SET <cluster>:leader <node> NX PX 5000`,
//!   renewed twice a second by its holder. Only the leader runs the
//!   source. A leader that has not renewed for 2 s stops its source at
//!   once, well before the lease can pass to another node (5 s), and a new
//!   leader waits 2 s before it connects upstream, so two nodes never hold an
//!   upstream connection at the same moment, even when Redis comes back
//!   empty. A leader that stops cleanly releases the lease.
//! - **The post bus** is a Redis stream, `<cluster>:posts`: the leader
//!   `XADD`s each post once (capped with `MAXLEN ~`), every node (the
//!   leader too) reads it with a blocking `XREAD` from its last id, so a
//!   node that loses Redis for a moment catches up, and feeds its own hub.
//!   Each node drops a post id it delivered recently, so the posts a new
//!   leader reads again from the resume cursor are not shown twice.
//! - **The search registry**: each node keeps its distinct active searches
//!   in `<cluster>:searches:<node>` (a set with a 15 s lifetime, refreshed
//!   every 5 s and on every change) and its name in `<cluster>:nodes`; the
//!   leader gives its source the union (the X source's rules).
//! - **The Bluesky cursor**, `<cluster>:cursor`, written by the leader as
//!   posts go by; a new leader resumes from it (less the source's own
//!   rewind).
//! - **The upstream state**, `<cluster>:upstream`, written by the leader
//!   at each renewal, read by the other nodes for their browsers. When Redis
//!   is unreachable every node says so to its browsers (`reconnecting`)
//!   and keeps them connected.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::StreamReadReply;
use redis::AsyncCommands;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::hub::Hub;
use super::metrics::Metrics;
use super::settings::{ClusterSettings, Settings};
use super::sources::record::Recorder;
use super::sources::{
    ActiveSearches, CursorSlot, SearchWatch, Source, SourceLink, SourcePost, SourceStatus,
};
use crate::query::Query;
use crate::wire::{Tweet, UpstreamState};

/// How long a lease lasts without renewal.
const LEASE: Duration = Duration::from_secs(5);
/// How often the leader renews its lease and shares its state.
const RENEW_EVERY: Duration = Duration::from_millis(500);
/// How often a follower tries to take the lease and reads the state.
const FOLLOW_EVERY: Duration = Duration::from_millis(500);
/// A leader that could not renew for this long stops its source.
const STEP_DOWN_AFTER: Duration = Duration::from_secs(2);
/// A new leader waits this long before it connects upstream: any earlier
/// leader has stopped by then (see [`STEP_DOWN_AFTER`]).
const SETTLE: Duration = Duration::from_secs(2);
/// Redis commands fail after this long, so that an outage is seen quickly.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a blocking read of the post stream waits for posts.
const READ_BLOCK: Duration = Duration::from_secs(1);
/// Posts kept in the stream (approximately): minutes of a busy source, so
/// a node that blips catches up.
const STREAM_MAX_LEN: usize = 100_000;
/// Lifetime of a node's search set without a heartbeat.
const SEARCHES_TTL: Duration = Duration::from_secs(15);
const SEARCHES_HEARTBEAT: Duration = Duration::from_secs(5);
/// Post ids each node remembers to drop a post published twice.
const DEDUP_WINDOW: usize = 50_000;
/// Posts published in one round trip at most.
const PUBLISH_BATCH: usize = 256;
const SOURCE_QUEUE: usize = 1024;

/// What `/healthz` says this node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Single,
    Leader,
    Follower,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Single => "single",
            Role::Leader => "leader",
            Role::Follower => "follower",
        }
    }
}

/// The Redis keys of one cluster.
#[derive(Clone)]
struct Keys {
    leader: String,
    posts: String,
    cursor: String,
    upstream: String,
    nodes: String,
    searches_prefix: String,
}

impl Keys {
    fn new(cluster: &str) -> Keys {
        Keys {
            leader: format!("{cluster}:leader"),
            posts: format!("{cluster}:posts"),
            cursor: format!("{cluster}:cursor"),
            upstream: format!("{cluster}:upstream"),
            nodes: format!("{cluster}:nodes"),
            searches_prefix: format!("{cluster}:searches:"),
        }
    }

    fn searches(&self, node: &str) -> String {
        format!("{}{node}", self.searches_prefix)
    }
}

/// What a node needs to take part in the cluster.
pub struct NodeParts {
    pub settings: Arc<Settings>,
    pub cluster: ClusterSettings,
    pub hub: Arc<Hub>,
    pub metrics: Arc<Metrics>,
    pub recorder: Option<Recorder>,
    /// Receiver: this node's hub dispatch.
    pub local_posts: mpsc::Sender<SourcePost>,
    /// Receivers: this node's sockets and `/healthz`.
    pub status: watch::Sender<SourceStatus>,
    pub shutdown: CancellationToken,
}

/// Starts this node's part of the cluster; the tasks end at `shutdown`
/// (the leader then releases its lease).
pub fn spawn(
    parts: NodeParts,
) -> Result<(watch::Receiver<Role>, Vec<JoinHandle<()>>), redis::RedisError> {
    let client = redis::Client::open(parts.cluster.redis_url.as_str())?;
    let config = ConnectionManagerConfig::new()
        .set_response_timeout(Some(COMMAND_TIMEOUT))
        .set_connection_timeout(Some(COMMAND_TIMEOUT))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(500));
    let commands = ConnectionManager::new_lazy_with_config(client.clone(), config.clone())?;
    // Blocking reads get their own connection: on the shared one they would
    // hold up the lease's renewals.
    let reads = ConnectionManager::new_lazy_with_config(
        client,
        config.set_response_timeout(Some(READ_BLOCK + COMMAND_TIMEOUT)),
    )?;
    let node_id = node_id();
    let keys = Keys::new(&parts.cluster.name);
    let (role_tx, role_rx) = watch::channel(Role::Follower);
    info!(
        redis = %parts.cluster.redis_host(),
        cluster = %parts.cluster.name,
        node = %node_id,
        "joining the cluster"
    );
    let node = Arc::new(Node {
        node_id,
        keys,
        redis_host: parts.cluster.redis_host(),
        commands,
        settings: parts.settings,
        hub: parts.hub,
        metrics: parts.metrics,
        recorder: parts.recorder,
        status: parts.status,
        role: role_tx,
        shutdown: parts.shutdown,
    });
    let tasks = vec![
        tokio::spawn(node.clone().consume(reads, parts.local_posts)),
        tokio::spawn(node.clone().publish_searches()),
        tokio::spawn(node.lead()),
    ];
    Ok((role_rx, tasks))
}

/// A name for this process, unique in the cluster: several nodes may run
/// on one host.
fn node_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_owned());
    format!("{host}:{}:{:08x}", std::process::id(), fastrand::u32(..))
}

struct Node {
    node_id: String,
    keys: Keys,
    redis_host: String,
    commands: ConnectionManager,
    settings: Arc<Settings>,
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
    recorder: Option<Recorder>,
    status: watch::Sender<SourceStatus>,
    role: watch::Sender<Role>,
    shutdown: CancellationToken,
}

const RENEW_SCRIPT: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then \
     return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
const RELEASE_SCRIPT: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then \
     return redis.call('del', KEYS[1]) else return 0 end";

impl Node {
    fn unreachable(&self, error: &redis::RedisError) -> SourceStatus {
        SourceStatus::new(
            UpstreamState::Reconnecting,
            Some(format!(
                "the cluster store (Redis at {}) is unreachable: {}; retrying",
                self.redis_host,
                short_error(error)
            )),
        )
    }

    fn set_status(&self, status: SourceStatus) {
        self.status.send_if_modified(|current| {
            let changed = *current != status;
            *current = status;
            changed
        });
    }

    async fn try_acquire(&self) -> redis::RedisResult<bool> {
        let mut conn = self.commands.clone();
        let answer: Option<String> = redis::cmd("SET")
            .arg(&self.keys.leader)
            .arg(&self.node_id)
            .arg("NX")
            .arg("PX")
            .arg(LEASE.as_millis() as u64)
            .query_async(&mut conn)
            .await?;
        Ok(answer.is_some())
    }

    async fn renew(&self) -> redis::RedisResult<bool> {
        let mut conn = self.commands.clone();
        let renewed: i64 = redis::Script::new(RENEW_SCRIPT)
            .key(&self.keys.leader)
            .arg(&self.node_id)
            .arg(LEASE.as_millis() as u64)
            .invoke_async(&mut conn)
            .await?;
        Ok(renewed == 1)
    }

    async fn release(&self) {
        let mut conn = self.commands.clone();
        let released: redis::RedisResult<i64> = redis::Script::new(RELEASE_SCRIPT)
            .key(&self.keys.leader)
            .arg(&self.node_id)
            .invoke_async(&mut conn)
            .await;
        match released {
            Ok(1) => info!("released the leadership"),
            Ok(_) => {}
            Err(error) => warn!(error = %short_error(&error), "could not release the leadership"),
        }
    }

    /// Follows, and leads whenever the lease is free, until shutdown.
    async fn lead(self: Arc<Self>) {
        loop {
            match self.try_acquire().await {
                Ok(true) => {
                    self.run_as_leader().await;
                    if self.shutdown.is_cancelled() {
                        return;
                    }
                    continue;
                }
                Ok(false) => {
                    self.role.send_replace(Role::Follower);
                    self.follow_state().await;
                }
                Err(error) => {
                    self.role.send_replace(Role::Follower);
                    self.set_status(self.unreachable(&error));
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(FOLLOW_EVERY) => {}
                _ = self.shutdown.cancelled() => return,
            }
        }
    }

    /// A follower shows its browsers the leader's upstream state.
    async fn follow_state(&self) {
        let mut conn = self.commands.clone();
        let shared: redis::RedisResult<Option<String>> = conn.get(&self.keys.upstream).await;
        match shared {
            Ok(Some(text)) => {
                if let Some(status) = decode_status(&text) {
                    self.set_status(status);
                }
            }
            Ok(None) => self.set_status(SourceStatus::new(
                UpstreamState::Connecting,
                Some("waiting for a node of the cluster to connect to the source".to_owned()),
            )),
            Err(error) => self.set_status(self.unreachable(&error)),
        }
    }

    /// Holds the lease: runs the source until the lease is lost, Redis is
    /// out of reach for [`STEP_DOWN_AFTER`], or shutdown.
    async fn run_as_leader(&self) {
        self.role.send_replace(Role::Leader);
        info!(node = %self.node_id, "leading the cluster: this node holds the upstream connection");
        let mut last_renewed = Instant::now();
        let settle_until = Instant::now() + SETTLE;
        // Any earlier leader is stopping: wait before connecting upstream.
        while Instant::now() < settle_until {
            tokio::select! {
                _ = tokio::time::sleep(RENEW_EVERY.min(settle_until - Instant::now())) => {}
                _ = self.shutdown.cancelled() => {
                    self.release().await;
                    return;
                }
            }
            if !self.keep_lease(&mut last_renewed).await {
                self.role.send_replace(Role::Follower);
                return;
            }
        }
        let source = match Source::open(&self.settings.source).await {
            Ok(source) => source,
            Err(error) => {
                // The settings were checked at start-up; a file may have
                // gone since. Let another node try.
                warn!(%error, "cannot open the source; giving the leadership up");
                self.set_status(SourceStatus::new(
                    UpstreamState::Failed,
                    Some(error.to_string()),
                ));
                self.release().await;
                self.role.send_replace(Role::Follower);
                tokio::select! {
                    _ = tokio::time::sleep(LEASE) => {}
                    _ = self.shutdown.cancelled() => {}
                }
                return;
            }
        };
        let cursor = Arc::new(CursorSlot {
            start: self.saved_cursor().await,
            ..CursorSlot::default()
        });
        let stop_source = self.shutdown.child_token();
        let (posts_tx, posts_rx) = mpsc::channel(SOURCE_QUEUE);
        let (status_tx, mut status_rx) =
            watch::channel(SourceStatus::new(UpstreamState::Connecting, None));
        let searches = self.union_of_searches(stop_source.clone());
        let source_task = tokio::spawn(source.run(SourceLink {
            name: self.settings.source.kind.as_str(),
            posts: posts_tx,
            status: status_tx,
            searches,
            recorder: self.recorder.clone(),
            metrics: self.metrics.clone(),
            shutdown: stop_source.clone(),
            cursor: Some(cursor.clone()),
        }));
        let publisher = tokio::spawn(publish_posts(
            self.commands.clone(),
            self.keys.posts.clone(),
            posts_rx,
            stop_source.clone(),
        ));
        let mut saved_cursor = cursor.start.unwrap_or(0);
        let mut tick = tokio::time::interval(RENEW_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stepped_down = loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => break false,
                _ = tick.tick() => {}
                changed = status_rx.changed() => {
                    if changed.is_err() {
                        continue;
                    }
                }
            }
            if !self.keep_lease(&mut last_renewed).await {
                break true;
            }
            let status = status_rx.borrow_and_update().clone();
            self.set_status(status.clone());
            let mut conn = self.commands.clone();
            let shared: redis::RedisResult<()> = conn
                .pset_ex(
                    &self.keys.upstream,
                    encode_status(&status),
                    LEASE.as_millis() as u64,
                )
                .await;
            let latest = cursor.latest.load(Ordering::Relaxed);
            if shared.is_ok() && latest > saved_cursor {
                let saved: redis::RedisResult<()> = conn.set(&self.keys.cursor, latest).await;
                if saved.is_ok() {
                    saved_cursor = latest;
                }
            }
        };
        stop_source.cancel();
        source_task.abort();
        let _ = source_task.await;
        publisher.abort();
        let _ = publisher.await;
        if stepped_down {
            warn!("stopped the upstream connection: this node no longer holds the leadership");
        } else {
            self.release().await;
        }
        self.role.send_replace(Role::Follower);
    }

    /// Renews the lease. False when it is lost, or when Redis has been out
    /// of reach for [`STEP_DOWN_AFTER`] (the browsers are told meanwhile).
    async fn keep_lease(&self, last_renewed: &mut Instant) -> bool {
        match self.renew().await {
            Ok(true) => {
                *last_renewed = Instant::now();
                true
            }
            Ok(false) => {
                warn!("the leadership lease was lost");
                false
            }
            Err(error) => {
                self.set_status(self.unreachable(&error));
                last_renewed.elapsed() < STEP_DOWN_AFTER
            }
        }
    }

    async fn saved_cursor(&self) -> Option<u64> {
        let mut conn = self.commands.clone();
        let saved: redis::RedisResult<Option<u64>> = conn.get(&self.keys.cursor).await;
        match saved {
            Ok(cursor) => cursor,
            Err(error) => {
                warn!(error = %short_error(&error), "cannot read the saved cursor");
                None
            }
        }
    }

    /// The union of every live node's searches, for the leader's source,
    /// polled every second until `stop`.
    fn union_of_searches(&self, stop: CancellationToken) -> SearchWatch {
        let (changes_tx, changes_rx) = watch::channel(0u64);
        let current: Arc<Mutex<ActiveSearches>> = Arc::default();
        let snapshot = current.clone();
        let keys = self.keys.clone();
        let mut conn = self.commands.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.cancelled() => return,
                }
                let Ok(terms) = read_union(&mut conn, &keys).await else {
                    continue;
                };
                let union: BTreeMap<String, Arc<Query>> = terms
                    .into_iter()
                    .filter_map(|term| {
                        let query = Query::parse(&term, usize::MAX).ok()?;
                        Some((query.term().to_owned(), Arc::new(query)))
                    })
                    .collect();
                let mut held = current.lock().unwrap_or_else(|e| e.into_inner());
                let same = held.len() == union.len() && held.keys().eq(union.keys());
                if !same {
                    *held = Arc::new(union);
                    drop(held);
                    changes_tx.send_modify(|version| *version += 1);
                }
            }
        });
        SearchWatch::new(
            changes_rx,
            Arc::new(move || snapshot.lock().unwrap_or_else(|e| e.into_inner()).clone()),
        )
    }

    /// Keeps this node's distinct searches in Redis for the leader.
    async fn publish_searches(self: Arc<Self>) {
        let mut searches = self.hub.watch_searches();
        let key = self.keys.searches(&self.node_id);
        let mut heartbeat = tokio::time::interval(SEARCHES_HEARTBEAT);
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => {
                    let mut conn = self.commands.clone();
                    let _: redis::RedisResult<()> = redis::pipe()
                        .del(&key)
                        .zrem(&self.keys.nodes, &self.node_id)
                        .query_async(&mut conn)
                        .await;
                    return;
                }
                changed = searches.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                _ = heartbeat.tick() => {}
            }
            let terms: Vec<String> = searches.current().keys().cloned().collect();
            let mut pipe = redis::pipe();
            pipe.atomic().del(&key);
            if !terms.is_empty() {
                pipe.sadd(&key, &terms);
            }
            pipe.pexpire(&key, SEARCHES_TTL.as_millis() as i64).zadd(
                &self.keys.nodes,
                &self.node_id,
                now_ms(),
            );
            let mut conn = self.commands.clone();
            let written: redis::RedisResult<()> = pipe.query_async(&mut conn).await;
            if let Err(error) = written {
                // Written again at the next heartbeat.
                warn!(error = %short_error(&error), "cannot share this node's searches");
            }
        }
    }

    /// Reads the post stream into this node's hub, from where it left off.
    async fn consume(
        self: Arc<Self>,
        mut conn: ConnectionManager,
        local: mpsc::Sender<SourcePost>,
    ) {
        let mut last_id = "$".to_owned();
        let mut seen = RecentIds::new(DEDUP_WINDOW);
        loop {
            let mut command = redis::cmd("XREAD");
            command
                .arg("COUNT")
                .arg(512)
                .arg("BLOCK")
                .arg(READ_BLOCK.as_millis() as u64)
                .arg("STREAMS")
                .arg(&self.keys.posts)
                .arg(&last_id);
            let read: redis::RedisResult<Option<StreamReadReply>> = tokio::select! {
                _ = self.shutdown.cancelled() => return,
                read = command.query_async(&mut conn) => read,
            };
            let reply = match read {
                Ok(Some(reply)) => reply,
                Ok(None) => continue,
                Err(error) => {
                    warn!(error = %short_error(&error), "cannot read the cluster's posts; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(FOLLOW_EVERY) => continue,
                        _ = self.shutdown.cancelled() => return,
                    }
                }
            };
            for entry in reply.keys.into_iter().flat_map(|key| key.ids) {
                last_id = entry.id.clone();
                let Some(json) = entry.get::<String>("post") else {
                    self.metrics.source_bad_records.inc();
                    continue;
                };
                let tweet: Tweet = match serde_json::from_str(&json) {
                    Ok(tweet) => tweet,
                    Err(error) => {
                        self.metrics.source_bad_records.inc();
                        warn!(%error, "skipping a post in the cluster stream that does not parse");
                        continue;
                    }
                };
                if !seen.insert(&tweet.id) {
                    continue;
                }
                let post = SourcePost {
                    tweet,
                    routes: None,
                    received_at: std::time::Instant::now(),
                };
                if local.send(post).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Publishes the leader's posts to the stream, several per round trip,
/// each until it is written (or the leadership ends).
async fn publish_posts(
    mut conn: ConnectionManager,
    key: String,
    mut posts: mpsc::Receiver<SourcePost>,
    stop: CancellationToken,
) {
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    loop {
        let received = tokio::select! {
            received = posts.recv_many(&mut batch, PUBLISH_BATCH) => received,
            _ = stop.cancelled() => return,
        };
        if received == 0 {
            return;
        }
        let mut pipe = redis::pipe();
        for post in &batch {
            let Ok(json) = serde_json::to_string(&post.tweet) else {
                continue;
            };
            pipe.cmd("XADD")
                .arg(&key)
                .arg("MAXLEN")
                .arg("~")
                .arg(STREAM_MAX_LEN)
                .arg("*")
                .arg("post")
                .arg(json)
                .ignore();
        }
        loop {
            let written: redis::RedisResult<()> = pipe.query_async(&mut conn).await;
            match written {
                Ok(()) => break,
                Err(error) => {
                    warn!(error = %short_error(&error), "cannot publish posts; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                        _ = stop.cancelled() => return,
                    }
                }
            }
        }
        batch.clear();
    }
}

/// Every live node's searches (nodes whose heartbeat is recent).
async fn read_union(conn: &mut ConnectionManager, keys: &Keys) -> redis::RedisResult<Vec<String>> {
    let since = now_ms().saturating_sub(SEARCHES_TTL.as_millis() as u64);
    let _: () = conn.zrembyscore(&keys.nodes, 0, since).await?;
    let nodes: Vec<String> = conn.zrangebyscore(&keys.nodes, since, "+inf").await?;
    if nodes.is_empty() {
        return Ok(Vec::new());
    }
    let set_keys: Vec<String> = nodes.iter().map(|node| keys.searches(node)).collect();
    conn.sunion(set_keys).await
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn encode_status(status: &SourceStatus) -> String {
    serde_json::json!({ "state": status.state, "detail": status.detail }).to_string()
}

fn decode_status(text: &str) -> Option<SourceStatus> {
    #[derive(serde::Deserialize)]
    struct Shared {
        state: UpstreamState,
        detail: Option<String>,
    }
    let shared: Shared = serde_json::from_str(text).ok()?;
    Some(SourceStatus::new(shared.state, shared.detail))
}

/// A Redis error as a short sentence without the server's address details.
fn short_error(error: &redis::RedisError) -> String {
    let text = error.to_string();
    match text.char_indices().nth(160) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// The last `capacity` post ids seen, to drop a post published twice.
struct RecentIds {
    ids: HashSet<String>,
    order: VecDeque<String>,
    capacity: usize,
}

impl RecentIds {
    fn new(capacity: usize) -> RecentIds {
        RecentIds {
            ids: HashSet::with_capacity(capacity.min(4096)),
            order: VecDeque::with_capacity(capacity.min(4096)),
            capacity,
        }
    }

    /// False when `id` was seen among the last `capacity` ids.
    fn insert(&mut self, id: &str) -> bool {
        if self.ids.contains(id) {
            return false;
        }
        if self.order.len() == self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.ids.remove(&oldest);
            }
        }
        self.ids.insert(id.to_owned());
        self.order.push_back(id.to_owned());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_ids_forget_the_oldest() {
        let mut seen = RecentIds::new(2);
        assert!(seen.insert("a"));
        assert!(!seen.insert("a"));
        assert!(seen.insert("b"));
        assert!(seen.insert("c"));
        assert!(seen.insert("a"), "a was pushed out of the window");
        assert!(!seen.insert("c"));
    }

    #[test]
    fn the_shared_state_reads_back() {
        let status =
            SourceStatus::new(UpstreamState::Reconnecting, Some("Jetstream closed".into()));
        assert_eq!(decode_status(&encode_status(&status)), Some(status));
        assert_eq!(decode_status("not json"), None);
    }

    #[test]
    fn a_new_leader_waits_until_an_old_one_has_stopped() {
        // The old leader stops STEP_DOWN_AFTER its last renewal; the lease
        // passes LEASE after it; the new leader connects SETTLE later still.
        assert!(STEP_DOWN_AFTER < LEASE);
        assert!(STEP_DOWN_AFTER <= SETTLE);
        // Failover after a crash within 10 s: lease, a follower's poll,
        // the settling time.
        assert!(LEASE + FOLLOW_EVERY + SETTLE <= Duration::from_secs(10));
    }
}
