//! The page's side of the wire format, on the browser's own JSON parser.
//!
//! The server writes and reads messages with serde (`crate::wire`); in the
//! browser the same typed messages are read from `JSON.parse`'s objects and
//! written with `JSON.stringify`, so the WASM bundle carries no second JSON
//! implementation. The shapes follow `crate::wire` field for field; the
//! end-to-end tests exercise every message kind through the real server.

use std::sync::Arc;

use js_sys::{Array, Reflect, JSON};
use leptos::wasm_bindgen::{JsCast, JsValue};

use crate::wire::{
    ClientMessage, ErrorCode, Limits, PostLink, ServerMessage, SpanKind, TextRange, TextSpan,
    Tweet, UpstreamState,
};

/// The text of a message to the server.
pub fn encode(message: &ClientMessage) -> String {
    let object = js_sys::Object::new();
    let set = |key: &str, value: &str| {
        let _ = Reflect::set(&object, &key.into(), &value.into());
    };
    match message {
        ClientMessage::UpdateTerm { term } => {
            set("type", "updateTerm");
            set("term", term);
        }
        ClientMessage::StopStream => set("type", "stopStream"),
        ClientMessage::StartStream => set("type", "startStream"),
        ClientMessage::Ping => set("type", "ping"),
    }
    JSON::stringify(&object)
        .ok()
        .and_then(|s| s.as_string())
        .unwrap_or_default()
}

/// A message from the server, or `None` for one the page does not know
/// (a newer server may send more kinds) or cannot read.
pub fn decode(text: &str) -> Option<ServerMessage> {
    let value = JSON::parse(text).ok()?;
    let message = match string(&value, "type")?.as_str() {
        "hello" => ServerMessage::Hello {
            protocol: number(&value, "protocol").unwrap_or(1.0) as u32,
            source: string(&value, "source")?,
            limits: Limits {
                max_term_length: field(&value, "limits")
                    .and_then(|l| number(&l, "maxTermLength"))
                    .unwrap_or(crate::query::DEFAULT_MAX_TERM_LENGTH as f64)
                    as usize,
            },
        },
        "updatedTerm" => ServerMessage::UpdatedTerm {
            term: string(&value, "term")?,
        },
        "tweets" => ServerMessage::Tweets {
            tweets: array(&value, "tweets")
                .iter()
                .filter_map(|t| tweet(&t).map(Arc::new))
                .collect(),
        },
        "streamState" => ServerMessage::StreamState {
            streaming: field(&value, "streaming")?.as_bool()?,
        },
        "skipped" => ServerMessage::Skipped {
            count: number(&value, "count")? as u64,
        },
        "upstream" => ServerMessage::Upstream {
            state: match string(&value, "state")?.as_str() {
                "connecting" => UpstreamState::Connecting,
                "connected" => UpstreamState::Connected,
                "reconnecting" => UpstreamState::Reconnecting,
                "failed" => UpstreamState::Failed,
                _ => return None,
            },
            detail: string(&value, "detail"),
        },
        "error" => ServerMessage::Error {
            code: match string(&value, "code")?.as_str() {
                "invalidMessage" => ErrorCode::InvalidMessage,
                "invalidTerm" => ErrorCode::InvalidTerm,
                "termTooLong" => ErrorCode::TermTooLong,
                "rateLimited" => ErrorCode::RateLimited,
                "serverBusy" => ErrorCode::ServerBusy,
                "sourceLimit" => ErrorCode::SourceLimit,
                _ => ErrorCode::InvalidMessage,
            },
            message: string(&value, "message").unwrap_or_default(),
        },
        "pong" => ServerMessage::Pong,
        "stats" => ServerMessage::Stats {
            posts_per_second: number(&value, "postsPerSecond")?,
        },
        _ => return None,
    };
    Some(message)
}

fn tweet(value: &JsValue) -> Option<Tweet> {
    Some(Tweet {
        id: string(value, "id")?,
        name: string(value, "name").unwrap_or_default(),
        screen_name: string(value, "screen_name").unwrap_or_default(),
        text: string(value, "text")?,
        user_profile_image: string(value, "user_profile_image").unwrap_or_default(),
        url: string(value, "url"),
        created_at: string(value, "created_at").unwrap_or_default(),
        lang: string(value, "lang"),
        source: string(value, "source").unwrap_or_default(),
        links: array(value, "links")
            .iter()
            .filter_map(|link| {
                Some(PostLink {
                    url: string(&link, "url")?,
                    start: number(&link, "start").unwrap_or(0.0) as u32,
                    end: number(&link, "end").unwrap_or(0.0) as u32,
                })
            })
            .collect(),
        tags: array(value, "tags")
            .iter()
            .filter_map(|t| t.as_string())
            .collect(),
        spans: array(value, "spans")
            .iter()
            .filter_map(|span| {
                let TextRange { start, end } = range(&span)?;
                let kind = SpanKind::parse(&string(&span, "kind")?)?;
                Some(TextSpan { start, end, kind })
            })
            .collect(),
        marks: array(value, "marks")
            .iter()
            .filter_map(|mark| range(&mark))
            .collect(),
    })
}

fn field(value: &JsValue, key: &str) -> Option<JsValue> {
    if !value.is_object() {
        return None;
    }
    Reflect::get(value, &key.into())
        .ok()
        .filter(|v| !v.is_undefined() && !v.is_null())
}

fn string(value: &JsValue, key: &str) -> Option<String> {
    field(value, key)?.as_string()
}

fn number(value: &JsValue, key: &str) -> Option<f64> {
    field(value, key)?.as_f64()
}

/// `{"start", "end"}`: a byte range into a post's text (checked against
/// the text where it is used).
fn range(value: &JsValue) -> Option<TextRange> {
    Some(TextRange {
        start: number(value, "start")? as u32,
        end: number(value, "end")? as u32,
    })
}

fn array(value: &JsValue, key: &str) -> Array {
    field(value, key)
        .and_then(|v| v.dyn_into::<Array>().ok())
        .unwrap_or_default()
}
