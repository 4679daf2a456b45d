//! The `bluesky` source against a fake Jetstream and AppView that speak
//! their documented wire formats.

#![cfg(feature = "ssr")]

mod support;

use std::time::Duration;

use serde_json::json;
use support::fakes::{jetstream_post, post_record, FakeJetstream};
use support::{eventually, Client, TestServer, WAIT};
use twitter_search::server::settings::{Settings, SourceKind};
use twitter_search::wire::{TextRange, Tweet, UpstreamState};

/// A `time_us` near now, like Jetstream's.
fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

async fn bluesky_server(fake: &FakeJetstream) -> TestServer {
    let mut settings = Settings::default();
    settings.source.kind = SourceKind::Bluesky;
    settings.source.bluesky.jetstream_url = fake.subscribe_url();
    settings.source.bluesky.appview_url = fake.appview_url();
    let server = TestServer::start(settings).await;
    let state = fake.state.clone();
    eventually("the Jetstream connection", || state.connections.open() == 1).await;
    server
}

async fn searching(server: &TestServer, term: &str) -> Client {
    let mut client = Client::greeted(server.addr).await;
    client.search_accepted(term, term).await;
    client
}

#[tokio::test]
async fn posts_arrive_mapped_field_by_field_with_their_authors_profile() {
    let fake = FakeJetstream::start().await;
    fake.add_profile(
        "did:plc:eygmaihciaxprqvxpfvl6flk",
        "ada.bsky.social",
        "Ada Lovelace",
        "https://cdn.bsky.app/img/avatar/plain/did:plc:eygmaihciaxprqvxpfvl6flk/bafkrei@jpeg",
    );
    let server = bluesky_server(&fake).await;
    let mut by_word = searching(&server, "engines").await;
    // The link text is shortened; only its facet holds the full address.
    let mut by_link = searching(&server, "example.com/analytical/engine").await;
    let mut by_tag = searching(&server, "#history").await;
    let text = "Engines café example.com/analyti… #history";
    let time_us = now_us();
    fake.publish(jetstream_post(
        "did:plc:eygmaihciaxprqvxpfvl6flk",
        "3l3qo2vutsw2b",
        time_us,
        json!({
            "$type": "app.bsky.feed.post",
            "createdAt": "2024-09-09T19:46:02.102Z",
            "langs": ["en-GB"],
            "text": text,
            "facets": [
                {"index": {"byteStart": 14, "byteEnd": 36},
                 "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/analytical/engine"}]},
                {"index": {"byteStart": 37, "byteEnd": 45},
                 "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "history"}]}
            ]
        }),
    ));
    let post = by_word.posts(1).await.remove(0);
    assert_eq!(
        post.id,
        "at://did:plc:eygmaihciaxprqvxpfvl6flk/app.bsky.feed.post/3l3qo2vutsw2b"
    );
    assert_eq!(post.name, "Ada Lovelace");
    assert_eq!(post.screen_name, "ada.bsky.social");
    assert_eq!(post.text, text);
    assert_eq!(
        post.user_profile_image,
        "https://cdn.bsky.app/img/avatar/plain/did:plc:eygmaihciaxprqvxpfvl6flk/bafkrei@jpeg"
    );
    assert_eq!(
        post.url.as_deref(),
        Some("https://bsky.app/profile/did:plc:eygmaihciaxprqvxpfvl6flk/post/3l3qo2vutsw2b")
    );
    assert_eq!(post.created_at, "2024-09-09T19:46:02.102Z");
    assert_eq!(post.lang.as_deref(), Some("en-GB"));
    assert_eq!(post.source, "bluesky");
    assert_eq!(post.links.len(), 1);
    let link = &post.links[0];
    assert_eq!(link.url, "https://example.com/analytical/engine");
    assert_eq!(
        &text[link.start as usize..link.end as usize],
        "example.com/analyti…"
    );
    assert_eq!(
        by_link.posts(1).await[0].id,
        post.id,
        "a search on the full URL matches"
    );
    assert_eq!(by_tag.posts(1).await[0].id, post.id);
    server.shut_down().await;
}

#[tokio::test]
async fn only_created_posts_are_shown_and_broken_events_are_counted() {
    let fake = FakeJetstream::start().await;
    let server = bluesky_server(&fake).await;
    let mut client = searching(&server, "hello").await;
    let t = now_us();
    let did = "did:plc:q235v55g5unth4zjjdpacfdr";
    let mut update = jetstream_post(did, "edited", t, post_record("hello edited"));
    update["commit"]["operation"] = json!("update");
    fake.publish(update);
    // The documented delete, identity and account events.
    fake.publish(json!({"did": did, "time_us": t + 1, "kind": "commit", "commit": {"rev": "3mmoojpae7c2e", "operation": "delete", "collection": "app.bsky.feed.post", "rkey": "3mmontn3gnc2e"}}));
    fake.publish(json!({"did": did, "time_us": t + 2, "kind": "identity", "identity": {"did": did, "handle": "hello.bsky.social", "seq": 1409752997, "time": "2024-09-05T06:11:04.870Z"}}));
    fake.publish(json!({"did": did, "time_us": t + 3, "kind": "account", "account": {"active": true, "did": did, "seq": 30340180351u64, "time": "2026-05-25T14:23:29.950Z"}}));
    fake.publish_raw(t + 4, "{\"did\": broken".to_owned());
    fake.publish(jetstream_post(
        did,
        "notext",
        t + 5,
        json!({"$type": "app.bsky.feed.post", "createdAt": "2026-05-25T14:23:28.757Z"}),
    ));
    fake.publish(jetstream_post(
        did,
        "good",
        t + 6,
        post_record("hello world"),
    ));
    let posts = client.posts(1).await;
    assert_eq!(posts[0].text, "hello world");
    assert_eq!(
        posts[0].screen_name, "hello.bsky.social",
        "the identity event's handle"
    );
    assert!(client
        .tweets_within(Duration::from_millis(700))
        .await
        .is_empty());
    assert_eq!(
        server
            .metric("twitter_search_source_bad_records_total")
            .await,
        2
    );
    assert_eq!(
        fake.state.connections.total(),
        1,
        "bad events never drop the stream"
    );
    let queries = fake.state.queries.lock().unwrap().clone();
    assert!(queries[0].contains(&("wantedCollections".into(), "app.bsky.feed.post".into())));
    server.shut_down().await;
}

#[tokio::test]
async fn many_browsers_share_one_upstream_connection() {
    let fake = FakeJetstream::start().await;
    let server = bluesky_server(&fake).await;
    let mut clients = Vec::new();
    for i in 0..5 {
        clients.push(searching(&server, &format!("word{i}")).await);
    }
    fake.publish(jetstream_post(
        "did:plc:a",
        "k1",
        now_us(),
        post_record("word3 here"),
    ));
    assert_eq!(clients[3].tweets(1).await, ["word3 here"]);
    assert_eq!(fake.state.connections.most(), 1);
    assert_eq!(server.health().await["connections"], 5);
    server.shut_down().await;
}

#[tokio::test]
async fn a_dropped_connection_resumes_from_the_cursor_without_loss_or_duplicates() {
    let fake = FakeJetstream::start().await;
    let server = bluesky_server(&fake).await;
    let mut client = searching(&server, "seq").await;
    let t = now_us();
    for i in 1..=3u64 {
        fake.publish(jetstream_post(
            "did:plc:a",
            &format!("k{i}"),
            t + i * 1000,
            post_record(&format!("seq {i}")),
        ));
    }
    assert_eq!(client.tweets(3).await, ["seq 1", "seq 2", "seq 3"]);
    fake.kick();
    let state = fake.state.clone();
    eventually("the drop", || state.connections.open() == 0).await;
    // Published while the app is away: Jetstream keeps them for the cursor.
    for i in 4..=6u64 {
        fake.publish(jetstream_post(
            "did:plc:a",
            &format!("k{i}"),
            t + i * 1000,
            post_record(&format!("seq {i}")),
        ));
    }
    assert!(client.upstream(UpstreamState::Reconnecting).await.is_some());
    let started = std::time::Instant::now();
    assert_eq!(client.tweets(3).await, ["seq 4", "seq 5", "seq 6"]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "back within 10 s"
    );
    assert!(
        client
            .tweets_within(Duration::from_millis(800))
            .await
            .is_empty(),
        "nothing shown twice"
    );
    let cursors = fake.cursors();
    assert_eq!(cursors[0], None, "a fresh start reads live");
    assert_eq!(
        cursors[1],
        Some(t + 3000 - 5_000_000),
        "5 s before the last event seen"
    );
    server.shut_down().await;
}

#[tokio::test]
async fn a_slow_profile_service_does_not_hold_posts_back() {
    let fake = FakeJetstream::start().await;
    fake.add_profile(
        "did:plc:slow",
        "slow.bsky.social",
        "Slow",
        "https://cdn.example/a.jpg",
    );
    fake.set_profile_delay(Duration::from_secs(5));
    let server = bluesky_server(&fake).await;
    let mut client = searching(&server, "patience").await;
    let started = std::time::Instant::now();
    fake.publish(jetstream_post(
        "did:plc:slow",
        "k",
        now_us(),
        post_record("patience"),
    ));
    let post = client.posts(1).await.remove(0);
    let waited = started.elapsed();
    assert!(waited < Duration::from_millis(1500), "held {waited:?}");
    assert_eq!(
        post.screen_name, "did:plc:slow",
        "the DID when nothing else is known"
    );
    assert_eq!(post.name, "did:plc:slow");
    server.shut_down().await;
}

#[tokio::test]
async fn a_failing_profile_service_falls_back_and_the_stream_goes_on() {
    let fake = FakeJetstream::start().await;
    fake.set_profiles_failing(true);
    let server = bluesky_server(&fake).await;
    let mut client = searching(&server, "onward").await;
    let t = now_us();
    fake.publish(json!({"did": "did:plc:f", "time_us": t, "kind": "identity", "identity": {"did": "did:plc:f", "handle": "fallback.bsky.social", "seq": 1, "time": "2024-09-05T06:11:04.870Z"}}));
    for i in 0..3u64 {
        fake.publish(jetstream_post(
            "did:plc:f",
            &format!("k{i}"),
            t + 1 + i,
            post_record(&format!("onward {i}")),
        ));
    }
    let posts = client.posts(3).await;
    for post in &posts {
        assert_eq!(post.screen_name, "fallback.bsky.social");
        assert_eq!(post.user_profile_image, "");
    }
    assert_eq!(server.health().await["upstream"], "connected");
    server.shut_down().await;
}

#[tokio::test]
async fn profiles_are_asked_for_in_batches_of_at_most_25_and_cached() {
    let fake = FakeJetstream::start().await;
    for i in 0..60 {
        fake.add_profile(
            &format!("did:plc:author{i}"),
            &format!("author{i}.bsky.social"),
            &format!("Author {i}"),
            "https://cdn.example/a.jpg",
        );
    }
    let server = bluesky_server(&fake).await;
    let mut client = searching(&server, "batch").await;
    let t = now_us();
    for i in 0..60u64 {
        fake.publish(jetstream_post(
            &format!("did:plc:author{i}"),
            &format!("k{i}"),
            t + i,
            post_record("batch"),
        ));
    }
    let posts = client.posts(60).await;
    let named = posts
        .iter()
        .filter(|p| p.name.starts_with("Author "))
        .count();
    assert!(
        named >= 50,
        "most posts carry their author's name ({named}/60)"
    );
    let calls = fake.state.profile_calls.lock().unwrap().clone();
    assert!(calls.iter().all(|c| c.len() <= 25), "{calls:?}");
    assert!(calls.len() >= 3);
    // Known authors are not asked again.
    fake.publish(jetstream_post(
        "did:plc:author1",
        "again",
        t + 100,
        post_record("batch again"),
    ));
    let again = client.posts(1).await.remove(0);
    assert_eq!(again.name, "Author 1");
    let asked_for_author1 = fake
        .state
        .profile_calls
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.contains(&"did:plc:author1".to_owned()))
        .count();
    assert_eq!(asked_for_author1, 1);
    server.shut_down().await;
}

#[tokio::test]
async fn browsers_see_the_upstream_state_and_a_refused_url_stops_start_up() {
    let fake = FakeJetstream::start().await;
    let server = bluesky_server(&fake).await;
    let mut client = Client::greeted(server.addr).await;
    let health = server.health().await;
    assert_eq!(health["source"], "bluesky");
    assert_eq!(health["upstream"], "connected");
    fake.kick();
    let detail = client.upstream(UpstreamState::Reconnecting).await.unwrap();
    assert!(detail.contains("Jetstream"), "{detail}");
    tokio::time::timeout(WAIT, client.upstream(UpstreamState::Connected))
        .await
        .unwrap();
    server.shut_down().await;

    let mut settings = Settings::default();
    settings.source.kind = SourceKind::Bluesky;
    settings.source.bluesky.jetstream_url = "https://not-a-websocket.example".into();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = twitter_search::server::run(listener, settings, async {})
        .await
        .unwrap_err();
    assert!(error.to_string().contains("--jetstream-url"), "{error}");
}

#[tokio::test]
async fn events_over_the_size_asked_for_are_skipped_and_the_stream_goes_on() {
    let fake = FakeJetstream::start().await;
    let server = bluesky_server(&fake).await;
    let mut client = searching(&server, "size").await;
    let t = now_us();
    let huge = "size ".repeat(120_000);
    fake.publish(jetstream_post("did:plc:big", "big", t, post_record(&huge)));
    fake.publish(jetstream_post(
        "did:plc:big",
        "small",
        t + 1,
        post_record("size small"),
    ));
    assert_eq!(client.tweets(1).await, ["size small"]);
    let queries = fake.state.queries.lock().unwrap().clone();
    assert!(queries[0].contains(&("maxMessageSizeBytes".into(), "524288".into())));
    assert_eq!(fake.state.connections.total(), 1);
    server.shut_down().await;
}

#[tokio::test]
async fn recorded_posts_replay_as_they_came() {
    use twitter_search::server::sources::replay::parse_line;
    let fake = FakeJetstream::start().await;
    fake.add_profile(
        "did:plc:rec",
        "rec.bsky.social",
        "Recorder",
        "https://cdn.example/r.jpg",
    );
    let record_dir = tempfile::tempdir().unwrap();
    let record = record_dir.path().join("live.ndjson");
    let mut settings = Settings::default();
    settings.source.kind = SourceKind::Bluesky;
    settings.source.bluesky.jetstream_url = fake.subscribe_url();
    settings.source.bluesky.appview_url = fake.appview_url();
    settings.source.record = Some(record.clone());
    let server = TestServer::start(settings).await;
    let state = fake.state.clone();
    eventually("the Jetstream connection", || state.connections.open() == 1).await;
    let mut client = searching(&server, "kept").await;
    let t = now_us();
    // Nobody searches the first one: it is recorded all the same.
    fake.publish(jetstream_post(
        "did:plc:rec",
        "a",
        t,
        post_record("unsearched"),
    ));
    fake.publish(jetstream_post(
        "did:plc:rec",
        "b",
        t + 1,
        json!({"$type": "app.bsky.feed.post", "createdAt": "2026-05-25T14:23:28.757Z", "langs": ["de"],
               "text": "kept example.com/…",
               "facets": [{"index": {"byteStart": 5, "byteEnd": 20}, "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/full"}]}]}),
    ));
    let delivered = client.posts(1).await.remove(0);
    server.shut_down().await;
    let text = std::fs::read_to_string(&record).unwrap();
    let recorded: Vec<_> = text.lines().map(|l| parse_line(l).unwrap()).collect();
    assert_eq!(recorded.len(), 2, "{text}");
    assert_eq!(recorded[0].text, "unsearched");
    // The browser's copy carries the marks of its search; the record is
    // the post as it came.
    assert_eq!(delivered.marks, [TextRange { start: 0, end: 4 }]);
    assert_eq!(
        recorded[1],
        Tweet {
            marks: Vec::new(),
            spans: Vec::new(),
            ..delivered.clone()
        }
    );

    // The file plays back with the replay source.
    let replay =
        TestServer::replay(&text.lines().map(str::to_owned).collect::<Vec<_>>(), |_| {}).await;
    let mut client = searching(&replay, "example.com/full").await;
    let again = client.posts(1).await.remove(0);
    assert_eq!(again.id, delivered.id);
    assert_eq!(again.links, delivered.links);
    replay.shut_down().await;
}
