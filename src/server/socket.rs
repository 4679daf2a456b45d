//! One task per browser WebSocket: reads its commands, writes its posts.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message};
use futures::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::watch;
use tokio::time::{interval_at, Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::hub::{tweets_frame, Delivery, Hub, Registration};
use super::metrics::Metrics;
use super::settings::LimitSettings;
use super::sources::SourceStatus;
use crate::query::Query;
use crate::wire::{ClientMessage, ErrorCode, Limits, ServerMessage, PROTOCOL_VERSION};

/// Close codes of docs/protocol.md.
pub mod close_code {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const POLICY_VIOLATION: u16 = 1008;
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

/// Posts written in one `tweets` frame at most.
const MAX_BATCH: usize = 64;

/// A connection sent more posts than this in a second is busy: its posts
/// come faster than anyone reads them.
const BUSY_POSTS_PER_SECOND: u16 = 50;

/// A busy connection gets a `tweets` frame at most this often, each holding
/// what arrived meanwhile. Fewer, fuller frames cost the server, the network
/// and the browser less per post (one write, one wake-up, one page update
/// for several posts), for at most this much more latency; a quiet
/// connection still gets every post at once.
const BUSY_FRAME_INTERVAL_MS: u32 = 20;

/// How long a closing socket waits for the browser's own close frame.
const CLOSE_DRAIN: Duration = Duration::from_secs(1);

/// A flood episode ends after this long without a refused message.
const FLOOD_MEMORY: Duration = Duration::from_secs(10);

/// What a connection talks through: axum's `WebSocket` in the server, a
/// pair of channels in the tests (which then run on tokio's paused clock).
pub trait Transport:
    Stream<Item = Result<Message, axum::Error>> + Sink<Message, Error = axum::Error> + Unpin + Send
{
}

impl<T> Transport for T where
    T: Stream<Item = Result<Message, axum::Error>>
        + Sink<Message, Error = axum::Error>
        + Unpin
        + Send
{
}

/// What a socket task needs from the server.
#[derive(Clone)]
pub struct SocketContext {
    pub hub: Arc<Hub>,
    pub metrics: Arc<Metrics>,
    pub limits: LimitSettings,
    pub source_name: &'static str,
    /// Sender: the source task. Each socket sends `upstream` on every change.
    pub upstream: watch::Receiver<SourceStatus>,
    /// Cancelled once when the server shuts down; sockets close with 1001.
    pub shutdown: CancellationToken,
    /// Sender: the server's rate sampler. The source's posts per second
    /// over the last 10 s, sent to the browser as `stats` every
    /// [`STATS_EVERY`].
    pub posts_per_second: watch::Receiver<f64>,
}

/// How often each browser is sent `stats`.
pub const STATS_EVERY: Duration = Duration::from_secs(5);

/// Why a connection ended, for the log and the metrics.
#[derive(Debug, thiserror::Error)]
enum Disconnect {
    #[error("the browser closed the connection")]
    ClientClosed,
    #[error("transport error: {0}")]
    TransportError(axum::Error),
    #[error("a frame of {0} bytes was over the limit (close 1009)")]
    FrameTooLarge(usize),
    #[error("a frame over the transport's cap (close 1009)")]
    FrameOverCap,
    #[error("messages kept coming after rateLimited (close 1008)")]
    Flood,
    #[error("no frame within the idle timeout")]
    Idle,
    #[error("the browser did not take a frame within the write timeout")]
    WriteTimeout,
    #[error("the server is shutting down (close 1001)")]
    ShuttingDown,
}

impl Disconnect {
    /// The reason as a metric label.
    fn label(&self) -> &'static str {
        match self {
            Disconnect::ClientClosed => "client_closed",
            Disconnect::TransportError(_) => "transport_error",
            Disconnect::FrameTooLarge(_) | Disconnect::FrameOverCap => "frame_too_large",
            Disconnect::Flood => "flood",
            Disconnect::Idle => "idle",
            Disconnect::WriteTimeout => "write_timeout",
            Disconnect::ShuttingDown => "shutting_down",
        }
    }
}

/// Writes one frame, giving up when the peer does not take it in time: a
/// browser that stops reading must not hold its task, its queue and its
/// connection slot forever.
async fn write(
    socket: &mut impl Transport,
    message: Message,
    limits: &LimitSettings,
) -> Result<(), Disconnect> {
    match tokio::time::timeout(
        Duration::from_secs(limits.write_timeout_secs),
        socket.send(message),
    )
    .await
    {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(Disconnect::ClientClosed),
        Err(_) => Err(Disconnect::WriteTimeout),
    }
}

async fn send(
    socket: &mut impl Transport,
    message: &ServerMessage,
    limits: &LimitSettings,
) -> Result<(), Disconnect> {
    write(socket, Message::text(message.to_json()), limits).await
}

async fn close(socket: &mut impl Transport, code: u16, reason: &str, limits: &LimitSettings) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    // The peer may already be gone or stuck; there is nothing more to tell it then.
    if write(socket, Message::Close(Some(frame)), limits)
        .await
        .is_err()
    {
        return;
    }
    // Read (and drop) what the browser had already sent, up to its close: a
    // socket closed with unread input is reset, and a reset can destroy the
    // close frame and the last messages before the browser reads them.
    let drain = async {
        while let Some(Ok(frame)) = socket.next().await {
            if matches!(frame, Message::Close(_)) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_DRAIN, drain).await;
}

/// True when the transport refused a frame for its size.
fn is_over_capacity(error: &axum::Error) -> bool {
    use std::error::Error as _;
    let mut cause = error.source();
    while let Some(inner) = cause {
        if let Some(tungstenite::Error::Capacity(_)) = inner.downcast_ref::<tungstenite::Error>() {
            return true;
        }
        cause = inner.source();
    }
    false
}

/// A token bucket over incoming messages, with a memory of refusals so a
/// steady flood above the rate is caught, not only a burst.
struct RateLimiter {
    tokens: f64,
    burst: f64,
    per_second: f64,
    last: Instant,
    /// Messages refused in the current flood episode.
    strikes: u32,
    last_refusal: Option<Instant>,
}

impl RateLimiter {
    fn new(limits: &LimitSettings) -> Self {
        RateLimiter {
            tokens: limits.message_burst,
            burst: limits.message_burst,
            per_second: limits.messages_per_second,
            last: Instant::now(),
            strikes: 0,
            last_refusal: None,
        }
    }

    fn allow(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        if self
            .last_refusal
            .is_some_and(|at| now.duration_since(at) >= FLOOD_MEMORY)
        {
            self.strikes = 0;
            self.last_refusal = None;
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            self.strikes += 1;
            self.last_refusal = Some(now);
            false
        }
    }
}

struct Connection<S> {
    socket: S,
    registration: Registration,
    context: SocketContext,
    limiter: RateLimiter,
    last_heard: Instant,
    pace: Pace,
}

/// How fast a connection's posts go out: enough to tell a busy connection
/// from a quiet one. Milliseconds of [`clock_ms`] in 32 bits (differences
/// taken wrapping), since every connection holds one.
#[derive(Debug, Default, Clone, Copy)]
struct Pace {
    window_started_ms: u32,
    posts_in_window: u16,
    /// The last whole second of counting was over [`BUSY_POSTS_PER_SECOND`].
    was_busy: bool,
    last_frame_ms: u32,
}

/// Milliseconds on tokio's clock (paused in tests) since the first call.
fn clock_ms() -> u32 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_millis() as u32
}

impl Pace {
    /// How long a frame of `ready` posts should wait at `now_ms` for more:
    /// only a busy connection's, and only until [`BUSY_FRAME_INTERVAL_MS`]
    /// after its last frame.
    fn hold(&mut self, now_ms: u32, ready: usize) -> Option<Duration> {
        if now_ms.wrapping_sub(self.window_started_ms) >= 1000 {
            self.was_busy = self.posts_in_window > BUSY_POSTS_PER_SECOND;
            self.window_started_ms = now_ms;
            self.posts_in_window = 0;
        }
        let busy = self.was_busy
            || usize::from(self.posts_in_window) + ready > usize::from(BUSY_POSTS_PER_SECOND);
        let since_last = now_ms.wrapping_sub(self.last_frame_ms);
        (busy && ready > 0 && ready < MAX_BATCH && since_last < BUSY_FRAME_INTERVAL_MS)
            .then(|| Duration::from_millis(u64::from(BUSY_FRAME_INTERVAL_MS - since_last)))
    }

    fn wrote(&mut self, now_ms: u32, posts: usize) {
        self.last_frame_ms = now_ms;
        self.posts_in_window = self
            .posts_in_window
            .saturating_add(u16::try_from(posts).unwrap_or(u16::MAX));
    }
}

/// Serves one upgraded WebSocket until either side closes it.
///
/// Every idle browser holds this future, so its size matters: the inputs
/// travel boxed (an async fn would keep a second copy of its arguments in
/// every state), the greeting lives in its own function, and the connection
/// sits on the heap while it runs.
pub fn serve<S: Transport + 'static>(
    socket: S,
    context: SocketContext,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let start = Box::new((socket, context));
    async move {
        // Boxed: the greeting's state is needed once, not for the
        // connection's whole life.
        if let Some(connection) = Box::pin(open(start)).await {
            run_to_end(connection).await;
        }
    }
}

/// Greets the browser and registers it with the hub; `None` when it is
/// gone or the server is full (it was told `serverBusy` and 1013).
async fn open<S: Transport>(start: Box<(S, SocketContext)>) -> Option<Box<Connection<S>>> {
    let (mut socket, context) = *start;
    let limits = &context.limits;
    let hello = ServerMessage::Hello {
        protocol: PROTOCOL_VERSION,
        source: context.source_name.to_owned(),
        limits: Limits {
            max_term_length: limits.max_term_length,
        },
    };
    if send(&mut socket, &hello, limits).await.is_err() {
        return None;
    }
    let registration = match context.hub.register() {
        Ok(registration) => registration,
        Err(error) => {
            context.metrics.connections_refused_busy.inc();
            warn!(%error, "refusing WebSocket");
            let busy = ServerMessage::error(ErrorCode::ServerBusy, error.to_string());
            if send(&mut socket, &busy, limits).await.is_ok() {
                close(
                    &mut socket,
                    close_code::TRY_AGAIN_LATER,
                    "server full",
                    limits,
                )
                .await;
            }
            return None;
        }
    };
    context.metrics.connections_total.inc();
    context.metrics.connections_open.inc();
    debug!(connection = registration.id, "WebSocket open");
    Some(Box::new(Connection {
        socket,
        limiter: RateLimiter::new(&context.limits),
        registration,
        context,
        last_heard: Instant::now(),
        pace: Pace::default(),
    }))
}

async fn run_to_end<S: Transport>(mut connection: Box<Connection<S>>) -> Disconnect {
    let reason = connection.run().await;
    let metrics = &connection.context.metrics;
    metrics.connections_open.dec();
    metrics.count_disconnect(reason.label());
    let id = connection.registration.id;
    match &reason {
        Disconnect::ClientClosed | Disconnect::ShuttingDown => {
            debug!(connection = id, %reason, "WebSocket closed")
        }
        _ => info!(connection = id, %reason, "WebSocket closed"),
    }
    reason
}

impl<S: Transport> Connection<S> {
    async fn run(&mut self) -> Disconnect {
        let mut upstream = self.context.upstream.clone();
        let status = upstream.borrow_and_update().clone();
        if let Err(reason) = self.send(&status.message()).await {
            return reason;
        }
        let ping_every = Duration::from_secs(self.context.limits.ping_interval_secs);
        let idle_after = Duration::from_secs(self.context.limits.idle_timeout_secs);
        let mut pings = interval_at(Instant::now() + ping_every, ping_every);
        pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut stats = interval_at(Instant::now() + STATS_EVERY, STATS_EVERY);
        stats.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // Grows on the first posts: an idle browser holds no batch buffer.
        let mut batch = Vec::new();
        let shutdown = self.context.shutdown.clone();
        let mut upstream_open = true;
        // Biased so that shutdown, commands and the idle check are never
        // starved by a queue that is always full.
        let reason = loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    self.close(close_code::GOING_AWAY, "server shutting down").await;
                    break Disconnect::ShuttingDown;
                }
                frame = self.socket.next() => {
                    self.last_heard = Instant::now();
                    let result = match frame {
                        None | Some(Ok(Message::Close(_))) => Err(Disconnect::ClientClosed),
                        Some(Err(error)) if is_over_capacity(&error) => {
                            self.context.metrics.closed_frame_too_large.inc();
                            self.close(close_code::MESSAGE_TOO_BIG, "frame over the size limit").await;
                            Err(Disconnect::FrameOverCap)
                        }
                        Some(Err(error)) => Err(Disconnect::TransportError(error)),
                        // Boxed: a command is rare next to the time a socket
                        // waits, and its handling would double the idle future.
                        Some(Ok(Message::Text(text))) => Box::pin(self.on_frame(Some(text.as_str()), text.len())).await,
                        Some(Ok(Message::Binary(bytes))) => Box::pin(self.on_frame(None, bytes.len())).await,
                        // axum answers pings itself; either kind proves the peer is alive.
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(()),
                    };
                    if let Err(reason) = result {
                        break reason;
                    }
                }
                _ = pings.tick() => {
                    if self.last_heard.elapsed() >= idle_after {
                        self.context.metrics.closed_idle.inc();
                        self.close(close_code::NORMAL, "idle: no answer to pings").await;
                        break Disconnect::Idle;
                    }
                    if let Err(reason) = self.write(Message::Ping(Default::default())).await {
                        break reason;
                    }
                }
                _ = stats.tick() => {
                    let posts_per_second = *self.context.posts_per_second.borrow();
                    if let Err(reason) = self.send(&ServerMessage::Stats { posts_per_second }).await {
                        break reason;
                    }
                }
                changed = upstream.changed(), if upstream_open => {
                    if changed.is_err() {
                        // The source task has ended; its last state stays true.
                        upstream_open = false;
                        continue;
                    }
                    let status = upstream.borrow_and_update().clone();
                    if let Err(reason) = self.send(&status.message()).await {
                        break reason;
                    }
                }
                received = self.registration.next_batch(&mut batch, MAX_BATCH) => {
                    if received == 0 {
                        // The hub dropped our queue: only happens on unregister.
                        break Disconnect::ShuttingDown;
                    }
                    // Boxed for the same reason: one allocation per frame
                    // of posts, against a smaller future for every socket.
                    if let Err(reason) = Box::pin(self.flush(&mut batch)).await {
                        break reason;
                    }
                }
            }
        };
        if matches!(reason, Disconnect::WriteTimeout) {
            self.context.metrics.closed_slow.inc();
        }
        reason
    }

    /// Writes the posts taken off the queue (at most [`MAX_BATCH`]) as one
    /// `tweets` frame, then reports posts dropped for this connection.
    async fn flush(&mut self, batch: &mut Vec<Delivery>) -> Result<(), Disconnect> {
        if let Some(hold) = self.pace.hold(clock_ms(), batch.len()) {
            // Commands wait as long as the posts do: at most the interval.
            let until = Instant::now() + hold;
            while batch.len() < MAX_BATCH {
                let room = MAX_BATCH - batch.len();
                match tokio::time::timeout_at(until, self.registration.next_batch(batch, room))
                    .await
                {
                    // Nothing more in time, or the queue is gone (the next
                    // receive in `run` says so).
                    Err(_) | Ok(0) => break,
                    Ok(_) => {}
                }
            }
        }
        if !batch.is_empty() {
            let posts: Vec<_> = batch.drain(..).map(|d| d.post).collect();
            self.write(Message::Text(tweets_frame(&posts))).await?;
            self.pace.wrote(clock_ms(), posts.len());
            for post in &posts {
                let waited = post.received_at.elapsed().as_secs_f64();
                self.context.metrics.delivery_seconds.observe(waited);
            }
        }
        let skipped = self.registration.take_skipped();
        if skipped > 0 {
            self.send(&ServerMessage::Skipped { count: skipped })
                .await?;
        }
        Ok(())
    }

    /// One frame from the browser; `text` is `None` for a binary frame.
    async fn on_frame(&mut self, text: Option<&str>, size: usize) -> Result<(), Disconnect> {
        let limits = &self.context.limits;
        self.context.metrics.messages_received.inc();
        if size > limits.max_frame_bytes {
            self.context.metrics.closed_frame_too_large.inc();
            let reason = format!(
                "frame of {size} bytes is over the {} byte limit",
                limits.max_frame_bytes
            );
            self.close(close_code::MESSAGE_TOO_BIG, &reason).await;
            return Err(Disconnect::FrameTooLarge(size));
        }
        if !self.limiter.allow() {
            self.context.metrics.messages_rate_limited.inc();
            if self.limiter.strikes > limits.flood_strikes {
                self.context.metrics.closed_flood.inc();
                self.close(close_code::POLICY_VIOLATION, "too many messages")
                    .await;
                return Err(Disconnect::Flood);
            }
            if self.limiter.strikes == 1 {
                let message = format!(
                    "too many messages: at most {} per second; this one was ignored",
                    limits.messages_per_second
                );
                return self
                    .send(&ServerMessage::error(ErrorCode::RateLimited, message))
                    .await;
            }
            return Ok(());
        }
        let Some(text) = text else {
            self.context.metrics.messages_invalid.inc();
            let message = "binary frames are not understood: send JSON text frames";
            return self
                .send(&ServerMessage::error(ErrorCode::InvalidMessage, message))
                .await;
        };
        let command = match ClientMessage::parse(text) {
            Ok(command) => command,
            Err(error) => {
                self.context.metrics.messages_invalid.inc();
                return self
                    .send(&ServerMessage::error(
                        ErrorCode::InvalidMessage,
                        error.to_string(),
                    ))
                    .await;
            }
        };
        match answer(command, &self.context.hub, &mut self.registration, limits) {
            Some(reply) => self.send(&reply).await,
            None => Ok(()),
        }
    }

    async fn send(&mut self, message: &ServerMessage) -> Result<(), Disconnect> {
        // Boxed: notices and replies are rare next to the time a socket
        // waits; inline, their writes would size every idle socket's future.
        Box::pin(send(&mut self.socket, message, &self.context.limits)).await
    }

    async fn write(&mut self, message: Message) -> Result<(), Disconnect> {
        write(&mut self.socket, message, &self.context.limits).await
    }

    async fn close(&mut self, code: u16, reason: &str) {
        // Boxed: it happens once, and would otherwise size every idle socket.
        Box::pin(close(&mut self.socket, code, reason, &self.context.limits)).await
    }
}

/// The session: what one well-formed command does to the hub, and the
/// reply it gets (`None`: no reply). No I/O, so it is tested without a
/// socket; the connection around it reads frames, applies the size and
/// rate limits, and writes the reply.
fn answer(
    command: ClientMessage,
    hub: &Hub,
    registration: &mut Registration,
    limits: &LimitSettings,
) -> Option<ServerMessage> {
    let id = registration.id;
    let reply = match command {
        ClientMessage::UpdateTerm { term } => match Query::parse(&term, limits.max_term_length) {
            Ok(query) => {
                let query = Arc::new(query);
                let term = query.term().to_owned();
                match hub.set_query(id, query) {
                    Ok(change) => {
                        registration.apply(change);
                        ServerMessage::UpdatedTerm { term }
                    }
                    Err(refused) => {
                        ServerMessage::error(ErrorCode::SourceLimit, refused.to_string())
                    }
                }
            }
            Err(error) => ServerMessage::error(error.code(), error.to_string()),
        },
        ClientMessage::StopStream => {
            registration.apply(hub.set_streaming(id, false));
            ServerMessage::StreamState { streaming: false }
        }
        ClientMessage::StartStream => {
            registration.apply(hub.set_streaming(id, true));
            ServerMessage::StreamState { streaming: true }
        }
        ClientMessage::Ping if limits.answer_pings => ServerMessage::Pong,
        ClientMessage::Ping => return None,
    };
    Some(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    mod session {
        use super::super::*;
        use crate::server::sources::SearchGate;

        fn hub() -> Arc<Hub> {
            Hub::new(10, 16, Arc::new(Metrics::default()))
        }

        fn active(hub: &Hub) -> Vec<String> {
            hub.active_set().keys().cloned().collect()
        }

        fn update(term: &str) -> ClientMessage {
            ClientMessage::UpdateTerm { term: term.into() }
        }

        #[test]
        fn a_search_is_accepted_as_understood_and_becomes_active() {
            let (hub, limits) = (hub(), LimitSettings::default());
            let mut me = hub.register().unwrap();
            assert_eq!(
                answer(update("  rust   wasm "), &hub, &mut me, &limits),
                Some(ServerMessage::UpdatedTerm {
                    term: "rust wasm".into()
                })
            );
            assert_eq!(active(&hub), ["rust wasm"]);
        }

        #[test]
        fn a_refused_search_says_where_and_keeps_the_previous_one() {
            let (hub, limits) = (hub(), LimitSettings::default());
            let mut me = hub.register().unwrap();
            answer(update("cats"), &hub, &mut me, &limits);
            let Some(ServerMessage::Error { code, message }) =
                answer(update("dogs (photo"), &hub, &mut me, &limits)
            else {
                panic!("an error")
            };
            assert_eq!(code, ErrorCode::InvalidTerm);
            assert!(message.contains("character"), "{message}");
            let long = "a".repeat(limits.max_term_length + 1);
            assert!(matches!(
                answer(update(&long), &hub, &mut me, &limits),
                Some(ServerMessage::Error {
                    code: ErrorCode::TermTooLong,
                    ..
                })
            ));
            assert_eq!(active(&hub), ["cats"]);
        }

        struct OnlyOne;
        impl SearchGate for OnlyOne {
            fn admit(&self, _: &Query, distinct_after: usize) -> Result<(), String> {
                if distinct_after > 1 {
                    Err("the source takes one search".into())
                } else {
                    Ok(())
                }
            }
        }

        #[test]
        fn a_search_the_source_cannot_take_is_refused_with_source_limit() {
            let hub = Hub::with_gate(
                10,
                16,
                Arc::new(Metrics::default()),
                Some(Arc::new(OnlyOne)),
            );
            let limits = LimitSettings::default();
            let mut first = hub.register().unwrap();
            let mut second = hub.register().unwrap();
            answer(update("cats"), &hub, &mut first, &limits);
            answer(update("birds"), &hub, &mut second, &limits);
            assert_eq!(
                answer(update("dogs"), &hub, &mut second, &limits),
                Some(ServerMessage::error(
                    ErrorCode::SourceLimit,
                    "the source takes one search"
                ))
            );
            assert_eq!(active(&hub), ["cats"]);
        }

        #[test]
        fn stop_and_start_take_the_search_out_and_back() {
            let (hub, limits) = (hub(), LimitSettings::default());
            let mut me = hub.register().unwrap();
            answer(update("cats"), &hub, &mut me, &limits);
            assert_eq!(
                answer(ClientMessage::StopStream, &hub, &mut me, &limits),
                Some(ServerMessage::StreamState { streaming: false })
            );
            assert!(active(&hub).is_empty());
            assert_eq!(
                answer(ClientMessage::StartStream, &hub, &mut me, &limits),
                Some(ServerMessage::StreamState { streaming: true })
            );
            assert_eq!(active(&hub), ["cats"]);
        }

        #[test]
        fn ping_is_answered_unless_the_test_setting_says_not_to() {
            let (hub, mut limits) = (hub(), LimitSettings::default());
            let mut me = hub.register().unwrap();
            assert_eq!(
                answer(ClientMessage::Ping, &hub, &mut me, &limits),
                Some(ServerMessage::Pong)
            );
            limits.answer_pings = false;
            assert_eq!(answer(ClientMessage::Ping, &hub, &mut me, &limits), None);
        }
    }

    /// The whole connection, driven through channels on tokio's paused
    /// clock: what the browser sees, and why the connection ended.
    mod connection {
        use super::super::*;
        use crate::wire::Tweet;
        use crate::wire::UpstreamState;
        use futures::channel::mpsc as channel;
        use serde_json::Value;
        use std::pin::Pin;
        use std::task::{Context, Poll};

        /// The server's end: the browser's frames in, the server's frames
        /// out through a bounded channel (a browser that stops reading
        /// fills it).
        struct Wire {
            incoming: channel::UnboundedReceiver<Result<Message, axum::Error>>,
            outgoing: channel::Sender<Message>,
        }

        impl Stream for Wire {
            type Item = Result<Message, axum::Error>;
            fn poll_next(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<Option<Self::Item>> {
                self.incoming.poll_next_unpin(cx)
            }
        }

        impl Sink<Message> for Wire {
            type Error = axum::Error;
            fn poll_ready(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<Result<(), Self::Error>> {
                self.outgoing.poll_ready_unpin(cx).map_err(axum::Error::new)
            }
            fn start_send(mut self: Pin<&mut Self>, frame: Message) -> Result<(), Self::Error> {
                self.outgoing
                    .start_send_unpin(frame)
                    .map_err(axum::Error::new)
            }
            fn poll_flush(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<Result<(), Self::Error>> {
                self.outgoing.poll_flush_unpin(cx).map_err(axum::Error::new)
            }
            fn poll_close(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<Result<(), Self::Error>> {
                self.outgoing.poll_close_unpin(cx).map_err(axum::Error::new)
            }
        }

        /// The browser's end.
        struct Browser {
            to_server: channel::UnboundedSender<Result<Message, axum::Error>>,
            from_server: channel::Receiver<Message>,
        }

        impl Browser {
            fn say(&self, frame: Message) {
                self.to_server.unbounded_send(Ok(frame)).unwrap();
            }

            fn command(&self, json: &str) {
                self.say(Message::text(json));
            }

            /// The next frame, pings included; `None` once the server is done.
            async fn frame(&mut self) -> Option<Message> {
                self.from_server.next().await
            }

            /// The next message, past pings and `stats`.
            async fn message(&mut self) -> Value {
                loop {
                    match self.frame().await.expect("the connection is open") {
                        Message::Text(text) => {
                            let message: Value = serde_json::from_str(text.as_str()).unwrap();
                            if message["type"] != "stats" {
                                return message;
                            }
                        }
                        Message::Ping(_) => {}
                        other => panic!("expected a message, got {other:?}"),
                    }
                }
            }

            /// The close frame's code, past anything before it.
            async fn close_code(&mut self) -> u16 {
                while let Some(frame) = self.frame().await {
                    if let Message::Close(Some(close)) = frame {
                        return close.code;
                    }
                }
                panic!("the server ended without a close frame")
            }
        }

        struct Server {
            hub: Arc<Hub>,
            metrics: Arc<Metrics>,
            shutdown: CancellationToken,
            ended: tokio::task::JoinHandle<Option<Disconnect>>,
            _upstream: watch::Sender<SourceStatus>,
            _rate: watch::Sender<f64>,
        }

        /// One connection on a fresh hub; the browser has read `hello`
        /// and `upstream`. `window`: frames the browser's channel holds
        /// before the server's writes wait.
        async fn connect(limits: LimitSettings, window: usize) -> (Server, Browser) {
            let metrics = Arc::new(Metrics::default());
            let hub = Hub::new(
                limits.max_connections,
                limits.outbound_queue,
                metrics.clone(),
            );
            let (upstream, upstream_receiver) =
                watch::channel(SourceStatus::new(UpstreamState::Connected, None));
            let (rate, posts_per_second) = watch::channel(0.0);
            let shutdown = CancellationToken::new();
            let context = SocketContext {
                hub: hub.clone(),
                metrics: metrics.clone(),
                limits,
                source_name: "test",
                upstream: upstream_receiver,
                shutdown: shutdown.clone(),
                posts_per_second,
            };
            let (to_server, incoming) = channel::unbounded();
            // A bounded channel holds its buffer plus one slot per sender.
            let (outgoing, from_server) = channel::channel(window.saturating_sub(1));
            let ended = tokio::spawn(async move {
                let connection = open(Box::new((Wire { incoming, outgoing }, context))).await?;
                Some(run_to_end(connection).await)
            });
            let mut browser = Browser {
                to_server,
                from_server,
            };
            {
                assert_eq!(browser.message().await["type"], "hello");
                assert_eq!(browser.message().await["type"], "upstream");
            }
            let server = Server {
                hub,
                metrics,
                shutdown,
                ended,
                _upstream: upstream,
                _rate: rate,
            };
            (server, browser)
        }

        fn post(id: usize, text: &str) -> Arc<Tweet> {
            Arc::new(Tweet {
                id: id.to_string(),
                text: text.into(),
                created_at: "2026-11-30T12:00:00Z".into(),
                source: "test".into(),
                ..Default::default()
            })
        }

        fn pings_every_second_idle_after_three() -> LimitSettings {
            LimitSettings {
                ping_interval_secs: 1,
                idle_timeout_secs: 3,
                ..Default::default()
            }
        }

        #[tokio::test(start_paused = true)]
        async fn a_browser_that_never_answers_pings_is_closed_after_the_idle_timeout() {
            let limits = pings_every_second_idle_after_three();
            let started = Instant::now();
            let (server, mut browser) = connect(limits, 64).await;
            let mut pings = 0;
            let code = loop {
                match browser.frame().await.unwrap() {
                    Message::Ping(_) => pings += 1,
                    Message::Close(Some(close)) => break close.code,
                    _ => {}
                }
            };
            assert_eq!(code, close_code::NORMAL);
            assert_eq!(pings, 2, "pinged at 1 s and 2 s, closed at 3 s");
            assert_eq!(started.elapsed().as_secs(), 3);
            drop(browser);
            assert!(matches!(
                server.ended.await.unwrap(),
                Some(Disconnect::Idle)
            ));
            assert_eq!(server.metrics.closed_idle.get(), 1);
        }

        #[tokio::test(start_paused = true)]
        async fn a_browser_that_answers_pings_stays_connected() {
            let limits = pings_every_second_idle_after_three();
            let started = Instant::now();
            let (server, mut browser) = connect(limits, 64).await;
            while started.elapsed() < Duration::from_secs(30) {
                if let Some(Message::Ping(payload)) = browser.frame().await {
                    browser.say(Message::Pong(payload));
                }
            }
            assert!(!server.ended.is_finished());
            drop(browser);
            assert!(matches!(
                server.ended.await.unwrap(),
                Some(Disconnect::ClientClosed)
            ));
        }

        #[tokio::test(start_paused = true)]
        async fn a_browser_that_stops_reading_is_dropped_after_the_write_timeout() {
            let limits = LimitSettings {
                write_timeout_secs: 10,
                ..Default::default()
            };
            // The browser reads `hello` and `upstream`, then nothing more:
            // the channel holds two frames, and the third write waits.
            let (server, browser) = connect(limits, 2).await;
            let stopped_reading = Instant::now();
            assert!(matches!(
                server.ended.await.unwrap(),
                Some(Disconnect::WriteTimeout)
            ));
            // `stats` at 5 s fills the channel; the one at 10 s waits 10 s.
            assert_eq!(stopped_reading.elapsed().as_secs(), 20);
            assert_eq!(server.metrics.closed_slow.get(), 1);
            drop(browser);
        }

        #[tokio::test(start_paused = true)]
        async fn a_full_queue_is_written_in_frames_of_the_batch_limit_and_the_rest_is_counted() {
            let limits = LimitSettings {
                outbound_queue: 256,
                ..Default::default()
            };
            let (server, mut browser) = connect(limits, 1024).await;
            browser.command(r#"{"type":"updateTerm","term":"x"}"#);
            assert_eq!(browser.message().await["type"], "updatedTerm");
            // The connection's task does not run between these: its queue
            // fills, and the posts past it are counted.
            for id in 0..300 {
                server.hub.dispatch(&post(id, "x"));
            }
            // A command while the queue is full must not flush it in one frame.
            browser.command(r#"{"type":"ping"}"#);
            let (mut shown, mut skipped, mut frames) = (Vec::new(), 0, 0);
            while shown.len() as u64 + skipped < 300 {
                let message = browser.message().await;
                match message["type"].as_str().unwrap() {
                    "tweets" => {
                        let tweets = message["tweets"].as_array().unwrap();
                        assert!(tweets.len() <= MAX_BATCH, "a frame of {}", tweets.len());
                        frames += 1;
                        shown.extend(
                            tweets
                                .iter()
                                .map(|t| t["id"].as_str().unwrap().parse::<usize>().unwrap()),
                        );
                    }
                    "skipped" => skipped += message["count"].as_u64().unwrap(),
                    "pong" => {}
                    other => panic!("unexpected {other}"),
                }
            }
            assert_eq!(shown, (0..256).collect::<Vec<_>>(), "the queue, in order");
            assert_eq!(skipped, 44);
            assert_eq!(frames, 4);
        }

        /// Dispatches `count` posts matching "x", one every `every`, and
        /// returns, for each frame of posts the browser got, when it came
        /// (since the first post) and the posts' ids and dispatch times.
        async fn paced_run(count: usize, every: Duration) -> Vec<(Duration, Vec<usize>)> {
            let (server, mut browser) = connect(LimitSettings::default(), 4096).await;
            browser.command(r#"{"type":"updateTerm","term":"x"}"#);
            assert_eq!(browser.message().await["type"], "updatedTerm");
            let started = Instant::now();
            let hub = server.hub.clone();
            let dispatching = tokio::spawn(async move {
                for id in 0..count {
                    hub.dispatch(&post(id, "x"));
                    tokio::time::sleep(every).await;
                }
            });
            let mut frames = Vec::new();
            let mut seen = 0;
            while seen < count {
                let message = browser.message().await;
                assert_eq!(message["type"], "tweets", "{message}");
                let ids: Vec<usize> = message["tweets"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t["id"].as_str().unwrap().parse().unwrap())
                    .collect();
                seen += ids.len();
                frames.push((started.elapsed(), ids));
            }
            dispatching.await.unwrap();
            drop(server);
            frames
        }

        #[tokio::test(start_paused = true)]
        async fn a_quiet_connection_gets_each_post_at_once() {
            let every = Duration::from_millis(100);
            let frames = paced_run(30, every).await;
            assert_eq!(frames.len(), 30, "one frame a post");
            for (at, ids) in frames {
                assert_eq!(ids.len(), 1);
                assert_eq!(at, every * ids[0] as u32, "post {} waited", ids[0]);
            }
        }

        #[tokio::test(start_paused = true)]
        async fn a_busy_connection_gets_fuller_frames_at_most_every_interval() {
            // 200 posts a second for two seconds.
            let every = Duration::from_millis(5);
            let frames = paced_run(400, every).await;
            let ids: Vec<usize> = frames.iter().flat_map(|(_, ids)| ids.clone()).collect();
            assert_eq!(ids, (0..400).collect::<Vec<_>>(), "every post, in order");
            let interval = Duration::from_millis(u64::from(BUSY_FRAME_INTERVAL_MS));
            for (at, ids) in &frames {
                let waited = *at - every * ids[0] as u32;
                assert!(waited <= interval, "post {} waited {waited:?}", ids[0]);
            }
            // Once more than 50 posts went out within a second, frames come
            // at most every interval, each with the posts of that interval.
            let busy: Vec<_> = frames.iter().skip_while(|(_, ids)| ids[0] < 60).collect();
            for pair in busy.windows(2) {
                assert!(
                    pair[1].0 - pair[0].0 >= interval,
                    "{:?} then {:?}",
                    pair[0],
                    pair[1]
                );
            }
            assert!(busy.iter().all(|(_, ids)| ids.len() <= 5));
            assert!(busy.len() <= 340 * 5 / 20 + 1, "{} frames", busy.len());
            assert!(frames.len() < 150, "{} frames for 400 posts", frames.len());
        }

        #[tokio::test(start_paused = true)]
        async fn a_flood_is_told_once_then_closed_with_1008() {
            let limits = LimitSettings {
                messages_per_second: 1.0,
                message_burst: 2.0,
                flood_strikes: 3,
                ..Default::default()
            };
            let (server, mut browser) = connect(limits, 64).await;
            for _ in 0..10 {
                browser.command(r#"{"type":"ping"}"#);
            }
            assert_eq!(browser.message().await["type"], "pong");
            assert_eq!(browser.message().await["type"], "pong");
            let refused = browser.message().await;
            assert_eq!(refused["code"], "rateLimited", "{refused}");
            assert_eq!(browser.close_code().await, close_code::POLICY_VIOLATION);
            drop(browser);
            assert!(matches!(
                server.ended.await.unwrap(),
                Some(Disconnect::Flood)
            ));
        }

        #[tokio::test(start_paused = true)]
        async fn an_oversized_frame_is_closed_with_1009_and_a_malformed_one_is_answered() {
            let (server, mut browser) = connect(LimitSettings::default(), 64).await;
            browser.command("{not json");
            assert_eq!(browser.message().await["code"], "invalidMessage");
            browser.say(Message::Binary(vec![1, 2, 3].into()));
            assert_eq!(browser.message().await["code"], "invalidMessage");
            browser.command(&"x".repeat(5000));
            assert_eq!(browser.close_code().await, close_code::MESSAGE_TOO_BIG);
            drop(browser);
            assert!(matches!(
                server.ended.await.unwrap(),
                Some(Disconnect::FrameTooLarge(5000))
            ));
        }

        #[tokio::test(start_paused = true)]
        async fn shutdown_closes_with_1001_and_stats_come_every_five_seconds() {
            let (server, mut browser) = connect(LimitSettings::default(), 64).await;
            let started = Instant::now();
            let mut stats = Vec::new();
            while stats.len() < 3 {
                if let Some(Message::Text(text)) = browser.frame().await {
                    if text.as_str().contains("\"stats\"") {
                        stats.push(started.elapsed().as_secs());
                    }
                }
            }
            assert_eq!(stats, [5, 10, 15]);
            server.shutdown.cancel();
            assert_eq!(browser.close_code().await, close_code::GOING_AWAY);
            drop(browser);
            assert!(matches!(
                server.ended.await.unwrap(),
                Some(Disconnect::ShuttingDown)
            ));
        }
    }

    #[test]
    fn a_capacity_error_is_recognised_through_axum() {
        let too_long = tungstenite::error::CapacityError::MessageTooLong {
            size: 70_000,
            max_size: 65_536,
        };
        assert!(is_over_capacity(&axum::Error::new(
            tungstenite::Error::Capacity(too_long)
        )));
        assert!(!is_over_capacity(&axum::Error::new(
            tungstenite::Error::ConnectionClosed
        )));
    }

    /// `is_over_capacity` recognises the error by its type, which is only
    /// axum's when both name the same tungstenite: an update that brings
    /// a second version into the build fails here, by name, before the
    /// 1009 integration tests fail without saying why.
    #[test]
    fn the_build_has_one_tungstenite_the_one_axum_uses() {
        let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock"))
            .expect("Cargo.lock is committed");
        let versions: Vec<&str> = lock
            .split("[[package]]")
            .filter(|package| package.contains("\nname = \"tungstenite\"\n"))
            .filter_map(|package| package.lines().find_map(|l| l.strip_prefix("version = ")))
            .collect();
        assert_eq!(
            versions.len(),
            1,
            "tungstenite versions in Cargo.lock: {versions:?}; make Cargo.toml's match axum's"
        );
    }

    fn limits(per_second: f64, burst: f64) -> LimitSettings {
        LimitSettings {
            messages_per_second: per_second,
            message_burst: burst,
            ..LimitSettings::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_is_allowed_then_the_rate_refills_it() {
        let mut limiter = RateLimiter::new(&limits(2.0, 3.0));
        assert!((0..3).all(|_| limiter.allow()), "the burst");
        assert!(!limiter.allow());
        assert_eq!(limiter.strikes, 1);
        tokio::time::advance(Duration::from_millis(499)).await;
        assert!(!limiter.allow(), "not a whole token yet");
        tokio::time::advance(Duration::from_millis(600)).await;
        assert!(limiter.allow(), "2 per second refills one in 500 ms");
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_flood_keeps_its_strikes_and_a_pause_forgets_them() {
        let mut limiter = RateLimiter::new(&limits(1.0, 1.0));
        assert!(limiter.allow());
        // Four messages a second against one allowed: strikes pile up.
        for _ in 0..20 {
            tokio::time::advance(Duration::from_millis(250)).await;
            limiter.allow();
        }
        assert!(limiter.strikes >= 10, "strikes {}", limiter.strikes);
        // Quiet for longer than the flood memory: a new episode starts.
        tokio::time::advance(FLOOD_MEMORY + Duration::from_secs(1)).await;
        assert!(limiter.allow());
        tokio::time::advance(Duration::from_millis(10)).await;
        assert!(!limiter.allow());
        assert_eq!(limiter.strikes, 1);
    }
}
