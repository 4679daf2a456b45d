//! An inverted index over many searches, so that the cost of matching a
//! post does not grow with the number of searches.
//!
//! Each search is filed under its *anchors*: keys (a piece, a whole word, a
//! hashtag, a mention, an author, a language) of which a post must hold at
//! least one for the search to have any chance of matching it. A term is
//! its own anchor; an `OR` is anchored on the anchors of all its
//! alternatives; an `AND` on those of one of its positive parts (the most
//! selective one); a negation anchors nothing. For a post, the index looks
//! up each of the post's keys ([`PreparedPost::for_each_key`]) and returns
//! the searches filed there: the *candidates*. Only they are evaluated, with
//! the ordinary matcher, so the index changes what is evaluated, never the
//! answer (a differential property test holds it to that).

use std::collections::HashMap;

use super::text::KeyKind;
use super::{Expr, PreparedPost, Query, Term};

/// Identifies a search inside the index; chosen by the caller.
/// 64 bits, so ids are never reused: a reused id could file a new search
/// under an old one that is still active.
pub type SearchId = u64;

const KINDS: usize = 6;

fn slot(kind: KeyKind) -> usize {
    match kind {
        KeyKind::Piece => 0,
        KeyKind::Whole => 1,
        KeyKind::Hashtag => 2,
        KeyKind::Mention => 3,
        KeyKind::From => 4,
        KeyKind::Lang => 5,
    }
}

/// How much a key of this kind is expected to let through: languages are
/// shared by most posts, so an `AND` prefers any other part as its anchor.
fn weight(kind: KeyKind) -> u32 {
    match kind {
        KeyKind::Lang => 1000,
        _ => 1,
    }
}

type Anchor = (KeyKind, Box<str>);

#[derive(Debug, Default)]
pub struct SearchIndex {
    /// One map per [`KeyKind`]: key → searches anchored on it.
    keys: [HashMap<Box<str>, Vec<SearchId>>; KINDS],
    /// Each indexed search's anchors, to take it out again.
    anchors: HashMap<SearchId, Vec<Anchor>>,
    /// Searches with nothing to anchor on: evaluated for every post.
    always: Vec<SearchId>,
}

impl SearchIndex {
    pub fn new() -> SearchIndex {
        SearchIndex::default()
    }

    /// Files `query` under `id` (replacing what `id` held).
    pub fn insert(&mut self, id: SearchId, query: &Query) {
        self.remove(id);
        match anchors(query.expr()) {
            Some(anchors) => {
                for (kind, key) in &anchors {
                    self.keys[slot(*kind)]
                        .entry(key.clone())
                        .or_default()
                        .push(id);
                }
                self.anchors.insert(id, anchors);
            }
            None => self.always.push(id),
        }
    }

    pub fn remove(&mut self, id: SearchId) {
        if let Some(anchors) = self.anchors.remove(&id) {
            for (kind, key) in anchors {
                let map = &mut self.keys[slot(kind)];
                if let Some(ids) = map.get_mut(&key) {
                    ids.retain(|&i| i != id);
                    if ids.is_empty() {
                        map.remove(&key);
                    }
                }
            }
        } else {
            self.always.retain(|&i| i != id);
        }
    }

    /// Searches indexed.
    pub fn len(&self) -> usize {
        self.anchors.len() + self.always.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The searches that may match `post`, each once, in increasing order.
    pub fn candidates(&self, post: &PreparedPost, out: &mut Vec<SearchId>) {
        out.clear();
        out.extend_from_slice(&self.always);
        post.for_each_key(|kind, key| {
            if let Some(ids) = self.keys[slot(kind)].get(key) {
                out.extend_from_slice(ids);
            }
        });
        out.sort_unstable();
        out.dedup();
    }
}

/// Keys of which a matching post must hold one; `None` when the expression
/// cannot be anchored (it is then evaluated for every post).
fn anchors(expr: &Expr) -> Option<Vec<Anchor>> {
    match expr {
        Expr::Term(term) => Some(vec![term_anchor(term)]),
        Expr::Not(_) => None,
        Expr::Or(alternatives) => {
            let mut all = Vec::new();
            for alternative in alternatives {
                all.extend(anchors(alternative)?);
            }
            all.sort();
            all.dedup();
            Some(all)
        }
        Expr::And(parts) => parts
            .iter()
            .filter_map(anchors)
            .min_by_key(|a| a.iter().map(|(kind, _)| weight(*kind)).sum::<u32>()),
    }
}

fn term_anchor(term: &Term) -> Anchor {
    let (kind, key): (KeyKind, &str) = match term {
        Term::Word(word) => (KeyKind::Piece, word),
        Term::WholeWord(word) => (KeyKind::Whole, word),
        Term::Phrase(words) => match words.first() {
            Some(first) if first.whole => (KeyKind::Whole, &first.text),
            Some(first) => (KeyKind::Piece, &first.text),
            None => (KeyKind::Piece, ""),
        },
        Term::Hashtag(tag) => (KeyKind::Hashtag, tag),
        Term::Mention(handle) => (KeyKind::Mention, handle),
        Term::From(handle) => (KeyKind::From, handle),
        Term::Lang(lang) => (KeyKind::Lang, lang),
    };
    (kind, key.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(term: &str) -> Query {
        Query::parse(term, 512).unwrap()
    }

    fn candidates(
        index: &SearchIndex,
        text: &str,
        author: &str,
        lang: Option<&str>,
    ) -> Vec<SearchId> {
        let mut out = Vec::new();
        index.candidates(&PreparedPost::from_parts(text, author, lang), &mut out);
        out
    }

    #[test]
    fn only_searches_anchored_on_the_posts_keys_are_candidates() {
        let mut index = SearchIndex::new();
        let searches = [
            "rust",
            "rust wasm, go",
            "#news",
            "@ada",
            "from:bob",
            "lang:fr cuisine",
            "\"open source\"",
            "example.com/x",
            "leptos -react",
        ];
        for (i, term) in searches.iter().enumerate() {
            index.insert(i as SearchId, &query(term));
        }
        assert_eq!(candidates(&index, "I love Rust", "x", None), [0, 1]);
        assert_eq!(candidates(&index, "go home", "x", None), [1]);
        assert_eq!(candidates(&index, "#News today", "x", None), [2]);
        assert_eq!(candidates(&index, "hi @ada.bsky.social", "x", None), [3]);
        assert_eq!(candidates(&index, "hi", "bob@mastodon.social", None), [4]);
        assert_eq!(candidates(&index, "la cuisine", "x", Some("fr-CA")), [5]);
        assert_eq!(candidates(&index, "open-source", "x", None), [6]);
        assert_eq!(
            candidates(&index, "https://www.example.com/x", "x", None),
            [7]
        );
        assert_eq!(candidates(&index, "leptos vs react", "x", None), [8]);
        assert!(candidates(&index, "nothing here", "x", Some("en")).is_empty());
    }

    #[test]
    fn an_and_is_anchored_on_a_part_other_than_its_language() {
        let mut index = SearchIndex::new();
        index.insert(1, &query("lang:en rust"));
        assert!(candidates(&index, "hello", "x", Some("en")).is_empty());
        assert_eq!(candidates(&index, "rust", "x", Some("de")), [1]);
    }

    #[test]
    fn removed_and_replaced_searches_leave_no_trace() {
        let mut index = SearchIndex::new();
        index.insert(1, &query("rust"));
        index.insert(2, &query("rust"));
        index.insert(1, &query("go"));
        assert_eq!(candidates(&index, "rust go", "x", None), [1, 2]);
        assert_eq!(candidates(&index, "rust", "x", None), [2]);
        index.remove(2);
        index.remove(1);
        assert!(index.is_empty());
        assert!(index.keys.iter().all(HashMap::is_empty));
    }
}

/// The index against the plain matcher, on random searches and posts.
#[cfg(test)]
mod differential {
    use proptest::prelude::*;

    use super::*;

    /// Words that collide on purpose: pieces, prefixes, case, accents.
    const WORDS: &[&str] = &[
        "rust", "Rust", "rusty", "trust", "go", "golang", "wasm", "open", "source", "ada", "bob",
        "café", "CAFÉ", "straße", "日本", "news", "x", "don't", "example", "com",
    ];

    fn post_word() -> impl Strategy<Value = String> {
        let word = proptest::sample::select(WORDS).prop_map(str::to_owned);
        prop_oneof![
            4 => word.clone(),
            1 => word.clone().prop_map(|w| format!("#{w}")),
            1 => word.clone().prop_map(|w| format!("@{w}")),
            1 => word.clone().prop_map(|w| format!("@{w}.bsky.social")),
            1 => word.clone().prop_map(|w| format!("@{w}@mastodon.social")),
            1 => word.clone().prop_map(|w| format!("({w})!")),
            1 => (word.clone(), word.clone()).prop_map(|(a, b)| format!("{a}-{b}")),
            1 => word.clone().prop_map(|w| format!("https://www.{w}.com/x")),
            1 => word.clone().prop_map(|w| format!("{w}.com/x")),
            1 => "[\\PC]{0,4}",
        ]
    }

    fn post() -> impl Strategy<Value = (String, String, Option<String>)> {
        (
            proptest::collection::vec(post_word(), 0..12).prop_map(|w| w.join(" ")),
            proptest::sample::select(&["ada", "Ada.bsky.social", "bob@mastodon.social", "x"][..]),
            proptest::option::of(proptest::sample::select(
                &["en", "en-US", "fr", "de-AT"][..],
            )),
        )
            .prop_map(|(text, author, lang)| (text, author.to_owned(), lang.map(str::to_owned)))
    }

    fn search_term() -> impl Strategy<Value = String> {
        let word = proptest::sample::select(WORDS).prop_map(str::to_owned);
        let atom = prop_oneof![
            4 => word.clone(),
            1 => word.clone().prop_map(|w| format!("#{w}")),
            1 => word.clone().prop_map(|w| format!("@{w}")),
            1 => word.clone().prop_map(|w| format!("from:{w}")),
            1 => proptest::sample::select(&["lang:en", "lang:fr", "lang:de-at"][..]).prop_map(str::to_owned),
            1 => (word.clone(), word.clone()).prop_map(|(a, b)| format!("\"{a} {b}\"")),
            1 => word.clone().prop_map(|w| format!("{w}.com/x")),
            1 => word.clone().prop_map(|w| format!("-{w}")),
        ];
        let group = proptest::collection::vec(atom.clone(), 1..4).prop_map(|a| a.join(" "));
        let nested = (group.clone(), group.clone(), proptest::bool::ANY).prop_map(|(a, b, neg)| {
            if neg {
                format!("{a} -({b})")
            } else {
                format!("({a} OR {b})")
            }
        });
        proptest::collection::vec(prop_oneof![3 => group, 1 => nested], 1..4)
            .prop_map(|alternatives| alternatives.join(", "))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn the_index_agrees_with_the_plain_matcher(
            terms in proptest::collection::vec(search_term(), 1..40),
            posts in proptest::collection::vec(post(), 1..20),
        ) {
            let queries: Vec<Query> = terms.iter().filter_map(|t| Query::parse(t, 512).ok()).collect();
            let mut index = SearchIndex::new();
            for (i, query) in queries.iter().enumerate() {
                index.insert(i as SearchId, query);
            }
            let mut candidates = Vec::new();
            for (text, author, lang) in &posts {
                let post = PreparedPost::from_parts(text, author, lang.as_deref());
                let plain: Vec<SearchId> = (0..queries.len() as SearchId).filter(|&i| queries[i as usize].matches(&post)).collect();
                index.candidates(&post, &mut candidates);
                let indexed: Vec<SearchId> = candidates.iter().copied().filter(|&i| queries[i as usize].matches(&post)).collect();
                prop_assert_eq!(plain, indexed, "post {:?} by {} ({:?})", text, author, lang);
            }
        }
    }
}
