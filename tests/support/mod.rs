//! Starts the real server on an ephemeral port and talks to it with a real
//! WebSocket client.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};
use twitter_search::server::settings::{Settings, SourceKind};
use twitter_search::wire::{ServerMessage, Tweet, UpstreamState};

pub mod fakes;

/// Polls `check` every 20 ms until it holds; panics after [`WAIT`].
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The address in the server's "serving" log line (it listens on port 0
/// in tests, so the address is read from its own log).
pub fn serving_addr(line: &str) -> Option<SocketAddr> {
    if !line.contains("serving") {
        return None;
    }
    line.split_whitespace()
        .find_map(|word| word.strip_prefix("addr="))
        .and_then(|a| a.parse().ok())
}

/// Every wait in these tests is bounded by this.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestServer {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// A replay server over `lines` (raw NDJSON lines).
    pub async fn replay(lines: &[String], tune: impl FnOnce(&mut Settings)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let path: PathBuf = dir.path().join("posts.ndjson");
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let mut settings = Settings {
            addr: "127.0.0.1:0".parse().unwrap(),
            ..Settings::default()
        };
        settings.source.kind = SourceKind::Replay;
        settings.source.replay_file = Some(path);
        settings.source.rate = Some(200.0);
        settings.source.loop_replay = true;
        tune(&mut settings);
        Self::start_in(settings, dir).await
    }

    /// A server with `settings` (its address is replaced by port 0).
    pub async fn start(settings: Settings) -> TestServer {
        Self::start_in(settings, tempfile::tempdir().unwrap()).await
    }

    async fn start_in(mut settings: Settings, dir: tempfile::TempDir) -> TestServer {
        settings.addr = "127.0.0.1:0".parse().unwrap();
        let listener = tokio::net::TcpListener::bind(settings.addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (shutdown, stop) = oneshot::channel();
        let task = tokio::spawn(async move {
            twitter_search::server::run(listener, settings, async {
                let _ = stop.await;
            })
            .await
            .unwrap();
        });
        TestServer {
            addr,
            shutdown: Some(shutdown),
            task,
            _dir: dir,
        }
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }

    /// The directory that lives as long as the server (for record files).
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// `/healthz` as JSON.
    pub async fn health(&self) -> serde_json::Value {
        let (status, body) = self.get("/healthz").await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("healthz {body}: {e}"))
    }

    /// The value of one Prometheus series in `/metrics` (0 when absent).
    pub async fn metric(&self, series: &str) -> u64 {
        let (_, body) = self.get("/metrics").await;
        body.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0)
    }

    /// The sum of every Prometheus series whose name and labels start with `prefix`.
    pub async fn metric_sum(&self, prefix: &str) -> u64 {
        let (_, body) = self.get("/metrics").await;
        body.lines()
            .filter(|line| line.starts_with(prefix))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Asks the server to stop and waits until it has.
    pub async fn shut_down(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        tokio::time::timeout(WAIT, &mut self.task)
            .await
            .expect("server stops in time")
            .unwrap();
    }

    /// A plain HTTP/1.1 GET; returns the status code and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let (status, _, body) = self.get_with_headers(path).await;
        (status, body)
    }

    /// A plain HTTP/1.1 GET; returns the status code, the header block
    /// (names lower-cased) and the body.
    pub async fn get_with_headers(&self, path: &str) -> (u16, String, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        tokio::time::timeout(WAIT, stream.read_to_end(&mut response))
            .await
            .unwrap()
            .unwrap();
        let text = String::from_utf8_lossy(&response).into_owned();
        let status = text[9..12].parse().unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let head = head
            .lines()
            .map(|line| match line.split_once(':') {
                Some((name, value)) => format!("{}:{value}", name.to_ascii_lowercase()),
                None => line.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        (status, head, body.to_owned())
    }
}

pub fn post_line(id: usize, text: &str) -> String {
    post_line_by(id, &format!("user{id}"), text)
}

/// A post by the author with handle `screen_name`.
pub fn post_line_by(id: usize, screen_name: &str, text: &str) -> String {
    let tweet = Tweet {
        id: id.to_string(),
        name: format!("Name {id}"),
        screen_name: screen_name.to_owned(),
        text: text.to_owned(),
        user_profile_image: String::new(),
        url: None,
        created_at: "2026-11-25T12:00:00Z".to_owned(),
        lang: Some("en".to_owned()),
        source: "replay".to_owned(),
        ..Default::default()
    };
    serde_json::to_string(&tweet).unwrap()
}

pub struct Client {
    pub socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What came next on a socket.
#[derive(Debug)]
pub enum Next {
    Message(ServerMessage),
    Closed(Option<(CloseCode, String)>),
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let (socket, _) = connect_async(format!("ws://{addr}/ws")).await.unwrap();
        Client { socket }
    }

    /// Connects and reads `hello` and the first `upstream`.
    pub async fn greeted(addr: SocketAddr) -> Client {
        let mut client = Client::connect(addr).await;
        assert!(matches!(client.recv().await, ServerMessage::Hello { .. }));
        assert!(matches!(
            client.recv().await,
            ServerMessage::Upstream { .. }
        ));
        client
    }

    pub async fn send_text(&mut self, text: &str) {
        self.socket.send(Message::text(text)).await.unwrap();
    }

    /// Sends a text frame; false once the server has closed the socket.
    pub async fn try_send_text(&mut self, text: &str) -> bool {
        self.socket.send(Message::text(text)).await.is_ok()
    }

    pub async fn send_json(&mut self, value: serde_json::Value) {
        self.send_text(&value.to_string()).await;
    }

    pub async fn search(&mut self, term: &str) {
        self.send_json(serde_json::json!({"type": "updateTerm", "term": term}))
            .await;
    }

    /// Searches and checks the server accepted `understood_as`.
    pub async fn search_accepted(&mut self, term: &str, understood_as: &str) {
        self.search(term).await;
        assert_eq!(
            self.recv_reply().await,
            ServerMessage::UpdatedTerm {
                term: understood_as.to_owned()
            },
            "search {term:?}"
        );
    }

    pub async fn next(&mut self) -> Next {
        loop {
            let frame = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("a frame within the wait");
            match frame {
                None => return Next::Closed(None),
                Some(Err(_)) => return Next::Closed(None),
                Some(Ok(Message::Text(text))) => {
                    let message = serde_json::from_str(text.as_str())
                        .unwrap_or_else(|e| panic!("server sent non-protocol JSON {text}: {e}"));
                    return Next::Message(message);
                }
                Some(Ok(Message::Close(frame))) => {
                    return Next::Closed(frame.map(|f| (f.code, f.reason.to_string())))
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    pub async fn recv(&mut self) -> ServerMessage {
        match self.next().await {
            Next::Message(message) => message,
            Next::Closed(close) => panic!("socket closed: {close:?}"),
        }
    }

    /// Skips `tweets`, `skipped`, `upstream` and `stats` until another kind arrives.
    pub async fn recv_reply(&mut self) -> ServerMessage {
        loop {
            match self.recv().await {
                ServerMessage::Tweets { .. }
                | ServerMessage::Skipped { .. }
                | ServerMessage::Upstream { .. }
                | ServerMessage::Stats { .. } => {}
                other => return other,
            }
        }
    }

    /// Reads until `count` posts have arrived; returns them whole.
    pub async fn posts(&mut self, count: usize) -> Vec<Tweet> {
        let mut posts = Vec::new();
        while posts.len() < count {
            if let ServerMessage::Tweets { tweets } = self.recv().await {
                posts.extend(tweets.iter().map(|t| (**t).clone()));
            }
        }
        posts
    }

    /// Reads until an `upstream` message in `state` arrives; returns its detail.
    pub async fn upstream(&mut self, state: UpstreamState) -> Option<String> {
        loop {
            if let ServerMessage::Upstream { state: s, detail } = self.recv().await {
                if s == state {
                    return detail;
                }
            }
        }
    }

    /// Reads until `count` posts have arrived; returns their texts.
    pub async fn tweets(&mut self, count: usize) -> Vec<String> {
        let mut texts = Vec::new();
        while texts.len() < count {
            if let ServerMessage::Tweets { tweets } = self.recv().await {
                texts.extend(tweets.iter().map(|t| t.text.clone()));
            }
        }
        texts
    }

    /// Reads until the close frame; returns its code.
    pub async fn closed(&mut self) -> Option<CloseCode> {
        loop {
            if let Next::Closed(close) = self.next().await {
                return close.map(|(code, _)| code);
            }
        }
    }

    /// Posts that arrive within `window`, reading everything else.
    pub async fn tweets_within(&mut self, window: Duration) -> Vec<String> {
        let mut texts = Vec::new();
        let deadline = tokio::time::Instant::now() + window;
        while let Ok(frame) = tokio::time::timeout_at(deadline, self.socket.next()).await {
            match frame {
                Some(Ok(Message::Text(text))) => {
                    if let Ok(ServerMessage::Tweets { tweets }) =
                        serde_json::from_str(text.as_str())
                    {
                        texts.extend(tweets.iter().map(|t| t.text.clone()));
                    }
                }
                Some(Ok(_)) => {}
                _ => break,
            }
        }
        texts
    }
}
