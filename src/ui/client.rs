//! The browser's WebSocket client, one per column: connects to `/ws`, turns
//! server messages into the column's and the page's state, and reconnects
//! by itself with backoff and jitter (as socket.io's client did), restoring
//! the search and stop/start state. It sends `ping` every 25 s: a browser
//! does not notice a dead network path for minutes, and two `ping`s without
//! a `pong` count as a lost connection.

#[cfg(feature = "hydrate")]
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

/// What the page asks of the client.
#[derive(Clone, Debug)]
pub enum Command {
    Send(ClientMessage),
    /// The column opened: connect (and reconnect whenever the connection
    /// is lost) until it closes.
    Open,
    /// The column is gone: close the WebSocket and stop.
    Close,
}

/// A handle the page's event handlers use to reach the column's client.
/// On the server no client runs: commands do nothing there.
#[derive(Clone, Copy)]
pub struct Link {
    #[cfg(feature = "hydrate")]
    client: StoredValue<browser::Shared, LocalStorage>,
}

impl Link {
    /// Creates the column's link, not connected until [`Command::Open`].
    pub fn start(column: ColumnState, page: PageState) -> Link {
        #[cfg(feature = "hydrate")]
        return Link {
            client: StoredValue::new_local(browser::Client::start(column, page)),
        };
        #[cfg(not(feature = "hydrate"))]
        {
            let _ = (column, page);
            Link {}
        }
    }

    pub fn send(&self, command: Command) {
        #[cfg(feature = "hydrate")]
        // Gone only after the column is disposed, when nothing is left to do.
        self.client
            .try_with_value(|client| browser::Client::command(client, command));
        #[cfg(not(feature = "hydrate"))]
        let _ = command;
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
    //! The client on the browser's own `WebSocket` and its callbacks. A
    //! client on async streams (gloo-net, futures' channels and `select`)
    //! did the same in 7 KB more of the WASM bundle with brotli
    //! (docs/building.md, "Page weight").

    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::rc::{Rc, Weak};

    use gloo_timers::callback::{Interval, Timeout};
    use leptos::prelude::*;
    use leptos::wasm_bindgen::closure::Closure;
    use leptos::wasm_bindgen::JsCast;
    use leptos::web_sys::{MessageEvent, WebSocket};

    use super::{backoff_ms, Command, LinkState, PING_INTERVAL_MS, UNANSWERED_PINGS_LIMIT};
    use crate::ui::column::ColumnState;
    use crate::ui::PageState;
    use crate::wire::{ClientMessage, ErrorCode, ServerMessage};

    pub type Shared = Rc<RefCell<Client>>;

    /// One column's client: at most one connection at a time, and between
    /// connections a timer that makes the next one.
    pub struct Client {
        column: ColumnState,
        page: PageState,
        url: String,
        /// What the person did while no connection was ready, oldest
        /// first: sent once the next one has restored the column's state.
        waiting: VecDeque<ClientMessage>,
        session: Option<Session>,
        /// The session that ended last, kept until the next one starts:
        /// the callback that ended it may still be running.
        ended: Option<Session>,
        reconnect: Option<Timeout>,
        /// Connections in a row that failed, for the backoff.
        failures: u32,
        /// The column is closed (or not open yet): no connections.
        closed: bool,
        this: Weak<RefCell<Client>>,
    }

    /// One connection, from open to close.
    struct Session {
        socket: WebSocket,
        /// The server sent `hello`: it accepted the connection.
        greeted: bool,
        /// Restoring a stopped stream takes two messages, and `updateTerm`
        /// resumes delivery on its own: until the server confirms the stop,
        /// posts are held back and the toggle keeps saying "Start".
        restoring_stop: bool,
        /// The server was full (`serverBusy`) and closes.
        turned_away: bool,
        unanswered_pings: u32,
        pings: Option<Interval>,
        _on_message: Closure<dyn FnMut(MessageEvent)>,
        _on_close: Closure<dyn FnMut()>,
    }

    /// Runs `act` on the client behind `weak`, unless it is gone. Browsers
    /// run one callback at a time and none of the client's calls dispatch
    /// a socket event at once, so the client is never borrowed already.
    fn with_client(weak: &Weak<RefCell<Client>>, act: impl FnOnce(&mut Client)) {
        if let Some(client) = weak.upgrade() {
            if let Ok(mut client) = client.try_borrow_mut() {
                act(&mut client);
            }
        }
    }

    impl Client {
        pub fn start(column: ColumnState, page: PageState) -> Shared {
            Rc::new_cyclic(|this| {
                RefCell::new(Client {
                    column,
                    page,
                    url: socket_url(),
                    waiting: VecDeque::new(),
                    session: None,
                    ended: None,
                    reconnect: None,
                    failures: 0,
                    closed: true,
                    this: this.clone(),
                })
            })
        }

        pub fn command(client: &Shared, command: Command) {
            let Ok(mut client) = client.try_borrow_mut() else {
                return;
            };
            match command {
                Command::Send(message) => {
                    if !client.send_now(&message) {
                        client.waiting.push_back(message);
                    }
                }
                Command::Open => {
                    if client.closed {
                        client.closed = false;
                        client.failures = 0;
                        client.column.link.set(LinkState::Connecting);
                        client.connect();
                    }
                }
                Command::Close => {
                    client.closed = true;
                    client.reconnect = None;
                    client.waiting.clear();
                    client.end_session();
                }
            }
        }

        fn connect(&mut self) {
            self.reconnect = None;
            self.ended = None;
            let Ok(socket) = WebSocket::new(&self.url) else {
                self.failures += 1;
                self.retry_later();
                return;
            };
            let this = self.this.clone();
            let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
                let text = event.data().as_string();
                with_client(&this, |client| client.received(text.as_deref()));
            });
            let this = self.this.clone();
            let on_close = Closure::<dyn FnMut()>::new(move || {
                with_client(&this, Client::end_session);
            });
            socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
            socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
            self.session = Some(Session {
                socket,
                greeted: false,
                restoring_stop: false,
                turned_away: false,
                unanswered_pings: 0,
                pings: None,
                _on_message: on_message,
                _on_close: on_close,
            });
        }

        /// Sends `message` if a connection is ready for it.
        fn send_now(&mut self, message: &ClientMessage) -> bool {
            match &self.session {
                // A closing socket takes messages without a word and drops
                // them: they wait for the next connection instead.
                Some(session)
                    if session.greeted && session.socket.ready_state() == WebSocket::OPEN =>
                {
                    session
                        .socket
                        .send_with_str(&crate::ui::json::encode(message))
                        .is_ok()
                }
                _ => false,
            }
        }

        fn received(&mut self, text: Option<&str>) {
            let Some(message) = text.and_then(crate::ui::json::decode) else {
                leptos::logging::warn!("ignoring a message the page does not understand");
                return;
            };
            let (column, page) = (self.column, self.page);
            let Some(session) = self.session.as_mut() else {
                return;
            };
            if !session.greeted {
                // Until `hello`, the server has not taken the connection.
                if let ServerMessage::Hello { source, .. } = message {
                    page.source.set(Some(source));
                    column.link.set(LinkState::Connected);
                    session.greeted = true;
                    self.greeted();
                }
                return;
            }
            match message {
                ServerMessage::Pong => session.unanswered_pings = 0,
                ServerMessage::StreamState { streaming: false } if session.restoring_stop => {
                    session.restoring_stop = false;
                    column.streaming.set(false);
                }
                ServerMessage::UpdatedTerm { .. } | ServerMessage::Tweets { .. }
                    if session.restoring_stop => {}
                message @ ServerMessage::Error {
                    code: ErrorCode::ServerBusy,
                    ..
                } => {
                    // The server is full and closes: back off as after a failure.
                    session.turned_away = true;
                    column.link.set(LinkState::Reconnecting);
                    apply(&column, &page, message);
                }
                message => apply(&column, &page, message),
            }
        }

        /// The server took the connection: the column's search and
        /// stop/start state first, then what the person did meanwhile.
        fn greeted(&mut self) {
            let column = self.column;
            if let Some(term) = column.term.get_untracked() {
                let stopped = !column.streaming.get_untracked();
                let mut restore = vec![ClientMessage::UpdateTerm { term }];
                if stopped {
                    restore.push(ClientMessage::StopStream);
                }
                if let Some(session) = self.session.as_mut() {
                    session.restoring_stop = stopped;
                }
                for message in &restore {
                    if !self.send_now(message) {
                        return;
                    }
                }
            }
            while let Some(message) = self.waiting.pop_front() {
                if !self.send_now(&message) {
                    self.waiting.push_front(message);
                    return;
                }
            }
            let this = self.this.clone();
            let pings = Interval::new(PING_INTERVAL_MS, move || {
                with_client(&this, Client::ping_due)
            });
            if let Some(session) = self.session.as_mut() {
                session.pings = Some(pings);
            }
        }

        fn ping_due(&mut self) {
            let Some(session) = self.session.as_mut() else {
                return;
            };
            let unanswered = session.unanswered_pings;
            if unanswered >= UNANSWERED_PINGS_LIMIT {
                leptos::logging::warn!("no answer to {unanswered} pings: reconnecting");
                self.end_session();
                return;
            }
            session.unanswered_pings += 1;
            if !self.send_now(&ClientMessage::Ping) {
                self.end_session();
            }
        }

        /// Closes the connection, if any, and unless the column is gone
        /// makes the next one after the backoff.
        fn end_session(&mut self) {
            let Some(session) = self.session.take() else {
                return;
            };
            session.socket.set_onmessage(None);
            session.socket.set_onclose(None);
            let _ = session.socket.close();
            if session.greeted && !session.turned_away {
                self.failures = 0;
            } else {
                self.failures += 1;
            }
            self.ended = Some(Session {
                pings: None,
                ..session
            });
            if !self.closed {
                self.retry_later();
            }
        }

        fn retry_later(&mut self) {
            self.column.link.set(LinkState::Reconnecting);
            let this = self.this.clone();
            let delay = backoff_ms(self.failures, js_sys::Math::random());
            self.reconnect = Some(Timeout::new(delay, move || {
                with_client(&this, Client::connect);
            }));
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
