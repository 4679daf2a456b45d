//! The `mastodon` source: an instance's public timeline through its
//! streaming API (`/api/v1/streaming?stream=public`), with a user token
//! from `MASTODON_TOKEN` (public streams need one since Mastodon 4.2).
//!
//! - The streaming host is asked of the instance (`GET /api/v2/instance`,
//!   `configuration.urls.streaming`); `--mastodon-url` is the fallback.
//! - Each event's `payload` is a Status as a JSON string (read twice).
//!   `update` is a new post; `delete`, `status.update` (an edit) and other
//!   events are let go. Boosts are not new posts either.
//! - `content` is HTML: it is read with an HTML tokenizer into plain text
//!   ([`html_to_text`]): entities decoded, paragraphs and line breaks keep
//!   words apart, links keep their full address (Mastodon hides part of a
//!   long one in invisible spans) and mentions show the full `user@host`.
//! - Reconnects use a jittered exponential backoff, the first within 2 s.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use html5gum::{Token, Tokenizer};
use serde::Deserialize;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tracing::{info, warn};

use super::backoff::{describe, Backoff, Growth};
use super::normalize::{to_tweet, RawPost};
use super::{
    check_url, connect_ws, describe_http_error, http_client, read_body_capped, Secret, SourceError,
    SourceLink, UpstreamSocket,
};
use crate::server::settings::SourceSettings;
use crate::wire::{Tweet, UpstreamState};

/// The environment variable holding the user token.
pub const TOKEN_VAR: &str = "MASTODON_TOKEN";

/// Largest event read; larger ones are refused without being buffered.
const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// Largest `/api/v2/instance` answer read.
const MAX_INSTANCE_BODY: usize = 1024 * 1024;

/// Mastodon pings every 30 s; after this long with nothing at all, the
/// connection is taken for dead.
const STALL: Duration = Duration::from_secs(90);

pub struct Mastodon {
    instance: reqwest::Url,
    stream: String,
    token: Option<Secret>,
    http: reqwest::Client,
}

impl Mastodon {
    pub fn open(settings: &SourceSettings) -> Result<Mastodon, SourceError> {
        let url = settings
            .mastodon
            .url
            .as_deref()
            .ok_or(SourceError::MastodonUrlMissing)?;
        Ok(Mastodon {
            instance: check_url("--mastodon-url", url, &["http", "https"], "http(s)")?,
            stream: settings.mastodon.stream.clone(),
            token: Secret::from_env(TOKEN_VAR),
            http: http_client()?,
        })
    }

    pub async fn run(self, link: SourceLink) {
        info!(instance = %self.instance, stream = %self.stream, "mastodon source started");
        let Some(authorization) = self.token.as_ref().and_then(Secret::bearer_header) else {
            let detail = format!(
                "{TOKEN_VAR} is not set: public timelines need a user token with the read:statuses scope"
            );
            warn!("{detail}");
            link.set_status(UpstreamState::Failed, Some(detail));
            return;
        };
        let mut backoff = Backoff::new(
            Duration::from_secs(2),
            Growth::Doubling,
            Duration::from_secs(120),
        )
        .with_jitter();
        loop {
            let url = self.streaming_url().await;
            let (label, reason, refused) =
                match connect_ws("the Mastodon streaming API", &url, Some(authorization.clone()), MAX_EVENT_BYTES).await {
                    Ok(socket) => {
                        link.set_status(UpstreamState::Connected, None);
                        info!(%url, "connected to the Mastodon streaming API");
                        match stream(socket, &link).await {
                            Ended::Shutdown => return,
                            Ended::Failed { label, reason, heard } => {
                                if heard {
                                    backoff.reset();
                                }
                                (label, reason, false)
                            }
                        }
                    }
                    Err(error) if matches!(error.status, Some(401 | 403)) => (
                        "refused",
                        format!("the instance refused {TOKEN_VAR} (HTTP {}): it must be a user token with the read:statuses scope", error.status.unwrap_or(401)),
                        true,
                    ),
                    Err(error) => ("connect", error.message, false),
                };
            let delay = backoff.next_delay();
            warn!(%reason, retry_in = ?delay, "Mastodon stream lost");
            link.count_reconnect(label);
            let state = if refused {
                UpstreamState::Failed
            } else {
                UpstreamState::Reconnecting
            };
            link.set_status(
                state,
                Some(format!("{reason}; trying again in {}", describe(delay))),
            );
            if !link.sleep(delay).await {
                return;
            }
        }
    }

    /// The streaming endpoint: on the host the instance names, else on the
    /// instance's own host.
    async fn streaming_url(&self) -> reqwest::Url {
        let base = match self.ask_streaming_host().await {
            Ok(Some(host)) => host,
            Ok(None) => self.instance.clone(),
            Err(error) => {
                warn!(%error, "cannot ask the instance for its streaming host; using the instance's own");
                self.instance.clone()
            }
        };
        streaming_endpoint(&base, &self.stream)
    }

    async fn ask_streaming_host(&self) -> Result<Option<reqwest::Url>, String> {
        #[derive(Deserialize)]
        struct Instance {
            configuration: Option<Configuration>,
        }
        #[derive(Deserialize)]
        struct Configuration {
            urls: Option<Urls>,
        }
        #[derive(Deserialize)]
        struct Urls {
            streaming: Option<String>,
        }
        let mut url = self.instance.clone();
        url.set_path(&format!(
            "{}/api/v2/instance",
            url.path().trim_end_matches('/')
        ));
        let response = tokio::time::timeout(Duration::from_secs(10), self.http.get(url).send())
            .await
            .map_err(|_| "timed out".to_owned())?
            .map_err(|e| describe_http_error(&e))?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        let body = read_body_capped(response, MAX_INSTANCE_BODY).await?;
        let instance: Instance =
            serde_json::from_slice(&body).map_err(|e| format!("the answer does not parse: {e}"))?;
        let streaming = instance
            .configuration
            .and_then(|c| c.urls)
            .and_then(|u| u.streaming)
            .filter(|s| !s.trim().is_empty());
        match streaming {
            None => Ok(None),
            Some(s) => check_url(
                "configuration.urls.streaming",
                &s,
                &["ws", "wss", "http", "https"],
                "ws(s)",
            )
            .map(Some)
            .map_err(|e| e.to_string()),
        }
    }
}

/// `<base>/api/v1/streaming?stream=<stream>` with a WebSocket scheme.
fn streaming_endpoint(base: &reqwest::Url, stream: &str) -> reqwest::Url {
    let mut url = base.clone();
    let scheme = match url.scheme() {
        "https" | "wss" => "wss",
        _ => "ws",
    };
    // Switching between special schemes always succeeds.
    let _ = url.set_scheme(scheme);
    url.set_path(&format!(
        "{}/api/v1/streaming",
        url.path().trim_end_matches('/')
    ));
    url.set_query(None);
    url.query_pairs_mut().append_pair("stream", stream);
    url
}

enum Ended {
    Shutdown,
    Failed {
        label: &'static str,
        reason: String,
        /// Something came through before the end: the backoff starts over.
        heard: bool,
    },
}

async fn stream(mut socket: UpstreamSocket, link: &SourceLink) -> Ended {
    let mut last_heard = Instant::now();
    let mut heard = false;
    let failed = |label, reason, heard| Ended::Failed {
        label,
        reason,
        heard,
    };
    loop {
        tokio::select! {
            _ = link.shutdown.cancelled() => {
                let _ = socket.close(None).await;
                return Ended::Shutdown;
            }
            _ = tokio::time::sleep_until(last_heard + STALL) => {
                return failed("stall", format!("nothing from the streaming API for {} s", STALL.as_secs()), heard);
            }
            frame = socket.next() => {
                last_heard = Instant::now();
                match frame {
                    None => return failed("closed", "the streaming API closed the connection".to_owned(), heard),
                    Some(Err(tokio_tungstenite::tungstenite::Error::Capacity(error))) => {
                        link.bad_record(&format!("an event over {MAX_EVENT_BYTES} bytes was refused: {error}"));
                        return failed("oversized", "the streaming API sent an oversized event".to_owned(), heard);
                    }
                    Some(Err(error)) => return failed("network", format!("streaming connection error: {error}"), heard),
                    Some(Ok(Message::Text(text))) => {
                        heard = true;
                        match read_event(text.as_str()) {
                            Ok(Some(tweet)) => {
                                if !link.emit(tweet).await {
                                    return Ended::Shutdown;
                                }
                            }
                            Ok(None) => {}
                            Err(EventError::Server(message)) => {
                                warn!(%message, "the streaming API reported an error");
                            }
                            Err(EventError::Malformed(error)) => link.bad_record(&error),
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        let why = frame.map(|f| format!(" ({} {})", u16::from(f.code), f.reason)).unwrap_or_default();
                        return failed("closed", format!("the streaming API closed the connection{why}"), heard);
                    }
                    Some(Ok(Message::Binary(_))) => link.bad_record(&"a binary frame (the streaming API sends text only)"),
                    Some(Ok(_)) => {
                        // Pings are answered by the WebSocket layer; they prove the link is alive.
                        if socket.flush().await.is_err() {
                            return failed("network", "cannot answer the streaming API's ping".to_owned(), heard);
                        }
                    }
                }
            }
        }
    }
}

#[derive(Debug)]
enum EventError {
    /// The server's own `{"error": ...}` frame.
    Server(String),
    Malformed(String),
}

#[derive(Deserialize)]
struct Event {
    event: Option<String>,
    payload: Option<String>,
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Status {
    id: String,
    uri: Option<String>,
    url: Option<String>,
    created_at: Option<String>,
    #[serde(default)]
    content: String,
    #[serde(default)]
    spoiler_text: String,
    language: Option<String>,
    account: Account,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    mentions: Vec<Mention>,
    reblog: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Account {
    username: String,
    acct: Option<String>,
    display_name: Option<String>,
    avatar: Option<String>,
}

#[derive(Deserialize)]
struct Tag {
    name: String,
}

#[derive(Deserialize)]
struct Mention {
    url: String,
    acct: String,
}

/// One streaming frame: a new post, nothing (another event), or why not.
fn read_event(text: &str) -> Result<Option<Tweet>, EventError> {
    let event: Event = serde_json::from_str(text).map_err(|e| {
        EventError::Malformed(format!("a streaming event that does not parse: {e}"))
    })?;
    if let Some(error) = event.error {
        return Err(EventError::Server(match error {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        }));
    }
    if event.event.as_deref() != Some("update") {
        // delete, status.update (an edit, not a new post), and the rest.
        return Ok(None);
    }
    let payload = event
        .payload
        .ok_or_else(|| EventError::Malformed("an update without its payload".to_owned()))?;
    let status: Status = serde_json::from_str(&payload).map_err(|e| {
        EventError::Malformed(format!("an update whose Status does not parse: {e}"))
    })?;
    if status.reblog.as_ref().is_some_and(|r| !r.is_null()) {
        // A boost shows an older post again; it is not a new one.
        return Ok(None);
    }
    Ok(Some(status_to_tweet(status)))
}

fn status_to_tweet(status: Status) -> Tweet {
    let mentions: Vec<(&str, &str)> = status
        .mentions
        .iter()
        .map(|m| (m.url.as_str(), m.acct.as_str()))
        .collect();
    let content = html_to_text(&status.content, &mentions);
    let spoiler = status.spoiler_text.trim();
    let text = if spoiler.is_empty() {
        content
    } else {
        format!("{spoiler}\n\n{content}")
    };
    let account = &status.account;
    let handle = account
        .acct
        .as_deref()
        .filter(|a| !a.is_empty())
        .unwrap_or(&account.username);
    to_tweet(
        "mastodon",
        RawPost {
            id: status.id,
            name: account.display_name.as_deref().unwrap_or(""),
            handle,
            text,
            avatar: account.avatar.as_deref(),
            url: status.url.or(status.uri),
            created_at: status.created_at.as_deref(),
            fallback_time: None,
            lang: status.language.as_deref(),
            links: Vec::new(),
            tags: status.tags.into_iter().map(|t| t.name).collect(),
        },
    )
}

/// Mastodon's sanitised HTML as plain text.
///
/// Text and entities are kept as text; `<br>` and list items start a line,
/// paragraphs and block quotes are separated by a blank line; a link's text
/// keeps the parts Mastodon hides (`<span class="invisible">`), so a long
/// link reads as its full address; a mention link whose address is in
/// `mentions` (`(url, acct)`) reads `@user@host`.
pub fn html_to_text(html: &str, mentions: &[(&str, &str)]) -> String {
    let mut out = String::new();
    // Inside a mention link rewritten from `mentions`: its own text is skipped.
    let mut skipping_mention = false;
    for token in Tokenizer::new(html).flatten() {
        match token {
            Token::StartTag(tag) => {
                let name = String::from_utf8_lossy(&tag.name).to_ascii_lowercase();
                match name.as_str() {
                    "br" => out.push('\n'),
                    "p" | "blockquote" | "pre" | "ul" | "ol" => paragraph_break(&mut out),
                    "li" => line_break(&mut out),
                    "a" => {
                        let attribute = |key: &str| {
                            tag.attributes
                                .get(key.as_bytes())
                                .map(|v| String::from_utf8_lossy(&v.value).into_owned())
                        };
                        let class = attribute("class").unwrap_or_default();
                        let is_mention = class.split_whitespace().any(|c| c == "mention")
                            && !class.split_whitespace().any(|c| c == "hashtag");
                        if is_mention {
                            if let Some(href) = attribute("href") {
                                if let Some((_, acct)) =
                                    mentions.iter().find(|(url, _)| *url == href)
                                {
                                    out.push('@');
                                    out.push_str(acct);
                                    skipping_mention = true;
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
            Token::EndTag(tag) => {
                let name = String::from_utf8_lossy(&tag.name).to_ascii_lowercase();
                match name.as_str() {
                    "a" => skipping_mention = false,
                    "p" | "blockquote" | "pre" | "ul" | "ol" => paragraph_break(&mut out),
                    _ => {}
                }
            }
            Token::String(text) if !skipping_mention => {
                out.push_str(&String::from_utf8_lossy(&text.value));
            }
            _ => {}
        }
    }
    out.trim().to_owned()
}

fn line_break(out: &mut String) {
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
}

fn paragraph_break(out: &mut String) {
    if out.is_empty() || out.ends_with("\n\n") {
        return;
    }
    while out.ends_with(' ') {
        out.pop();
    }
    out.push_str(if out.ends_with('\n') { "\n" } else { "\n\n" });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The content of the Status example in Mastodon's documentation
    /// (entities/Status.md): entities, and a long link cut with spans.
    const GUARDIAN: &str = r#"<p>&quot;I lost my inheritance with one wrong digit on my sort code&quot;</p><p><a href="https://www.theguardian.com/money/2019/dec/07/i-lost-my-193000-inheritance-with-one-wrong-digit-on-my-sort-code" rel="nofollow noopener noreferrer" target="_blank"><span class="invisible">https://www.</span><span class="ellipsis">theguardian.com/money/2019/dec</span><span class="invisible">/07/i-lost-my-193000-inheritance-with-one-wrong-digit-on-my-sort-code</span></a></p>"#;

    #[test]
    fn html_becomes_text_with_full_links_and_decoded_entities() {
        assert_eq!(
            html_to_text(GUARDIAN, &[]),
            "\"I lost my inheritance with one wrong digit on my sort code\"\n\nhttps://www.theguardian.com/money/2019/dec/07/i-lost-my-193000-inheritance-with-one-wrong-digit-on-my-sort-code"
        );
    }

    #[test]
    fn paragraphs_and_breaks_keep_words_apart() {
        assert_eq!(
            html_to_text("<p>one</p><p>two<br>three<br/>four</p>", &[]),
            "one\n\ntwo\nthree\nfour"
        );
        assert_eq!(
            html_to_text("bare &amp; text &#39;ok&#39; &lt;b&gt;", &[]),
            "bare & text 'ok' <b>"
        );
        assert_eq!(html_to_text("<ul><li>a</li><li>b</li></ul>", &[]), "a\nb");
    }

    #[test]
    fn mentions_show_the_full_account_and_hashtags_stay_tags() {
        let html = r#"<span class="h-card"><a class="u-url mention" href="https://pl.nulled.red/users/disarray" rel="nofollow noopener noreferrer" target="_blank">@<span>disarray</span></a></span> glad i was able to help <a href="https://ruby.social/tags/piano" class="mention hashtag" rel="nofollow noopener noreferrer" target="_blank">#<span>piano</span></a>"#;
        let text = html_to_text(
            html,
            &[(
                "https://pl.nulled.red/users/disarray",
                "disarray@pl.nulled.red",
            )],
        );
        assert_eq!(
            text,
            "@disarray@pl.nulled.red glad i was able to help #piano"
        );
        // Without its entry in `mentions`, the link's own text stays.
        assert_eq!(
            html_to_text(html, &[]),
            "@disarray glad i was able to help #piano"
        );
    }

    #[test]
    fn script_in_content_stays_text() {
        let text = html_to_text("<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>", &[]);
        assert_eq!(text, "<script>alert(1)</script>");
    }

    #[test]
    fn an_update_event_maps_every_field() {
        let status = serde_json::json!({
            "id": "103270115826048975",
            "created_at": "2019-12-08T03:48:33.901Z",
            "in_reply_to_id": null,
            "sensitive": false,
            "spoiler_text": "",
            "visibility": "public",
            "language": "en",
            "uri": "https://mastodon.social/users/Gargron/statuses/103270115826048975",
            "url": "https://mastodon.social/@Gargron/103270115826048975",
            "content": GUARDIAN,
            "reblog": null,
            "account": {
                "id": "1", "username": "Gargron", "acct": "Gargron", "display_name": "Eugen",
                "url": "https://mastodon.social/@Gargron",
                "avatar": "https://files.mastodon.social/accounts/avatars/000/000/001/original/d96d39a0abb45b92.jpg",
                "avatar_static": "https://files.mastodon.social/accounts/avatars/000/000/001/original/d96d39a0abb45b92.jpg"
            },
            "media_attachments": [], "mentions": [],
            "tags": [{"name": "MUSICTUESDAY", "url": "https://mastodon.social/tags/MUSICTUESDAY"}],
            "emojis": [], "card": null, "poll": null
        });
        let frame = serde_json::json!({"stream": ["public"], "event": "update", "payload": status.to_string()});
        let tweet = read_event(&frame.to_string()).unwrap().unwrap();
        assert_eq!(tweet.id, "103270115826048975");
        assert_eq!(tweet.name, "Eugen");
        assert_eq!(tweet.screen_name, "Gargron");
        assert_eq!(tweet.user_profile_image, "https://files.mastodon.social/accounts/avatars/000/000/001/original/d96d39a0abb45b92.jpg");
        assert_eq!(
            tweet.url.as_deref(),
            Some("https://mastodon.social/@Gargron/103270115826048975")
        );
        assert_eq!(tweet.created_at, "2019-12-08T03:48:33.901Z");
        assert_eq!(tweet.lang.as_deref(), Some("en"));
        assert_eq!(tweet.source, "mastodon");
        assert_eq!(tweet.tags, ["MUSICTUESDAY"]);
        assert!(tweet
            .text
            .contains("theguardian.com/money/2019/dec/07/i-lost"));
    }

    #[test]
    fn other_events_are_let_go_and_broken_ones_reported() {
        assert!(read_event(
            r#"{"stream":["public"],"event":"delete","payload":"106692867363994015"}"#
        )
        .unwrap()
        .is_none());
        assert!(
            read_event(r#"{"stream":["public"],"event":"status.update","payload":"{}"}"#)
                .unwrap()
                .is_none()
        );
        assert!(
            read_event(r#"{"stream":["user"],"event":"filters_changed"}"#)
                .unwrap()
                .is_none()
        );
        assert!(matches!(read_event("{oops"), Err(EventError::Malformed(_))));
        assert!(matches!(
            read_event(r#"{"stream":["public"],"event":"update","payload":"{\"id\":1}"}"#),
            Err(EventError::Malformed(_))
        ));
        assert!(matches!(
            read_event(r#"{"error":"Unknown stream type","status":400}"#),
            Err(EventError::Server(m)) if m == "Unknown stream type"
        ));
    }

    #[test]
    fn a_null_language_and_missing_url_fall_back() {
        let status = serde_json::json!({
            "id": "1", "created_at": "2022-08-30T21:38:22.000Z", "language": null, "url": null,
            "uri": "https://fosstodon.org/users/tobtobxx/statuses/108913983628474640",
            "content": "<p>hi</p>", "spoiler_text": "CW food",
            "account": {"username": "tobtobxx", "acct": "tobtobxx@fosstodon.org", "display_name": "", "avatar": "https://x/a.png"}
        });
        let frame = serde_json::json!({"stream": ["public"], "event": "update", "payload": status.to_string()});
        let tweet = read_event(&frame.to_string()).unwrap().unwrap();
        assert_eq!(tweet.lang, None);
        assert_eq!(tweet.name, "tobtobxx@fosstodon.org");
        assert_eq!(
            tweet.url.as_deref(),
            Some("https://fosstodon.org/users/tobtobxx/statuses/108913983628474640")
        );
        assert_eq!(tweet.text, "CW food\n\nhi");
    }

    #[test]
    fn the_streaming_endpoint_uses_a_websocket_scheme() {
        let base = reqwest::Url::parse("wss://streaming.mastodon.social").unwrap();
        assert_eq!(
            streaming_endpoint(&base, "public").as_str(),
            "wss://streaming.mastodon.social/api/v1/streaming?stream=public"
        );
        let base = reqwest::Url::parse("http://127.0.0.1:9/").unwrap();
        assert_eq!(
            streaming_endpoint(&base, "public:local").as_str(),
            "ws://127.0.0.1:9/api/v1/streaming?stream=public%3Alocal"
        );
    }
}
