//! The browser's WebSocket client: connects to `/ws`, turns server messages
//! into page state, and reconnects by itself with backoff and jitter (as
//! socket.io's client did), restoring the search and stop/start state.

use futures::channel::mpsc;
use leptos::prelude::*;

use super::PageState;
use crate::wire::ClientMessage;

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
    /// Creates the link; in the browser also starts the client task.
    pub fn start(state: PageState) -> Link {
        let (sender, receiver) = mpsc::unbounded();
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(browser::run(state, receiver));
        #[cfg(not(feature = "hydrate"))]
        let _ = (state, receiver);
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
    use gloo_timers::future::TimeoutFuture;
    use leptos::prelude::*;

    use super::{backoff_ms, Command, LinkState};
    use crate::ui::PageState;
    use crate::wire::{ClientMessage, ErrorCode, ServerMessage};

    pub async fn run(
        state: PageState,
        mut commands: futures::channel::mpsc::UnboundedReceiver<Command>,
    ) {
        let url = socket_url();
        let mut failures = 0;
        loop {
            if session(&state, &url, &mut commands).await {
                failures = 0;
            } else {
                failures += 1;
            }
            state.link.set(LinkState::Reconnecting);
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
        Closed,
    }

    /// One connection, from open to close. True when the server greeted us
    /// and served us, so the next attempt starts with a short delay.
    async fn session(
        state: &PageState,
        url: &str,
        commands: &mut futures::channel::mpsc::UnboundedReceiver<Command>,
    ) -> bool {
        let Ok(socket) = WebSocket::open(url) else {
            return false;
        };
        let (mut write, mut read) = socket.split();
        // Until `hello`, keep the page's queued commands: the search and
        // stop state are restored first, then what the person did meanwhile.
        loop {
            match read.next().await {
                Some(Ok(message)) => {
                    if let Some(ServerMessage::Hello { source, .. }) = decode(&message) {
                        state.source.set(Some(source));
                        state.link.set(LinkState::Connected);
                        break;
                    }
                }
                _ => return false,
            }
        }
        let mut restore = Vec::new();
        // Restoring a stopped stream takes two messages, and `updateTerm`
        // resumes delivery on its own: until the server confirms the stop,
        // posts are held back and the toggle keeps saying "Start".
        let mut restoring_stop = false;
        if let Some(term) = state.term.get_untracked() {
            restore.push(ClientMessage::UpdateTerm { term });
            if !state.streaming.get_untracked() {
                restore.push(ClientMessage::StopStream);
                restoring_stop = true;
            }
        }
        for message in restore {
            if write.send(encode(&message)).await.is_err() {
                return true;
            }
        }
        let incoming = read
            .map(Event::Incoming)
            .chain(futures::stream::once(futures::future::ready(Event::Closed)));
        let outgoing = commands.by_ref().map(Event::Outgoing);
        let mut events = futures::stream::select(incoming, outgoing);
        let mut turned_away = false;
        while let Some(event) = events.next().await {
            match event {
                Event::Incoming(Ok(message)) => match decode(&message) {
                    Some(ServerMessage::StreamState { streaming: false }) if restoring_stop => {
                        restoring_stop = false;
                        state.streaming.set(false);
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
                        state.link.set(LinkState::Reconnecting);
                        apply(state, message);
                    }
                    Some(message) => apply(state, message),
                    None => {}
                },
                Event::Incoming(Err(_)) | Event::Closed => break,
                Event::Outgoing(Command::Send(message)) => {
                    if write.send(encode(&message)).await.is_err() {
                        break;
                    }
                }
            }
        }
        !turned_away
    }

    fn encode(message: &ClientMessage) -> Message {
        Message::Text(serde_json::to_string(message).unwrap_or_default())
    }

    fn decode(message: &Message) -> Option<ServerMessage> {
        let Message::Text(text) = message else {
            return None;
        };
        match serde_json::from_str(text) {
            Ok(message) => Some(message),
            Err(error) => {
                leptos::logging::warn!("ignoring a message the page does not understand: {error}");
                None
            }
        }
    }

    fn apply(state: &PageState, message: ServerMessage) {
        match message {
            ServerMessage::Hello { source, .. } => state.source.set(Some(source)),
            ServerMessage::UpdatedTerm { term } => {
                state.term.set(Some(term));
                state.streaming.set(true);
                state.search_error.set(String::new());
                state.skipped.set(0);
            }
            ServerMessage::Tweets { tweets } => {
                // Posts in flight when the person pressed Stop stay off screen.
                if state.streaming.get_untracked() {
                    state.admit(tweets);
                }
            }
            ServerMessage::StreamState { streaming } => state.streaming.set(streaming),
            ServerMessage::Skipped { count } => state.skipped.update(|s| *s += count),
            ServerMessage::Upstream {
                state: upstream,
                detail,
            } => state.upstream.set(Some((upstream, detail))),
            // The page's own liveness check and the source's rate belong to
            // the columns page; this one only follows its socket's state.
            ServerMessage::Pong | ServerMessage::Stats { .. } => {}
            ServerMessage::Error { code, message } => {
                let shown = match code {
                    ErrorCode::InvalidTerm | ErrorCode::TermTooLong | ErrorCode::SourceLimit => {
                        message
                    }
                    other => format!("{message} ({other})"),
                };
                state.search_error.set(shown);
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
