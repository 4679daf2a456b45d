//! How a post's text is cut into what a search can match (docs/search.md rules 1-4, 9).

use crate::wire::{SpanKind, TextSpan, Tweet};

// `WORD_CHAR_RANGES`, written by build.rs from Unicode's general categories.
include!(concat!(env!("OUT_DIR"), "/word_chars.rs"));

/// Word characters are letters with their marks, digits and `_`; everything
/// else is punctuation (docs/search.md rule 2).
pub fn is_word_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric() || c == '_';
    }
    let code = c as u32;
    WORD_CHAR_RANGES
        .binary_search_by(|&(start, end)| {
            if end < code {
                std::cmp::Ordering::Less
            } else if start > code {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Characters a handle may hold: `ada.bsky.social`, `ada@mastodon.social`.
pub fn is_handle_char(c: char) -> bool {
    is_word_char(c) || matches!(c, '.' | '-' | '@')
}

/// Drops punctuation from both ends.
pub fn trim_punctuation(word: &str) -> &str {
    word.trim_matches(|c: char| !is_word_char(c))
}

/// Drops punctuation from the end only.
pub fn trim_trailing_punctuation(word: &str) -> &str {
    word.trim_end_matches(|c: char| !is_word_char(c))
}

/// True when a trimmed word has punctuation inside it (`don't`, `example.com`).
pub fn has_inner_punctuation(trimmed: &str) -> bool {
    trimmed.chars().any(|c| !is_word_char(c))
}

/// The runs of word characters in a word: `rust-lang` holds `rust` and `lang`.
pub fn pieces(word: &str) -> impl Iterator<Item = &str> {
    word.split(|c: char| !is_word_char(c))
        .filter(|piece| !piece.is_empty())
}

/// `text` without `prefix`, compared ignoring ASCII case, so that a word
/// is cut the same before and after lower-casing.
fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// A link loses its scheme and a leading `www.` before it is compared (rule 4).
fn link_form(trimmed: &str) -> Option<&str> {
    let rest = if let Some(rest) = strip_prefix_ignore_case(trimmed, "http://") {
        rest
    } else if let Some(rest) = strip_prefix_ignore_case(trimmed, "https://") {
        rest
    } else if strip_prefix_ignore_case(trimmed, "www.").is_some() {
        trimmed
    } else {
        return None;
    };
    Some(strip_prefix_ignore_case(rest, "www.").unwrap_or(rest))
}

/// One white-space separated word of a post, cut by rules 2, 3, 4 and 9.
/// Every part is a slice of the word, so the same cut of the original text
/// and of its lower-cased copy line up part for part (lower-casing keeps
/// letters letters and everything else as it is), which is what lets the
/// page mark in the original text exactly what the matcher found.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CutWord<'a> {
    /// The hashtag's word characters, without `#`.
    pub hashtag: Option<&'a str>,
    /// The mention's handle, without `@`.
    pub mention: Option<&'a str>,
    /// Starts with `#` or `@`: whole-word searches never match it.
    pub tagged: bool,
    /// The word without punctuation at its ends (maybe empty).
    pub trimmed: &'a str,
    /// `trimmed`, and for a link without its scheme and `www.`.
    pub whole: &'a str,
}

pub(crate) fn cut_word(raw: &str) -> CutWord<'_> {
    // Leading brackets and quotes go, but `#` and `@` say what the word is.
    let lead = raw.trim_start_matches(|c: char| !is_word_char(c) && c != '#' && c != '@');
    let mut cut = CutWord {
        hashtag: None,
        mention: None,
        tagged: false,
        trimmed: "",
        whole: "",
    };
    if let Some(rest) = lead.strip_prefix('#') {
        cut.tagged = true;
        let end = rest.find(|c: char| !is_word_char(c)).unwrap_or(rest.len());
        cut.hashtag = (end > 0).then(|| &rest[..end]);
    } else if let Some(rest) = lead.strip_prefix('@') {
        cut.tagged = true;
        let end = rest
            .find(|c: char| !is_handle_char(c))
            .unwrap_or(rest.len());
        let handle = trim_trailing_punctuation(&rest[..end]);
        cut.mention = (!handle.is_empty()).then_some(handle);
    }
    cut.trimmed = trim_punctuation(raw);
    cut.whole = link_form(cut.trimmed).unwrap_or(cut.trimmed);
    cut
}

/// One white-space separated word of a text, with byte ranges into it.
#[derive(Debug, Clone, Copy)]
pub struct TextWord<'a> {
    /// The word without punctuation at its ends.
    pub trimmed: &'a str,
    pub trimmed_range: (usize, usize),
    /// From `#` to the tag's end, and the tag.
    pub hashtag: Option<((usize, usize), &'a str)>,
    /// From `@` to the handle's end, and the handle.
    pub mention: Option<((usize, usize), &'a str)>,
}

/// The text's words, cut as the matcher cuts them (rules 2 and 9).
pub fn text_words(text: &str) -> impl Iterator<Item = TextWord<'_>> {
    let offset = move |part: &str| part.as_ptr() as usize - text.as_ptr() as usize;
    text.split_whitespace().map(move |raw| {
        let cut = cut_word(raw);
        // `#` and `@` are one byte, just before the tag or handle.
        let tagged_range = |part: &str| (offset(part) - 1, offset(part) + part.len());
        TextWord {
            trimmed: cut.trimmed,
            trimmed_range: (offset(cut.trimmed), offset(cut.trimmed) + cut.trimmed.len()),
            hashtag: cut.hashtag.map(|tag| (tagged_range(tag), tag)),
            mention: cut.mention.map(|handle| (tagged_range(handle), handle)),
        }
    })
}

/// The links written out in `text` (with an http or https scheme), its
/// hashtags and its mentions, in order (see [`Tweet::spans`]).
pub fn text_spans(text: &str) -> Vec<TextSpan> {
    let span = |(start, end): (usize, usize), kind| TextSpan {
        start: start as u32,
        end: end as u32,
        kind,
    };
    let mut spans = Vec::new();
    for word in text_words(text) {
        let scheme = strip_prefix_ignore_case(word.trimmed, "http://")
            .or_else(|| strip_prefix_ignore_case(word.trimmed, "https://"));
        if scheme.is_some_and(|rest| !rest.is_empty()) {
            spans.push(span(word.trimmed_range, SpanKind::Link));
        } else if let Some((range, _)) = word.hashtag {
            spans.push(span(range, SpanKind::Hashtag));
        } else if let Some((range, _)) = word.mention {
            spans.push(span(range, SpanKind::Mention));
        }
    }
    spans
}

/// A byte range into [`PreparedPost::lower`].
type Span = (u32, u32);

#[derive(Debug, Clone)]
struct PostWord {
    /// The whole word after trimming (links in their short form).
    whole: Span,
    /// False for hashtags and mentions, which whole-word searches never match.
    whole_matchable: bool,
    first_piece: u32,
    piece_count: u32,
}

#[derive(Debug, Clone)]
struct Piece {
    span: Span,
    word: u32,
    first_in_word: bool,
}

/// A post cut into words, pieces, hashtags and mentions once, so that every
/// active search can be checked against it without cutting it again.
#[derive(Debug, Clone)]
pub struct PreparedPost {
    lower: String,
    words: Vec<PostWord>,
    pieces: Vec<Piece>,
    hashtags: Vec<Span>,
    mentions: Vec<Span>,
    author: String,
    lang: Option<String>,
    /// Pieces at which an extra segment (a link's full address, a tag the
    /// source attached) starts: a phrase never runs across one.
    boundaries: Vec<u32>,
}

impl PreparedPost {
    pub fn new(tweet: &Tweet) -> PreparedPost {
        if tweet.links.is_empty() && tweet.tags.is_empty() {
            return Self::from_parts(&tweet.text, &tweet.screen_name, tweet.lang.as_deref());
        }
        // Full addresses of shortened links and attached tags are matched as
        // words of their own after the text.
        let mut extras: Vec<String> = tweet.links.iter().map(|l| l.url.clone()).collect();
        extras.extend(
            tweet
                .tags
                .iter()
                .map(|t| format!("#{}", t.trim_start_matches('#'))),
        );
        Self::with_extras(
            &tweet.text,
            &extras,
            &tweet.screen_name,
            tweet.lang.as_deref(),
        )
    }

    pub fn from_parts(text: &str, screen_name: &str, lang: Option<&str>) -> PreparedPost {
        Self::with_extras(text, &[], screen_name, lang)
    }

    /// The post's text followed by `extras`, each a segment of its own.
    pub fn with_extras(
        text: &str,
        extras: &[String],
        screen_name: &str,
        lang: Option<&str>,
    ) -> PreparedPost {
        let mut lower = text.to_lowercase();
        let mut segments = vec![(0, lower.len())];
        for extra in extras {
            lower.push('\n');
            let start = lower.len();
            lower.push_str(&extra.to_lowercase());
            segments.push((start, lower.len()));
        }
        let mut post = PreparedPost {
            lower: String::new(),
            words: Vec::new(),
            pieces: Vec::new(),
            hashtags: Vec::new(),
            mentions: Vec::new(),
            author: screen_name.trim().trim_start_matches('@').to_lowercase(),
            lang: lang
                .map(|l| l.trim().to_lowercase())
                .filter(|l| !l.is_empty()),
            boundaries: Vec::new(),
        };
        let base = lower.as_ptr() as usize;
        let span_of = |s: &str| -> Span {
            let start = s.as_ptr() as usize - base;
            (start as u32, (start + s.len()) as u32)
        };
        let words = segments.iter().enumerate().flat_map(|(i, &(start, end))| {
            lower[start..end]
                .split_whitespace()
                .enumerate()
                .map(move |(n, word)| (i > 0 && n == 0, word))
        });
        for (starts_segment, raw) in words {
            if starts_segment {
                post.boundaries.push(post.pieces.len() as u32);
            }
            let cut = cut_word(raw);
            if let Some(tag) = cut.hashtag {
                post.hashtags.push(span_of(tag));
            }
            if let Some(handle) = cut.mention {
                post.mentions.push(span_of(handle));
            }
            let trimmed = cut.trimmed;
            if trimmed.is_empty() {
                continue;
            }
            let whole = cut.whole;
            let tagged = cut.tagged;
            let word_index = post.words.len() as u32;
            let first_piece = post.pieces.len() as u32;
            for (i, piece) in pieces(trimmed).enumerate() {
                post.pieces.push(Piece {
                    span: span_of(piece),
                    word: word_index,
                    first_in_word: i == 0,
                });
            }
            post.words.push(PostWord {
                whole: span_of(whole),
                whole_matchable: !tagged,
                first_piece,
                piece_count: post.pieces.len() as u32 - first_piece,
            });
        }
        post.lower = lower;
        post
    }

    fn text(&self, span: Span) -> &str {
        &self.lower[span.0 as usize..span.1 as usize]
    }

    /// Everything in the post a search term can be anchored on, for the
    /// search index: each piece, each whole word a whole-word search can
    /// match, each hashtag, each mention and the author's handle with every
    /// shorter handle they answer to (`ada.bsky.social` answers to `ada`
    /// and `ada.bsky`), and the language with its prefixes (`en-us`, `en`).
    pub fn for_each_key(&self, mut visit: impl FnMut(KeyKind, &str)) {
        for piece in &self.pieces {
            visit(KeyKind::Piece, self.text(piece.span));
        }
        for word in &self.words {
            if word.whole_matchable {
                visit(KeyKind::Whole, self.text(word.whole));
            }
        }
        for &span in &self.hashtags {
            visit(KeyKind::Hashtag, self.text(span));
        }
        for &span in &self.mentions {
            for_each_handle_prefix(self.text(span), |h| visit(KeyKind::Mention, h));
        }
        for_each_handle_prefix(&self.author, |h| visit(KeyKind::From, h));
        if let Some(lang) = &self.lang {
            visit(KeyKind::Lang, lang);
            for (i, b) in lang.bytes().enumerate() {
                if b == b'-' {
                    visit(KeyKind::Lang, &lang[..i]);
                }
            }
        }
    }

    /// Rule 3: a search word without punctuation against words and pieces.
    pub fn has_piece(&self, word: &str) -> bool {
        self.pieces.iter().any(|p| self.text(p.span) == word)
    }

    /// Rule 4: a search word with punctuation inside against whole words.
    pub fn has_whole_word(&self, word: &str) -> bool {
        self.words
            .iter()
            .any(|w| w.whole_matchable && self.text(w.whole) == word)
    }

    pub fn has_hashtag(&self, tag: &str) -> bool {
        self.hashtags.iter().any(|&span| self.text(span) == tag)
    }

    pub fn has_mention(&self, handle: &str) -> bool {
        self.mentions
            .iter()
            .any(|&span| handle_matches(self.text(span), handle))
    }

    pub fn is_from(&self, handle: &str) -> bool {
        handle_matches(&self.author, handle)
    }

    pub fn has_lang(&self, lang: &str) -> bool {
        match &self.lang {
            Some(post_lang) => {
                post_lang == lang
                    || (post_lang.len() > lang.len()
                        && post_lang.starts_with(lang)
                        && post_lang.as_bytes()[lang.len()] == b'-')
            }
            None => false,
        }
    }

    /// Rule 7: the phrase's words in order, next to each other.
    pub fn has_phrase(&self, phrase: &[PhraseWord]) -> bool {
        (0..self.pieces.len()).any(|start| self.phrase_end(start, phrase).is_some())
    }

    /// Where the phrase ends (the index of the piece after it) when it
    /// starts at piece `start`.
    pub(crate) fn phrase_end(&self, start: usize, phrase: &[PhraseWord]) -> Option<usize> {
        let mut at = start;
        for word in phrase {
            let piece = self.pieces.get(at)?;
            if word.whole {
                if !piece.first_in_word {
                    return None;
                }
                let post_word = &self.words[piece.word as usize];
                if !post_word.whole_matchable || self.text(post_word.whole) != word.text {
                    return None;
                }
                at = (post_word.first_piece + post_word.piece_count) as usize;
            } else {
                if self.text(piece.span) != word.text {
                    return None;
                }
                at += 1;
            }
        }
        let crosses_a_boundary = self
            .boundaries
            .iter()
            .any(|&b| start < b as usize && (b as usize) < at);
        (!crosses_a_boundary).then_some(at)
    }

    // Positional reads for the highlighter (`super::highlight`), which cuts
    // the original text the same way and marks the parts these name.

    pub(crate) fn piece_count(&self) -> usize {
        self.pieces.len()
    }

    pub(crate) fn piece_text(&self, piece: usize) -> &str {
        self.text(self.pieces[piece].span)
    }

    pub(crate) fn word_count(&self) -> usize {
        self.words.len()
    }

    /// The word's whole form, when a whole-word search can match it.
    pub(crate) fn whole_word_text(&self, word: usize) -> Option<&str> {
        let word = &self.words[word];
        word.whole_matchable.then(|| self.text(word.whole))
    }

    pub(crate) fn hashtag_texts(&self) -> impl Iterator<Item = &str> {
        self.hashtags.iter().map(|&span| self.text(span))
    }

    pub(crate) fn mention_texts(&self) -> impl Iterator<Item = &str> {
        self.mentions.iter().map(|&span| self.text(span))
    }
}

/// What kind of thing an index key is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyKind {
    Piece,
    Whole,
    Hashtag,
    Mention,
    From,
    Lang,
}

/// `handle` and every shorter handle it answers to (see [`handle_matches`]).
fn for_each_handle_prefix(handle: &str, mut visit: impl FnMut(&str)) {
    if handle.is_empty() {
        return;
    }
    for (i, b) in handle.bytes().enumerate() {
        if i > 0 && matches!(b, b'.' | b'@') {
            visit(&handle[..i]);
        }
    }
    visit(handle);
}

/// `ada` names `ada`, `ada.bsky.social` and `ada@mastodon.social` (rules 9, 10).
pub(crate) fn handle_matches(candidate: &str, wanted: &str) -> bool {
    candidate == wanted
        || (candidate.len() > wanted.len()
            && candidate.starts_with(wanted)
            && matches!(candidate.as_bytes()[wanted.len()], b'.' | b'@'))
}

/// One word of a quoted phrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhraseWord {
    pub text: String,
    /// Has punctuation inside, so it must equal a whole post word (rule 4).
    pub whole: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(text: &str) -> PreparedPost {
        PreparedPost::from_parts(text, "someone", None)
    }

    #[test]
    fn spans_are_the_links_tags_and_mentions_as_the_matcher_cuts_them() {
        let text = "(#Rust_lang!) @ada.bsky.social, HTTPS://Example.com/a?b=1. \
                    www.example.com http:// #日本語 me@home # @ https://x";
        let spans: Vec<_> = text_spans(text)
            .iter()
            .map(|s| (&text[s.start as usize..s.end as usize], s.kind))
            .collect();
        assert_eq!(
            spans,
            [
                ("#Rust_lang", SpanKind::Hashtag),
                ("@ada.bsky.social", SpanKind::Mention),
                ("HTTPS://Example.com/a?b=1", SpanKind::Link),
                ("#日本語", SpanKind::Hashtag),
                ("https://x", SpanKind::Link),
            ]
        );
    }

    #[test]
    fn the_word_character_table_agrees_with_unicode_categories_everywhere() {
        use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};
        for c in (0..=0x10FFFF_u32).filter_map(char::from_u32) {
            let expected = c == '_'
                || matches!(
                    c.general_category_group(),
                    GeneralCategoryGroup::Letter
                        | GeneralCategoryGroup::Mark
                        | GeneralCategoryGroup::Number
                );
            assert_eq!(is_word_char(c), expected, "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn word_characters_follow_unicode_categories() {
        assert!(is_word_char('é'));
        assert!(is_word_char('\u{0301}')); // combining acute accent
        assert!(is_word_char('٣')); // Arabic-Indic digit three
        assert!(is_word_char('_'));
        assert!(is_word_char('日'));
        assert!(!is_word_char('-'));
        assert!(!is_word_char('🎉'));
        assert!(!is_word_char('#'));
    }

    #[test]
    fn hashtags_and_mentions_are_found_after_leading_brackets() {
        let p = post("(#RUST) and #rust-lang with @Twitter's and @ada@mastodon.social.");
        assert!(p.has_hashtag("rust"));
        assert!(!p.has_hashtag("rust-lang"));
        assert!(p.has_mention("twitter"));
        assert!(p.has_mention("ada@mastodon.social"));
        assert!(p.has_mention("ada"));
    }

    #[test]
    fn links_lose_scheme_and_www_for_whole_word_matching() {
        let p = post("see (https://www.example.com/news/).");
        assert!(p.has_whole_word("example.com/news"));
        assert!(!p.has_whole_word("www.example.com/news"));
        assert!(p.has_piece("example"));
        assert!(p.has_piece("news"));
    }

    #[test]
    fn attached_links_and_tags_match_as_words_of_their_own() {
        let tweet = Tweet {
            text: "read this: example.com/long… now".into(),
            screen_name: "a".into(),
            links: vec![crate::wire::PostLink {
                url: "https://www.example.com/long/path".into(),
                start: 11,
                end: 28,
            }],
            tags: vec!["RustLang".into()],
            ..Default::default()
        };
        let p = PreparedPost::new(&tweet);
        assert!(p.has_whole_word("example.com/long/path"));
        assert!(p.has_hashtag("rustlang"));
        assert!(p.has_piece("now"));
        let phrase = |words: &[&str]| -> Vec<PhraseWord> {
            words
                .iter()
                .map(|w| PhraseWord {
                    text: (*w).into(),
                    whole: false,
                })
                .collect()
        };
        assert!(p.has_phrase(&phrase(&["long", "path"])));
        assert!(
            !p.has_phrase(&phrase(&["now", "https"])),
            "a phrase never runs from the text into an attached link"
        );
    }

    #[test]
    fn lang_matches_prefix_with_dash_only() {
        let p = PreparedPost::from_parts("x", "a", Some("en-US"));
        assert!(p.has_lang("en"));
        assert!(p.has_lang("en-us"));
        assert!(!p.has_lang("e"));
        let none = PreparedPost::from_parts("x", "a", None);
        assert!(!none.has_lang("en"));
    }
}
