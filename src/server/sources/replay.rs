//! The replay source: posts from an NDJSON file, one post object per line,
//! emitted in order at a steady rate, optionally looping.

use std::path::PathBuf;

use tokio::fs::File;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};
use tracing::{info, warn};

use super::{Pacer, SourceLink};
use crate::server::metrics::Metrics;
use crate::server::settings::SourceSettings;
use crate::server::ServerError;
use crate::wire::{Tweet, UpstreamState};

/// Posts per second when `--rate` is not given.
pub const DEFAULT_RATE: f64 = 10.0;

/// Longest line read; a longer one is counted as bad and skipped, so one
/// broken line cannot take the server's memory.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

pub struct Replay {
    path: PathBuf,
    rate: f64,
    loop_replay: bool,
}

/// Why one line of the file was skipped.
#[derive(Debug, thiserror::Error)]
pub enum BadLine {
    #[error("not a post: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the post has an empty id")]
    EmptyId,
    #[error("the line is longer than {MAX_LINE_BYTES} bytes")]
    TooLong,
    #[error("the line is not UTF-8 text")]
    NotText,
}

/// Reads one line of a replay file into a post.
pub fn parse_line(line: &str) -> Result<Tweet, BadLine> {
    let mut tweet: Tweet = serde_json::from_str(line)?;
    if tweet.id.trim().is_empty() {
        return Err(BadLine::EmptyId);
    }
    if tweet.source.is_empty() {
        tweet.source = "replay".to_owned();
    }
    Ok(tweet)
}

impl Replay {
    pub async fn open(settings: &SourceSettings) -> Result<Replay, ServerError> {
        let path = settings
            .replay_file
            .clone()
            .unwrap_or_else(|| PathBuf::from("replay.ndjson"));
        // Fail at start-up, not in a background task, when the file is missing.
        File::open(&path)
            .await
            .map_err(|source| ServerError::ReplayFile {
                path: path.clone(),
                source,
            })?;
        Ok(Replay {
            path,
            rate: settings.rate.unwrap_or(DEFAULT_RATE),
            loop_replay: settings.loop_replay,
        })
    }

    pub async fn run(self, link: SourceLink) {
        let file = self.path.display().to_string();
        info!(%file, rate = self.rate, looping = self.loop_replay, "replay source started");
        link.set_status(UpstreamState::Connected, None);
        let mut pacer = Pacer::new(self.rate);
        loop {
            let good = match self.play_once(&link, &mut pacer).await {
                Ok(Some(good)) => good,
                Ok(None) => return,
                Err(error) => {
                    warn!(%file, %error, "replay file unreadable");
                    link.set_status(
                        UpstreamState::Failed,
                        Some(format!("cannot read the replay file: {error}")),
                    );
                    return;
                }
            };
            if !self.loop_replay {
                info!(%file, posts = good, "replay finished");
                link.set_status(
                    UpstreamState::Connected,
                    Some(format!("replay finished after {good} posts")),
                );
                return;
            }
            if good == 0 {
                warn!(%file, "replay file holds no readable post; not looping");
                link.set_status(
                    UpstreamState::Failed,
                    Some("the replay file holds no readable post".to_owned()),
                );
                return;
            }
        }
    }

    /// Plays the file once; `Ok(None)` when the server is stopping,
    /// otherwise the number of posts emitted.
    async fn play_once(
        &self,
        link: &SourceLink,
        pacer: &mut Pacer,
    ) -> std::io::Result<Option<u64>> {
        let mut reader = BufReader::new(File::open(&self.path).await?);
        let mut buffer = Vec::new();
        let mut line_number = 0u64;
        let mut good = 0u64;
        while let Some(too_long) =
            read_line_capped(&mut reader, &mut buffer, MAX_LINE_BYTES).await?
        {
            line_number += 1;
            let parsed = if too_long {
                Err(BadLine::TooLong)
            } else {
                match std::str::from_utf8(&buffer) {
                    Ok(line) if line.trim().is_empty() => continue,
                    Ok(line) => parse_line(line),
                    Err(_) => Err(BadLine::NotText),
                }
            };
            let tweet = match parsed {
                Ok(tweet) => tweet,
                Err(error) => {
                    Metrics::inc(&link.metrics.source_bad_records);
                    warn!(file = %self.path.display(), line = line_number, %error, "skipping bad replay line");
                    continue;
                }
            };
            if !pacer.wait(&link.shutdown).await || !link.emit(tweet).await {
                return Ok(None);
            }
            good += 1;
        }
        Ok(Some(good))
    }
}

/// Reads the next line (without its end) into `line`, keeping at most
/// `max` bytes: a longer line is read to its end and thrown away. Returns
/// `None` at the end of the input, else whether the line was too long.
pub async fn read_line_capped<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<bool>> {
    line.clear();
    let mut too_long = false;
    let mut read_any = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(read_any.then_some(too_long));
        }
        read_any = true;
        let (chunk, used, ends) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (&available[..end], end + 1, true),
            None => (available, available.len(), false),
        };
        if !too_long {
            if line.len() + chunk.len() > max {
                too_long = true;
                line.clear();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        reader.consume(used);
        if ends {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Some(too_long));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn long_lines_are_skipped_without_losing_the_next_ones() {
        let input = format!("short\r\n{}\nafter\nlast", "x".repeat(100));
        let mut reader = BufReader::with_capacity(8, input.as_bytes());
        let mut line = Vec::new();
        let mut seen = Vec::new();
        while let Some(too_long) = read_line_capped(&mut reader, &mut line, 50).await.unwrap() {
            seen.push((String::from_utf8(line.clone()).unwrap(), too_long));
        }
        assert_eq!(
            seen,
            [
                ("short".to_owned(), false),
                (String::new(), true),
                ("after".to_owned(), false),
                ("last".to_owned(), false)
            ]
        );
    }

    #[test]
    fn parses_protocol_posts_and_fills_in_the_source() {
        let tweet = parse_line(r#"{"id":"1","name":"Ada","screen_name":"ada","text":"hi","created_at":"2026-11-25T12:00:00Z"}"#).unwrap();
        assert_eq!(tweet.source, "replay");
        assert!(matches!(parse_line("{not json"), Err(BadLine::Json(_))));
        assert!(matches!(
            parse_line(r#"{"id":" ","name":"A","screen_name":"a","text":"x","created_at":"t"}"#),
            Err(BadLine::EmptyId)
        ));
    }
}
