//! `loadgen`: many browsers at once against a running twitter-search
//! server, to measure what they cost it.
//!
//! ```sh
//! # 10,000 idle browsers; with --server-pid, the server's memory per browser
//! cargo run --release --features ssr --example loadgen -- \
//!     --url ws://127.0.0.1:3000/ws --connections 10000 --server-pid $(pgrep -n twitter-search)
//! # 1,000 browsers searching, counting the posts they receive for 30 s
//! cargo run --release --features ssr --example loadgen -- --connections 1000 --search rust --hold 30
//! # fan-out against the fake Jetstream (examples/fake_jetstream.rs): 1,000
//! # browsers over 100 searches w0…w99, latency from the posts' stamps
//! cargo run --release --features ssr --example loadgen -- --connections 1000 --vocabulary 100 \
//!     --hold 30 --server-pid $(pgrep -n twitter-search)
//! # the same against the socket.io peer (bench/socketio-peer)
//! cargo run --release --features ssr --example loadgen -- --protocol socketio \
//!     --url ws://127.0.0.1:3960/ --connections 1000 --vocabulary 100 --hold 30
//! ```
//!
//! `scripts/bench SCENARIO` runs a scenario against both servers and prints
//! the two rows side by side.
//!
//! Each connection is a real WebSocket client that reads every frame (the
//! WebSocket layer answers the server's pings). The report is one line of
//! `key=value` pairs, for scripts and for `BENCHMARKS.md`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    about = "Many WebSocket browsers against a twitter-search server"
)]
struct Args {
    /// The server's WebSocket.
    #[arg(long, default_value = "ws://127.0.0.1:3000/ws")]
    url: String,
    /// Browsers to open.
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Connections opened per second (0: as fast as possible).
    #[arg(long, default_value_t = 2000)]
    ramp: u64,
    /// Search each browser sends (none: idle browsers).
    #[arg(long)]
    search: Vec<String>,
    /// Instead of --search: browser i searches the word `w<i mod N>` (the
    /// words of examples/fake_jetstream.rs).
    #[arg(long, default_value_t = 0)]
    vocabulary: usize,
    /// Seconds to hold the connections open after the last one is up.
    #[arg(long, default_value_t = 10)]
    hold: u64,
    /// Process id of the server, to read its memory (Linux /proc).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Open and close this many connections one after the other instead
    /// (churn), then report the server's memory.
    #[arg(long, default_value_t = 0)]
    churn: usize,
    /// What the server speaks: this project's protocol (docs/protocol.md),
    /// or socket.io's (Engine.IO 4 over its websocket transport, events
    /// `updateTerm` and `tweets`), for the peer in bench/socketio-peer.
    #[arg(long, value_enum, default_value_t = Protocol::TwitterSearch)]
    protocol: Protocol,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Protocol {
    TwitterSearch,
    Socketio,
}

#[derive(Default)]
struct Counters {
    open: AtomicU64,
    failed: AtomicU64,
    posts: AtomicU64,
    frames: AtomicU64,
    skipped: AtomicU64,
    /// Connections the server closed while the run was on.
    closed: AtomicU64,
    /// Delivery latencies in microseconds (post stamp to frame read), when
    /// measuring.
    latencies: std::sync::Mutex<Vec<u64>>,
    measuring: std::sync::atomic::AtomicBool,
}

/// CPU time (user + system) of `pid` so far, in seconds (Linux /proc).
fn cpu_seconds(pid: &str) -> Option<f64> {
    cpu_user_system(pid).map(|(user, system)| user + system)
}

/// User and system CPU time of `pid` so far, in seconds. System time
/// includes, on loopback, the receiving side's TCP work done in the
/// sender's context.
fn cpu_user_system(pid: &str) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some((user / 100.0, system / 100.0))
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index]
}

/// Resident memory of `pid` in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    // Each connection is a file descriptor; ask for as many as allowed.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let before = args.server_pid.and_then(rss_kib);
    if args.churn > 0 {
        churn(&args, before).await;
        return;
    }
    let counters = Arc::new(Counters::default());
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.connections);
    let pause = (args.ramp > 0).then(|| Duration::from_secs_f64(1.0 / args.ramp as f64));
    for i in 0..args.connections {
        let url = args.url.clone();
        let protocol = args.protocol;
        let search = if args.vocabulary > 0 {
            Some(format!("w{}", i % args.vocabulary))
        } else {
            (!args.search.is_empty()).then(|| args.search[i % args.search.len()].clone())
        };
        let counters = counters.clone();
        tasks.push(tokio::spawn(async move {
            browser(url, protocol, search, counters).await
        }));
        if let Some(pause) = pause {
            tokio::time::sleep(pause).await;
        }
    }
    // Wait until every connection is open or failed.
    while counters.open.load(Ordering::Relaxed) + counters.failed.load(Ordering::Relaxed)
        < args.connections as u64
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ramped = started.elapsed();
    // Let searches settle before measuring.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let posts_at_start = counters.posts.load(Ordering::Relaxed);
    let skipped_at_start = counters.skipped.load(Ordering::Relaxed);
    let server_cpu_start = args
        .server_pid
        .and_then(|p| cpu_user_system(&p.to_string()));
    let own_cpu_start = cpu_seconds("self");
    counters.measuring.store(true, Ordering::Relaxed);
    let measured = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.hold)).await;
    counters.measuring.store(false, Ordering::Relaxed);
    let seconds = measured.elapsed().as_secs_f64();
    let open = counters.open.load(Ordering::Relaxed);
    let after = args.server_pid.and_then(rss_kib);
    let posts = counters.posts.load(Ordering::Relaxed) - posts_at_start;
    let mut latencies = std::mem::take(&mut *counters.latencies.lock().unwrap());
    latencies.sort_unstable();
    let mut report = format!(
        "connections={} open={open} failed={} closed={} ramp_s={:.1} posts_received={posts} posts_per_s={:.0} frames={} skipped={} latency_ms_p50={:.1} latency_ms_p99={:.1} latency_ms_max={:.1}",
        args.connections,
        counters.failed.load(Ordering::Relaxed),
        counters.closed.load(Ordering::Relaxed),
        ramped.as_secs_f64(),
        posts as f64 / seconds,
        counters.frames.load(Ordering::Relaxed),
        counters.skipped.load(Ordering::Relaxed) - skipped_at_start,
        percentile(&latencies, 0.5) as f64 / 1000.0,
        percentile(&latencies, 0.99) as f64 / 1000.0,
        latencies.last().copied().unwrap_or(0) as f64 / 1000.0,
    );
    if let (Some(start), Some(end)) = (
        server_cpu_start,
        args.server_pid
            .and_then(|p| cpu_user_system(&p.to_string())),
    ) {
        let user = end.0 - start.0;
        let system = end.1 - start.1;
        let cpu = user + system;
        report.push_str(&format!(
            " server_cpu_s={cpu:.2} server_user_cpu_s={user:.2} server_system_cpu_s={system:.2} server_cpu_us_per_delivered_post={:.2}",
            cpu * 1e6 / posts.max(1) as f64
        ));
    }
    if let (Some(start), Some(end)) = (own_cpu_start, cpu_seconds("self")) {
        report.push_str(&format!(
            " loadgen_cpu_share={:.2}",
            (end - start) / seconds
        ));
    }
    if let (Some(before), Some(after)) = (before, after) {
        let per = (after.saturating_sub(before)) as f64 / open.max(1) as f64;
        report.push_str(&format!(
            " server_rss_before_kib={before} server_rss_after_kib={after} server_kib_per_connection={per:.2}"
        ));
    }
    println!("{report}");
    for task in tasks {
        task.abort();
    }
}

/// A request for `url` with the `Origin` a browser on that server's page sends.
fn browser_request(url: &str) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request().expect("a ws:// URL");
    let host = request
        .uri()
        .authority()
        .map(|a| a.to_string())
        .unwrap_or_default();
    if let Ok(origin) = format!("http://{host}").parse() {
        request.headers_mut().insert("origin", origin);
    }
    request
}

async fn browser(url: String, protocol: Protocol, search: Option<String>, counters: Arc<Counters>) {
    let url = match protocol {
        Protocol::TwitterSearch => url,
        Protocol::Socketio => socketio_url(&url),
    };
    let Ok((mut socket, _)) = tokio_tungstenite::connect_async(browser_request(&url)).await else {
        counters.failed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    if protocol == Protocol::Socketio && !socketio_connect(&mut socket).await {
        counters.failed.fetch_add(1, Ordering::Relaxed);
        return;
    }
    counters.open.fetch_add(1, Ordering::Relaxed);
    if let Some(term) = search {
        let command = match protocol {
            Protocol::TwitterSearch => {
                serde_json::json!({"type": "updateTerm", "term": term}).to_string()
            }
            Protocol::Socketio => format!("42{}", serde_json::json!(["updateTerm", term])),
        };
        if socket.send(Message::text(command)).await.is_err() {
            return;
        }
    }
    while let Some(Ok(frame)) = socket.next().await {
        counters.frames.fetch_add(1, Ordering::Relaxed);
        let Message::Text(text) = frame else {
            continue;
        };
        // Count without a full parse: the frame kinds are fixed strings.
        if text.starts_with("{\"type\":\"tweets\"") || text.starts_with("42[\"tweets\"") {
            let n = text.matches("\"screen_name\":").count() as u64;
            counters.posts.fetch_add(n, Ordering::Relaxed);
            if counters.measuring.load(Ordering::Relaxed) {
                record_latencies(&text, &counters);
            }
        } else if text.starts_with("{\"type\":\"skipped\"") {
            let count = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["count"].as_u64())
                .unwrap_or(0);
            counters.skipped.fetch_add(count, Ordering::Relaxed);
        } else if protocol == Protocol::Socketio && text.as_str() == "2" {
            // Engine.IO's ping: a client that does not answer is dropped.
            if socket.send(Message::text("3")).await.is_err() {
                break;
            }
        }
    }
    counters.open.fetch_sub(1, Ordering::Relaxed);
    counters.closed.fetch_add(1, Ordering::Relaxed);
}

/// socket.io's endpoint on the same host: `ws://host:port/socket.io/` with
/// the websocket transport and no long-polling first.
fn socketio_url(url: &str) -> String {
    let base = url
        .split_once("://")
        .map(|(scheme, rest)| {
            let authority = rest.split('/').next().unwrap_or(rest);
            format!("{scheme}://{authority}")
        })
        .unwrap_or_else(|| url.to_owned());
    format!("{base}/socket.io/?EIO=4&transport=websocket")
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Engine.IO's open packet (`0{...}`), then socket.io's connect to the main
/// namespace (`40`) and its acknowledgement (`40{"sid":...}`).
async fn socketio_connect(socket: &mut Socket) -> bool {
    while let Some(Ok(frame)) = socket.next().await {
        let Message::Text(text) = frame else {
            continue;
        };
        if text.starts_with('0') {
            if socket.send(Message::text("40")).await.is_err() {
                return false;
            }
        } else if text.starts_with("40") {
            return true;
        } else if text.starts_with("44") {
            return false;
        }
    }
    false
}

/// The time since each post's `created_at` (stamped by the fake Jetstream
/// when it emitted the post), in microseconds.
fn record_latencies(frame: &str, counters: &Counters) {
    let now = time::OffsetDateTime::now_utc();
    let mut found = Vec::new();
    for piece in frame.split("\"created_at\":\"").skip(1) {
        let Some(stamp) = piece.split('"').next() else {
            continue;
        };
        if let Ok(at) =
            time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339)
        {
            let micros = (now - at).whole_microseconds().max(0) as u64;
            found.push(micros);
        }
    }
    counters.latencies.lock().unwrap().extend(found);
}

async fn churn(args: &Args, before: Option<u64>) {
    let started = Instant::now();
    let mut failed = 0;
    for i in 0..args.churn {
        match tokio_tungstenite::connect_async(browser_request(&args.url)).await {
            Ok((mut socket, _)) => {
                if let Some(term) = args.search.get(i % args.search.len().max(1)) {
                    let command =
                        serde_json::json!({"type": "updateTerm", "term": term}).to_string();
                    let _ = socket.send(Message::text(command)).await;
                }
                let _ = socket.close(None).await;
                // Read to the server's close.
                while let Some(Ok(_)) = socket.next().await {}
            }
            Err(_) => failed += 1,
        }
    }
    tokio::time::sleep(Duration::from_secs(args.hold)).await;
    let after = args.server_pid.and_then(rss_kib);
    let mut report = format!(
        "churn={} failed={failed} seconds={:.1}",
        args.churn,
        started.elapsed().as_secs_f64()
    );
    if let (Some(before), Some(after)) = (before, after) {
        report.push_str(&format!(
            " server_rss_before_kib={before} server_rss_after_kib={after}"
        ));
    }
    println!("{report}");
}
