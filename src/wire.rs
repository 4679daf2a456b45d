//! The wire protocol (described in `docs/protocol.md`), as typed messages.
//!
//! These types are compiled into both the server and the browser bundle, so
//! the two can never disagree about a field name. Serialise them; never build
//! JSON by hand.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The protocol version announced in `hello`.
pub const PROTOCOL_VERSION: u32 = 1;

/// One post, with the original app's field names (hence `snake_case` here).
///
/// Readers ignore fields they do not know, so replay files and outside
/// producers may carry more.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tweet {
    /// Unique within its source.
    pub id: String,
    /// Display name of the author.
    pub name: String,
    /// Handle, without `@`.
    pub screen_name: String,
    /// Plain, untrusted text: rendered as text, never as HTML.
    pub text: String,
    /// Avatar URL; may be empty.
    #[serde(default)]
    pub user_profile_image: String,
    /// Link to the post on its home site.
    #[serde(default)]
    pub url: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// BCP 47 code when the source gives one.
    #[serde(default)]
    pub lang: Option<String>,
    /// Which source produced it.
    #[serde(default)]
    pub source: String,
    /// Links whose full address the text only abbreviates (Bluesky and X
    /// shorten them): a search on the full address matches the post.
    /// Omitted when empty, so posts without them keep the original shape.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<PostLink>,
    /// Hashtags the source attached to the post besides those in its text
    /// (Mastodon's `tags`, Bluesky's facets and `tags`), without `#`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Only in `tweets` messages: where the text writes out a link, a
    /// hashtag or a mention (sorted, not overlapping), for the page to make
    /// links of them. Cut by the server the way its matcher cuts words, so
    /// a `#tag` link searches exactly what the search language reads there
    /// and the page carries no word cutting. Omitted when empty; the
    /// server drops any that an incoming post carries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spans: Vec<TextSpan>,
    /// Only in `tweets` messages: the parts of `text` that the receiving
    /// connection's search matched, for the page to mark (sorted, not
    /// overlapping). Computed by the server with its own matcher, so a
    /// mark never disagrees with a match and the page carries no copy of
    /// the search language. Omitted when empty; the server drops any that
    /// an incoming post carries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub marks: Vec<TextRange>,
}

/// A part of a post's text that is a link, a hashtag or a mention.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextSpan {
    /// Byte offsets (UTF-8, end exclusive) into the text: a link's address
    /// without the punctuation around it, a hashtag from its `#`, a
    /// mention from its `@`.
    pub start: u32,
    pub end: u32,
    pub kind: SpanKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SpanKind {
    /// An http(s) address written out.
    Link,
    Hashtag,
    Mention,
}

impl SpanKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Link => "link",
            SpanKind::Hashtag => "hashtag",
            SpanKind::Mention => "mention",
        }
    }

    pub fn parse(name: &str) -> Option<SpanKind> {
        [SpanKind::Link, SpanKind::Hashtag, SpanKind::Mention]
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

impl TextSpan {
    /// The span as byte offsets into `text`, when it is a part of it.
    pub fn within(&self, text: &str) -> Option<(usize, usize)> {
        TextRange {
            start: self.start,
            end: self.end,
        }
        .within(text)
    }
}

/// Byte offsets (UTF-8, end exclusive) of a part of a post's text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextRange {
    pub start: u32,
    pub end: u32,
}

impl TextRange {
    /// The range as byte offsets into `text`, when it is a part of it: not
    /// empty, not past the end, and on character boundaries.
    pub fn within(&self, text: &str) -> Option<(usize, usize)> {
        let (start, end) = (self.start as usize, self.end as usize);
        (start < end
            && end <= text.len()
            && text.is_char_boundary(start)
            && text.is_char_boundary(end))
        .then_some((start, end))
    }
}

/// A link in a post's text: the full address, and where the text shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostLink {
    /// The full http(s) address.
    pub url: String,
    /// Byte offsets (UTF-8, end exclusive) of the link's visible text in
    /// `text`; both 0 when the text does not show it.
    #[serde(default)]
    pub start: u32,
    #[serde(default)]
    pub end: u32,
}

impl PostLink {
    /// The byte range of the link's visible text in `text`, when it is one
    /// (a range that is empty, past the end or not on characters is not).
    pub fn visible_range(&self, text: &str) -> Option<(usize, usize)> {
        TextRange {
            start: self.start,
            end: self.end,
        }
        .within(text)
    }
}

/// A message from the browser.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ClientMessage {
    /// Set or replace this connection's search; also resumes a stopped stream.
    UpdateTerm { term: String },
    /// Stop delivering to this connection; the search is kept.
    StopStream,
    /// Resume delivery.
    StartStream,
    /// The page's own heartbeat (browsers cannot see WebSocket pings).
    Ping,
}

/// The limits a client should respect, announced in `hello`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// Longest accepted search, in Unicode characters.
    pub max_term_length: usize,
}

/// The state of the server's link to its upstream source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum UpstreamState {
    Connecting,
    Connected,
    Reconnecting,
    Failed,
}

impl UpstreamState {
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamState::Connecting => "connecting",
            UpstreamState::Connected => "connected",
            UpstreamState::Reconnecting => "reconnecting",
            UpstreamState::Failed => "failed",
        }
    }
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ErrorCode {
    /// Not JSON, an unknown type, or a missing field.
    InvalidMessage,
    /// The search does not parse.
    InvalidTerm,
    /// The search is longer than `maxTermLength` characters.
    TermTooLong,
    /// Too many messages in too little time.
    RateLimited,
    /// The server is full.
    ServerBusy,
    /// The source cannot take this search (for X: the rule limit is
    /// reached, or the search does not fit in one rule).
    SourceLimit,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidMessage => "invalidMessage",
            ErrorCode::InvalidTerm => "invalidTerm",
            ErrorCode::TermTooLong => "termTooLong",
            ErrorCode::RateLimited => "rateLimited",
            ErrorCode::ServerBusy => "serverBusy",
            ErrorCode::SourceLimit => "sourceLimit",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A message from the server.
///
/// Posts are held in `Arc`s so that one post fanned out to many connections
/// is never copied; serde writes them like plain values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ServerMessage {
    Hello {
        protocol: u32,
        source: String,
        limits: Limits,
    },
    UpdatedTerm {
        term: String,
    },
    /// One or more posts, oldest first.
    Tweets {
        tweets: Vec<Arc<Tweet>>,
    },
    StreamState {
        streaming: bool,
    },
    /// This connection fell behind and `count` matching posts were dropped for it.
    Skipped {
        count: u64,
    },
    Upstream {
        state: UpstreamState,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
    /// The answer to the page's `ping`.
    Pong,
    /// The source's rate of posts received, averaged over the last 10 s.
    Stats {
        posts_per_second: f64,
    },
}

impl ServerMessage {
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerMessage::Error {
            code,
            message: message.into(),
        }
    }

    /// The JSON text of this message.
    pub fn to_json(&self) -> String {
        // Every field is a string, number, bool or a struct of those: this
        // cannot fail, and a failure would be a bug in this file.
        serde_json::to_string(self).expect("server messages always serialize")
    }
}

/// Why a browser's frame could not be read, phrased for a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientMessageError {
    #[error("the message is not valid JSON: {0}")]
    NotJson(String),
    #[error("the message must be a JSON object with a string \"type\" field")]
    NoType,
    #[error("unknown message type \"{0}\" (expected updateTerm, stopStream, startStream or ping)")]
    UnknownType(String),
    #[error("the {kind} message is malformed: {detail}")]
    BadFields { kind: String, detail: String },
}

impl ClientMessage {
    /// Reads one browser frame, telling apart the ways it can be wrong.
    pub fn parse(text: &str) -> Result<ClientMessage, ClientMessageError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ClientMessageError::NotJson(e.to_string()))?;
        let kind = value
            .get("type")
            .and_then(|t| t.as_str())
            .ok_or(ClientMessageError::NoType)?
            .to_owned();
        if !matches!(
            kind.as_str(),
            "updateTerm" | "stopStream" | "startStream" | "ping"
        ) {
            return Err(ClientMessageError::UnknownType(truncate_for_message(&kind)));
        }
        serde_json::from_value(value).map_err(|e| ClientMessageError::BadFields {
            kind,
            detail: e.to_string(),
        })
    }
}

/// Keeps an echoed, stranger-controlled string short enough for an error message.
fn truncate_for_message(s: &str) -> String {
    const MAX_CHARS: usize = 40;
    if s.chars().count() <= MAX_CHARS {
        s.to_owned()
    } else {
        let mut short: String = s.chars().take(MAX_CHARS).collect();
        short.push('…');
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_kinds_read_as_they_are_written() {
        for kind in [SpanKind::Link, SpanKind::Hashtag, SpanKind::Mention] {
            let written = serde_json::to_string(&kind).unwrap();
            assert_eq!(written, format!("\"{}\"", kind.as_str()));
            assert_eq!(SpanKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(SpanKind::parse("tag"), None);
    }

    fn ada() -> Tweet {
        Tweet {
            id: "1".into(),
            name: "Ada".into(),
            screen_name: "ada".into(),
            text: "Rust and WebSockets".into(),
            user_profile_image: String::new(),
            url: None,
            created_at: "2026-11-25T12:00:00Z".into(),
            lang: Some("en".into()),
            source: "replay".into(),
            ..Default::default()
        }
    }

    #[test]
    fn tweets_message_matches_protocol_example() {
        let message = ServerMessage::Tweets {
            tweets: vec![Arc::new(ada())],
        };
        assert_eq!(
            message.to_json(),
            r#"{"type":"tweets","tweets":[{"id":"1","name":"Ada","screen_name":"ada","text":"Rust and WebSockets","user_profile_image":"","url":null,"created_at":"2026-11-25T12:00:00Z","lang":"en","source":"replay"}]}"#
        );
    }

    #[test]
    fn server_messages_serialize_to_protocol_json() {
        let cases = [
            (
                ServerMessage::Hello {
                    protocol: 1,
                    source: "demo".into(),
                    limits: Limits {
                        max_term_length: 512,
                    },
                },
                r#"{"type":"hello","protocol":1,"source":"demo","limits":{"maxTermLength":512}}"#,
            ),
            (
                ServerMessage::UpdatedTerm {
                    term: "rust, go".into(),
                },
                r#"{"type":"updatedTerm","term":"rust, go"}"#,
            ),
            (
                ServerMessage::StreamState { streaming: false },
                r#"{"type":"streamState","streaming":false}"#,
            ),
            (
                ServerMessage::Skipped { count: 7 },
                r#"{"type":"skipped","count":7}"#,
            ),
            (
                ServerMessage::Upstream {
                    state: UpstreamState::Connected,
                    detail: None,
                },
                r#"{"type":"upstream","state":"connected"}"#,
            ),
            (
                ServerMessage::Upstream {
                    state: UpstreamState::Reconnecting,
                    detail: Some("retry in 2 s".into()),
                },
                r#"{"type":"upstream","state":"reconnecting","detail":"retry in 2 s"}"#,
            ),
            (
                ServerMessage::error(ErrorCode::InvalidMessage, "nope"),
                r#"{"type":"error","code":"invalidMessage","message":"nope"}"#,
            ),
            (
                ServerMessage::error(ErrorCode::InvalidTerm, "x"),
                r#"{"type":"error","code":"invalidTerm","message":"x"}"#,
            ),
            (
                ServerMessage::error(ErrorCode::TermTooLong, "x"),
                r#"{"type":"error","code":"termTooLong","message":"x"}"#,
            ),
            (
                ServerMessage::error(ErrorCode::RateLimited, "x"),
                r#"{"type":"error","code":"rateLimited","message":"x"}"#,
            ),
            (
                ServerMessage::error(ErrorCode::ServerBusy, "x"),
                r#"{"type":"error","code":"serverBusy","message":"x"}"#,
            ),
            (
                ServerMessage::error(ErrorCode::SourceLimit, "x"),
                r#"{"type":"error","code":"sourceLimit","message":"x"}"#,
            ),
            (ServerMessage::Pong, r#"{"type":"pong"}"#),
            (
                ServerMessage::Stats {
                    posts_per_second: 85.5,
                },
                r#"{"type":"stats","postsPerSecond":85.5}"#,
            ),
        ];
        for (message, json) in cases {
            assert_eq!(message.to_json(), json);
            let back: ServerMessage = serde_json::from_str(json).unwrap();
            assert_eq!(back, message);
        }
    }

    #[test]
    fn client_messages_parse_from_protocol_json() {
        assert_eq!(
            ClientMessage::parse(r#"{"type":"updateTerm","term":"rust"}"#),
            Ok(ClientMessage::UpdateTerm {
                term: "rust".into()
            })
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"stopStream"}"#),
            Ok(ClientMessage::StopStream)
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"startStream","extra":1}"#),
            Ok(ClientMessage::StartStream)
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"ping"}"#),
            Ok(ClientMessage::Ping)
        );
        assert_eq!(
            serde_json::to_string(&ClientMessage::UpdateTerm { term: "a".into() }).unwrap(),
            r#"{"type":"updateTerm","term":"a"}"#
        );
        assert_eq!(
            serde_json::to_string(&ClientMessage::StopStream).unwrap(),
            r#"{"type":"stopStream"}"#
        );
    }

    #[test]
    fn client_message_errors_say_what_is_wrong() {
        assert!(matches!(
            ClientMessage::parse("not json"),
            Err(ClientMessageError::NotJson(_))
        ));
        assert_eq!(
            ClientMessage::parse("[1,2]"),
            Err(ClientMessageError::NoType)
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"dance"}"#),
            Err(ClientMessageError::UnknownType("dance".into()))
        );
        assert!(matches!(
            ClientMessage::parse(r#"{"type":"updateTerm"}"#),
            Err(ClientMessageError::BadFields { .. })
        ));
        assert!(matches!(
            ClientMessage::parse(r#"{"type":"updateTerm","term":5}"#),
            Err(ClientMessageError::BadFields { .. })
        ));
        let long = format!(r#"{{"type":"{}"}}"#, "x".repeat(500));
        let message = ClientMessage::parse(&long).unwrap_err().to_string();
        assert!(message.len() < 200, "{message}");
    }

    #[test]
    fn post_readers_ignore_unknown_fields_and_default_optional_ones() {
        let tweet: Tweet = serde_json::from_str(
            r#"{"id":"9","name":"B","screen_name":"b","text":"hi","created_at":"2026-01-01T00:00:00Z","retweets":3}"#,
        )
        .unwrap();
        assert_eq!(tweet.url, None);
        assert_eq!(tweet.lang, None);
        assert_eq!(tweet.user_profile_image, "");
    }
}

#[cfg(test)]
mod decoder_never_panics {
    use proptest::prelude::*;

    use super::ClientMessage;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_frame_decodes_or_is_refused_with_a_reason(
            frame in prop_oneof![
                "\\PC{0,64}",
                "\\{\"type\":\"[a-zA-Z]{0,12}\"(,\"term\":(\"[^\"]{0,10}\"|[0-9]+|null|\\[\\]))?\\}",
                proptest::collection::vec(any::<u8>(), 0..64).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
            ]
        ) {
            if let Err(error) = ClientMessage::parse(&frame) {
                prop_assert!(!error.to_string().is_empty());
                prop_assert!(error.to_string().len() < 400);
            }
        }
    }
}
