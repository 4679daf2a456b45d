//! Fake upstream services for the source tests. Each speaks the real
//! service's wire format as its documentation shows it (payload shapes are
//! taken from the documented examples), on an ephemeral port:
//!
//! - [`FakeJetstream`]: Bluesky Jetstream's `/subscribe` (cursor replay,
//!   `wantedCollections`, `maxMessageSizeBytes`) and an AppView's
//!   `app.bsky.actor.getProfiles` (at most 25 actors, unknown ones left out).
//! - [`FakeMastodon`]: `/api/v2/instance` naming its streaming host, and
//!   `/api/v1/streaming` (a user token in `Authorization`, 401 without).
//! - [`FakeX`]: the filtered stream's rules API and its stream (chunked
//!   lines, `\r\n` keep-alives, in-stream errors, 409 without rules, 429
//!   `TooManyConnections` on a second connection).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    addr
}

fn query_pairs(raw: Option<String>) -> Vec<(String, String)> {
    let url = reqwest::Url::parse(&format!("http://x/?{}", raw.unwrap_or_default())).unwrap();
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Counts open connections; the guard closes one.
#[derive(Default)]
pub struct Connections {
    pub open: AtomicUsize,
    pub total: AtomicUsize,
    /// The most open at once.
    pub most: AtomicUsize,
}

impl Connections {
    fn enter(self: &Arc<Self>) -> ConnectionGuard {
        let open = self.open.fetch_add(1, Ordering::SeqCst) + 1;
        self.total.fetch_add(1, Ordering::SeqCst);
        self.most.fetch_max(open, Ordering::SeqCst);
        ConnectionGuard(self.clone())
    }

    pub fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    pub fn total(&self) -> usize {
        self.total.load(Ordering::SeqCst)
    }

    pub fn most(&self) -> usize {
        self.most.load(Ordering::SeqCst)
    }
}

struct ConnectionGuard(Arc<Connections>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------- Jetstream

/// Jetstream and an AppView in one fake.
#[derive(Clone)]
pub struct FakeJetstream {
    pub addr: SocketAddr,
    pub state: Arc<JetstreamState>,
}

pub struct JetstreamState {
    /// Every event published, in order, as `(time_us, json)`.
    events: Mutex<Vec<(u64, String)>>,
    published: broadcast::Sender<()>,
    /// Closes every live connection.
    kick: broadcast::Sender<()>,
    pub connections: Arc<Connections>,
    /// The query string of each connection, in order.
    pub queries: Mutex<Vec<Vec<(String, String)>>>,
    profiles: Mutex<HashMap<String, Value>>,
    pub profile_calls: Mutex<Vec<Vec<String>>>,
    profile_delay: Mutex<Duration>,
    profile_fails: AtomicBool,
    /// Answer `/subscribe` with 503, as a Jetstream that is down would.
    refusing: AtomicBool,
    attempts: Mutex<Vec<Instant>>,
}

impl FakeJetstream {
    pub async fn start() -> FakeJetstream {
        let state = Arc::new(JetstreamState {
            events: Mutex::new(Vec::new()),
            published: broadcast::channel(1024).0,
            kick: broadcast::channel(4).0,
            connections: Arc::default(),
            queries: Mutex::default(),
            profiles: Mutex::default(),
            profile_calls: Mutex::default(),
            profile_delay: Mutex::new(Duration::ZERO),
            profile_fails: AtomicBool::new(false),
            refusing: AtomicBool::new(false),
            attempts: Mutex::default(),
        });
        let router = Router::new()
            .route("/subscribe", get(jetstream_subscribe))
            .route("/xrpc/app.bsky.actor.getProfiles", get(get_profiles))
            .with_state(state.clone());
        FakeJetstream {
            addr: serve(router).await,
            state,
        }
    }

    pub fn subscribe_url(&self) -> String {
        format!("ws://{}/subscribe", self.addr)
    }

    pub fn appview_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Publishes one raw event (a JSON object with `time_us`).
    pub fn publish(&self, event: Value) {
        let time_us = event["time_us"].as_u64().unwrap_or(0);
        self.publish_raw(time_us, event.to_string());
    }

    /// Publishes a frame as it is (malformed lines included).
    pub fn publish_raw(&self, time_us: u64, text: String) {
        self.state.events.lock().unwrap().push((time_us, text));
        let _ = self.state.published.send(());
    }

    /// Drops every live connection, as a network failure would.
    pub fn kick(&self) {
        let _ = self.state.kick.send(());
    }

    pub fn add_profile(&self, did: &str, handle: &str, display_name: &str, avatar: &str) {
        let profile = json!({
            "did": did, "handle": handle, "displayName": display_name, "avatar": avatar,
            "associated": {"lists": 0, "feedgens": 0, "starterPacks": 0, "labeler": false},
            "labels": [], "createdAt": "2024-01-01T00:00:00.000Z", "indexedAt": "2024-01-01T00:00:00.000Z",
            "followersCount": 1, "followsCount": 1, "postsCount": 1
        });
        self.state
            .profiles
            .lock()
            .unwrap()
            .insert(did.to_owned(), profile);
    }

    pub fn set_profile_delay(&self, delay: Duration) {
        *self.state.profile_delay.lock().unwrap() = delay;
    }

    pub fn refuse_connections(&self, refusing: bool) {
        self.state.refusing.store(refusing, Ordering::SeqCst);
    }

    /// When each `/subscribe` was asked for (on tokio's clock).
    pub fn attempt_times(&self) -> Vec<Instant> {
        self.state.attempts.lock().unwrap().clone()
    }

    pub fn set_profiles_failing(&self, failing: bool) {
        self.state.profile_fails.store(failing, Ordering::SeqCst);
    }

    pub fn cursors(&self) -> Vec<Option<u64>> {
        self.state
            .queries
            .lock()
            .unwrap()
            .iter()
            .map(|q| {
                q.iter()
                    .find(|(k, _)| k == "cursor")
                    .map(|(_, v)| v.parse().unwrap())
            })
            .collect()
    }
}

/// A post create event shaped like Jetstream's documented ones.
pub fn jetstream_post(did: &str, rkey: &str, time_us: u64, record: Value) -> Value {
    json!({
        "did": did,
        "time_us": time_us,
        "kind": "commit",
        "commit": {
            "rev": "3l3qo2vutsw2b",
            "operation": "create",
            "collection": "app.bsky.feed.post",
            "rkey": rkey,
            "record": record,
            "cid": "bafyreidc6sydkkbchcyg62v77wbhzvb2mvytlmsychqgwf2xojjtirmzj4"
        }
    })
}

/// A plain post record with `text`.
pub fn post_record(text: &str) -> Value {
    json!({
        "$type": "app.bsky.feed.post",
        "createdAt": "2026-05-25T14:23:28.757Z",
        "langs": ["en"],
        "text": text
    })
}

async fn jetstream_subscribe(
    State(state): State<Arc<JetstreamState>>,
    RawQuery(raw): RawQuery,
    ws: WebSocketUpgrade,
) -> Response {
    state.attempts.lock().unwrap().push(Instant::now());
    if state.refusing.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "jetstream is down").into_response();
    }
    let query = query_pairs(raw);
    let cursor: Option<u64> = query
        .iter()
        .find(|(k, _)| k == "cursor")
        .map(|(_, v)| v.parse())
        .transpose()
        .map_err(|_| ())
        .unwrap_or(None);
    let wanted: Vec<String> = query
        .iter()
        .filter(|(k, _)| k == "wantedCollections")
        .map(|(_, v)| v.clone())
        .collect();
    let max_size: usize = query
        .iter()
        .find(|(k, _)| k == "maxMessageSizeBytes")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    state.queries.lock().unwrap().push(query);
    ws.on_upgrade(move |socket| jetstream_session(socket, state, cursor, wanted, max_size))
}

async fn jetstream_session(
    mut socket: WebSocket,
    state: Arc<JetstreamState>,
    cursor: Option<u64>,
    wanted: Vec<String>,
    max_size: usize,
) {
    let mut published = state.published.subscribe();
    let mut kick = state.kick.subscribe();
    // With a cursor, replay from it (inclusive); without, live tail only.
    let mut next = {
        let events = state.events.lock().unwrap();
        match cursor {
            Some(cursor) => events
                .iter()
                .position(|(t, _)| *t >= cursor)
                .unwrap_or(events.len()),
            None => events.len(),
        }
    };
    // Counted as open only now, so a test that waits for it and then
    // publishes loses nothing.
    let _guard = state.connections.enter();
    loop {
        let batch: Vec<String> = {
            let events = state.events.lock().unwrap();
            let batch = events[next..].iter().map(|(_, e)| e.clone()).collect();
            next = events.len();
            batch
        };
        for event in batch {
            if !wanted_by(&event, &wanted) || (max_size > 0 && event.len() > max_size) {
                continue;
            }
            if socket.send(Message::text(event)).await.is_err() {
                return;
            }
        }
        tokio::select! {
            biased;
            _ = kick.recv() => return,
            _ = published.recv() => {}
            frame = socket.recv() => {
                if frame.is_none_or(|f| f.is_err()) {
                    return;
                }
            }
        }
    }
}

/// Jetstream filters commits by collection; other kinds always pass.
fn wanted_by(event: &str, wanted: &[String]) -> bool {
    let Ok(value) = serde_json::from_str::<Value>(event) else {
        return true;
    };
    match value["commit"]["collection"].as_str() {
        Some(collection) if !wanted.is_empty() => wanted.iter().any(|w| w == collection),
        _ => true,
    }
}

async fn get_profiles(
    State(state): State<Arc<JetstreamState>>,
    RawQuery(raw): RawQuery,
) -> Response {
    let actors: Vec<String> = query_pairs(raw)
        .into_iter()
        .filter(|(k, _)| k == "actors")
        .map(|(_, v)| v)
        .collect();
    state.profile_calls.lock().unwrap().push(actors.clone());
    let delay = *state.profile_delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    if actors.len() > 25 {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "InvalidRequest", "message": format!("Invalid app.bsky.actor.getProfiles params: actors: array too big (maximum 25, got {})", actors.len())})),
        )
            .into_response();
    }
    if state.profile_fails.load(Ordering::SeqCst) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": "InternalServerError", "message": "Internal Server Error"})),
        )
            .into_response();
    }
    let profiles = state.profiles.lock().unwrap();
    // Unknown actors are left out; the others keep the request's order.
    let found: Vec<Value> = actors
        .iter()
        .filter_map(|a| profiles.get(a).cloned())
        .collect();
    Json(json!({ "profiles": found })).into_response()
}

// ----------------------------------------------------------------- Mastodon

#[derive(Clone)]
pub struct FakeMastodon {
    pub addr: SocketAddr,
    pub state: Arc<MastodonState>,
}

pub struct MastodonState {
    token: String,
    /// What `/api/v2/instance` names as the streaming host, when set.
    streaming_host: Mutex<Option<String>>,
    frames: broadcast::Sender<String>,
    kick: broadcast::Sender<()>,
    pub connections: Arc<Connections>,
    pub refused: AtomicUsize,
    pub queries: Mutex<Vec<Vec<(String, String)>>>,
    /// When each streaming connection was asked for (on tokio's clock).
    attempts: Mutex<Vec<Instant>>,
}

impl FakeMastodon {
    pub async fn start(token: &str) -> FakeMastodon {
        let state = Arc::new(MastodonState {
            token: token.to_owned(),
            streaming_host: Mutex::new(None),
            frames: broadcast::channel(1024).0,
            kick: broadcast::channel(4).0,
            connections: Arc::default(),
            refused: AtomicUsize::new(0),
            queries: Mutex::default(),
            attempts: Mutex::default(),
        });
        let router = Router::new()
            .route("/api/v2/instance", get(mastodon_instance))
            .route("/api/v1/streaming", get(mastodon_streaming))
            .route("/api/v1/streaming/health", get(|| async { "OK" }))
            .with_state(state.clone());
        let fake = FakeMastodon {
            addr: serve(router).await,
            state,
        };
        fake.set_streaming_host(Some(format!("ws://{}", fake.addr)));
        fake
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_streaming_host(&self, host: Option<String>) {
        *self.state.streaming_host.lock().unwrap() = host;
    }

    /// Sends a frame to every connected client.
    pub fn send(&self, frame: Value) {
        let _ = self.state.frames.send(frame.to_string());
    }

    pub fn send_raw(&self, frame: &str) {
        let _ = self.state.frames.send(frame.to_owned());
    }

    pub fn kick(&self) {
        let _ = self.state.kick.send(());
    }

    pub fn attempt_times(&self) -> Vec<Instant> {
        self.state.attempts.lock().unwrap().clone()
    }
}

/// An `update` frame over a Status (the payload is the Status as a string).
pub fn mastodon_update(status: &Value) -> Value {
    json!({"stream": ["public"], "event": "update", "payload": status.to_string()})
}

/// A Status shaped like the documentation's example.
pub fn mastodon_status(id: &str, acct: &str, content_html: &str) -> Value {
    let username = acct.split('@').next().unwrap_or(acct);
    json!({
        "id": id,
        "created_at": "2019-12-08T03:48:33.901Z",
        "in_reply_to_id": null,
        "in_reply_to_account_id": null,
        "sensitive": false,
        "spoiler_text": "",
        "visibility": "public",
        "language": "en",
        "uri": format!("https://mastodon.social/users/{username}/statuses/{id}"),
        "url": format!("https://mastodon.social/@{username}/{id}"),
        "replies_count": 0, "reblogs_count": 0, "favourites_count": 0,
        "edited_at": null,
        "content": content_html,
        "reblog": null,
        "account": {
            "id": "1",
            "username": username,
            "acct": acct,
            "display_name": format!("{username} display"),
            "url": format!("https://mastodon.social/@{username}"),
            "avatar": format!("https://files.mastodon.social/accounts/avatars/{username}.jpg"),
            "avatar_static": format!("https://files.mastodon.social/accounts/avatars/{username}.jpg")
        },
        "media_attachments": [], "mentions": [], "tags": [], "emojis": [], "card": null, "poll": null
    })
}

async fn mastodon_instance(State(state): State<Arc<MastodonState>>) -> Json<Value> {
    let streaming = state.streaming_host.lock().unwrap().clone();
    Json(json!({
        "domain": "mastodon.test",
        "title": "Mastodon",
        "version": "4.5.0",
        "configuration": { "urls": { "streaming": streaming, "status": null } }
    }))
}

async fn mastodon_streaming(
    State(state): State<Arc<MastodonState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    ws: WebSocketUpgrade,
) -> Response {
    state.queries.lock().unwrap().push(query_pairs(raw));
    state.attempts.lock().unwrap().push(Instant::now());
    let expected = format!("Bearer {}", state.token);
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected);
    if !authorized {
        state.refused.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "Invalid access token"})),
        )
            .into_response();
    }
    ws.on_upgrade(move |mut socket| async move {
        // Subscribed before the connection counts as open, so a test that
        // waits for it and then sends loses nothing.
        let mut frames = state.frames.subscribe();
        let mut kick = state.kick.subscribe();
        let _guard = state.connections.enter();
        loop {
            tokio::select! {
                frame = frames.recv() => {
                    let Ok(frame) = frame else { return };
                    if socket.send(Message::text(frame)).await.is_err() {
                        return;
                    }
                }
                _ = kick.recv() => return,
                incoming = socket.recv() => {
                    if incoming.is_none_or(|f| f.is_err()) {
                        return;
                    }
                }
            }
        }
    })
}

// ------------------------------------------------------------------------ X

#[derive(Clone)]
pub struct FakeX {
    pub addr: SocketAddr,
    pub state: Arc<XState>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XRule {
    pub id: String,
    pub value: String,
    pub tag: Option<String>,
}

pub struct XState {
    token: String,
    pub rules: Mutex<Vec<XRule>>,
    next_id: AtomicUsize,
    /// POSTs to the rules endpoint, with their bodies.
    pub rule_posts: Mutex<Vec<Value>>,
    pub connections: Arc<Connections>,
    /// Stream connection attempts: when, and the status answered.
    pub attempts: Mutex<Vec<(Instant, u16)>>,
    /// The query of each stream request.
    pub stream_queries: Mutex<Vec<Vec<(String, String)>>>,
    /// Statuses to answer the next stream requests with, in order.
    fail_next: Mutex<Vec<u16>>,
    /// Sender of the open stream's body; dropping it ends the stream.
    current: Mutex<Option<mpsc::UnboundedSender<Bytes>>>,
}

impl FakeX {
    pub async fn start(token: &str) -> FakeX {
        let state = Arc::new(XState {
            token: token.to_owned(),
            rules: Mutex::new(Vec::new()),
            next_id: AtomicUsize::new(1),
            rule_posts: Mutex::default(),
            connections: Arc::default(),
            attempts: Mutex::default(),
            stream_queries: Mutex::default(),
            fail_next: Mutex::default(),
            current: Mutex::new(None),
        });
        let router = Router::new()
            .route("/2/tweets/search/stream", get(x_stream))
            .route(
                "/2/tweets/search/stream/rules",
                get(x_rules).post(x_change_rules),
            )
            .with_state(state.clone());
        FakeX {
            addr: serve(router).await,
            state,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A rule someone else made (no tag of ours).
    pub fn add_foreign_rule(&self, value: &str, tag: Option<&str>) -> String {
        let id = self.new_id();
        self.state.rules.lock().unwrap().push(XRule {
            id: id.clone(),
            value: value.to_owned(),
            tag: tag.map(str::to_owned),
        });
        id
    }

    fn new_id(&self) -> String {
        new_rule_id(&self.state)
    }

    pub fn rules(&self) -> Vec<XRule> {
        self.state.rules.lock().unwrap().clone()
    }

    pub fn rule_values(&self) -> Vec<String> {
        let mut values: Vec<String> = self.rules().into_iter().map(|r| r.value).collect();
        values.sort();
        values
    }

    /// Sends raw bytes on the open stream; false when none is open.
    pub fn send(&self, chunk: &str) -> bool {
        match &*self.state.current.lock().unwrap() {
            Some(sender) => sender.send(Bytes::from(chunk.to_owned())).is_ok(),
            None => false,
        }
    }

    /// Ends the open stream.
    pub fn drop_stream(&self) {
        self.state.current.lock().unwrap().take();
    }

    pub fn fail_next_connections(&self, statuses: &[u16]) {
        *self.state.fail_next.lock().unwrap() = statuses.to_vec();
    }

    pub fn attempts(&self) -> Vec<(Instant, u16)> {
        self.state.attempts.lock().unwrap().clone()
    }

    /// When each stream connection was asked for (on tokio's clock).
    pub fn attempt_times(&self) -> Vec<Instant> {
        self.attempts().into_iter().map(|(at, _)| at).collect()
    }

    pub fn rule_id(&self, value: &str) -> Option<XRule> {
        self.rules().into_iter().find(|r| r.value == value)
    }
}

fn new_rule_id(state: &XState) -> String {
    (1_273_026_480_692_322_304u64 + state.next_id.fetch_add(1, Ordering::SeqCst) as u64).to_string()
}

/// A stream line shaped like X's documented example, matching `rules`.
pub fn x_post(id: &str, text: &str, username: &str, rules: &[&XRule]) -> String {
    let author_id = format!("98{}", id);
    let matching: Vec<Value> = rules
        .iter()
        .map(|r| json!({"id": r.id, "tag": r.tag}))
        .collect();
    json!({
        "data": {
            "id": id,
            "text": text,
            "author_id": author_id,
            "created_at": "2024-01-15T10:35:00.000Z",
            "lang": "en",
            "edit_history_tweet_ids": [id]
        },
        "includes": {
            "users": [{
                "id": author_id,
                "name": format!("{username} name"),
                "username": username,
                "profile_image_url": format!("https://pbs.twimg.com/profile_images/{username}_normal.jpg")
            }]
        },
        "matching_rules": matching
    })
    .to_string()
}

/// X's 401 for a missing or wrong bearer token, or `None` when it is right.
fn x_refusal(state: &XState, headers: &HeaderMap) -> Option<Response> {
    let expected = format!("Bearer {}", state.token);
    let ok = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected);
    (!ok).then(|| {
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"})),
        )
            .into_response()
    })
}

async fn x_rules(State(state): State<Arc<XState>>, headers: HeaderMap) -> Response {
    if let Some(refused) = x_refusal(&state, &headers) {
        return refused;
    }
    let rules = state.rules.lock().unwrap().clone();
    let data: Vec<Value> = rules
        .iter()
        .map(|r| match &r.tag {
            Some(tag) => json!({"id": r.id, "value": r.value, "tag": tag}),
            None => json!({"id": r.id, "value": r.value}),
        })
        .collect();
    let meta = json!({"sent": "2024-01-15T10:30:00.000Z", "result_count": data.len()});
    if data.is_empty() {
        Json(json!({ "meta": meta })).into_response()
    } else {
        Json(json!({ "data": data, "meta": meta })).into_response()
    }
}

async fn x_change_rules(
    State(state): State<Arc<XState>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(refused) = x_refusal(&state, &headers) {
        return refused;
    }
    state.rule_posts.lock().unwrap().push(body.clone());
    let sent = "2024-01-15T10:30:00.000Z";
    if let Some(add) = body["add"].as_array() {
        let mut created = Vec::new();
        let mut errors = Vec::new();
        for rule in add {
            let value = rule["value"].as_str().unwrap_or("").to_owned();
            let tag = rule["tag"].as_str().map(str::to_owned);
            let mut rules = state.rules.lock().unwrap();
            if let Some(existing) = rules.iter().find(|r| r.value == value) {
                errors.push(json!({"value": value, "id": existing.id, "title": "DuplicateRule", "type": "https://api.x.com/2/problems/duplicate-rules"}));
                continue;
            }
            let id = new_rule_id(&state);
            rules.push(XRule {
                id: id.clone(),
                value: value.clone(),
                tag: tag.clone(),
            });
            created.push(json!({"id": id, "value": value, "tag": tag}));
        }
        let summary = json!({"created": created.len(), "not_created": errors.len(), "valid": created.len(), "invalid": errors.len()});
        let mut answer = json!({"meta": {"sent": sent, "summary": summary}});
        if !created.is_empty() {
            answer["data"] = json!(created);
        }
        if !errors.is_empty() {
            answer["errors"] = json!(errors);
        }
        return (StatusCode::CREATED, Json(answer)).into_response();
    }
    if let Some(ids) = body["delete"]["ids"].as_array() {
        let ids: Vec<&str> = ids.iter().filter_map(Value::as_str).collect();
        let mut rules = state.rules.lock().unwrap();
        let before = rules.len();
        rules.retain(|r| !ids.contains(&r.id.as_str()));
        let deleted = before - rules.len();
        return Json(json!({"meta": {"sent": sent, "summary": {"deleted": deleted, "not_deleted": ids.len() - deleted}}})).into_response();
    }
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"title": "Invalid Request", "detail": "One or more parameters to your request was invalid.", "type": "https://api.x.com/2/problems/invalid-request"})),
    )
        .into_response()
}

async fn x_stream(
    State(state): State<Arc<XState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    state.stream_queries.lock().unwrap().push(query_pairs(raw));
    let record = |status: u16| {
        state
            .attempts
            .lock()
            .unwrap()
            .push((Instant::now(), status))
    };
    if let Some(refused) = x_refusal(&state, &headers) {
        record(401);
        return refused;
    }
    let planned = {
        let mut fail = state.fail_next.lock().unwrap();
        (!fail.is_empty()).then(|| fail.remove(0))
    };
    if let Some(status) = planned {
        record(status);
        let code = StatusCode::from_u16(status).unwrap();
        return (code, Json(json!({"title": "Service Unavailable", "detail": "try later", "type": "about:blank", "status": status}))).into_response();
    }
    if state.connections.open() > 0 {
        // X notices a dead connection when its keep-alive fails to go out.
        if let Some(old) = &*state.current.lock().unwrap() {
            let _ = old.send(Bytes::from_static(b"\r\n"));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    if state.connections.open() > 0 {
        record(429);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({"title": "ConnectionException", "detail": "This stream is currently at the maximum allowed connection limit.", "connection_issue": "TooManyConnections", "type": "https://api.x.com/2/problems/streaming-connection"})),
        )
            .into_response();
    }
    if state.rules.lock().unwrap().is_empty() {
        record(409);
        return (
            StatusCode::CONFLICT,
            Json(json!({"title": "ConnectionException", "detail": "Stream has no rules", "type": "https://api.x.com/2/problems/streaming-connection"})),
        )
            .into_response();
    }
    record(200);
    let guard = state.connections.enter();
    let (sender, receiver) = mpsc::unbounded_channel::<Bytes>();
    *state.current.lock().unwrap() = Some(sender);
    let body = futures::stream::unfold((receiver, guard), |(mut receiver, guard)| async move {
        let chunk = receiver.recv().await?;
        Some((Ok::<_, std::convert::Infallible>(chunk), (receiver, guard)))
    });
    Response::builder()
        .header("content-type", "application/json; charset=utf-8")
        .body(Body::from_stream(body))
        .unwrap()
}
