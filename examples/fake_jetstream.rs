//! `fake_jetstream`: a Jetstream (and AppView) that emits posts at a set
//! rate, each stamped with the time it was emitted, to drive the server's
//! `bluesky` source in load tests. The load generator reads the stamp back
//! (`created_at`, microseconds) to measure end-to-end latency: upstream →
//! match → socket → browser.
//!
//! ```sh
//! cargo run --release --features ssr --example fake_jetstream -- --addr 127.0.0.1:4100 --rate 200
//! target/release/twitter-search --source bluesky \
//!     --jetstream-url ws://127.0.0.1:4100/subscribe --appview-url http://127.0.0.1:4100
//! ```
//!
//! Post texts are made of words `w0` … `w<vocabulary-1>`, so searches for
//! those words match a known share of the posts.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use clap::Parser;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "fake_jetstream",
    about = "A Jetstream that emits stamped posts at a set rate"
)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:4100")]
    addr: SocketAddr,
    /// Posts per second to each subscriber (0: as fast as the socket takes them).
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// Distinct words the posts are made of.
    #[arg(long, default_value_t = 100)]
    vocabulary: usize,
    /// Words in each post.
    #[arg(long, default_value_t = 6)]
    words: usize,
    /// Distinct authors.
    #[arg(long, default_value_t = 1000)]
    authors: usize,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let app = Router::new()
        .route("/subscribe", get(subscribe))
        .route("/xrpc/app.bsky.actor.getProfiles", get(profiles))
        .with_state(args.clone());
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .expect("bind");
    eprintln!("fake jetstream on {} at {} posts/s", args.addr, args.rate);
    axum::serve(listener, app).await.expect("serve");
}

async fn subscribe(State(args): State<Args>, ws: WebSocketUpgrade) -> impl IntoResponse {
    ws.on_upgrade(move |socket| emit(socket, args))
}

/// A small deterministic generator (xorshift), so runs are comparable.
struct Words(u64);

impl Words {
    fn next(&mut self, below: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % below as u64) as usize
    }
}

async fn emit(mut socket: WebSocket, args: Args) {
    let mut words = Words(0x9E37_79B9_7F4A_7C15);
    // Posts go out in ticks of 1 ms (or as fast as possible). What is due
    // is counted from the start, not per tick: a tick that comes late (a
    // busy machine) sends what the late ones owed, so the rate holds and
    // the expected deliveries are the ones really emitted.
    let rate = (args.rate > 0.0).then_some(args.rate);
    let started = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n: u64 = 0;
    loop {
        let batch = match rate {
            Some(rate) => {
                tick.tick().await;
                let due = (started.elapsed().as_secs_f64() * rate) as u64;
                due.saturating_sub(n)
            }
            None => 64,
        };
        for _ in 0..batch {
            n += 1;
            let now = OffsetDateTime::now_utc();
            let time_us = (now.unix_timestamp_nanos() / 1000) as u64;
            let text: Vec<String> = (0..args.words)
                .map(|_| format!("w{}", words.next(args.vocabulary)))
                .collect();
            let author = words.next(args.authors);
            let event = json!({
                "did": format!("did:plc:author{author}"),
                "time_us": time_us,
                "kind": "commit",
                "commit": {
                    "rev": "3l3qo2vutsw2b",
                    "operation": "create",
                    "collection": "app.bsky.feed.post",
                    "rkey": format!("k{n}"),
                    "record": {
                        "$type": "app.bsky.feed.post",
                        "createdAt": now.format(&Rfc3339).unwrap_or_default(),
                        "langs": ["en"],
                        "text": text.join(" ")
                    },
                    "cid": "bafyreidc6sydkkbchcyg62v77wbhzvb2mvytlmsychqgwf2xojjtirmzj4"
                }
            });
            if socket.send(Message::text(event.to_string())).await.is_err() {
                return;
            }
        }
    }
}

async fn profiles(RawQuery(raw): RawQuery) -> Json<serde_json::Value> {
    let url =
        reqwest::Url::parse(&format!("http://x/?{}", raw.unwrap_or_default())).expect("query");
    let found: Vec<_> = url
        .query_pairs()
        .filter(|(k, _)| k == "actors")
        .map(|(_, did)| {
            let name = did.trim_start_matches("did:plc:").to_owned();
            json!({"did": did, "handle": format!("{name}.bsky.social"), "displayName": name})
        })
        .collect();
    Json(json!({ "profiles": found }))
}
