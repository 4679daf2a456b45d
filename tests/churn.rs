//! Connect/disconnect churn leaves nothing behind: no connection, search,
//! task or memory grows with the number of browsers that came and went.

#![cfg(all(feature = "ssr", target_os = "linux"))]

mod support;

use std::time::Duration;

use support::{post_line, Client, TestServer};

/// Resident memory of this process (server and clients), in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

async fn cycles(server: &TestServer, count: usize) {
    for i in 0..count {
        let mut client = Client::greeted(server.addr).await;
        let term = format!("churn{}", i % 50);
        client.search_accepted(&term, &term).await;
        client.socket.close(None).await.unwrap();
        // Read to the server's answer to the close.
        client.closed().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_leaves_connections_searches_tasks_and_memory_where_they_were() {
    let server = TestServer::replay(&[post_line(1, "churn1 hello")], |s| {
        s.source.rate = Some(100.0);
    })
    .await;
    // Warm up allocator pools and maps, then measure.
    cycles(&server, 300).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rss_kib();
    cycles(&server, 3000).await;
    let deadline = tokio::time::Instant::now() + support::WAIT;
    loop {
        let health = server.health().await;
        let open = server.metric("twitter_search_connections_open").await;
        let searches = server.metric("twitter_search_active_searches").await;
        if health["connections"] == 0 && open == 0 && searches == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "left behind: {health} open={open} searches={searches}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = rss_kib();
    let grown = after.saturating_sub(before);
    assert!(
        grown < 8 * 1024,
        "3000 browsers came and went and memory grew {grown} KiB"
    );
    // The server still serves.
    let mut client = Client::greeted(server.addr).await;
    client.search_accepted("churn1", "churn1").await;
    assert_eq!(client.tweets(1).await, ["churn1 hello"]);
    server.shut_down().await;
}
