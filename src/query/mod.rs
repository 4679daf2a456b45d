//! The search language (described in `docs/search.md`): commas and `OR` for
//! alternatives, spaces for "all of these", quoted phrases, `-` to leave out,
//! `#tag`, `@name`, `from:`, `lang:` and parentheses.
//!
//! A search is parsed once into a [`Query`]; a post is cut into words once
//! into a [`PreparedPost`]; [`Query::matches`] then compares the two without
//! allocating. Shared by the server and the browser.

pub mod highlight;
mod index;
mod parse;
mod text;

pub use index::{SearchId, SearchIndex};
pub use text::{is_word_char, text_spans, text_words, KeyKind, PhraseWord, PreparedPost, TextWord};

/// Longest search accepted by default, in Unicode characters.
pub const DEFAULT_MAX_TERM_LENGTH: usize = 512;

/// Why a search was refused; the message is for a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    Invalid(String),
    #[error("the search is {length} characters long; the limit is {max}")]
    TooLong { length: usize, max: usize },
}

impl QueryError {
    pub fn code(&self) -> crate::wire::ErrorCode {
        match self {
            QueryError::Invalid(_) => crate::wire::ErrorCode::InvalidTerm,
            QueryError::TooLong { .. } => crate::wire::ErrorCode::TermTooLong,
        }
    }
}

/// One thing a search looks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    /// A word without punctuation: any post word or piece of one (rule 3).
    Word(String),
    /// A word with punctuation inside: a whole post word (rule 4).
    WholeWord(String),
    Phrase(Vec<PhraseWord>),
    Hashtag(String),
    Mention(String),
    From(String),
    Lang(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Term(Term),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

impl Term {
    fn matches(&self, post: &PreparedPost) -> bool {
        match self {
            Term::Word(word) => post.has_piece(word),
            Term::WholeWord(word) => post.has_whole_word(word),
            Term::Phrase(words) => post.has_phrase(words),
            Term::Hashtag(tag) => post.has_hashtag(tag),
            Term::Mention(handle) => post.has_mention(handle),
            Term::From(handle) => post.is_from(handle),
            Term::Lang(lang) => post.has_lang(lang),
        }
    }
}

impl Expr {
    fn matches(&self, post: &PreparedPost) -> bool {
        match self {
            Expr::Term(term) => term.matches(post),
            Expr::Not(inner) => !inner.matches(post),
            Expr::And(all) => all.iter().all(|e| e.matches(post)),
            Expr::Or(any) => any.iter().any(|e| e.matches(post)),
        }
    }
}

/// A parsed search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    term: String,
    expr: Expr,
}

impl Query {
    /// Parses `term`, refusing it when longer than `max_length` characters.
    pub fn parse(term: &str, max_length: usize) -> Result<Query, QueryError> {
        let length = term.chars().count();
        if length > max_length {
            return Err(QueryError::TooLong {
                length,
                max: max_length,
            });
        }
        let expr = parse::parse(term)?;
        Ok(Query {
            term: normalize(term),
            expr,
        })
    }

    /// The search as the server understood it: trimmed, runs of white space
    /// made one space (rule 12). Two searches with the same text here mean
    /// the same thing, so they can share one evaluation per post.
    pub fn term(&self) -> &str {
        &self.term
    }

    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    pub fn matches(&self, post: &PreparedPost) -> bool {
        self.expr.matches(post)
    }
}

/// Trims and collapses white space, as rule 12 reads a search.
pub fn normalize(term: &str) -> String {
    term.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(term: &str) -> Query {
        Query::parse(term, DEFAULT_MAX_TERM_LENGTH)
            .unwrap_or_else(|e| panic!("{term:?} should parse: {e}"))
    }

    fn matches_text(term: &str, text: &str) -> bool {
        query(term).matches(&PreparedPost::from_parts(text, "someone", Some("en")))
    }

    fn assert_table(term: &str, yes: &[&str], no: &[&str]) {
        for text in yes {
            assert!(matches_text(term, text), "{term:?} should match {text:?}");
        }
        for text in no {
            assert!(
                !matches_text(term, text),
                "{term:?} should not match {text:?}"
            );
        }
    }

    fn refused(term: &str) -> String {
        match Query::parse(term, DEFAULT_MAX_TERM_LENGTH) {
            Ok(q) => panic!("{term:?} should be refused, parsed as {:?}", q.expr()),
            Err(e) => {
                assert_eq!(e.code(), crate::wire::ErrorCode::InvalidTerm, "{term:?}");
                e.to_string()
            }
        }
    }

    // The table "Examples that must hold" of docs/search.md, row by row.

    #[test]
    fn example_single_word() {
        assert_table(
            "rust",
            &["I love Rust!", "#rust is fun", "ask @rust", "rust-lang"],
            &["rusty nails", "trust me", "#rustlang"],
        );
    }

    #[test]
    fn example_all_words() {
        assert_table(
            "rust wasm",
            &["wasm and rust", "Rust, then WASM."],
            &["rust only"],
        );
    }

    #[test]
    fn example_comma_alternatives() {
        assert_table("rust, go", &["go home", "rust belt"], &["golang rocks"]);
    }

    #[test]
    fn example_and_binds_tighter_than_or() {
        assert_table("rust wasm, go", &["go", "wasm rust"], &["wasm only"]);
    }

    #[test]
    fn example_phrase() {
        assert_table(
            "\"open source\"",
            &["open source wins", "open-source rocks"],
            &["source is open"],
        );
    }

    #[test]
    fn example_negation() {
        assert_table("leptos -react", &["leptos is neat"], &["leptos vs react"]);
    }

    #[test]
    fn example_hashtag() {
        assert_table(
            "#rustlang",
            &["new #RustLang release"],
            &["rustlang release"],
        );
    }

    #[test]
    fn example_from() {
        let q = query("from:ada");
        assert!(q.matches(&PreparedPost::from_parts("anything at all", "Ada", None)));
        assert!(!q.matches(&PreparedPost::from_parts("hello ada", "bob", None)));
    }

    #[test]
    fn example_group() {
        assert_table("(cats OR dogs) photo", &["a dogs photo"], &["a cats video"]);
    }

    #[test]
    fn example_link_path() {
        assert_table(
            "example.com/x",
            &["see https://www.example.com/x"],
            &["see example.com"],
        );
    }

    #[test]
    fn example_domain_words() {
        assert_table("example com", &["foo.example.com/bar"], &["an example"]);
    }

    // The rules, one by one, with the cases their text names.

    #[test]
    fn rule1_unicode_lowercasing_without_folding() {
        assert_table("straße", &["STRAßE ist lang", "Straße"], &["STRASSE"]);
        assert_table("touché", &["Touché!"], &["touche"]);
        assert_table("ΟΔΟΣ", &["οδος"], &[]);
        assert_table("İstanbul", &["İSTANBUL"], &[]);
        assert_table("rust or go", &["rust or go"], &["go"]);
    }

    #[test]
    fn rule1_operators_in_any_case() {
        let q = query("FROM:Ada LANG:EN");
        assert!(q.matches(&PreparedPost::from_parts("x", "ada", Some("en-GB"))));
        assert!(!q.matches(&PreparedPost::from_parts("x", "ada", Some("fr"))));
    }

    #[test]
    fn rule2_trims_punctuation_at_word_ends() {
        assert_table(
            "hello",
            &["hello.", "\"hello\"", "(hello)!", "¡hello!"],
            &["helloo"],
        );
        assert_table("hello.", &["hello there"], &[]);
    }

    #[test]
    fn rule3_pieces_between_punctuation() {
        assert_table(
            "rust",
            &[
                "Rust",
                "#rust",
                "@rust",
                "rust-lang",
                "https://rust.example/",
            ],
            &["rusty", "trust", "#rustlang", "@rustacean"],
        );
    }

    #[test]
    fn rule4_inner_punctuation_needs_whole_word() {
        assert_table("don't", &["I don't know"], &["don t", "dont"]);
        assert_table(
            "twitter's",
            &["I like Twitter's design"],
            &["visit @Twitter's office"],
        );
        assert_table(
            "example.com/news",
            &[
                "https://www.example.com/news",
                "http://example.com/news.",
                "example.com/news",
            ],
            &["example.com/news/today"],
        );
        assert_table(
            "example.com",
            &["go to example.com!"],
            &["example.com/news"],
        );
        assert_table(
            "www.example.com",
            &[],
            &["www.example.com", "https://www.example.com"],
        );
    }

    #[test]
    fn rule6_or_only_in_upper_case() {
        assert_table("rust OR go", &["go home", "rust belt"], &["golang"]);
        assert_table("rust or go", &[], &["go home"]);
        assert_table("rust,go", &["go"], &[]);
    }

    #[test]
    fn rule7_phrase_words_with_punctuation_follow_rule4() {
        assert_table(
            "\"twitter's design\"",
            &["I like Twitter's design"],
            &["@Twitter's design", "twitter's great design"],
        );
        assert_table("\"rust lang\"", &["the rust-lang team"], &["lang rust"]);
        assert_table("\"Rust\"", &["rust"], &["rusty"]);
    }

    #[test]
    fn rule8_negation_forms() {
        assert_table(
            "rust -\"open source\"",
            &["rust source open"],
            &["rust open-source"],
        );
        assert_table("rust -#go", &["rust go"], &["rust #go"]);
        assert_table("rust -@go", &["rust go"], &["rust @go"]);
        assert_table(
            "rust -(cats OR dogs)",
            &["rust birds"],
            &["rust dogs", "cats rust"],
        );
        let q = query("rust -from:bot -lang:fr");
        assert!(q.matches(&PreparedPost::from_parts("rust", "ada", Some("en"))));
        assert!(!q.matches(&PreparedPost::from_parts("rust", "bot", Some("en"))));
        assert!(!q.matches(&PreparedPost::from_parts("rust", "ada", Some("fr-CA"))));
    }

    #[test]
    fn rule9_hashtags_and_mentions() {
        assert_table(
            "#rust",
            &["(#RUST)", "#rust-lang news"],
            &["rust", "#rustlang"],
        );
        assert_table(
            "@ada",
            &["hi @ada", "hi @ada.bsky.social", "hi @ada@mastodon.social"],
            &["hi ada", "hi @adam", "hi @ada_b"],
        );
        assert_table(
            "@ada.bsky.social",
            &["cc @Ada.bsky.social."],
            &["cc @ada", "cc @ada@mastodon.social"],
        );
        assert_table("@twitter", &["visit @Twitter's office"], &[]);
    }

    #[test]
    fn rule10_from_and_lang() {
        let q = query("from:@ada");
        assert!(q.matches(&PreparedPost::from_parts("x", "ada.bsky.social", None)));
        assert!(q.matches(&PreparedPost::from_parts("x", "ada@mastodon.social", None)));
        assert!(!q.matches(&PreparedPost::from_parts("x", "adam", None)));
        let q = query("lang:pt");
        assert!(q.matches(&PreparedPost::from_parts("x", "a", Some("pt-BR"))));
        assert!(!q.matches(&PreparedPost::from_parts("x", "a", Some("ptx"))));
        assert!(!q.matches(&PreparedPost::from_parts("x", "a", None)));
    }

    #[test]
    fn rule11_nesting() {
        assert_table(
            "((rust OR go) (wasm OR web)), python",
            &["go web", "rust wasm", "python"],
            &["rust go", "wasm web"],
        );
    }

    #[test]
    fn rule12_white_space() {
        let q = query("  rust \t  wasm  ");
        assert_eq!(q.term(), "rust wasm");
        assert!(q.matches(&PreparedPost::from_parts("wasm\nrust", "a", None)));
    }

    #[test]
    fn emoji_and_rtl_text() {
        assert_table("café", &["☕ café ☕"], &[]);
        assert_table("مرحبا", &["مرحبا بالعالم"], &["مرحب"]);
        assert_table("日本", &["日本 ok"], &[]);
        assert_table("\"good morning\"", &["good 🌅 morning"], &[]);
    }

    #[test]
    fn refuses_what_query_md_lists() {
        assert!(refused("").contains("empty"));
        assert!(refused("   ").contains("empty"));
        assert!(refused("\"open source").contains("character 1"));
        assert!(refused("rust (go").contains("character 6"));
        assert!(refused("rust OR").contains("right"));
        assert!(refused(", rust").contains("left"));
        assert!(refused("rust,").contains("character 5"));
        assert!(refused("OR rust").contains("left"));
        assert!(refused("rust , , go").contains("character 6"));
        assert!(refused("rust - go").contains("character 6"));
        assert!(refused("rust -").contains("'-'"));
        assert!(refused("from:").contains("from:"));
        assert!(refused("rust lang:").contains("character 6"));
        assert!(
            refused("-rust").contains("leaves words out")
                || refused("-rust").contains("only leaves")
        );
        assert!(refused("go OR -rust").contains("character 7"));
        assert!(refused("-(a OR b)").contains("only leaves"));
    }

    #[test]
    fn refuses_other_nonsense_clearly() {
        assert!(refused("rust )").contains("closes nothing"));
        assert!(refused(")").contains("closes nothing"));
        assert!(refused("()").contains("empty"));
        assert!(refused("\"\"").contains("no letters"));
        assert!(refused("#").contains("tag"));
        assert!(refused("@").contains("handle"));
        assert!(refused("!!!").contains("no letters"));
        assert!(refused("--rust").contains("once"));
        assert!(refused("☕").contains("no letters"));
        assert!(refused("rust -☕").contains("leaves out nothing"));
        assert!(refused("rust (").contains("never closed"));
        assert!(refused("-(").contains("never closed"));
    }

    #[test]
    fn words_with_nothing_to_search_for_drop_out() {
        assert_table("rock & roll", &["rock and roll"], &["rock only"]);
        assert_table("coffee ☕", &["coffee time"], &["tea"]);
        assert_table("\"\" rust", &["rust"], &[]);
        assert_eq!(query("rock & roll").term(), "rock & roll");
    }

    #[test]
    fn search_hashtags_and_mentions_are_read_as_in_posts() {
        assert_table(
            "#rust-lang",
            &["#rust-lang news", "#rust"],
            &["rust-lang", "#rustlang"],
        );
        assert_table("@twitter's", &["hi @Twitter"], &["twitter"]);
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = |n: usize| format!("{}a{}", "(".repeat(n), ")".repeat(n));
        assert!(Query::parse(&deep(32), 512).is_ok());
        assert!(refused(&deep(33)).contains("nests too deeply"));
        assert!(refused(&"(".repeat(500)).contains("nests too deeply"));
    }

    #[test]
    fn term_length_counts_characters_not_bytes() {
        let ok = "é".repeat(512);
        assert!(Query::parse(&ok, 512).is_ok());
        let long = "é".repeat(513);
        let err = Query::parse(&long, 512).unwrap_err();
        assert_eq!(err.code(), crate::wire::ErrorCode::TermTooLong);
        assert_eq!(
            err,
            QueryError::TooLong {
                length: 513,
                max: 512
            }
        );
    }

    #[test]
    fn positions_count_characters() {
        assert!(refused("ééé (go").contains("character 5"));
    }
}
