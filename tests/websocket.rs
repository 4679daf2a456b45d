//! The WebSocket protocol of docs/protocol.md against the real server.

#![cfg(feature = "ssr")]

mod support;

use std::time::Duration;

use serde_json::json;
use support::{post_line, post_line_by, Client, Next, TestServer};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use twitter_search::wire::{ErrorCode, ServerMessage, UpstreamState};

use futures::SinkExt;

fn pets() -> Vec<String> {
    (0..40)
        .map(|i| {
            let text = if i % 2 == 0 {
                format!("cats nap {i}")
            } else {
                format!("dogs run {i}")
            };
            post_line(i, &text)
        })
        .collect()
}

#[tokio::test]
async fn greets_with_hello_then_upstream_state() {
    let server = TestServer::replay(&pets(), |_| {}).await;
    let mut client = server.client().await;
    match client.recv().await {
        ServerMessage::Hello {
            protocol,
            source,
            limits,
        } => {
            assert_eq!(protocol, 1);
            assert_eq!(source, "replay");
            assert_eq!(limits.max_term_length, 512);
        }
        other => panic!("expected hello, got {other:?}"),
    }
    match client.recv().await {
        ServerMessage::Upstream { state, .. } => {
            assert!(matches!(
                state,
                UpstreamState::Connected | UpstreamState::Connecting
            ))
        }
        other => panic!("expected upstream, got {other:?}"),
    }
    server.shut_down().await;
}

#[tokio::test]
async fn connection_without_search_receives_no_posts() {
    let server = TestServer::replay(&pets(), |_| {}).await;
    let mut client = Client::greeted(server.addr).await;
    assert!(client
        .tweets_within(Duration::from_millis(600))
        .await
        .is_empty());
    server.shut_down().await;
}

#[tokio::test]
async fn update_term_is_acknowledged_as_understood() {
    let server = TestServer::replay(&pets(), |_| {}).await;
    let mut client = Client::greeted(server.addr).await;
    client
        .search_accepted("  cats \t photo ", "cats photo")
        .await;
    server.shut_down().await;
}

#[tokio::test]
async fn only_matching_posts_arrive() {
    let server = TestServer::replay(&pets(), |_| {}).await;
    let mut client = Client::greeted(server.addr).await;
    client.search("cats").await;
    let texts = client.tweets(10).await;
    assert!(texts.iter().all(|t| t.starts_with("cats nap")), "{texts:?}");
    server.shut_down().await;
}

#[tokio::test]
async fn two_connections_get_their_own_posts() {
    let server = TestServer::replay(&pets(), |_| {}).await;
    let mut cats = Client::greeted(server.addr).await;
    let mut dogs = Client::greeted(server.addr).await;
    cats.search("cats").await;
    dogs.search("dogs").await;
    let cat_texts = cats.tweets(6).await;
    let dog_texts = dogs.tweets(6).await;
    assert!(
        cat_texts.iter().all(|t| t.contains("cats")),
        "{cat_texts:?}"
    );
    assert!(
        dog_texts.iter().all(|t| t.contains("dogs")),
        "{dog_texts:?}"
    );
    server.shut_down().await;
}

#[tokio::test]
async fn stop_and_start_stream() {
    let server = TestServer::replay(&pets(), |_| {}).await;
    let mut client = Client::greeted(server.addr).await;
    let mut other = Client::greeted(server.addr).await;
    client.search("cats").await;
    other.search("cats").await;
    client.tweets(2).await;
    client.send_json(json!({"type": "stopStream"})).await;
    assert_eq!(
        client.recv_reply().await,
        ServerMessage::StreamState { streaming: false }
    );
    assert!(client
        .tweets_within(Duration::from_millis(700))
        .await
        .is_empty());
    // Stopping one browser does not stop another.
    assert!(!other.tweets(3).await.is_empty());
    client.send_json(json!({"type": "startStream"})).await;
    assert_eq!(
        client.recv_reply().await,
        ServerMessage::StreamState { streaming: true }
    );
    assert!(client.tweets(2).await.iter().all(|t| t.contains("cats")));
    server.shut_down().await;
}

#[tokio::test]
async fn new_search_resumes_a_stopped_stream() {
    let server = TestServer::replay(&pets(), |_| {}).await;
    let mut client = Client::greeted(server.addr).await;
    client.search("cats").await;
    client.recv_reply().await;
    client.send_json(json!({"type": "stopStream"})).await;
    assert_eq!(
        client.recv_reply().await,
        ServerMessage::StreamState { streaming: false }
    );
    client.search_accepted("dogs", "dogs").await;
    let texts = client.tweets(3).await;
    assert!(texts.iter().all(|t| t.contains("dogs")), "{texts:?}");
    server.shut_down().await;
}

async fn expect_error(client: &mut Client, code: ErrorCode) -> String {
    match client.recv_reply().await {
        ServerMessage::Error { code: got, message } => {
            assert_eq!(got, code, "{message}");
            message
        }
        other => panic!("expected {code} error, got {other:?}"),
    }
}

#[tokio::test]
async fn invalid_messages_are_answered_without_closing() {
    let server = TestServer::replay(&pets(), |_| {}).await;
    let mut client = Client::greeted(server.addr).await;
    for bad in [
        "not json",
        "[1,2,3]",
        r#"{"type":"dance"}"#,
        r#"{"type":"updateTerm"}"#,
        r#"{"type":"updateTerm","term":42}"#,
        r#"{"term":"x"}"#,
    ] {
        client.send_text(bad).await;
        let message = expect_error(&mut client, ErrorCode::InvalidMessage).await;
        assert!(!message.is_empty());
    }
    client
        .socket
        .send(Message::binary(vec![1u8, 2, 3]))
        .await
        .unwrap();
    expect_error(&mut client, ErrorCode::InvalidMessage).await;
    // Still open and still working.
    client.search_accepted("cats", "cats").await;
    server.shut_down().await;
}

#[tokio::test]
async fn refused_search_keeps_the_previous_one() {
    let server = TestServer::replay(&pets(), |_| {}).await;
    let mut client = Client::greeted(server.addr).await;
    client.search("cats").await;
    client.recv_reply().await;
    for bad in [
        "",
        "rust OR",
        "\"open",
        "(a",
        "-rust",
        "go OR -rust",
        "from:",
        "lang:",
        "rust -",
    ] {
        client.search(bad).await;
        let message = expect_error(&mut client, ErrorCode::InvalidTerm).await;
        assert!(!message.is_empty(), "{bad:?}");
    }
    client.search("\"open").await;
    let message = expect_error(&mut client, ErrorCode::InvalidTerm).await;
    assert!(message.contains("character 1"), "{message}");
    client.search(&"a".repeat(513)).await;
    let message = expect_error(&mut client, ErrorCode::TermTooLong).await;
    assert!(message.contains("512"), "{message}");
    let texts = client.tweets(4).await;
    assert!(texts.iter().all(|t| t.contains("cats")), "{texts:?}");
    server.shut_down().await;
}

#[tokio::test]
async fn query_md_examples_hold_through_the_server() {
    // Every text of docs/search.md's table of examples, and who wrote it.
    let corpus: [(&str, &str); 31] = [
        ("u1", "I love Rust!"),
        ("u2", "#rust is fun"),
        ("u3", "ask @rust"),
        ("u4", "rust-lang"),
        ("u5", "rusty nails"),
        ("u6", "trust me"),
        ("u7", "#rustlang"),
        ("u8", "wasm and rust"),
        ("u9", "Rust, then WASM."),
        ("u10", "rust only"),
        ("u11", "go home"),
        ("u12", "rust belt"),
        ("u13", "golang rocks"),
        ("u14", "go"),
        ("u15", "wasm rust"),
        ("u16", "wasm only"),
        ("u17", "open source wins"),
        ("u18", "open-source rocks"),
        ("u19", "source is open"),
        ("u20", "leptos is neat"),
        ("u21", "leptos vs react"),
        ("u22", "new #RustLang release"),
        ("u23", "rustlang release"),
        ("u24", "a dogs photo"),
        ("u25", "a cats video"),
        ("u26", "see https://www.example.com/x"),
        ("u27", "see example.com"),
        ("u28", "foo.example.com/bar"),
        ("u29", "an example"),
        ("Ada", "hello world"),
        ("bob", "ada says hi"),
    ];
    let lines: Vec<String> = corpus
        .iter()
        .enumerate()
        .map(|(i, (handle, text))| post_line_by(i, handle, text))
        .collect();
    let server = TestServer::replay(&lines, |s| s.source.rate = Some(200.0)).await;
    let rust = [1, 2, 3, 4, 8, 9, 10, 12, 15];
    let cases: Vec<(&str, Vec<usize>)> = vec![
        ("rust", rust.to_vec()),
        ("rust wasm", vec![8, 9, 15]),
        ("rust, go", [&rust[..], &[11, 14]].concat()),
        ("rust wasm, go", vec![8, 9, 11, 14, 15]),
        ("\"open source\"", vec![17, 18]),
        ("leptos -react", vec![20]),
        ("#rustlang", vec![7, 22]),
        ("from:ada", vec![30]),
        ("(cats OR dogs) photo", vec![24]),
        ("example.com/x", vec![26]),
        ("example com", vec![26, 27, 28]),
    ];
    for (term, expected) in cases {
        let mut client = Client::greeted(server.addr).await;
        client.search(term).await;
        client.recv_reply().await;
        // The file loops: 31 posts at 200/s is more than two full passes.
        let mut seen = client.tweets_within(Duration::from_millis(400)).await;
        seen.sort();
        seen.dedup();
        let mut expected: Vec<String> = expected
            .iter()
            .map(|n| corpus[n - 1].1.to_owned())
            .collect();
        expected.sort();
        assert_eq!(seen, expected, "search {term:?}");
    }
    server.shut_down().await;
}

#[tokio::test]
async fn oversized_frame_closes_with_1009() {
    let server = TestServer::replay(&pets(), |_| {}).await;
    let mut client = Client::greeted(server.addr).await;
    let big = json!({"type": "updateTerm", "term": "x".repeat(5000)}).to_string();
    client.send_text(&big).await;
    assert_eq!(client.closed().await, Some(CloseCode::Size));
    // The server is still fine for others.
    let mut other = Client::greeted(server.addr).await;
    other.search("cats").await;
    assert!(matches!(
        other.recv_reply().await,
        ServerMessage::UpdatedTerm { .. }
    ));
    server.shut_down().await;
}

#[tokio::test]
async fn huge_frame_beyond_transport_cap_is_refused_without_harm() {
    let server = TestServer::replay(&pets(), |_| {}).await;
    let mut client = Client::greeted(server.addr).await;
    let huge = "y".repeat(2 * 1024 * 1024);
    let _ = client.socket.send(Message::text(huge)).await;
    assert_eq!(client.closed().await, Some(CloseCode::Size));
    let (status, _) = server.get("/healthz").await;
    assert_eq!(status, 200);
    server.shut_down().await;
}

/// 5 messages a second, bursts of 5, closed after 10 refusals.
async fn flood_limited_server() -> TestServer {
    TestServer::replay(&pets(), |s| {
        s.limits.messages_per_second = 5.0;
        s.limits.message_burst = 5.0;
        s.limits.flood_strikes = 10;
    })
    .await
}

#[tokio::test]
async fn flood_is_rate_limited_then_closed_with_1008() {
    let server = flood_limited_server().await;
    let mut client = Client::greeted(server.addr).await;
    for _ in 0..40 {
        if !client.try_send_text(r#"{"type":"startStream"}"#).await {
            break;
        }
    }
    let mut saw_rate_limited = false;
    let code = loop {
        match client.next().await {
            Next::Message(ServerMessage::Error { code, .. }) => {
                assert_eq!(code, ErrorCode::RateLimited);
                saw_rate_limited = true;
            }
            Next::Message(_) => {}
            Next::Closed(close) => break close.map(|(code, _)| code),
        }
    };
    assert!(saw_rate_limited);
    assert_eq!(code, Some(CloseCode::Policy));
    server.shut_down().await;
}

#[tokio::test]
async fn a_steady_flood_above_the_rate_is_closed_with_1008() {
    let server = flood_limited_server().await;
    let mut client = Client::greeted(server.addr).await;
    // Three times the allowed rate, spread out: the bucket lets some
    // through, which must not make the server forget the flood.
    let sender = tokio::spawn(async move {
        for _ in 0..60 {
            if !client.try_send_text(r#"{"type":"startStream"}"#).await {
                break;
            }
            tokio::time::sleep(Duration::from_millis(66)).await;
        }
        client
    });
    let mut client = sender.await.unwrap();
    assert_eq!(client.closed().await, Some(CloseCode::Policy));
    server.shut_down().await;
}

#[tokio::test]
async fn a_short_burst_is_only_told_rate_limited() {
    let server = TestServer::replay(&pets(), |s| {
        s.limits.messages_per_second = 5.0;
        s.limits.message_burst = 3.0;
    })
    .await;
    let mut client = Client::greeted(server.addr).await;
    for _ in 0..5 {
        client.send_text(r#"{"type":"startStream"}"#).await;
    }
    let mut replies = Vec::new();
    while replies.len() < 4 {
        replies.push(client.recv_reply().await);
    }
    assert!(replies.iter().any(|r| matches!(
        r,
        ServerMessage::Error {
            code: ErrorCode::RateLimited,
            ..
        }
    )));
    tokio::time::sleep(Duration::from_millis(600)).await;
    client.search_accepted("cats", "cats").await;
    server.shut_down().await;
}

#[tokio::test]
async fn full_server_answers_server_busy_and_closes_with_1013() {
    let server = TestServer::replay(&pets(), |s| s.limits.max_connections = 1).await;
    let _first = Client::greeted(server.addr).await;
    let mut second = server.client().await;
    assert!(matches!(second.recv().await, ServerMessage::Hello { .. }));
    match second.recv().await {
        ServerMessage::Error { code, message } => {
            assert_eq!(code, ErrorCode::ServerBusy);
            assert!(message.contains("full"), "{message}");
        }
        other => panic!("expected serverBusy, got {other:?}"),
    }
    assert_eq!(second.closed().await, Some(CloseCode::Again));
    server.shut_down().await;
}

#[tokio::test]
async fn refuses_cross_origin_upgrade_with_403() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let server = TestServer::replay(&pets(), |_| {}).await;
    let mut request = server.ws_url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Origin", "http://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    let mut same = server.ws_url().into_client_request().unwrap();
    same.headers_mut()
        .insert("Origin", format!("http://{}", server.addr).parse().unwrap());
    assert!(tokio_tungstenite::connect_async(same).await.is_ok());
    server.shut_down().await;
}

#[tokio::test]
async fn slow_client_gets_skipped_notice_and_nothing_is_lost_silently() {
    const POSTS: usize = 1500;
    let padding = "x".repeat(20_000);
    let lines: Vec<String> = (0..POSTS)
        .map(|i| post_line(i, &format!("match {i} {padding}")))
        .collect();
    let server = TestServer::replay(&lines, |s| {
        s.source.rate = Some(0.0);
        s.source.loop_replay = false;
        s.limits.outbound_queue = 4;
    })
    .await;
    // Subscribe first, then stop reading while the server keeps sending.
    let mut client = Client::greeted(server.addr).await;
    client.search("match").await;
    let mut received = 0usize;
    let mut skipped = 0u64;
    loop {
        match client.recv().await {
            ServerMessage::UpdatedTerm { .. } => break,
            ServerMessage::Tweets { tweets } => received += tweets.len(),
            _ => {}
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Posts emitted before the search was accepted never matched anything.
    while received + (skipped as usize) < POSTS - 50 {
        match client.next().await {
            Next::Message(ServerMessage::Tweets { tweets }) => received += tweets.len(),
            Next::Message(ServerMessage::Skipped { count }) => skipped += count,
            Next::Message(_) => {}
            Next::Closed(c) => panic!("closed early: {c:?}"),
        }
    }
    assert!(
        skipped > 0,
        "a client that did not read for 2 s must be told what it missed"
    );
    let counted = server.metric("twitter_search_posts_skipped_total").await;
    assert!(
        counted >= skipped,
        "the server counted {counted} skipped posts, the browser was told {skipped}"
    );
    server.shut_down().await;
}

#[tokio::test]
async fn client_that_stops_reading_is_dropped_after_the_write_timeout() {
    let padding = "x".repeat(50_000);
    let lines: Vec<String> = (0..400)
        .map(|i| post_line(i, &format!("heavy {i} {padding}")))
        .collect();
    let server = TestServer::replay(&lines, |s| {
        s.source.rate = Some(0.0);
        s.limits.write_timeout_secs = 1;
    })
    .await;
    let mut client = Client::greeted(server.addr).await;
    client.search_accepted("heavy", "heavy").await;
    // Never read again: the socket buffers fill and the server's writes stall.
    let mut dropped = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (_, metrics) = server.get("/metrics").await;
        if metrics.contains("twitter_search_closed_slow_total 1")
            && metrics.contains("twitter_search_connections_open 0")
        {
            dropped = true;
            break;
        }
    }
    assert!(dropped, "a stuck reader keeps no slot on the server");
    drop(client);
    server.shut_down().await;
}

#[tokio::test]
async fn idle_client_is_closed_after_the_timeout() {
    let server = TestServer::replay(&pets(), |s| {
        s.limits.ping_interval_secs = 1;
        s.limits.idle_timeout_secs = 2;
    })
    .await;
    let mut client = Client::greeted(server.addr).await;
    // Not reading means not answering pings.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(client.closed().await, Some(CloseCode::Normal));
    server.shut_down().await;
}

#[tokio::test]
async fn a_client_answering_pings_is_kept_past_the_idle_timeout() {
    let server = TestServer::replay(&pets(), |s| {
        s.limits.ping_interval_secs = 1;
        s.limits.idle_timeout_secs = 2;
    })
    .await;
    let mut client = Client::greeted(server.addr).await;
    // Reading answers the server's pings (the WebSocket layer sends pongs).
    client.tweets_within(Duration::from_millis(3500)).await;
    client.search_accepted("cats", "cats").await;
    server.shut_down().await;
}

#[tokio::test]
async fn ping_is_answered_with_pong_and_stats_tell_the_source_rate() {
    let server = TestServer::replay(&pets(), |s| s.source.rate = Some(50.0)).await;
    let mut client = Client::greeted(server.addr).await;
    client.send_text(r#"{"type":"ping"}"#).await;
    assert_eq!(client.recv_reply().await, ServerMessage::Pong);
    // `stats` comes every 5 s, with the rate over the last 10 s.
    let rate = loop {
        if let ServerMessage::Stats { posts_per_second } = client.recv().await {
            break posts_per_second;
        }
    };
    assert!(
        (25.0..=75.0).contains(&rate),
        "a 50/s replay reported {rate}/s"
    );
    server.shut_down().await;
}

#[tokio::test]
async fn shutdown_closes_sockets_with_1001() {
    let server = TestServer::replay(&pets(), |_| {}).await;
    let mut client = Client::greeted(server.addr).await;
    let addr = server.addr;
    let stopping = tokio::spawn(server.shut_down());
    assert_eq!(client.closed().await, Some(CloseCode::Away));
    stopping.await.unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
