//! Upstream sources, one file each. A source is one task per server that
//! produces posts into the hub, whatever the number of browsers.
//!
//! - `demo` and `replay` are offline and need no account.
//! - `bluesky` (Jetstream), `mastodon` (streaming API) and `x` (API v2
//!   filtered stream) hold one connection to a real service each.
//!
//! What the streaming sources share is written once here and beside this
//! file: the upstream state with its detail ([`SourceStatus`]), the
//! reconnect schedules ([`backoff`]), the conversion of a service's post to
//! the protocol's shape ([`normalize`]), the recording of every post
//! ([`record`]) and the reconnect counters (in [`Metrics`]).

pub mod backoff;
pub mod bluesky;
pub mod demo;
pub mod demo_posts;
pub mod mastodon;
pub mod normalize;
pub mod record;
pub mod replay;
pub mod x;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;
use super::settings::{SourceKind, SourceSettings};
use crate::query::Query;
use crate::wire::{ServerMessage, Tweet, UpstreamState};

/// The upstream link's state, as sent to browsers in `upstream` and shown
/// in `/healthz`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceStatus {
    pub state: UpstreamState,
    /// For a person: why the source is reconnecting or failed. Never holds
    /// a credential.
    pub detail: Option<String>,
}

impl SourceStatus {
    pub fn new(state: UpstreamState, detail: Option<String>) -> Self {
        SourceStatus { state, detail }
    }

    pub fn message(&self) -> ServerMessage {
        ServerMessage::Upstream {
            state: self.state,
            detail: self.detail.clone(),
        }
    }
}

/// Why a source cannot start. Checked before the server listens, so a
/// wrong setting stops it with a clear message.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read the replay file {path}: {source}")]
    ReplayFile {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the record file {path}: {source}")]
    RecordFile {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{option} must be an {expected} URL (got {url:?}): {reason}")]
    BadUrl {
        option: &'static str,
        expected: &'static str,
        url: String,
        reason: String,
    },
    #[error("the mastodon source needs the instance's address: pass --mastodon-url https://your.instance (and set MASTODON_TOKEN)")]
    MastodonUrlMissing,
    #[error("cannot set up the HTTP client: {0}")]
    HttpClient(String),
}

/// The distinct searches with at least one streaming browser, keyed by
/// their normalised text. The X source turns them into rules.
pub type ActiveSearches = Arc<BTreeMap<String, Arc<Query>>>;

/// Follows the set of active searches: the hub bumps a version on every
/// change (cheap, under its lock); the set itself is built only when a
/// source asks for it, so 10,000 browsers arriving do not copy it 10,000
/// times.
#[derive(Clone)]
pub struct SearchWatch {
    /// Sender: the hub, once per change of the set.
    changes: watch::Receiver<u64>,
    snapshot: Arc<dyn Fn() -> ActiveSearches + Send + Sync>,
}

impl SearchWatch {
    pub fn new(
        changes: watch::Receiver<u64>,
        snapshot: Arc<dyn Fn() -> ActiveSearches + Send + Sync>,
    ) -> SearchWatch {
        SearchWatch { changes, snapshot }
    }

    /// Waits for the next change; an error once the hub is gone.
    pub async fn changed(&mut self) -> Result<(), watch::error::RecvError> {
        self.changes.changed().await
    }

    /// True when the set changed since it was last read.
    pub fn has_changed(&self) -> bool {
        self.changes.has_changed().unwrap_or(false)
    }

    /// The set as it is now; later changes will show in [`Self::changed`].
    pub fn current(&mut self) -> ActiveSearches {
        self.changes.borrow_and_update();
        (self.snapshot)()
    }
}

/// A source that cannot take every search (X: rule count and length) is
/// asked before a new distinct search is accepted.
pub trait SearchGate: Send + Sync {
    /// `distinct_after`: the number of distinct active searches if this one
    /// is accepted. The error is a sentence for the person who searched.
    fn admit(&self, query: &Query, distinct_after: usize) -> Result<(), String>;
}

/// A post on its way to the hub.
#[derive(Debug)]
pub struct SourcePost {
    pub tweet: Tweet,
    /// The searches the upstream says the post matched (X's
    /// `matching_rules`), or `None` to check every active search. The hub
    /// still confirms each with its own matcher.
    pub routes: Option<Vec<String>>,
    /// When the server got it: the start of its delivery time.
    pub received_at: std::time::Instant,
}

/// What a source task holds to talk to the rest of the server.
pub struct SourceLink {
    /// The source's name, for logs and metric labels.
    pub name: &'static str,
    /// Receiver: the hub's dispatch task. Bounded: `send().await` waits when
    /// the hub is behind. If the receiver is gone the server is stopping and
    /// the source returns.
    pub posts: mpsc::Sender<SourcePost>,
    /// Receivers: every socket task, which forwards changes as `upstream`,
    /// and `/healthz`.
    pub status: watch::Sender<SourceStatus>,
    /// The set of distinct active searches and its changes. Only the X
    /// source reads it.
    pub searches: SearchWatch,
    /// Appends every post emitted to the `--record` file, when set.
    pub recorder: Option<record::Recorder>,
    pub metrics: Arc<Metrics>,
    /// Cancelled when the server shuts down (or, in a cluster, when this
    /// node stops leading).
    pub shutdown: CancellationToken,
    /// In a cluster: where the Bluesky source resumes and how far it got.
    pub cursor: Option<Arc<CursorSlot>>,
}

/// The Bluesky source's resume point, kept by the cluster in Redis so that
/// a new leader resumes where the old one stopped.
#[derive(Debug, Default)]
pub struct CursorSlot {
    /// The newest `time_us` handled before this source started, if known.
    pub start: Option<u64>,
    /// The newest `time_us` this source has read (0: none yet).
    pub latest: std::sync::atomic::AtomicU64,
}

impl SourceLink {
    pub fn set_status(&self, state: UpstreamState, detail: Option<String>) {
        self.status.send_replace(SourceStatus::new(state, detail));
    }

    /// Hands one post to the hub; false when the server is stopping.
    pub async fn emit(&self, tweet: Tweet) -> bool {
        self.emit_routed(tweet, None).await
    }

    /// Hands one post to the hub with the searches the upstream matched.
    pub async fn emit_routed(&self, tweet: Tweet, routes: Option<Vec<String>>) -> bool {
        if let Some(recorder) = &self.recorder {
            recorder.record(&tweet).await;
        }
        tokio::select! {
            sent = self.posts.send(SourcePost {
                tweet,
                routes,
                received_at: std::time::Instant::now(),
            }) => sent.is_ok(),
            _ = self.shutdown.cancelled() => false,
        }
    }

    /// Counts a reconnect of this source for `reason` (a short label).
    pub fn count_reconnect(&self, reason: &'static str) {
        self.metrics.count_reconnect(self.name, reason);
    }

    /// Counts and logs an upstream record that could not be read.
    pub fn bad_record(&self, error: &dyn std::fmt::Display) {
        self.metrics.source_bad_records.inc();
        tracing::warn!(source = self.name, %error, "skipping a malformed upstream record");
    }

    /// Sleeps `delay` unless the server stops first; false on shutdown.
    pub async fn sleep(&self, delay: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(delay) => true,
            _ = self.shutdown.cancelled() => false,
        }
    }
}

/// A source ready to run.
pub enum Source {
    Demo(demo::Demo),
    Replay(replay::Replay),
    X(x::XSource),
    Bluesky(bluesky::Bluesky),
    Mastodon(mastodon::Mastodon),
}

impl Source {
    /// Checks what can be checked before the server starts listening, so a
    /// wrong setting stops the server with a clear message. Credentials are
    /// read from the environment here; a missing one is not an error at
    /// start-up (the page still serves and tells browsers why nothing comes).
    pub async fn open(settings: &SourceSettings) -> Result<Source, SourceError> {
        Ok(match settings.kind {
            SourceKind::Demo => Source::Demo(demo::Demo::new(settings)),
            SourceKind::Replay => Source::Replay(replay::Replay::open(settings).await?),
            SourceKind::X => Source::X(x::XSource::open(settings)?),
            SourceKind::Bluesky => Source::Bluesky(bluesky::Bluesky::open(settings)?),
            SourceKind::Mastodon => Source::Mastodon(mastodon::Mastodon::open(settings)?),
        })
    }

    /// The gate a new distinct search must pass, for sources with limits.
    pub fn search_gate(&self) -> Option<Arc<dyn SearchGate>> {
        match self {
            Source::X(x) => Some(x.gate()),
            Source::Demo(_) | Source::Replay(_) | Source::Bluesky(_) | Source::Mastodon(_) => None,
        }
    }

    pub async fn run(self, link: SourceLink) {
        match self {
            Source::Demo(demo) => demo.run(link).await,
            Source::Replay(replay) => replay.run(link).await,
            Source::X(x) => x.run(link).await,
            Source::Bluesky(bluesky) => bluesky.run(link).await,
            Source::Mastodon(mastodon) => mastodon.run(link).await,
        }
    }
}

/// Checks a URL setting: its scheme must be one of `schemes` (plain
/// `http`/`ws` are allowed for local proxies and tests).
pub fn check_url(
    option: &'static str,
    url: &str,
    schemes: &[&str],
    expected: &'static str,
) -> Result<reqwest::Url, SourceError> {
    let bad = |reason: String| SourceError::BadUrl {
        option,
        expected,
        url: url.to_owned(),
        reason,
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    if !schemes.contains(&parsed.scheme()) {
        return Err(bad(format!(
            "the scheme must be one of {}",
            schemes.join(", ")
        )));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("it names no host".to_owned()));
    }
    Ok(parsed)
}

/// How the app names itself to the services it reads.
pub const USER_AGENT: &str = concat!("twitter-search/", env!("CARGO_PKG_VERSION"));

/// The HTTP client of the real sources: a `User-Agent` naming the app, and
/// timeouts on connecting. Streams set no overall timeout (they last hours);
/// they watch for silence themselves.
pub fn http_client() -> Result<reqwest::Client, SourceError> {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| SourceError::HttpClient(e.to_string()))
}

/// Reads a response body of at most `max` bytes; a longer one is refused
/// without being read to its end, so a broken upstream cannot take the
/// server's memory.
pub async fn read_body_capped(
    mut response: reqwest::Response,
    max: usize,
) -> Result<bytes::Bytes, String> {
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(format!("the response is larger than {max} bytes"));
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| describe_http_error(&e))?
    {
        if body.len() + chunk.len() > max {
            return Err(format!("the response is larger than {max} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// A transport error in words, without the request's headers. reqwest's
/// errors name the URL, which never carries a credential here.
pub fn describe_http_error(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "cannot connect".to_owned()
    } else {
        "transport error".to_owned()
    };
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

/// A WebSocket to an upstream service.
pub type UpstreamSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Why a WebSocket to an upstream could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct WsConnectError {
    /// The HTTP status when the service refused the upgrade.
    pub status: Option<u16>,
    pub message: String,
}

/// Opens a WebSocket to `url` with `authorization` (if any), refusing
/// messages over `max_message` bytes without buffering them. Gives up
/// after 10 s.
pub async fn connect_ws(
    what: &str,
    url: &reqwest::Url,
    authorization: Option<reqwest::header::HeaderValue>,
    max_message: usize,
) -> Result<UpstreamSocket, WsConnectError> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
    let failed = |status: Option<u16>, message: String| WsConnectError { status, message };
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| failed(None, format!("cannot connect to {what}: {e}")))?;
    let headers = request.headers_mut();
    headers.insert(
        reqwest::header::USER_AGENT,
        reqwest::header::HeaderValue::from_static(USER_AGENT),
    );
    if let Some(authorization) = authorization {
        headers.insert(reqwest::header::AUTHORIZATION, authorization);
    }
    let mut config = WebSocketConfig::default();
    config.max_message_size = Some(max_message);
    config.max_frame_size = Some(max_message);
    let connecting = tokio_tungstenite::connect_async_with_config(request, Some(config), false);
    match tokio::time::timeout(Duration::from_secs(10), connecting).await {
        Ok(Ok((socket, _))) => Ok(socket),
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(response))) => {
            let status = response.status();
            Err(failed(
                Some(status.as_u16()),
                format!("{what} refused the connection: HTTP {status}"),
            ))
        }
        Ok(Err(error)) => Err(failed(None, format!("cannot connect to {what}: {error}"))),
        Err(_) => Err(failed(None, format!("cannot connect to {what}: timed out"))),
    }
}

/// A bearer token read from the environment, kept out of every `Debug` and
/// `Display` so that no log line or error can show it.
#[derive(Clone)]
pub struct Secret(Arc<str>);

impl Secret {
    /// The token in `var`, if set and not blank.
    pub fn from_env(var: &str) -> Option<Secret> {
        std::env::var(var)
            .ok()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .map(|v| Secret(v.into()))
    }

    /// The `Authorization` header value, marked sensitive so that HTTP
    /// libraries never print it.
    pub fn bearer_header(&self) -> Option<reqwest::header::HeaderValue> {
        let mut value =
            reqwest::header::HeaderValue::from_str(&format!("Bearer {}", self.0)).ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_settings_take_plain_and_secure_schemes_only() {
        assert!(check_url("--x", "http://127.0.0.1:9/", &["http", "https"], "http(s)").is_ok());
        assert!(check_url("--x", "https://api.x.com", &["http", "https"], "http(s)").is_ok());
        let error = check_url("--x", "ftp://a", &["http", "https"], "http(s)").unwrap_err();
        assert!(error.to_string().contains("--x"), "{error}");
        assert!(check_url("--x", "not a url", &["ws", "wss"], "ws(s)").is_err());
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let secret = Secret("hunter2-token".into());
        assert_eq!(format!("{secret:?}"), "Secret(..)");
        let header = secret.bearer_header().unwrap();
        assert!(header.is_sensitive());
        assert!(!format!("{header:?}").contains("hunter2"));
    }
}

#[cfg(test)]
mod pacer_tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_pacer_spaces_posts_evenly_and_does_not_burst_after_a_stall() {
        let shutdown = CancellationToken::new();
        let mut pacer = Pacer::new(4.0);
        let started = Instant::now();
        for _ in 0..5 {
            assert!(pacer.wait(&shutdown).await);
        }
        // The first post at once, then one every 250 ms.
        assert_eq!(started.elapsed(), Duration::from_millis(1000));
        // A stall far longer than 8 intervals: the next post waits its turn
        // again rather than bursting to catch up.
        tokio::time::advance(Duration::from_secs(10)).await;
        let resumed = Instant::now();
        for _ in 0..3 {
            assert!(pacer.wait(&shutdown).await);
        }
        assert_eq!(resumed.elapsed(), Duration::from_millis(500));
        shutdown.cancel();
        assert!(!pacer.wait(&shutdown).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_of_zero_never_waits() {
        let shutdown = CancellationToken::new();
        let mut pacer = Pacer::new(0.0);
        let started = Instant::now();
        for _ in 0..1000 {
            assert!(pacer.wait(&shutdown).await);
        }
        assert_eq!(started.elapsed(), Duration::ZERO);
    }
}
