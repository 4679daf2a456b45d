//! What to mark in a post's text: the parts that the search's positive
//! terms matched (docs/protocol.md, "highlights"). The server's hub calls
//! this for each search a post matched and sends the marks with the post
//! (`marks`); it uses the same cutting of the text as the matcher, so a
//! mark never disagrees with a match, and the page carries no copy of the
//! search language.

use super::text::{handle_matches, pieces, text_words, PreparedPost};
use super::{Expr, Query, Term};
use crate::wire::Tweet;

/// A byte range of the post's text, end exclusive.
pub type Range = (usize, usize);

/// The parts of `tweet.text` to mark for `query`, sorted and merged, or
/// none when the post does not match.
///
/// Only terms that took part in the match are marked: in `rust wasm, go`
/// against "go rust", `go` is marked and `rust` is not, since its
/// alternative failed. Negated terms are never marked. A word, link or
/// phrase that matched only a link's full address (the text shows a
/// shortened form) marks the link's visible text.
pub fn highlights(query: &Query, tweet: &Tweet) -> Vec<Range> {
    Highlighter::new(tweet).marks(query, &PreparedPost::new(tweet))
}

/// One post cut once, to be marked for any number of searches: the hub
/// marks a post for every search it matched.
pub struct Highlighter {
    /// The post without the links' full addresses and the source's tags,
    /// so its pieces line up with the text's.
    text_post: PreparedPost,
    layout: Layout,
    /// Each link the text shows, with its full address cut like a post.
    links: Vec<(Range, PreparedPost)>,
}

impl Highlighter {
    pub fn new(tweet: &Tweet) -> Highlighter {
        let text = &tweet.text;
        Highlighter {
            text_post: PreparedPost::from_parts(text, &tweet.screen_name, tweet.lang.as_deref()),
            layout: Layout::of(text),
            links: tweet
                .links
                .iter()
                .filter_map(|link| {
                    let range = link.visible_range(text)?;
                    Some((range, PreparedPost::from_parts(&link.url, "", None)))
                })
                .collect(),
        }
    }

    /// The marks for `query` (see [`highlights`]); `full` is the whole post
    /// as the matcher prepared it ([`PreparedPost::new`]).
    pub fn marks(&self, query: &Query, full: &PreparedPost) -> Vec<Range> {
        let mut terms = Vec::new();
        if !satisfied_terms(query.expr(), full, &mut terms) {
            return Vec::new();
        }
        let mut marks = Vec::new();
        for term in &terms {
            self.layout.mark(term, &self.text_post, &mut marks);
            for (range, address) in &self.links {
                if term.matches(address) {
                    marks.push(*range);
                }
            }
        }
        merge(marks)
    }
}

/// Collects the positive terms of the parts of `expr` that hold for
/// `post`; returns whether `expr` holds.
fn satisfied_terms<'q>(expr: &'q Expr, post: &PreparedPost, out: &mut Vec<&'q Term>) -> bool {
    match expr {
        Expr::Term(term) => {
            let holds = expr.matches(post);
            if holds {
                out.push(term);
            }
            holds
        }
        Expr::Not(inner) => !inner.matches(post),
        Expr::And(all) => {
            if !all.iter().all(|e| e.matches(post)) {
                return false;
            }
            for e in all {
                satisfied_terms(e, post, out);
            }
            true
        }
        Expr::Or(any) => {
            let mut holds = false;
            for e in any {
                holds |= satisfied_terms(e, post, out);
            }
            holds
        }
    }
}

/// Where each piece, word, hashtag and mention of the text is, in the
/// original text, in the order [`PreparedPost`] lists them.
struct Layout {
    pieces: Vec<Range>,
    /// Each word's trimmed form.
    words: Vec<Range>,
    /// From `#` to the tag's end.
    hashtags: Vec<Range>,
    /// From `@` to the handle's end.
    mentions: Vec<Range>,
}

impl Layout {
    fn of(text: &str) -> Layout {
        let offset = |part: &str| part.as_ptr() as usize - text.as_ptr() as usize;
        let mut layout = Layout {
            pieces: Vec::new(),
            words: Vec::new(),
            hashtags: Vec::new(),
            mentions: Vec::new(),
        };
        for word in text_words(text) {
            layout.hashtags.extend(word.hashtag.map(|(range, _)| range));
            layout.mentions.extend(word.mention.map(|(range, _)| range));
            if word.trimmed.is_empty() {
                continue;
            }
            for piece in pieces(word.trimmed) {
                layout
                    .pieces
                    .push((offset(piece), offset(piece) + piece.len()));
            }
            layout.words.push(word.trimmed_range);
        }
        layout
    }

    fn mark(&self, term: &Term, post: &PreparedPost, marks: &mut Vec<Range>) {
        // The text-only post is cut from the same words as this layout; if
        // a difference ever crept in, marking nothing beats marking wrong.
        if post.piece_count() != self.pieces.len() || post.word_count() != self.words.len() {
            return;
        }
        match term {
            Term::Word(word) => {
                for (i, &range) in self.pieces.iter().enumerate() {
                    if post.piece_text(i) == word {
                        marks.push(range);
                    }
                }
            }
            Term::WholeWord(word) => {
                for (i, &range) in self.words.iter().enumerate() {
                    if post.whole_word_text(i) == Some(word.as_str()) {
                        marks.push(range);
                    }
                }
            }
            Term::Phrase(words) => {
                for start in 0..self.pieces.len() {
                    if let Some(end) = post.phrase_end(start, words) {
                        marks.push((self.pieces[start].0, self.pieces[end - 1].1));
                    }
                }
            }
            Term::Hashtag(tag) => {
                for (found, &range) in post.hashtag_texts().zip(&self.hashtags) {
                    if found == tag {
                        marks.push(range);
                    }
                }
            }
            Term::Mention(handle) => {
                for (found, &range) in post.mention_texts().zip(&self.mentions) {
                    if handle_matches(found, handle) {
                        marks.push(range);
                    }
                }
            }
            // The author and the language are not in the text.
            Term::From(_) | Term::Lang(_) => {}
        }
    }
}

fn merge(mut marks: Vec<Range>) -> Vec<Range> {
    marks.sort_unstable();
    let mut merged: Vec<Range> = Vec::with_capacity(marks.len());
    for (start, end) in marks {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::DEFAULT_MAX_TERM_LENGTH;
    use crate::wire::PostLink;

    fn tweet(text: &str) -> Tweet {
        Tweet {
            text: text.into(),
            screen_name: "someone".into(),
            lang: Some("en".into()),
            ..Default::default()
        }
    }

    /// The marked parts of `text`, as strings.
    fn marked(search: &str, tweet: &Tweet) -> Vec<String> {
        let query = Query::parse(search, DEFAULT_MAX_TERM_LENGTH).expect("parses");
        highlights(&query, tweet)
            .into_iter()
            .map(|(s, e)| tweet.text[s..e].to_owned())
            .collect()
    }

    fn marks(search: &str, text: &str) -> Vec<String> {
        marked(search, &tweet(text))
    }

    /// Every example row of docs/search.md: a post that matches has a mark
    /// (bar `from:`, which is not in the text), and one that does not has none.
    #[test]
    fn the_examples_of_the_search_language() {
        /// A search, the posts it matches with what is marked in each, and
        /// the posts it does not match.
        type Row<'a> = (&'a str, &'a [(&'a str, &'a [&'a str])], &'a [&'a str]);
        let rows: &[Row] = &[
            (
                "rust",
                &[
                    ("I love Rust!", &["Rust"]),
                    ("#rust is fun", &["rust"]),
                    ("ask @rust", &["rust"]),
                    ("rust-lang", &["rust"]),
                ],
                &["rusty nails", "trust me", "#rustlang"],
            ),
            (
                "rust wasm",
                &[
                    ("wasm and rust", &["wasm", "rust"]),
                    ("Rust, then WASM.", &["Rust", "WASM"]),
                ],
                &["rust only"],
            ),
            (
                "rust, go",
                &[("go home", &["go"]), ("rust belt", &["rust"])],
                &["golang rocks"],
            ),
            (
                "rust wasm, go",
                &[("go", &["go"]), ("wasm rust", &["wasm", "rust"])],
                &["wasm only"],
            ),
            (
                "\"open source\"",
                &[
                    ("open source wins", &["open source"]),
                    ("open-source rocks", &["open-source"]),
                ],
                &["source is open"],
            ),
            (
                "leptos -react",
                &[("leptos is neat", &["leptos"])],
                &["leptos vs react"],
            ),
            (
                "#rustlang",
                &[("new #RustLang release", &["#RustLang"])],
                &["rustlang release"],
            ),
            (
                "(cats OR dogs) photo",
                &[("a dogs photo", &["dogs", "photo"])],
                &["a cats video"],
            ),
            (
                "example.com/x",
                &[(
                    "see https://www.example.com/x",
                    &["https://www.example.com/x"],
                )],
                &["see example.com"],
            ),
            (
                "example com",
                &[("foo.example.com/bar", &["example", "com"])],
                &["an example"],
            ),
        ];
        for (search, yes, no) in rows {
            for (text, expected) in *yes {
                assert_eq!(marks(search, text), *expected, "{search:?} on {text:?}");
            }
            for text in *no {
                assert!(marks(search, text).is_empty(), "{search:?} on {text:?}");
            }
        }
        let by_ada = Tweet {
            screen_name: "Ada".into(),
            ..tweet("ada says hi")
        };
        assert!(marked("from:ada", &by_ada).is_empty());
        assert!(marks("from:ada", "a post that says ada").is_empty());
    }

    #[test]
    fn only_the_alternative_that_matched_is_marked() {
        assert_eq!(marks("rust wasm, go", "go rust"), ["go"]);
        assert_eq!(
            marks("leptos -react, vue", "leptos and vue"),
            ["leptos", "vue"]
        );
        assert_eq!(marks("leptos -react, vue", "leptos react vue"), ["vue"]);
    }

    #[test]
    fn negated_terms_are_never_marked() {
        assert_eq!(
            marks("coffee -(tea OR milk)", "coffee no sugar"),
            ["coffee"]
        );
        assert_eq!(
            marks("coffee -\"green tea\"", "coffee, tea, green"),
            ["coffee"]
        );
    }

    #[test]
    fn mentions_hashtags_and_phrases_mark_what_they_found() {
        assert_eq!(
            marks("@ada", "thanks @Ada@mastodon.social and @ada.bsky.social!"),
            ["@Ada@mastodon.social", "@ada.bsky.social"]
        );
        assert_eq!(marks("#rust", "(#RUST) and #rust-lang"), ["#RUST", "#rust"]);
        assert_eq!(
            marks(
                "\"twitter's design\"",
                "I like Twitter's design. @Twitter's design"
            ),
            ["Twitter's design"]
        );
        assert_eq!(marks("don't", "I don't know, @don't"), ["don't"]);
    }

    #[test]
    fn marks_follow_the_original_text_through_lower_casing() {
        // `İ` lower-cases to two characters: the marks still land on the
        // original text's bytes.
        assert_eq!(marks("straße", "İİ STRASSE straße"), ["straße"]);
        assert_eq!(marks("i̇stanbul", "İSTANBUL today"), ["İSTANBUL"]);
        assert_eq!(marks("touché", "Touché, touche"), ["Touché"]);
    }

    #[test]
    fn a_shortened_link_marks_its_visible_text() {
        let text = "read this: example.com/long… now";
        let (start, end) = (text.find("example").unwrap(), text.find(" now").unwrap());
        let post = Tweet {
            links: vec![PostLink {
                url: "https://www.example.com/long/path".into(),
                start: start as u32,
                end: end as u32,
            }],
            ..tweet(text)
        };
        assert_eq!(
            marked("example.com/long/path", &post),
            ["example.com/long…"]
        );
        assert_eq!(marked("\"long path\"", &post), ["example.com/long…"]);
        // A range that does not fall on characters is ignored, not a panic.
        let broken = Tweet {
            links: vec![PostLink {
                url: "https://example.com/path".into(),
                start: end as u32 - 2,
                end: end as u32 - 1,
            }],
            ..tweet(text)
        };
        assert!(marked("path", &broken).is_empty());
    }

    #[test]
    fn the_marks_are_ordered_and_do_not_overlap() {
        assert_eq!(
            marks("\"open source\" source", "open source"),
            ["open source"]
        );
        assert_eq!(
            marks("\"open source\" source", "open source source"),
            ["open source", "source"]
        );
    }
}
