//! `--record FILE`: every post received, from any source, appended to an
//! NDJSON replay file, so live traffic can be captured and played back with
//! `--source replay`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::warn;

use super::SourceError;
use crate::wire::Tweet;

/// Lines waiting for the writer; past this the source waits for the disk
/// rather than dropping a post.
const RECORD_QUEUE: usize = 4096;

/// How long a written line may sit in the buffer before it reaches the file.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// The source side of the recorder: cheap to hold, one line per post.
#[derive(Clone, Debug)]
pub struct Recorder {
    /// Receiver: the writer task. Bounded; a full queue makes `record` wait.
    /// When every sender is dropped the writer flushes and ends.
    lines: mpsc::Sender<String>,
}

impl Recorder {
    /// Opens (or creates) `path` for appending and starts its writer. The
    /// handle ends once every [`Recorder`] is dropped and the file is flushed.
    pub async fn open(path: &Path) -> Result<(Recorder, JoinHandle<()>), SourceError> {
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await
            .map_err(|source| SourceError::RecordFile {
                path: path.to_owned(),
                source,
            })?;
        let (lines, receiver) = mpsc::channel(RECORD_QUEUE);
        let writer = tokio::spawn(write_lines(path.to_owned(), file, receiver));
        Ok((Recorder { lines }, writer))
    }

    /// Queues one post as a line of the replay file.
    pub async fn record(&self, tweet: &Tweet) {
        let mut line = match serde_json::to_string(tweet) {
            Ok(line) => line,
            Err(error) => {
                warn!(%error, "cannot record a post");
                return;
            }
        };
        line.push('\n');
        // The writer only goes away after a write error it has logged.
        let _ = self.lines.send(line).await;
    }
}

async fn write_lines(path: PathBuf, file: tokio::fs::File, mut lines: mpsc::Receiver<String>) {
    let mut out = BufWriter::new(file);
    let mut dirty = false;
    loop {
        let next = if dirty {
            match tokio::time::timeout(FLUSH_EVERY, lines.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    if let Err(error) = out.flush().await {
                        warn!(path = %path.display(), %error, "cannot write the record file; recording stops");
                        return;
                    }
                    dirty = false;
                    continue;
                }
            }
        } else {
            lines.recv().await
        };
        let Some(line) = next else {
            break;
        };
        if let Err(error) = out.write_all(line.as_bytes()).await {
            warn!(path = %path.display(), %error, "cannot write the record file; recording stops");
            return;
        }
        dirty = true;
    }
    if let Err(error) = out.flush().await {
        warn!(path = %path.display(), %error, "cannot flush the record file");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::sources::replay::parse_line;

    #[tokio::test]
    async fn recorded_posts_replay_as_they_were_and_appends_keep_old_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.ndjson");
        std::fs::write(&path, "").unwrap();
        let tweet = Tweet {
            id: "42".into(),
            name: "Ada \"A\"".into(),
            screen_name: "ada".into(),
            text: "line\nbreak <b>".into(),
            created_at: "2026-11-25T12:00:00Z".into(),
            source: "bluesky".into(),
            links: vec![crate::wire::PostLink {
                url: "https://example.com/x".into(),
                start: 0,
                end: 4,
            }],
            ..Default::default()
        };
        for _ in 0..2 {
            let (recorder, writer) = Recorder::open(&path).await.unwrap();
            recorder.record(&tweet).await;
            drop(recorder);
            writer.await.unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(parse_line(lines[1]).unwrap(), tweet);
    }

    #[tokio::test]
    async fn an_unwritable_path_is_refused_with_its_name() {
        let error = Recorder::open(Path::new("/nonexistent-dir/x.ndjson"))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("/nonexistent-dir/x.ndjson"));
    }
}
