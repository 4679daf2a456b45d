//! The browser's WebSocket client, one per column: connects to `/ws`, turns
//! server messages into the column's and the page's state, and reconnects
//! by itself with backoff and jitter (as socket.io's client did), restoring
//! the search and stop/start state. It sends `ping` every 25 s: a browser
//! does not notice a dead network path for minutes, and two `ping`s without
//! a `pong` count as a lost connection.

use futures::channel::mpsc;
use leptos::prelude::*;

use super::column::ColumnState;
use super::PageState;
use crate::wire::ClientMessage;

/// How often the page checks that the server still answers.
pub const PING_INTERVAL_MS: u32 = 25_000;
/// `ping`s in a row without a `pong` after which the connection counts as lost.
pub const UNANSWERED_PINGS_LIMIT: u32 = 2;

/// The browser's link to the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    Connecting,
    Connected,
    Reconnecting,
}

/// What the page asks of the client task.
#[derive(Clone, Debug)]
pub enum Command {
    Send(ClientMessage),
    /// The column is gone: close the WebSocket and stop.
    Close,
}

/// A handle the page's event handlers use to reach the client task.
#[derive(Clone, Copy)]
pub struct Link {
    /// Sender: the page's handlers. Receiver: the client task, which sends
    /// each message once connected (queued while reconnecting). On the
    /// server no task runs and the receiver is dropped: sends do nothing.
    commands: StoredValue<mpsc::UnboundedSender<Command>>,
}

impl Link {
    /// Creates the column's link; in the browser also starts its task.
    pub fn start(column: ColumnState, page: PageState) -> Link {
        let (sender, receiver) = mpsc::unbounded();
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(browser::run(column, page, receiver));
        #[cfg(not(feature = "hydrate"))]
        let _ = (column, page, receiver);
        Link {
            commands: StoredValue::new(sender),
        }
    }

    pub fn send(&self, command: Command) {
        self.commands.with_value(|sender| {
            // Fails only when no client task runs (server-side rendering).
            let _ = sender.unbounded_send(command);
        });
    }
}

/// Milliseconds to wait before reconnect attempt `failures` (0 after a
/// connection that worked): doubling from 500 ms up to 5 s, then ±50 %
/// jitter so that a restarted server is not hit by every browser at once.
/// `random` is uniform in [0, 1).
pub fn backoff_ms(failures: u32, random: f64) -> u32 {
    const INITIAL: f64 = 500.0;
    const MAX: f64 = 5000.0;
    const JITTER: f64 = 0.5;
    let base = (INITIAL * 2f64.powi(failures.min(16) as i32)).min(MAX);
    let factor = 1.0 + JITTER * (2.0 * random.clamp(0.0, 1.0) - 1.0);
    (base * factor).round() as u32
}

#[cfg(feature = "hydrate")]
mod browser {
    use futures::{SinkExt, StreamExt};
    use gloo_net::websocket::{futures::WebSocket, Message, WebSocketError};
    use gloo_timers::future::{IntervalStream, TimeoutFuture};
    use leptos::prelude::*;

    use super::{backoff_ms, Command, LinkState, PING_INTERVAL_MS, UNANSWERED_PINGS_LIMIT};
    use crate::ui::column::ColumnState;
    use crate::ui::PageState;
    use crate::wire::{ClientMessage, ErrorCode, ServerMessage};

    pub async fn run(
        column: ColumnState,
        page: PageState,
        mut commands: futures::channel::mpsc::UnboundedReceiver<Command>,
    ) {
        let url = socket_url();
        let mut failures = 0;
        loop {
            match session(&column, &page, &url, &mut commands).await {
                Ended::Closed => return,
                Ended::Served => failures = 0,
                Ended::Failed => failures += 1,
            }
            column.link.set(LinkState::Reconnecting);
            TimeoutFuture::new(backoff_ms(failures, js_sys::Math::random())).await;
        }
    }

    fn socket_url() -> String {
        let location = window().location();
        let scheme = match location.protocol().as_deref() {
            Ok("https:") => "wss",
            _ => "ws",
        };
        let host = location
            .host()
            .unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
        format!("{scheme}://{host}/ws")
    }

    enum Event {
        Incoming(Result<Message, WebSocketError>),
        Outgoing(Command),
        PingDue,
        Closed,
    }

    enum Ended {
        /// The server greeted and served us: reconnect soon.
        Served,
        /// Refused, unreachable or turned away: back off.
        Failed,
        /// The column was closed: stop for good.
        Closed,
    }

    /// One connection, from open to close.
    async fn session(
        column: &ColumnState,
        page: &PageState,
        url: &str,
        commands: &mut futures::channel::mpsc::UnboundedReceiver<Command>,
    ) -> Ended {
        let Ok(socket) = WebSocket::open(url) else {
            return Ended::Failed;
        };
        let (mut write, mut read) = socket.split();
        // Until `hello`, keep the column's queued commands: the search and
        // stop state are restored first, then what the person did meanwhile.
        loop {
            match read.next().await {
                Some(Ok(message)) => {
                    if let Some(ServerMessage::Hello { source, .. }) = decode(&message) {
                        page.source.set(Some(source));
                        column.link.set(LinkState::Connected);
                        break;
                    }
                }
                _ => return Ended::Failed,
            }
        }
        let mut restore = Vec::new();
        // Restoring a stopped stream takes two messages, and `updateTerm`
        // resumes delivery on its own: until the server confirms the stop,
        // posts are held back and the toggle keeps saying "Start".
        let mut restoring_stop = false;
        if let Some(term) = column.term.get_untracked() {
            restore.push(ClientMessage::UpdateTerm { term });
            if !column.streaming.get_untracked() {
                restore.push(ClientMessage::StopStream);
                restoring_stop = true;
            }
        }
        for message in restore {
            if write.send(encode(&message)).await.is_err() {
                return Ended::Served;
            }
        }
        let incoming = read
            .map(Event::Incoming)
            .chain(futures::stream::once(futures::future::ready(Event::Closed)));
        let outgoing = commands.by_ref().map(Event::Outgoing);
        let pings = IntervalStream::new(PING_INTERVAL_MS).map(|_| Event::PingDue);
        let mut events =
            futures::stream::select(incoming, futures::stream::select(outgoing, pings));
        let mut turned_away = false;
        let mut unanswered = 0;
        while let Some(event) = events.next().await {
            match event {
                Event::Incoming(Ok(message)) => match decode(&message) {
                    Some(ServerMessage::Pong) => unanswered = 0,
                    Some(ServerMessage::StreamState { streaming: false }) if restoring_stop => {
                        restoring_stop = false;
                        column.streaming.set(false);
                    }
                    Some(ServerMessage::UpdatedTerm { .. } | ServerMessage::Tweets { .. })
                        if restoring_stop => {}
                    Some(
                        message @ ServerMessage::Error {
                            code: ErrorCode::ServerBusy,
                            ..
                        },
                    ) => {
                        // The server is full and closes: back off as after a failure.
                        turned_away = true;
                        column.link.set(LinkState::Reconnecting);
                        apply(column, page, message);
                    }
                    Some(message) => apply(column, page, message),
                    None => {}
                },
                Event::Incoming(Err(_)) | Event::Closed => break,
                Event::Outgoing(Command::Send(message)) => {
                    if write.send(encode(&message)).await.is_err() {
                        break;
                    }
                }
                Event::Outgoing(Command::Close) => {
                    let _ = write.close().await;
                    return Ended::Closed;
                }
                Event::PingDue => {
                    if unanswered >= UNANSWERED_PINGS_LIMIT {
                        leptos::logging::warn!("no answer to {unanswered} pings: reconnecting");
                        let _ = write.close().await;
                        break;
                    }
                    unanswered += 1;
                    if write.send(encode(&ClientMessage::Ping)).await.is_err() {
                        break;
                    }
                }
            }
        }
        if turned_away {
            Ended::Failed
        } else {
            Ended::Served
        }
    }

    fn encode(message: &ClientMessage) -> Message {
        Message::Text(crate::ui::json::encode(message))
    }

    fn decode(message: &Message) -> Option<ServerMessage> {
        let Message::Text(text) = message else {
            return None;
        };
        let decoded = crate::ui::json::decode(text);
        if decoded.is_none() {
            leptos::logging::warn!("ignoring a message the page does not understand");
        }
        decoded
    }

    fn apply(column: &ColumnState, page: &PageState, message: ServerMessage) {
        match message {
            ServerMessage::Hello { source, .. } => page.source.set(Some(source)),
            ServerMessage::UpdatedTerm { term } => column.accepted(term),
            ServerMessage::Tweets { tweets } => {
                // Posts in flight when the person pressed Stop stay off screen.
                if column.streaming.get_untracked() {
                    column.receive(tweets, page);
                }
            }
            ServerMessage::StreamState { streaming } => column.streaming.set(streaming),
            ServerMessage::Skipped { count } => column.skipped.update(|s| *s += count),
            ServerMessage::Upstream {
                state: upstream,
                detail,
            } => page.upstream.set(Some((upstream, detail))),
            ServerMessage::Stats { posts_per_second } => {
                page.source_rate.set(Some(posts_per_second))
            }
            ServerMessage::Pong => {}
            ServerMessage::Error { code, message } => {
                let shown = match code {
                    ErrorCode::InvalidTerm | ErrorCode::TermTooLong | ErrorCode::SourceLimit => {
                        message
                    }
                    other => format!("{message} ({other})"),
                };
                column.search_error.set(shown);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::backoff_ms;

    #[test]
    fn backoff_doubles_to_five_seconds_with_jitter() {
        assert_eq!(backoff_ms(0, 0.5), 500);
        assert_eq!(backoff_ms(1, 0.5), 1000);
        assert_eq!(backoff_ms(3, 0.5), 4000);
        assert_eq!(backoff_ms(10, 0.5), 5000);
        assert_eq!(backoff_ms(0, 0.0), 250);
        assert_eq!(backoff_ms(10, 0.999_999), 7500);
    }
}
