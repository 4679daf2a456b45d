//! The `twitter-search` binary itself: flags, start-up errors, signals.

#![cfg(all(feature = "ssr", unix))]

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::{post_line, Client};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

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
