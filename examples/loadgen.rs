//! `loadgen`: many browsers at once against a running twitter-search
//! server, to measure what they cost it.
//!
//! ```sh
//! # 10,000 idle browsers; with --server-pid, the server's memory per browser
//! cargo run --release --features ssr --example loadgen -- \
//!     --url ws://127.0.0.1:3000/ws --connections 10000 --server-pid $(pgrep -n twitter-search)
//! # 1,000 browsers searching, counting the posts they receive for 30 s
//! cargo run --release --features ssr --example loadgen -- --connections 1000 --search rust --hold 30
//! ```
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
}

#[derive(Default)]
struct Counters {
    open: AtomicU64,
    failed: AtomicU64,
    posts: AtomicU64,
    frames: AtomicU64,
    skipped: AtomicU64,
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
        let search = (!args.search.is_empty()).then(|| args.search[i % args.search.len()].clone());
        let counters = counters.clone();
        tasks.push(tokio::spawn(
            async move { browser(url, search, counters).await },
        ));
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
    let posts_at_start = counters.posts.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(args.hold)).await;
    let open = counters.open.load(Ordering::Relaxed);
    let after = args.server_pid.and_then(rss_kib);
    let posts = counters.posts.load(Ordering::Relaxed) - posts_at_start;
    let mut report = format!(
        "connections={} open={open} failed={} ramp_s={:.1} posts_received={posts} posts_per_s={:.0} frames={} skipped={}",
        args.connections,
        counters.failed.load(Ordering::Relaxed),
        ramped.as_secs_f64(),
        posts as f64 / args.hold.max(1) as f64,
        counters.frames.load(Ordering::Relaxed),
        counters.skipped.load(Ordering::Relaxed),
    );
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

async fn browser(url: String, search: Option<String>, counters: Arc<Counters>) {
    let Ok((mut socket, _)) = tokio_tungstenite::connect_async(url.as_str()).await else {
        counters.failed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    counters.open.fetch_add(1, Ordering::Relaxed);
    if let Some(term) = search {
        let command = serde_json::json!({"type": "updateTerm", "term": term}).to_string();
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
        if text.starts_with("{\"type\":\"tweets\"") {
            let n = text.matches("\"screen_name\":").count() as u64;
            counters.posts.fetch_add(n, Ordering::Relaxed);
        } else if text.starts_with("{\"type\":\"skipped\"") {
            let count = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["count"].as_u64())
                .unwrap_or(0);
            counters.skipped.fetch_add(count, Ordering::Relaxed);
        }
    }
    counters.open.fetch_sub(1, Ordering::Relaxed);
}

async fn churn(args: &Args, before: Option<u64>) {
    let started = Instant::now();
    let mut failed = 0;
    for i in 0..args.churn {
        match tokio_tungstenite::connect_async(args.url.as_str()).await {
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
