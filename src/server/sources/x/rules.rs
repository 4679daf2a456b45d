//! Our search language as X filtered-stream rules.
//!
//! A rule is a *superset* of its search: X delivers, and the hub confirms
//! every post with our own matcher. So what X cannot say exactly is said
//! more broadly: a negated group (X refuses `-(a b)`) is dropped, and a
//! negated `OR` becomes one negation per alternative. What X cannot say at
//! all is refused when the search arrives (`sourceLimit`): a `from:` that
//! is not an X handle, an alternative made only of `lang:` (X needs a word
//! beside it), a rule longer than the limit.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::query::{Expr, Query, Term};
use crate::server::sources::SearchGate;

/// Every rule this app creates has a tag starting with this; rules
/// without it belong to someone else and are left alone.
pub const TAG_PREFIX: &str = "twitter-search:";

/// The X rule for `query`, or why there cannot be one.
pub fn translate(query: &Query) -> Result<String, String> {
    if !stands_alone(query.expr()) {
        return Err(format!(
            "\"{}\" cannot be an X rule: every alternative needs a word, tag, mention or from: besides lang:",
            query.term()
        ));
    }
    let rule = expr(&simplify(query.expr()), Context::Top)?
        .ok_or_else(|| format!("\"{}\" cannot be an X rule", query.term()))?;
    Ok(rule)
}

/// The tag of a rule: the prefix and a stable hash of its value, so the
/// same rule gets the same tag across restarts.
pub fn tag_for(value: &str) -> String {
    // FNV-1a, 64 bits: stable across builds, unlike the std hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in value.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{TAG_PREFIX}{hash:016x}")
}

/// The parser wraps every level in `Or`/`And`; one-element groups go, so
/// that parentheses are written only where X needs them.
fn simplify(e: &Expr) -> Expr {
    match e {
        Expr::And(all) if all.len() == 1 => simplify(&all[0]),
        Expr::Or(any) if any.len() == 1 => simplify(&any[0]),
        Expr::And(all) => Expr::And(all.iter().map(simplify).collect()),
        Expr::Or(any) => Expr::Or(any.iter().map(simplify).collect()),
        Expr::Not(inner) => Expr::Not(Box::new(simplify(inner))),
        Expr::Term(term) => Expr::Term(term.clone()),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Top,
    InAnd,
    InOr,
}

/// True when every alternative holds a positive term X accepts on its own.
fn stands_alone(e: &Expr) -> bool {
    match e {
        Expr::Term(Term::Lang(_)) => false,
        Expr::Term(_) => true,
        Expr::Not(_) => false,
        Expr::And(all) => all.iter().any(stands_alone),
        Expr::Or(any) => any.iter().all(stands_alone),
    }
}

/// `None` when the expression is dropped (a negation X cannot say).
fn expr(e: &Expr, context: Context) -> Result<Option<String>, String> {
    Ok(match e {
        Expr::Term(term) => Some(positive(term)?),
        Expr::Not(inner) => negation(inner)?,
        Expr::And(all) => {
            let parts: Vec<String> = all
                .iter()
                .map(|e| expr(e, Context::InAnd))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .flatten()
                .collect();
            let joined = parts.join(" ");
            Some(if context == Context::InOr && parts.len() > 1 {
                format!("({joined})")
            } else {
                joined
            })
        }
        Expr::Or(any) => {
            let parts: Vec<String> = any
                .iter()
                .map(|e| expr(e, Context::InOr))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .flatten()
                .collect();
            let joined = parts.join(" OR ");
            Some(if context == Context::InAnd && parts.len() > 1 {
                format!("({joined})")
            } else {
                joined
            })
        }
    })
}

/// `-term`; `-(a OR b)` as `-a -b`; anything else is dropped (broader).
fn negation(inner: &Expr) -> Result<Option<String>, String> {
    match inner {
        Expr::Term(term) => Ok(negated_term(term).map(|t| format!("-{t}"))),
        Expr::Or(any) => {
            let mut parts = Vec::new();
            for e in any {
                match e {
                    Expr::Term(term) => {
                        if let Some(t) = negated_term(term) {
                            parts.push(format!("-{t}"));
                        }
                    }
                    Expr::Or(_) | Expr::Not(_) | Expr::And(_) => {
                        if let Some(t) = negation(e)? {
                            parts.push(t);
                        }
                    }
                }
            }
            Ok((!parts.is_empty()).then(|| parts.join(" ")))
        }
        // X refuses negated groups; the hub's own matcher applies this one.
        Expr::And(_) | Expr::Not(_) => Ok(None),
    }
}

/// A term under `-`: what X cannot say is dropped rather than refused.
fn negated_term(term: &Term) -> Option<String> {
    positive(term).ok()
}

fn positive(term: &Term) -> Result<String, String> {
    Ok(match term {
        Term::Word(word) => keyword(word),
        Term::WholeWord(word) => {
            if word.contains('.') || word.contains('/') {
                // A link or a domain: X matches url: on the expanded address.
                format!("(url:{q} OR {q})", q = quoted(word))
            } else {
                quoted(word)
            }
        }
        Term::Phrase(words) => {
            let text: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
            quoted(&text.join(" "))
        }
        Term::Hashtag(tag) => format!("#{tag}"),
        Term::Mention(handle) if is_x_handle(handle) => format!("@{handle}"),
        // Another network's handle (`ada.bsky.social`) can only be text on X.
        Term::Mention(handle) => quoted(&format!("@{handle}")),
        Term::From(handle) if is_x_handle(handle) => format!("from:{handle}"),
        Term::From(handle) => {
            return Err(format!(
                "from:{handle} cannot be an X rule: X handles are 1 to 15 letters, digits or _"
            ))
        }
        Term::Lang(lang) => format!("lang:{lang}"),
    })
}

/// A plain word as an X keyword; words X would read as operators are quoted.
fn keyword(word: &str) -> String {
    let reserved = word.eq_ignore_ascii_case("or") || word.eq_ignore_ascii_case("and");
    if reserved || word.chars().any(|c| !crate::query::is_word_char(c)) {
        quoted(word)
    } else {
        word.to_owned()
    }
}

fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

fn is_x_handle(handle: &str) -> bool {
    (1..=15).contains(&handle.len())
        && handle
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The rule count and length limits, asked when a new search arrives.
pub struct XGate {
    pub max_rules: usize,
    pub max_rule_length: usize,
}

impl SearchGate for XGate {
    fn admit(&self, query: &Query, distinct_after: usize) -> Result<(), String> {
        let rule = translate(query)?;
        let length = rule.chars().count();
        if length > self.max_rule_length {
            return Err(format!(
                "this search makes an X rule of {length} characters; the limit is {}",
                self.max_rule_length
            ));
        }
        if distinct_after > self.max_rules {
            return Err(format!(
                "the X source holds {} rules already, its limit; try a search someone is already using, or later",
                self.max_rules
            ));
        }
        Ok(())
    }
}

/// The rules the active searches need: value → the searches it serves
/// (two searches may say the same thing: `a, b` and `a OR b`).
pub fn desired_rules<'a>(
    searches: impl IntoIterator<Item = &'a Arc<Query>>,
    max_rules: usize,
    max_rule_length: usize,
) -> BTreeMap<String, Vec<String>> {
    let mut rules: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for query in searches {
        match translate(query) {
            Ok(value) if value.chars().count() <= max_rule_length => {
                if rules.len() < max_rules || rules.contains_key(&value) {
                    rules
                        .entry(value)
                        .or_default()
                        .push(query.term().to_owned());
                }
            }
            // Refused at the gate; a stopped browser that restarts may bring it back.
            _ => tracing::debug!(term = query.term(), "search without an X rule"),
        }
    }
    rules
}

/// Which searches a post is for, from its `matching_rules`.
#[derive(Debug, Default)]
pub struct Routes {
    /// Tag → the searches of that rule.
    pub by_tag: HashMap<String, Vec<String>>,
    /// Rule id → the searches of that rule (X reports a duplicate of
    /// someone else's rule by that rule's id).
    pub by_id: HashMap<String, Vec<String>>,
    /// True once the rules have been put in place at least once.
    pub synced: bool,
}

impl Routes {
    pub fn is_empty(&self) -> bool {
        self.by_tag.is_empty()
    }

    /// The searches for a post that matched rules `(id, tag)`.
    pub fn searches<'a>(
        &self,
        matched: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> Vec<String> {
        let mut terms = Vec::new();
        for (id, tag) in matched {
            let found = tag
                .and_then(|t| self.by_tag.get(t))
                .or_else(|| self.by_id.get(id));
            for term in found.into_iter().flatten() {
                if !terms.contains(term) {
                    terms.push(term.clone());
                }
            }
        }
        terms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(term: &str) -> Result<String, String> {
        translate(&Query::parse(term, 512).unwrap())
    }

    #[test]
    fn the_query_examples_become_x_rules() {
        let cases = [
            ("rust", "rust"),
            ("rust wasm", "rust wasm"),
            ("rust, go", "rust OR go"),
            ("rust wasm, go", "(rust wasm) OR go"),
            ("\"open source\"", "\"open source\""),
            ("leptos -react", "leptos -react"),
            ("#rustlang", "#rustlang"),
            ("from:ada", "from:ada"),
            ("(cats OR dogs) photo", "(cats OR dogs) photo"),
            (
                "example.com/x",
                "(url:\"example.com/x\" OR \"example.com/x\")",
            ),
            ("example com", "example com"),
            ("don't", "\"don't\""),
            ("@TwitterDev lang:en", "@twitterdev lang:en"),
        ];
        for (term, expected) in cases {
            assert_eq!(rule(term).as_deref(), Ok(expected), "{term}");
        }
    }

    #[test]
    fn negations_x_cannot_say_are_widened_not_refused() {
        assert_eq!(rule("skiing -(snow OR day)").unwrap(), "skiing -snow -day");
        assert_eq!(rule("news -(sports scores)").unwrap(), "news");
        assert_eq!(rule("news -from:ada.bsky.social").unwrap(), "news");
    }

    #[test]
    fn searches_x_cannot_say_are_refused_with_a_reason() {
        assert!(rule("lang:en").unwrap_err().contains("lang:"));
        assert!(rule("rust OR lang:en").is_err());
        assert!(rule("rust lang:en").is_ok());
        assert!(rule("from:ada.bsky.social")
            .unwrap_err()
            .contains("X handles"));
        assert_eq!(rule("@ada.bsky.social").unwrap(), "\"@ada.bsky.social\"");
    }

    #[test]
    fn tags_are_stable_and_prefixed() {
        assert_eq!(tag_for("rust"), tag_for("rust"));
        assert_ne!(tag_for("rust"), tag_for("go"));
        assert!(tag_for("rust").starts_with(TAG_PREFIX));
        assert_eq!(tag_for("rust").len(), TAG_PREFIX.len() + 16);
    }

    #[test]
    fn the_gate_checks_count_and_length_when_a_search_arrives() {
        let gate = XGate {
            max_rules: 2,
            max_rule_length: 20,
        };
        let q = |t: &str| Query::parse(t, 512).unwrap();
        assert!(gate.admit(&q("rust"), 2).is_ok());
        assert!(gate.admit(&q("rust"), 3).unwrap_err().contains("limit"));
        assert!(gate
            .admit(&q("a very long search with many words"), 1)
            .unwrap_err()
            .contains("characters"));
        assert!(gate.admit(&q("lang:en"), 1).is_err());
    }

    #[test]
    fn searches_saying_the_same_share_one_rule() {
        let queries: Vec<Arc<Query>> = ["rust, go", "rust OR go", "cats"]
            .iter()
            .map(|t| Arc::new(Query::parse(t, 512).unwrap()))
            .collect();
        let rules = desired_rules(&queries, 10, 100);
        assert_eq!(rules.len(), 2);
        assert_eq!(rules["rust OR go"], ["rust, go", "rust OR go"]);
        let rules = desired_rules(&queries, 1, 100);
        assert_eq!(rules.len(), 1, "never more rules than the limit");
    }

    #[test]
    fn routes_follow_tags_then_ids_once_each() {
        let mut routes = Routes::default();
        routes.by_tag.insert("t1".into(), vec!["rust".into()]);
        routes
            .by_id
            .insert("9".into(), vec!["go".into(), "rust".into()]);
        let found = routes.searches([("1", Some("t1")), ("9", Some("other")), ("5", None)]);
        assert_eq!(found, ["rust", "go"]);
    }
}
