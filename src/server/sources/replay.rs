//! The replay source: posts from an NDJSON file, one post object per line,
//! emitted in order at a steady rate, optionally looping.

use std::path::PathBuf;

use tokio::fs::File;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};
use tracing::{info, warn};

use super::{Pacer, SourceError, SourceLink};
use crate::server::settings::SourceSettings;
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
    #[error("created_at {0:?} is not an RFC 3339 time")]
    BadTime(String),
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
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    if time::OffsetDateTime::parse(&tweet.created_at, rfc3339).is_err() {
        let mut shown: String = tweet.created_at.chars().take(40).collect();
        if shown.len() < tweet.created_at.len() {
            shown.push('…');
        }
        return Err(BadLine::BadTime(shown));
    }
    if tweet.source.is_empty() {
        tweet.source = "replay".to_owned();
    }
    Ok(tweet)
}

impl Replay {
    pub async fn open(settings: &SourceSettings) -> Result<Replay, SourceError> {
        let path = settings
            .replay_file
            .clone()
            .unwrap_or_else(|| PathBuf::from("replay.ndjson"));
        // Fail at start-up, not in a background task, when the file is missing.
        File::open(&path)
            .await
            .map_err(|source| SourceError::ReplayFile {
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
        let mut records = Records::new(BufReader::new(File::open(&self.path).await?));
        let mut good = 0u64;
        while let Some((line_number, parsed)) = records.next().await? {
            let tweet = match parsed {
                Ok(tweet) => tweet,
                Err(error) => {
                    link.metrics.source_bad_records.inc();
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

/// The numbered records of an NDJSON stream: each non-blank line, read
/// into a post or into the reason it could not be.
pub struct Records<R> {
    reader: R,
    buffer: Vec<u8>,
    line_number: u64,
}

impl<R: AsyncBufRead + Unpin> Records<R> {
    pub fn new(reader: R) -> Self {
        Records {
            reader,
            buffer: Vec::new(),
            line_number: 0,
        }
    }

    /// The next record with its 1-based line number; `None` at the end.
    pub async fn next(&mut self) -> std::io::Result<Option<(u64, Result<Tweet, BadLine>)>> {
        while let Some(too_long) =
            read_line_capped(&mut self.reader, &mut self.buffer, MAX_LINE_BYTES).await?
        {
            self.line_number += 1;
            let parsed = if too_long {
                Err(BadLine::TooLong)
            } else {
                match std::str::from_utf8(&self.buffer) {
                    Ok(line) if line.trim().is_empty() => continue,
                    Ok(line) => parse_line(line),
                    Err(_) => Err(BadLine::NotText),
                }
            };
            return Ok(Some((self.line_number, parsed)));
        }
        Ok(None)
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

    #[tokio::test]
    async fn bad_records_are_reported_with_their_line_numbers() {
        let good = r#"{"id":"1","name":"A","screen_name":"a","text":"hi","created_at":"2026-11-25T12:00:00Z"}"#;
        let mut input = format!("{good}\n{{broken\n\n");
        input.push_str(&"z".repeat(MAX_LINE_BYTES + 1));
        input.push('\n');
        let mut bytes = input.into_bytes();
        bytes.extend_from_slice(b"\xff\xfe\n");
        bytes.extend_from_slice(good.as_bytes());
        let mut records = Records::new(BufReader::new(&bytes[..]));
        let mut seen = Vec::new();
        while let Some((line, parsed)) = records.next().await.unwrap() {
            seen.push((line, parsed.map(|t| t.id).map_err(|e| e.to_string())));
        }
        let lines: Vec<u64> = seen.iter().map(|(line, _)| *line).collect();
        assert_eq!(
            lines,
            [1, 2, 4, 5, 6],
            "blank line 3 is neither a post nor an error"
        );
        assert_eq!(seen[0].1, Ok("1".to_owned()));
        assert!(seen[1].1.as_ref().unwrap_err().starts_with("not a post"));
        assert!(seen[2].1.as_ref().unwrap_err().contains("longer than"));
        assert!(seen[3].1.as_ref().unwrap_err().contains("UTF-8"));
        assert_eq!(seen[4].1, Ok("1".to_owned()));
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
        for time in ["t", "2026-11-25", "Mon Nov 25 12:00:00 +0000 2026", ""] {
            let line = format!(
                r#"{{"id":"1","name":"A","screen_name":"a","text":"x","created_at":"{time}"}}"#
            );
            assert!(
                matches!(parse_line(&line), Err(BadLine::BadTime(_))),
                "{time}"
            );
        }
    }
}
