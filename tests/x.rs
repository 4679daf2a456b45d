//! The `x` source against a fake X API that speaks the documented filtered
//! stream: its rules API and its stream of lines.

#![cfg(feature = "ssr")]

mod support;

use std::time::Duration;

use support::fakes::{x_post, FakeX};
use support::{eventually, Client, TestServer, WAIT};
use twitter_search::server::settings::{Settings, SourceKind};
use twitter_search::server::sources::x::rules::{tag_for, TAG_PREFIX};
use twitter_search::wire::{ErrorCode, ServerMessage, UpstreamState};

/// Every test in this binary runs with this token in the environment.
const TOKEN: &str = "x-test-bearer-token-51c9";

async fn x_server(fake: &FakeX, tune: impl FnOnce(&mut Settings)) -> TestServer {
    // Every test sets the same value, so sharing the environment is safe.
    std::env::set_var("X_BEARER_TOKEN", TOKEN);
    let mut settings = Settings::default();
    settings.source.kind = SourceKind::X;
    settings.source.x.api_url = fake.url();
    tune(&mut settings);
    TestServer::start(settings).await
}

async fn rules_become(fake: &FakeX, expected: &[&str]) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let values = fake.rule_values();
        if values == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "rules {values:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn stream_open(fake: &FakeX) {
    let state = fake.state.clone();
    eventually("the stream connection", || state.connections.open() == 1).await;
}

#[tokio::test]
async fn rules_follow_the_active_searches_and_rules_of_others_stay() {
    let fake = FakeX::start(TOKEN).await;
    fake.add_foreign_rule("cat has:images", Some("cats with images"));
    fake.add_foreign_rule("meme", None);
    // Left by an earlier run of this app: nobody searches it now.
    fake.state
        .rules
        .lock()
        .unwrap()
        .push(support::fakes::XRule {
            id: "42".into(),
            value: "stale".into(),
            tag: Some(tag_for("stale")),
        });
    let server = x_server(&fake, |_| {}).await;
    rules_become(&fake, &["cat has:images", "meme"]).await;
    let mut a = Client::greeted(server.addr).await;
    let mut b = Client::greeted(server.addr).await;
    let mut c = Client::greeted(server.addr).await;
    let started = std::time::Instant::now();
    a.search_accepted("rust", "rust").await;
    b.search_accepted("rust", "rust").await;
    c.search_accepted("cats, dogs", "cats, dogs").await;
    rules_become(&fake, &["cat has:images", "cats OR dogs", "meme", "rust"]).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "in place within 10 s"
    );
    for rule in fake
        .rules()
        .iter()
        .filter(|r| r.value == "rust" || r.value == "cats OR dogs")
    {
        assert_eq!(rule.tag.as_deref(), Some(tag_for(&rule.value).as_str()));
        assert!(rule.tag.as_deref().unwrap().starts_with(TAG_PREFIX));
    }
    // Identical searches share one rule; it goes with its last browser.
    drop(b);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(fake.rule_values().contains(&"rust".to_owned()));
    drop(a);
    let started = std::time::Instant::now();
    rules_become(&fake, &["cat has:images", "cats OR dogs", "meme"]).await;
    assert!(started.elapsed() < Duration::from_secs(30));
    drop(c);
    server.shut_down().await;
}

#[tokio::test]
async fn posts_are_routed_by_their_rules_and_confirmed_by_the_matcher() {
    let fake = FakeX::start(TOKEN).await;
    let server = x_server(&fake, |_| {}).await;
    let mut rust = Client::greeted(server.addr).await;
    rust.search_accepted("rust", "rust").await;
    let mut cats = Client::greeted(server.addr).await;
    cats.search_accepted("cats", "cats").await;
    rules_become(&fake, &["cats", "rust"]).await;
    stream_open(&fake).await;
    rust.upstream(UpstreamState::Connected).await;
    let rust_rule = fake.rule_id("rust").unwrap();
    let cats_rule = fake.rule_id("cats").unwrap();
    let line = x_post(
        "1234567890",
        "Rust &amp; WebSockets &lt;3",
        "ada",
        &[&rust_rule],
    );
    // A post may be split across chunks; keep-alives come between posts.
    let (first, second) = line.split_at(line.len() / 2);
    assert!(fake.send("\r\n"));
    assert!(fake.send(first));
    assert!(fake.send(second));
    assert!(fake.send("\r\n\r\n"));
    let post = rust.posts(1).await.remove(0);
    assert_eq!(post.id, "1234567890");
    assert_eq!(post.text, "Rust & WebSockets <3");
    assert_eq!(post.name, "ada name");
    assert_eq!(post.screen_name, "ada");
    assert_eq!(
        post.user_profile_image,
        "https://pbs.twimg.com/profile_images/ada_normal.jpg"
    );
    assert_eq!(
        post.url.as_deref(),
        Some("https://x.com/ada/status/1234567890")
    );
    assert_eq!(post.created_at, "2024-01-15T10:35:00Z");
    assert_eq!(post.lang.as_deref(), Some("en"));
    assert_eq!(post.source, "x");
    // Routed to cats only, although its text says rust too.
    assert!(fake.send(&format!(
        "{}\r\n",
        x_post("2", "cats and rust", "bob", &[&cats_rule])
    )));
    // X said rust, but the matcher does not agree: nobody gets it.
    assert!(fake.send(&format!(
        "{}\r\n",
        x_post("3", "trusty", "bob", &[&rust_rule])
    )));
    assert_eq!(cats.tweets(1).await, ["cats and rust"]);
    assert!(rust
        .tweets_within(Duration::from_millis(500))
        .await
        .is_empty());
    let query = fake.state.stream_queries.lock().unwrap()[0].clone();
    assert!(query.contains(&("expansions".into(), "author_id".into())));
    assert!(query.contains(&(
        "user.fields".into(),
        "name,username,profile_image_url".into()
    )));
    assert!(query.iter().any(|(k, v)| k == "tweet.fields"
        && v.contains("note_tweet")
        && v.contains("created_at")
        && v.contains("lang")));
    assert_eq!(fake.state.connections.most(), 1);
    server.shut_down().await;
}

#[tokio::test]
async fn searches_past_the_rule_limits_get_source_limit_and_keep_the_old_one() {
    let fake = FakeX::start(TOKEN).await;
    let server = x_server(&fake, |s| {
        s.source.x.max_rules = 2;
        s.source.x.max_rule_length = 40;
    })
    .await;
    let mut a = Client::greeted(server.addr).await;
    a.search_accepted("one", "one").await;
    let mut b = Client::greeted(server.addr).await;
    b.search_accepted("two", "two").await;
    let mut c = Client::greeted(server.addr).await;
    c.search("three").await;
    let ServerMessage::Error { code, message } = c.recv_reply().await else {
        panic!("an error");
    };
    assert_eq!(code, ErrorCode::SourceLimit);
    assert!(message.contains("2 rules"), "{message}");
    // Joining a search that already has a rule costs nothing.
    c.search_accepted("two", "two").await;
    for refused in [
        "a search that is much too long to fit in forty characters",
        "lang:en",
    ] {
        a.search(refused).await;
        let ServerMessage::Error { code, .. } = a.recv_reply().await else {
            panic!("an error for {refused}");
        };
        assert_eq!(code, ErrorCode::SourceLimit, "{refused}");
    }
    rules_become(&fake, &["one", "two"]).await;
    stream_open(&fake).await;
    let one = fake.rule_id("one").unwrap();
    assert!(fake.send(&format!("{}\r\n", x_post("7", "one more", "ada", &[&one]))));
    assert_eq!(a.tweets(1).await, ["one more"], "the old search stays");
    server.shut_down().await;
}

#[tokio::test]
async fn a_silent_stream_is_reopened_one_connection_at_a_time() {
    let fake = FakeX::start(TOKEN).await;
    let server = x_server(&fake, |s| s.source.x.stall_timeout_secs = 1).await;
    let mut client = Client::greeted(server.addr).await;
    client.search_accepted("quiet", "quiet").await;
    stream_open(&fake).await;
    let detail = client.upstream(UpstreamState::Reconnecting).await.unwrap();
    assert!(detail.contains("nothing from X"), "{detail}");
    let state = fake.state.clone();
    eventually("a second connection", || state.connections.total() >= 2).await;
    assert_eq!(fake.state.connections.most(), 1, "never two at once");
    assert!(fake.attempts().iter().all(|(_, status)| *status == 200));
    server.shut_down().await;
}

#[tokio::test]
async fn an_operational_disconnect_reconnects_at_once() {
    let fake = FakeX::start(TOKEN).await;
    let server = x_server(&fake, |_| {}).await;
    let mut client = Client::greeted(server.addr).await;
    client.search_accepted("ops", "ops").await;
    stream_open(&fake).await;
    assert!(fake.send("{\"errors\":[{\"title\":\"operational-disconnect\",\"disconnect_type\":\"UpstreamOperationalDisconnect\",\"detail\":\"This stream has been disconnected upstream for operational reasons.\",\"type\":\"https://api.x.com/2/problems/operational-disconnect\"}]}\r\n"));
    fake.drop_stream();
    let detail = client.upstream(UpstreamState::Reconnecting).await.unwrap();
    assert!(detail.contains("operational-disconnect"), "{detail}");
    let state = fake.state.clone();
    eventually("the reconnect", || state.connections.total() >= 2).await;
    let attempts = fake.attempts();
    assert!(
        attempts[1].0 - attempts[0].0 < Duration::from_secs(2),
        "{attempts:?}"
    );
    // A malformed line is counted and the stream goes on.
    stream_open(&fake).await;
    assert!(fake.send("{not json\r\n"));
    let ops = fake.rule_id("ops").unwrap();
    assert!(fake.send(&format!("{}\r\n", x_post("8", "ops again", "ada", &[&ops]))));
    assert_eq!(client.tweets(1).await, ["ops again"]);
    assert_eq!(
        server
            .metric("twitter_search_source_bad_records_total")
            .await,
        1
    );
    let reconnects = server
        .metric("twitter_search_source_reconnects_total{source=\"x\",reason=\"network\"}")
        .await;
    assert_eq!(reconnects, 1);
    server.shut_down().await;
}

#[tokio::test]
async fn http_errors_wait_five_seconds_before_the_next_try() {
    let fake = FakeX::start(TOKEN).await;
    fake.fail_next_connections(&[503]);
    let server = x_server(&fake, |_| {}).await;
    let mut client = Client::greeted(server.addr).await;
    client.search_accepted("patience", "patience").await;
    let detail = client.upstream(UpstreamState::Reconnecting).await.unwrap();
    assert!(detail.contains("503") && detail.contains("5 s"), "{detail}");
    stream_open(&fake).await;
    let attempts = fake.attempts();
    assert_eq!(attempts[0].1, 503);
    let waited = attempts[1].0 - attempts[0].0;
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_secs(8),
        "{waited:?}"
    );
    server.shut_down().await;
}

#[tokio::test]
async fn a_refused_token_fails_upstream_without_showing_it() {
    let fake = FakeX::start("a-token-x-expects").await;
    let server = x_server(&fake, |_| {}).await;
    let mut client = Client::connect(server.addr).await;
    let mut frames = Vec::new();
    let detail = loop {
        let message = client.recv().await;
        frames.push(serde_json::to_string(&message).unwrap());
        if let ServerMessage::Upstream {
            state: UpstreamState::Failed,
            detail,
        } = message
        {
            break detail.unwrap();
        }
    };
    assert!(
        detail.contains("X_BEARER_TOKEN") && detail.contains("401"),
        "{detail}"
    );
    assert!(frames.iter().all(|f| !f.contains(TOKEN)));
    assert_eq!(server.health().await["upstream"], "failed");
    server.shut_down().await;
}

#[tokio::test]
async fn an_oversized_line_is_skipped_unread_and_the_stream_goes_on() {
    let fake = FakeX::start(TOKEN).await;
    let server = x_server(&fake, |_| {}).await;
    let mut client = Client::greeted(server.addr).await;
    client.search_accepted("small", "small").await;
    stream_open(&fake).await;
    let chunk = "x".repeat(64 * 1024);
    for _ in 0..20 {
        assert!(fake.send(&chunk));
    }
    assert!(fake.send("\r\n"));
    let rule = fake.rule_id("small").unwrap();
    assert!(fake.send(&format!(
        "{}\r\n",
        x_post("9", "small post", "ada", &[&rule])
    )));
    assert_eq!(client.tweets(1).await, ["small post"]);
    assert_eq!(
        server
            .metric("twitter_search_source_bad_records_total")
            .await,
        1
    );
    assert_eq!(fake.state.connections.total(), 1);
    server.shut_down().await;
}
