//! The `mastodon` source against a fake instance that speaks the documented
//! streaming API.

#![cfg(feature = "ssr")]

mod support;

use std::time::Duration;

use serde_json::json;
use support::fakes::{mastodon_status, mastodon_update, FakeMastodon};
use support::{eventually, Client, TestServer};
use twitter_search::server::settings::{Settings, SourceKind};
use twitter_search::wire::UpstreamState;

/// Every test in this binary runs with this token in the environment.
const TOKEN: &str = "mastodon-test-token-7f3a";

async fn mastodon_server(fake: &FakeMastodon) -> TestServer {
    // SAFETY of the shared environment: every test sets the same value.
    std::env::set_var("MASTODON_TOKEN", TOKEN);
    let mut settings = Settings::default();
    settings.source.kind = SourceKind::Mastodon;
    settings.source.mastodon.url = Some(fake.url());
    TestServer::start(settings).await
}

async fn connected(server: &TestServer, fake: &FakeMastodon) {
    let state = fake.state.clone();
    eventually("the streaming connection", || state.connections.open() == 1).await;
    let _ = server;
}

#[tokio::test]
async fn updates_arrive_as_plain_text_posts_mapped_field_by_field() {
    let fake = FakeMastodon::start(TOKEN).await;
    let server = mastodon_server(&fake).await;
    connected(&server, &fake).await;
    let mut by_link = Client::greeted(server.addr).await;
    by_link
        .search_accepted("theguardian.com/money/2019/dec/07/i-lost-my-193000-inheritance-with-one-wrong-digit-on-my-sort-code", "theguardian.com/money/2019/dec/07/i-lost-my-193000-inheritance-with-one-wrong-digit-on-my-sort-code")
        .await;
    let mut by_tag = Client::greeted(server.addr).await;
    by_tag
        .search_accepted("#musictuesday", "#musictuesday")
        .await;
    // The documentation's Status example: entities and a link cut in spans.
    let mut status = mastodon_status(
        "103270115826048975",
        "Gargron",
        r#"<p>&quot;I lost my inheritance with one wrong digit on my sort code&quot;</p><p><a href="https://www.theguardian.com/money/2019/dec/07/i-lost-my-193000-inheritance-with-one-wrong-digit-on-my-sort-code" rel="nofollow noopener noreferrer" target="_blank"><span class="invisible">https://www.</span><span class="ellipsis">theguardian.com/money/2019/dec</span><span class="invisible">/07/i-lost-my-193000-inheritance-with-one-wrong-digit-on-my-sort-code</span></a></p>"#,
    );
    status["account"]["display_name"] = json!("Eugen");
    status["tags"] =
        json!([{"name": "MUSICTUESDAY", "url": "https://mastodon.social/tags/MUSICTUESDAY"}]);
    fake.send(mastodon_update(&status));
    let post = by_link.posts(1).await.remove(0);
    assert_eq!(post.id, "103270115826048975");
    assert_eq!(post.name, "Eugen");
    assert_eq!(post.screen_name, "Gargron");
    assert_eq!(
        post.text,
        "\"I lost my inheritance with one wrong digit on my sort code\"\n\nhttps://www.theguardian.com/money/2019/dec/07/i-lost-my-193000-inheritance-with-one-wrong-digit-on-my-sort-code"
    );
    assert_eq!(
        post.user_profile_image,
        "https://files.mastodon.social/accounts/avatars/Gargron.jpg"
    );
    assert_eq!(
        post.url.as_deref(),
        Some("https://mastodon.social/@Gargron/103270115826048975")
    );
    assert_eq!(post.created_at, "2019-12-08T03:48:33.901Z");
    assert_eq!(post.lang.as_deref(), Some("en"));
    assert_eq!(post.source, "mastodon");
    assert_eq!(
        by_tag.posts(1).await[0].id,
        post.id,
        "the status's tags are matched"
    );
    let queries = fake.state.queries.lock().unwrap().clone();
    assert!(queries[0].contains(&("stream".into(), "public".into())));
    assert!(
        !queries[0].iter().any(|(k, _)| k == "access_token"),
        "the token goes in a header"
    );
    server.shut_down().await;
}

#[tokio::test]
async fn deletes_edits_and_broken_frames_are_let_go_and_the_stream_goes_on() {
    let fake = FakeMastodon::start(TOKEN).await;
    let server = mastodon_server(&fake).await;
    connected(&server, &fake).await;
    let mut client = Client::greeted(server.addr).await;
    client.search_accepted("toot", "toot").await;
    fake.send(json!({"stream": ["public"], "event": "delete", "payload": "106692867363994015"}));
    let mut edited = mastodon_status("2", "ada", "<p>toot edited</p>");
    edited["edited_at"] = json!("2022-11-15T16:10:43.000Z");
    fake.send(
        json!({"stream": ["public"], "event": "status.update", "payload": edited.to_string()}),
    );
    fake.send(json!({"stream": ["user"], "event": "filters_changed"}));
    fake.send_raw("{not json");
    fake.send(json!({"stream": ["public"], "event": "update", "payload": "{\"id\": 5}"}));
    let mut boost = mastodon_status("3", "bob", "<p>toot boosted</p>");
    boost["reblog"] = mastodon_status("1", "ada", "<p>toot original</p>");
    fake.send(mastodon_update(&boost));
    fake.send(mastodon_update(&mastodon_status(
        "4",
        "ada@mastodon.social",
        "<p>toot new</p>",
    )));
    assert_eq!(client.tweets(1).await, ["toot new"]);
    assert!(client
        .tweets_within(Duration::from_millis(600))
        .await
        .is_empty());
    assert_eq!(
        server
            .metric("twitter_search_source_bad_records_total")
            .await,
        2
    );
    assert_eq!(fake.state.connections.total(), 1);
    server.shut_down().await;
}

#[tokio::test]
async fn a_dropped_stream_reconnects_within_seconds() {
    let fake = FakeMastodon::start(TOKEN).await;
    let server = mastodon_server(&fake).await;
    connected(&server, &fake).await;
    let mut client = Client::greeted(server.addr).await;
    client.search_accepted("again", "again").await;
    fake.kick();
    let detail = client.upstream(UpstreamState::Reconnecting).await.unwrap();
    assert!(
        detail.contains("closed") || detail.contains("error"),
        "{detail}"
    );
    let started = std::time::Instant::now();
    client.upstream(UpstreamState::Connected).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    fake.send(mastodon_update(&mastodon_status(
        "9",
        "ada",
        "<p>again</p>",
    )));
    assert_eq!(client.tweets(1).await, ["again"]);
    let reconnects = server
        .metric_sum("twitter_search_source_reconnects_total{source=\"mastodon\"")
        .await;
    assert_eq!(reconnects, 1);
    server.shut_down().await;
}

#[tokio::test]
async fn without_a_streaming_host_the_instance_itself_is_used() {
    let fake = FakeMastodon::start(TOKEN).await;
    fake.set_streaming_host(None);
    let server = mastodon_server(&fake).await;
    connected(&server, &fake).await;
    server.shut_down().await;
}

#[tokio::test]
async fn a_refused_token_fails_upstream_without_showing_it_and_the_page_still_serves() {
    let fake = FakeMastodon::start("the-instance-wants-another-token").await;
    let server = mastodon_server(&fake).await;
    let mut client = Client::connect(server.addr).await;
    let mut frames = Vec::new();
    let detail = loop {
        let message = client.recv().await;
        frames.push(serde_json::to_string(&message).unwrap());
        if let twitter_search::wire::ServerMessage::Upstream {
            state: UpstreamState::Failed,
            detail,
        } = message
        {
            break detail.unwrap();
        }
    };
    assert!(
        detail.contains("MASTODON_TOKEN") && detail.contains("401"),
        "{detail}"
    );
    assert!(frames.iter().all(|f| !f.contains(TOKEN)));
    assert!(fake.state.refused.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    let (status, _) = server.get("/").await;
    assert!(
        status == 200 || status == 404,
        "the server still answers ({status})"
    );
    assert_eq!(server.health().await["upstream"], "failed");
    server.shut_down().await;
}

#[tokio::test]
async fn an_oversized_frame_is_refused_and_the_stream_comes_back() {
    let fake = FakeMastodon::start(TOKEN).await;
    let server = mastodon_server(&fake).await;
    connected(&server, &fake).await;
    let mut client = Client::greeted(server.addr).await;
    client.search_accepted("after", "after").await;
    fake.send_raw(&"x".repeat(2 * 1024 * 1024));
    let state = fake.state.clone();
    eventually("the reconnect", || {
        state.connections.total() == 2 && state.connections.open() == 1
    })
    .await;
    fake.send(mastodon_update(&mastodon_status(
        "10",
        "ada",
        "<p>after the storm</p>",
    )));
    assert_eq!(client.tweets(1).await, ["after the storm"]);
    assert_eq!(
        server
            .metric("twitter_search_source_bad_records_total")
            .await,
        1
    );
    let reconnects = server
        .metric("twitter_search_source_reconnects_total{source=\"mastodon\",reason=\"oversized\"}")
        .await;
    assert_eq!(reconnects, 1);
    server.shut_down().await;
}
