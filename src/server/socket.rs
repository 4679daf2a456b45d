//! One task per browser WebSocket: reads its commands, writes its posts.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use tokio::sync::watch;
use tokio::time::{interval_at, Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::hub::{Hub, Registration};
use super::metrics::Metrics;
use super::settings::LimitSettings;
use super::UpstreamStatus;
use crate::query::Query;
use crate::wire::{ClientMessage, ErrorCode, Limits, ServerMessage, PROTOCOL_VERSION};

/// Close codes of PROTOCOL.md.
pub mod close_code {
    pub const GOING_AWAY: u16 = 1001;
    pub const POLICY_VIOLATION: u16 = 1008;
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

/// Posts written in one `tweets` frame at most.
const MAX_BATCH: usize = 64;

/// What a socket task needs from the server.
#[derive(Clone)]
pub struct SocketContext {
    pub hub: Arc<Hub>,
    pub metrics: Arc<Metrics>,
    pub limits: LimitSettings,
    pub source_name: &'static str,
    /// Sender: the source task. Each socket sends `upstream` on every change.
    pub upstream: watch::Receiver<UpstreamStatus>,
    /// Cancelled once when the server shuts down; sockets close with 1001.
    pub shutdown: CancellationToken,
}

/// Why a connection ended, for the log and the metrics.
#[derive(Debug, thiserror::Error)]
enum Disconnect {
    #[error("the browser closed the connection")]
    ClientClosed,
    #[error("transport error: {0}")]
    TransportError(axum::Error),
    #[error("a frame of {0} bytes was over the limit (close 1009)")]
    FrameTooLarge(usize),
    #[error("messages kept coming after rateLimited (close 1008)")]
    Flood,
    #[error("no frame within the idle timeout")]
    Idle,
    #[error("the server is shutting down (close 1001)")]
    ShuttingDown,
}

/// A token bucket over incoming messages.
struct RateLimiter {
    tokens: f64,
    burst: f64,
    per_second: f64,
    last: Instant,
    /// Messages refused since the bucket last had a token.
    strikes: u32,
}

impl RateLimiter {
    fn new(limits: &LimitSettings) -> Self {
        RateLimiter {
            tokens: limits.message_burst,
            burst: limits.message_burst,
            per_second: limits.messages_per_second,
            last: Instant::now(),
            strikes: 0,
        }
    }

    fn allow(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.strikes = 0;
            true
        } else {
            self.strikes += 1;
            false
        }
    }
}

struct Connection {
    socket: WebSocket,
    registration: Registration,
    context: SocketContext,
    /// Posts queued before this generation belong to an older search or to
    /// before a stop; they are dropped.
    generation: u64,
    limiter: RateLimiter,
    last_heard: Instant,
}

/// Serves one upgraded WebSocket until either side closes it.
pub async fn serve(mut socket: WebSocket, context: SocketContext) {
    let hello = ServerMessage::Hello {
        protocol: PROTOCOL_VERSION,
        source: context.source_name.to_owned(),
        limits: Limits {
            max_term_length: context.limits.max_term_length,
        },
    };
    if send(&mut socket, &hello).await.is_err() {
        return;
    }
    let registration = match context.hub.register() {
        Ok(registration) => registration,
        Err(error) => {
            Metrics::inc(&context.metrics.connections_refused_busy);
            warn!(%error, "refusing WebSocket");
            let _ = send(
                &mut socket,
                &ServerMessage::error(ErrorCode::ServerBusy, error.to_string()),
            )
            .await;
            close(&mut socket, close_code::TRY_AGAIN_LATER, "server full").await;
            return;
        }
    };
    Metrics::inc(&context.metrics.connections_total);
    Metrics::inc(&context.metrics.connections_open);
    let id = registration.id;
    debug!(connection = id, "WebSocket open");
    let mut connection = Connection {
        socket,
        limiter: RateLimiter::new(&context.limits),
        registration,
        context: context.clone(),
        generation: 0,
        last_heard: Instant::now(),
    };
    let reason = connection.run().await;
    Metrics::dec(&context.metrics.connections_open);
    match &reason {
        Disconnect::ClientClosed | Disconnect::ShuttingDown => {
            debug!(connection = id, %reason, "WebSocket closed")
        }
        _ => info!(connection = id, %reason, "WebSocket closed"),
    }
}

impl Connection {
    async fn run(&mut self) -> Disconnect {
        let mut upstream = self.context.upstream.clone();
        let status = upstream.borrow_and_update().clone();
        if self.send(&status.message()).await.is_err() {
            return Disconnect::ClientClosed;
        }
        let ping_every = Duration::from_secs(self.context.limits.ping_interval_secs);
        let idle_after = Duration::from_secs(self.context.limits.idle_timeout_secs);
        let mut pings = interval_at(Instant::now() + ping_every, ping_every);
        pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let shutdown = self.context.shutdown.clone();
        let mut upstream_open = true;
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    close(&mut self.socket, close_code::GOING_AWAY, "server shutting down").await;
                    return Disconnect::ShuttingDown;
                }
                frame = self.socket.recv() => {
                    self.last_heard = Instant::now();
                    let result = match frame {
                        None | Some(Ok(Message::Close(_))) => return Disconnect::ClientClosed,
                        Some(Err(error)) => return Disconnect::TransportError(error),
                        Some(Ok(Message::Text(text))) => self.on_frame(Some(text.as_str()), text.len()).await,
                        Some(Ok(Message::Binary(bytes))) => self.on_frame(None, bytes.len()).await,
                        // axum answers pings itself; either kind proves the peer is alive.
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(()),
                    };
                    if let Err(reason) = result {
                        return reason;
                    }
                }
                received = self.registration.outbox.recv_many(&mut batch, MAX_BATCH) => {
                    if received == 0 {
                        // The hub dropped our queue: only happens on unregister.
                        return Disconnect::ShuttingDown;
                    }
                    if let Err(reason) = self.flush(&mut batch).await {
                        return reason;
                    }
                }
                changed = upstream.changed(), if upstream_open => {
                    if changed.is_err() {
                        // The source task has ended; its last state stays true.
                        upstream_open = false;
                        continue;
                    }
                    let status = upstream.borrow_and_update().clone();
                    if self.send(&status.message()).await.is_err() {
                        return Disconnect::ClientClosed;
                    }
                }
                _ = pings.tick() => {
                    if self.last_heard.elapsed() >= idle_after {
                        Metrics::inc(&self.context.metrics.closed_idle);
                        close(&mut self.socket, close_code::GOING_AWAY, "no answer to pings").await;
                        return Disconnect::Idle;
                    }
                    if self.socket.send(Message::Ping(Default::default())).await.is_err() {
                        return Disconnect::ClientClosed;
                    }
                }
            }
        }
    }

    /// Writes queued posts of the current generation as one `tweets` frame,
    /// then reports any posts dropped for this connection since last time.
    async fn flush(&mut self, batch: &mut Vec<super::hub::Delivery>) -> Result<(), Disconnect> {
        let generation = self.generation;
        let tweets: Vec<_> = batch
            .drain(..)
            .filter(|d| d.generation == generation)
            .map(|d| d.tweet)
            .collect();
        if !tweets.is_empty() && self.send(&ServerMessage::Tweets { tweets }).await.is_err() {
            return Err(Disconnect::ClientClosed);
        }
        let skipped = self.registration.skipped.swap(0, Ordering::Relaxed);
        if skipped > 0
            && self
                .send(&ServerMessage::Skipped { count: skipped })
                .await
                .is_err()
        {
            return Err(Disconnect::ClientClosed);
        }
        Ok(())
    }

    /// One frame from the browser; `text` is `None` for a binary frame.
    async fn on_frame(&mut self, text: Option<&str>, size: usize) -> Result<(), Disconnect> {
        Metrics::inc(&self.context.metrics.messages_received);
        if size > self.context.limits.max_frame_bytes {
            Metrics::inc(&self.context.metrics.closed_frame_too_large);
            let reason = format!(
                "frame of {size} bytes is over the {} byte limit",
                self.context.limits.max_frame_bytes
            );
            close(&mut self.socket, close_code::MESSAGE_TOO_BIG, &reason).await;
            return Err(Disconnect::FrameTooLarge(size));
        }
        if !self.limiter.allow() {
            Metrics::inc(&self.context.metrics.messages_rate_limited);
            if self.limiter.strikes > self.context.limits.flood_strikes {
                Metrics::inc(&self.context.metrics.closed_flood);
                close(
                    &mut self.socket,
                    close_code::POLICY_VIOLATION,
                    "too many messages",
                )
                .await;
                return Err(Disconnect::Flood);
            }
            if self.limiter.strikes == 1 {
                let message = format!(
                    "too many messages: at most {} per second; this one was ignored",
                    self.context.limits.messages_per_second
                );
                return self
                    .reply(&ServerMessage::error(ErrorCode::RateLimited, message))
                    .await;
            }
            return Ok(());
        }
        let Some(text) = text else {
            Metrics::inc(&self.context.metrics.messages_invalid);
            let message = "binary frames are not understood: send JSON text frames";
            return self
                .reply(&ServerMessage::error(ErrorCode::InvalidMessage, message))
                .await;
        };
        let command = match ClientMessage::parse(text) {
            Ok(command) => command,
            Err(error) => {
                Metrics::inc(&self.context.metrics.messages_invalid);
                return self
                    .reply(&ServerMessage::error(
                        ErrorCode::InvalidMessage,
                        error.to_string(),
                    ))
                    .await;
            }
        };
        let answer = match command {
            ClientMessage::UpdateTerm { term } => {
                match Query::parse(&term, self.context.limits.max_term_length) {
                    Ok(query) => {
                        let query = Arc::new(query);
                        let term = query.term().to_owned();
                        self.generation = self.context.hub.set_query(self.registration.id, query);
                        ServerMessage::UpdatedTerm { term }
                    }
                    Err(error) => ServerMessage::error(error.code(), error.to_string()),
                }
            }
            ClientMessage::StopStream => {
                self.generation = self.context.hub.set_streaming(self.registration.id, false);
                ServerMessage::StreamState { streaming: false }
            }
            ClientMessage::StartStream => {
                self.generation = self.context.hub.set_streaming(self.registration.id, true);
                ServerMessage::StreamState { streaming: true }
            }
        };
        self.reply(&answer).await
    }

    async fn reply(&mut self, message: &ServerMessage) -> Result<(), Disconnect> {
        self.send(message)
            .await
            .map_err(|_| Disconnect::ClientClosed)
    }

    async fn send(&mut self, message: &ServerMessage) -> Result<(), axum::Error> {
        send(&mut self.socket, message).await
    }
}

async fn send(socket: &mut WebSocket, message: &ServerMessage) -> Result<(), axum::Error> {
    socket.send(Message::text(message.to_json())).await
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    // The peer may already be gone; there is nothing more to tell it then.
    let _ = socket.send(Message::Close(Some(frame))).await;
}
