//! Plain HTTP endpoints and the replay source's handling of broken input.

#![cfg(feature = "ssr")]

mod support;

use std::time::Duration;

use support::{post_line, Client, TestServer};

#[tokio::test]
async fn healthz_answers_200() {
    let server = TestServer::replay(&[post_line(1, "hi")], |_| {}).await;
    let health = server.health().await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["source"], "replay");
    assert_eq!(health["upstream"], "connected");
    assert_eq!(health["role"], "single");
    assert_eq!(health["connections"], 0);
    server.shut_down().await;
}

#[tokio::test]
async fn metrics_are_openmetrics_text_with_delivery_times_and_disconnect_reasons() {
    let server = TestServer::replay(&[post_line(1, "hi")], |_| {}).await;
    let mut client = Client::greeted(server.addr).await;
    client.search_accepted("hi", "hi").await;
    assert_eq!(client.tweets(1).await, ["hi"]);
    client.socket.close(None).await.unwrap();
    client.closed().await;
    let deadline = tokio::time::Instant::now() + support::WAIT;
    while server.metric("twitter_search_connections_open").await != 0 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, head, body) = server.get_with_headers("/metrics").await;
    assert_eq!(status, 200);
    assert!(head.contains("application/openmetrics-text"), "{head}");
    assert!(
        body.contains("# TYPE twitter_search_posts_received counter"),
        "{body}"
    );
    assert!(server.metric("twitter_search_posts_received_total").await >= 1);
    assert!(
        server.metric("twitter_search_delivery_seconds_count").await >= 1,
        "{body}"
    );
    assert_eq!(
        server
            .metric("twitter_search_disconnects_total{reason=\"client_closed\"}")
            .await,
        1,
        "{body}"
    );
    assert!(body.trim_end().ends_with("# EOF"), "{body}");
    server.shut_down().await;
}

#[tokio::test]
async fn avatars_are_generated_locally_and_safe() {
    let server = TestServer::replay(&[post_line(1, "hi")], |_| {}).await;
    let (status, body) = server.get("/avatars/ada_lovelace.svg").await;
    assert_eq!(status, 200);
    assert!(body.contains("<svg"), "{body}");
    let (status, body) = server.get("/avatars/%3Cscript%3E.svg").await;
    assert_eq!(status, 200);
    assert!(!body.contains("<script"), "{body}");
    let (status, _) = server.get("/avatar-placeholder.svg").await;
    assert_eq!(status, 200);
    server.shut_down().await;
}

#[tokio::test]
async fn bad_replay_lines_are_counted_and_skipped() {
    let lines = vec![
        post_line(1, "good one"),
        "{not json".to_owned(),
        "[1,2,3]".to_owned(),
        r#"{"id":"","name":"x","screen_name":"x","text":"good but no id","created_at":"t"}"#
            .to_owned(),
        String::new(),
        post_line(2, "good two"),
    ];
    let server = TestServer::replay(&lines, |s| s.source.rate = Some(50.0)).await;
    let mut client = Client::greeted(server.addr).await;
    client.search("good").await;
    let mut texts = client.tweets(4).await;
    texts.sort();
    texts.dedup();
    assert_eq!(texts, ["good one", "good two"]);
    let (_, metrics) = server.get("/metrics").await;
    let bad: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("twitter_search_source_bad_records_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        bad >= 3 && bad.is_multiple_of(3),
        "three bad lines per pass, got {bad}"
    );
    server.shut_down().await;
}

#[tokio::test]
async fn page_is_rendered_on_the_server() {
    let server = TestServer::replay(&[post_line(1, "hi")], |_| {}).await;
    let (status, body) = server.get("/").await;
    assert_eq!(status, 200);
    for needle in [
        "name=\"search\"",
        "id=\"searchTerm\"",
        "id=\"toggle-button\"",
        "id=\"slider\"",
        "id=\"sliderValue\"",
        "id=\"clear-button\"",
        "id=\"tweet-container\"",
        "id=\"search-error\"",
        "id=\"connection-state\"",
        "/pkg/twitter-search.css",
    ] {
        assert!(body.contains(needle), "missing {needle} in the page");
    }
    server.shut_down().await;
}

#[tokio::test]
async fn page_carries_a_nonce_based_content_security_policy() {
    let server = TestServer::replay(&[post_line(1, "hi")], |_| {}).await;
    let (status, head, body) = server.get_with_headers("/").await;
    assert_eq!(status, 200);
    let policy = head
        .lines()
        .find_map(|l| l.strip_prefix("content-security-policy:"))
        .unwrap_or_else(|| panic!("no CSP header in {head}"));
    let nonce = policy
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("a nonce in the policy");
    assert!(nonce.len() >= 16, "{nonce}");
    assert!(
        body.contains(&format!("nonce=\"{nonce}\"")),
        "the hydration script carries the nonce"
    );
    assert!(policy.contains("object-src 'none'") && policy.contains("frame-ancestors 'none'"));
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    // A fresh nonce per response.
    let (_, second, _) = server.get_with_headers("/").await;
    assert!(!second.contains(nonce));
    server.shut_down().await;
}

#[tokio::test]
async fn real_sources_with_wrong_addresses_are_refused_with_the_flag() {
    use twitter_search::server::settings::{Settings, SourceKind};
    type Tune = fn(&mut Settings);
    let cases: [(SourceKind, Tune, &str); 4] = [
        (SourceKind::Mastodon, |_| {}, "--mastodon-url"),
        (
            SourceKind::Mastodon,
            |s| s.source.mastodon.url = Some("wss://mastodon.social".into()),
            "--mastodon-url",
        ),
        (
            SourceKind::X,
            |s| s.source.x.api_url = "api.x.com".into(),
            "--x-api-url",
        ),
        (
            SourceKind::Bluesky,
            |s| s.source.bluesky.appview_url = "ftp://x".into(),
            "--appview-url",
        ),
    ];
    for (kind, tune, flag) in cases {
        let mut settings = Settings::default();
        settings.source.kind = kind;
        tune(&mut settings);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let error = twitter_search::server::run(listener, settings, async {})
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains(flag), "{kind:?}: {error}");
    }
}

#[tokio::test]
async fn a_missing_replay_file_stops_the_server_with_its_path() {
    use twitter_search::server::settings::{Settings, SourceKind};
    let mut settings = Settings::default();
    settings.source.kind = SourceKind::Replay;
    settings.source.replay_file = Some("/nonexistent/posts.ndjson".into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = twitter_search::server::run(listener, settings, async {})
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("/nonexistent/posts.ndjson"), "{error}");
}

#[tokio::test]
async fn unknown_paths_are_404_and_cannot_leave_the_site() {
    let server = TestServer::replay(&[post_line(1, "hi")], |_| {}).await;
    for path in [
        "/nope",
        "/../Cargo.toml",
        "/pkg/../../Cargo.toml",
        "/%2e%2e/Cargo.toml",
    ] {
        let (status, body) = server.get(path).await;
        assert_eq!(status, 404, "{path}");
        assert!(!body.contains("[package]"), "{path}");
    }
    server.shut_down().await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server =
        TestServer::replay(&[post_line(1, "hi")], |s| s.limits.header_timeout_secs = 1).await;
    let mut slow = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut buffer = [0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut buffer))
        .await
        .expect("the server closes the connection");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    server.shut_down().await;
}

#[tokio::test]
async fn tcp_connections_are_capped_a_little_above_max_connections() {
    use twitter_search::server::http::connection_cap;
    let server = TestServer::replay(&[post_line(1, "hi")], |s| {
        s.limits.max_connections = 1;
        s.limits.header_timeout_secs = 1;
    })
    .await;
    // Silent connections take every slot…
    let mut silent = Vec::new();
    for _ in 0..connection_cap(1) {
        silent.push(tokio::net::TcpStream::connect(server.addr).await.unwrap());
    }
    // …so the next request waits until the header timeout frees them.
    let started = std::time::Instant::now();
    let (status, _) = server.get("/healthz").await;
    assert_eq!(status, 200);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(700),
        "served after {waited:?}"
    );
    drop(silent);
    server.shut_down().await;
}
