//! A post's text cut into what the card shows: plain text, links out,
//! hashtags and mentions that search, each with the parts the column's
//! search matched marked. Pure, so that what may become an `href` is tested
//! without a browser.

use crate::query::highlight::Range;
use crate::wire::{SpanKind, Tweet};

/// What a run of the text is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Plain,
    /// A link out; the address is checked by [`safe_href`].
    Link {
        href: String,
    },
    /// A hashtag or mention: a link that sets the column's search to `search`.
    Search {
        search: String,
    },
}

/// A run of the text and its parts, each marked or not. The parts' texts,
/// in order, are exactly the run's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub kind: Kind,
    pub parts: Vec<(String, bool)>,
}

/// The post's marks (from the server) that can be shown: sorted, not
/// overlapping, inside the text and on its characters. Anything else is
/// dropped, so a wrong offset never cuts a character or panics.
pub fn marks_in(tweet: &Tweet) -> Vec<Range> {
    let text = tweet.text.as_str();
    let mut marks: Vec<Range> = Vec::new();
    for mark in &tweet.marks {
        if let Some((start, end)) = mark.within(text) {
            if marks.last().is_none_or(|&(_, last_end)| last_end <= start) {
                marks.push((start, end));
            }
        }
    }
    marks
}

/// The text as runs, in order; their texts joined are exactly `tweet.text`.
pub fn runs(tweet: &Tweet, marks: &[Range]) -> Vec<Run> {
    let text = tweet.text.as_str();
    let mut spans: Vec<(Range, Kind)> = Vec::new();
    // Links the source resolved (a shortened link's full address) first,
    // then links written out in the text, then tags and mentions, each
    // kept only where nothing earlier already is.
    for link in &tweet.links {
        if let (Some(range), Some(href)) = (link.visible_range(text), safe_href(&link.url)) {
            add(&mut spans, range, Kind::Link { href });
        }
    }
    for span in &tweet.spans {
        let Some(range) = span.within(text) else {
            continue;
        };
        let written = text.get(range.0..range.1).unwrap_or_default();
        let kind = match span.kind {
            SpanKind::Link => match safe_href(written) {
                Some(href) => Kind::Link { href },
                None => continue,
            },
            SpanKind::Hashtag if written.starts_with('#') => Kind::Search {
                search: written.to_owned(),
            },
            SpanKind::Mention if written.starts_with('@') => Kind::Search {
                search: written.to_owned(),
            },
            _ => continue,
        };
        add(&mut spans, range, kind);
    }
    let mut runs = Vec::new();
    let mut at = 0;
    for ((start, end), kind) in spans {
        if at < start {
            runs.push(run(text, (at, start), Kind::Plain, marks));
        }
        runs.push(run(text, (start, end), kind, marks));
        at = end;
    }
    if at < text.len() || runs.is_empty() {
        runs.push(run(text, (at, text.len()), Kind::Plain, marks));
    }
    runs
}

fn add(spans: &mut Vec<(Range, Kind)>, range: Range, kind: Kind) {
    let overlaps = spans
        .iter()
        .any(|((start, end), _)| range.0 < *end && *start < range.1);
    if !overlaps && range.0 < range.1 {
        // Kept in order of the text.
        let at = spans
            .iter()
            .position(|((start, _), _)| *start > range.0)
            .unwrap_or(spans.len());
        spans.insert(at, (range, kind));
    }
}

/// The run over `range`, cut where marks start and end.
fn run(text: &str, (start, end): Range, kind: Kind, marks: &[Range]) -> Run {
    // Every range here is on the text's characters (`marks_in`, `within`);
    // `get` only keeps a panic's code out of the browser bundle.
    let part = |from: usize, to: usize| text.get(from..to).unwrap_or_default().to_owned();
    let mut parts = Vec::new();
    let mut at = start;
    for &(mark_start, mark_end) in marks {
        let (from, to) = (mark_start.max(start), mark_end.min(end));
        if from >= to {
            continue;
        }
        if at < from {
            parts.push((part(at, from), false));
        }
        parts.push((part(from, to), true));
        at = to;
    }
    if at < end || parts.is_empty() {
        parts.push((part(at, end), false));
    }
    Run { kind, parts }
}

/// `raw` when it is an absolute http(s) address with a host that a browser
/// reads the way it looks: no white space, control characters or
/// backslashes (which browsers read as `/`). Anything else (`javascript:`,
/// `data:`, look-alike schemes) never becomes an `href`.
pub fn safe_href(raw: &str) -> Option<String> {
    let lower_scheme = raw.get(..8).unwrap_or(raw).to_ascii_lowercase();
    let rest = if lower_scheme.starts_with("http://") {
        raw.get(7..)?
    } else if lower_scheme.starts_with("https://") {
        raw.get(8..)?
    } else {
        return None;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let clean = !raw
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\');
    let host_ok = !host.is_empty()
        && !host.starts_with('@')
        && host
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '@' | '_'));
    (clean && host_ok).then(|| raw.to_owned())
}

/// The address of a page that searches `search` (`?q=%23tag`).
pub fn search_href(search: &str) -> String {
    format!("?q={}", super::address::encode_component(search))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::PostLink;

    fn tweet(text: &str) -> Tweet {
        // As the server sends it.
        Tweet {
            text: text.into(),
            spans: crate::query::text_spans(text),
            ..Default::default()
        }
    }

    fn shape(runs: &[Run]) -> Vec<(String, String)> {
        runs.iter()
            .map(|r| {
                let text: String = r.parts.iter().map(|(t, _)| t.as_str()).collect();
                let kind = match &r.kind {
                    Kind::Plain => "plain".to_owned(),
                    Kind::Link { href } => format!("link {href}"),
                    Kind::Search { search } => format!("search {search}"),
                };
                (kind, text)
            })
            .collect()
    }

    fn joined(runs: &[Run]) -> String {
        runs.iter()
            .flat_map(|r| r.parts.iter().map(|(t, _)| t.as_str()))
            .collect()
    }

    #[test]
    fn only_marks_that_fit_the_text_are_kept() {
        use crate::wire::TextRange;
        let mark = |start, end| TextRange { start, end };
        let post = Tweet {
            // "é" is two bytes: 1..2 would cut it.
            text: "héllo wörld".into(),
            marks: vec![
                mark(0, 6),
                mark(1, 2),
                mark(4, 9),
                mark(7, 13),
                mark(9, 9),
                mark(13, 400),
            ],
            ..Default::default()
        };
        assert_eq!(marks_in(&post), [(0, 6), (7, 13)]);
        let marked: Vec<_> = runs(&post, &marks_in(&post))
            .into_iter()
            .flat_map(|r| r.parts)
            .collect();
        assert_eq!(
            marked,
            [
                ("héllo".to_owned(), true),
                (" ".to_owned(), false),
                ("wörld".to_owned(), true)
            ]
        );
    }

    #[test]
    fn links_tags_and_mentions_become_runs_and_the_text_stays_whole() {
        let text = "New (#RustLang) post by @ada.bsky.social: https://example.com/a?b=1. ok";
        let runs = runs(&tweet(text), &[]);
        assert_eq!(joined(&runs), text);
        let kinds = shape(&runs);
        assert_eq!(
            kinds,
            [
                ("plain".to_owned(), "New (".to_owned()),
                ("search #RustLang".to_owned(), "#RustLang".to_owned()),
                ("plain".to_owned(), ") post by ".to_owned()),
                (
                    "search @ada.bsky.social".to_owned(),
                    "@ada.bsky.social".to_owned()
                ),
                ("plain".to_owned(), ": ".to_owned()),
                (
                    "link https://example.com/a?b=1".to_owned(),
                    "https://example.com/a?b=1".to_owned()
                ),
                ("plain".to_owned(), ". ok".to_owned()),
            ]
        );
    }

    #[test]
    fn spans_that_do_not_fit_their_text_stay_text() {
        use crate::wire::TextSpan;
        let span = |start, end, kind| TextSpan { start, end, kind };
        let text = "héllo #tag @me javascript:x";
        let post = Tweet {
            text: text.into(),
            spans: vec![
                // Cuts "é", runs past the end, empty.
                span(1, 2, SpanKind::Hashtag),
                span(20, 400, SpanKind::Mention),
                span(3, 3, SpanKind::Link),
                // Not what the kind says it is.
                span(7, 11, SpanKind::Mention),
                span(12, 15, SpanKind::Hashtag),
                span(16, 28, SpanKind::Link),
            ],
            ..Default::default()
        };
        assert_eq!(
            shape(&runs(&post, &[])),
            [("plain".to_owned(), text.to_owned())]
        );
    }

    #[test]
    fn marks_cut_runs_into_parts() {
        let text = "go #rust now";
        let runs = runs(&tweet(text), &[(0, 2), (4, 8)]);
        assert_eq!(joined(&runs), text);
        assert_eq!(
            runs[0].parts,
            [("go".to_owned(), true), (" ".to_owned(), false)]
        );
        assert_eq!(
            runs[1].parts,
            [("#".to_owned(), false), ("rust".to_owned(), true)]
        );
    }

    #[test]
    fn only_http_and_https_become_hrefs() {
        for bad in [
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "vbscript:msgbox",
            "http:javascript:alert(1)",
            "https:/evil.example",
            "http://",
            "https://@evil.example",
            "hxxps://evil.example",
            "\u{4bb}ttps://evil.example",
            "https://evil.example\\@good.example",
            "https://exa\u{0}mple.com",
            " https://lead.example",
            "javascript://example.com/%0aalert(1)",
        ] {
            assert_eq!(safe_href(bad), None, "{bad:?}");
        }
        assert_eq!(
            safe_href("HTTPS://Example.com/x").as_deref(),
            Some("HTTPS://Example.com/x")
        );
        assert_eq!(
            safe_href("http://[::1]:8080/").as_deref(),
            Some("http://[::1]:8080/")
        );
    }

    #[test]
    fn a_bad_link_address_stays_text() {
        let text = "click javascript:alert(1) or data:x";
        let runs = runs(
            &Tweet {
                links: vec![PostLink {
                    url: "javascript:alert(1)".into(),
                    start: 6,
                    end: 25,
                }],
                ..tweet(text)
            },
            &[],
        );
        assert_eq!(shape(&runs), [("plain".to_owned(), text.to_owned())]);
    }

    #[test]
    fn a_resolved_link_covers_its_visible_text() {
        let text = "read example.com/long… now";
        let (start, end) = (text.find("example").unwrap(), text.find(" now").unwrap());
        let runs = runs(
            &Tweet {
                links: vec![PostLink {
                    url: "https://www.example.com/long/path".into(),
                    start: start as u32,
                    end: end as u32,
                }],
                ..tweet(text)
            },
            &[(start, end)],
        );
        assert_eq!(joined(&runs), text);
        assert_eq!(
            runs[1].kind,
            Kind::Link {
                href: "https://www.example.com/long/path".into()
            }
        );
        assert_eq!(runs[1].parts, [("example.com/long…".to_owned(), true)]);
    }

    #[test]
    fn an_empty_text_is_one_empty_run() {
        assert_eq!(joined(&runs(&tweet(""), &[])), "");
    }

    #[test]
    fn search_links_encode_the_search() {
        assert_eq!(search_href("#rust"), "?q=%23rust");
        assert_eq!(search_href("@ada.bsky.social"), "?q=%40ada.bsky.social");
    }
}
