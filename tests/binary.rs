//! The `twitter-search` binary itself: flags, start-up errors, signals.

#![cfg(all(feature = "ssr", unix))]

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::fakes::{mastodon_status, mastodon_update, x_post, FakeMastodon, FakeX};
use support::{post_line, Client};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use twitter_search::wire::{ServerMessage, UpstreamState};

const BIN: &str = env!("CARGO_BIN_EXE_twitter-search");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn unknown_source_is_refused_with_usage() {
    let output = Command::new(BIN)
        .args(["--source", "myspace"])
        .env_remove("TWITTER_SEARCH_SOURCE")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("myspace") && stderr.contains("demo"),
        "{stderr}"
    );
}

#[test]
fn replay_without_a_file_says_which_flag_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .args(["--source", "replay"])
        .current_dir(dir.path())
        .env_remove("TWITTER_SEARCH_REPLAY_FILE")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--replay-file"), "{stderr}");
}

#[tokio::test]
async fn sigterm_closes_sockets_with_1001_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("posts.ndjson");
    std::fs::write(&file, post_line(1, "hello") + "\n").unwrap();
    let port = free_port();
    let mut child = tokio::process::Command::new(BIN)
        .args(["--source", "replay", "--loop", "--addr"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--replay-file")
        .arg(&file)
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut tries = 0;
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        tries += 1;
        assert!(tries < 100, "the server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut client = Client::greeted(addr).await;
    let pid = child.id().unwrap().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    assert_eq!(client.closed().await, Some(CloseCode::Away));
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the server exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
}

/// A server binary whose output is read as it comes (a full pipe would
/// stall it).
struct Logged {
    child: tokio::process::Child,
    output: tokio::task::JoinHandle<String>,
}

/// Starts the binary with `args` and `env`, logging at debug level; returns
/// it and its address once it listens.
async fn start_logged(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Logged, std::net::SocketAddr) {
    let mut command = tokio::process::Command::new(BIN);
    // Port 0, and the address read from the server's own log: a port picked
    // in advance can be taken by a test running beside this one.
    command
        .args(args)
        .args(["--addr", "127.0.0.1:0"])
        .current_dir(dir)
        .env("RUST_LOG", "debug")
        .env("NO_COLOR", "1")
        .env_remove("X_BEARER_TOKEN")
        .env_remove("MASTODON_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (listening, address) = tokio::sync::oneshot::channel();
    let output = tokio::spawn(async move {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt};
        let mut listening = Some(listening);
        let mut text = String::new();
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(addr) = support::serving_addr(&line) {
                if let Some(listening) = listening.take() {
                    let _ = listening.send(addr);
                }
            }
            text.push_str(&line);
            text.push('\n');
        }
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out).await;
        text + &out
    });
    let addr = tokio::time::timeout(Duration::from_secs(10), address)
        .await
        .expect("the server starts")
        .expect("the server logs its address");
    (Logged { child, output }, addr)
}

/// Stops the server with SIGTERM and returns everything it wrote.
async fn stop_and_read(mut logged: Logged) -> String {
    let pid = logged.child.id().unwrap().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    tokio::time::timeout(Duration::from_secs(10), logged.child.wait())
        .await
        .expect("the server exits after SIGTERM")
        .unwrap();
    logged.output.await.unwrap()
}

/// Every frame a browser gets until `until` holds for one, as JSON text.
async fn frames_until(client: &mut Client, until: impl Fn(&ServerMessage) -> bool) -> Vec<String> {
    let mut frames = Vec::new();
    loop {
        let message = client.recv().await;
        frames.push(serde_json::to_string(&message).unwrap());
        if until(&message) {
            return frames;
        }
    }
}

/// True for the `upstream` message that says the source failed.
fn source_failed(message: &ServerMessage) -> bool {
    matches!(
        message,
        ServerMessage::Upstream {
            state: UpstreamState::Failed,
            ..
        }
    )
}

/// Runs the binary with `args` and `env` until its browsers are told the
/// source failed; returns every frame a browser got, and the logs.
async fn until_failed(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Vec<String>, String) {
    let (child, addr) = start_logged(dir, args, env).await;
    let mut client = Client::connect(addr).await;
    let frames = frames_until(&mut client, source_failed).await;
    (frames, stop_and_read(child).await)
}

#[tokio::test]
async fn tokens_never_reach_a_log_line_an_error_or_a_browser() {
    const X_TOKEN: &str = "XTOKEN-recognisable-3b1f9e";
    const MASTODON_TOKEN: &str = "MTOKEN-recognisable-8c2d71";
    let dir = tempfile::tempdir().unwrap();
    // X, accepted: rules, stream and a post.
    let x = FakeX::start(X_TOKEN).await;
    let (child, addr) = start_logged(
        dir.path(),
        &["--source", "x", "--x-api-url", &x.url()],
        &[("X_BEARER_TOKEN", X_TOKEN)],
    )
    .await;
    let mut client = Client::connect(addr).await;
    client.search("secret").await;
    let is_accepted = |m: &ServerMessage| matches!(m, ServerMessage::UpdatedTerm { .. });
    let mut frames = frames_until(&mut client, is_accepted).await;
    let state = x.state.clone();
    support::eventually("the X stream", || state.connections.open() == 1).await;
    let rule = x.rule_id("secret").unwrap();
    assert!(x.send(&format!(
        "{}\r\n",
        x_post("1", "a secret post", "ada", &[&rule])
    )));
    frames.extend(frames_until(&mut client, |m| matches!(m, ServerMessage::Tweets { .. })).await);
    let mut logs = stop_and_read(child).await;
    assert!(
        logs.contains("connected to the X filtered stream"),
        "debug logs were captured"
    );

    // X, refused: the error paths.
    let refusing_x = FakeX::start("another-token").await;
    let (more_frames, more_logs) = until_failed(
        dir.path(),
        &["--source", "x", "--x-api-url", &refusing_x.url()],
        &[("X_BEARER_TOKEN", X_TOKEN)],
    )
    .await;
    frames.extend(more_frames);
    logs.push_str(&more_logs);

    // Mastodon, accepted then refused.
    let mastodon = FakeMastodon::start(MASTODON_TOKEN).await;
    let (child, addr) = start_logged(
        dir.path(),
        &["--source", "mastodon", "--mastodon-url", &mastodon.url()],
        &[("MASTODON_TOKEN", MASTODON_TOKEN)],
    )
    .await;
    let mut client = Client::connect(addr).await;
    client.search("secret").await;
    frames.extend(frames_until(&mut client, is_accepted).await);
    let state = mastodon.state.clone();
    support::eventually("the Mastodon stream", || state.connections.open() == 1).await;
    mastodon.send(mastodon_update(&mastodon_status(
        "1",
        "ada",
        "<p>a secret toot</p>",
    )));
    frames.extend(frames_until(&mut client, |m| matches!(m, ServerMessage::Tweets { .. })).await);
    logs.push_str(&stop_and_read(child).await);
    let refusing_mastodon = FakeMastodon::start("another-token").await;
    let url = refusing_mastodon.url();
    let (more_frames, more_logs) = until_failed(
        dir.path(),
        &["--source", "mastodon", "--mastodon-url", &url],
        &[("MASTODON_TOKEN", MASTODON_TOKEN)],
    )
    .await;
    frames.extend(more_frames);
    logs.push_str(&more_logs);

    assert!(logs.contains("401"), "the refusals were logged");
    for token in [X_TOKEN, MASTODON_TOKEN] {
        assert!(!logs.contains(token), "a log line shows {token}");
        assert!(
            frames.iter().all(|f| !f.contains(token)),
            "a frame shows {token}"
        );
        // Nor any recognisable part of it.
        assert!(!logs.contains(&token[..12]));
    }
}

#[tokio::test]
async fn a_missing_token_leaves_the_page_up_and_tells_browsers_why() {
    let dir = tempfile::tempdir().unwrap();
    for (source, flag, url, var) in [
        ("x", "--x-api-url", "http://127.0.0.1:9", "X_BEARER_TOKEN"),
        (
            "mastodon",
            "--mastodon-url",
            "http://127.0.0.1:9",
            "MASTODON_TOKEN",
        ),
    ] {
        let (child, addr) = start_logged(dir.path(), &["--source", source, flag, url], &[]).await;
        let mut client = Client::connect(addr).await;
        let frames = frames_until(&mut client, source_failed).await;
        assert!(frames.last().unwrap().contains(var), "{frames:?}");
        let health = tokio::net::TcpStream::connect(addr).await;
        assert!(health.is_ok(), "still serving");
        stop_and_read(child).await;
    }
}
