//! The parser of the search language (docs/search.md), with refusals that say what
//! is wrong and at which character.

use super::text::{
    has_inner_punctuation, is_handle_char, is_word_char, trim_punctuation,
    trim_trailing_punctuation, PhraseWord,
};
use super::{Expr, QueryError, Term};

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    /// `,` or `OR`; the flag says which, for error messages.
    Or {
        comma: bool,
    },
    Not,
    Phrase(String),
    Word(String),
}

/// A token and the 1-based character position where it starts.
type Spanned = (Token, usize);

fn is_break(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | ',' | '"')
}

fn invalid(message: String) -> QueryError {
    QueryError::Invalid(message)
}

fn lex(term: &str) -> Result<Vec<Spanned>, QueryError> {
    let chars: Vec<char> = term.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let position = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        match c {
            '(' => {
                tokens.push((Token::Open, position));
                i += 1;
            }
            ')' => {
                tokens.push((Token::Close, position));
                i += 1;
            }
            ',' => {
                tokens.push((Token::Or { comma: true }, position));
                i += 1;
            }
            '"' => {
                let Some(length) = chars[i + 1..].iter().position(|&c| c == '"') else {
                    return Err(invalid(format!(
                        "the quote at character {position} is never closed"
                    )));
                };
                let phrase: String = chars[i + 1..i + 1 + length].iter().collect();
                tokens.push((Token::Phrase(phrase), position));
                i += length + 2;
            }
            '-' => {
                let next = chars.get(i + 1).copied();
                match next {
                    None => {
                        return Err(invalid(format!(
                            "the '-' at character {position} leaves out nothing: write -word to leave a word out"
                        )))
                    }
                    Some(n) if n.is_whitespace() || n == ',' || n == ')' => {
                        return Err(invalid(format!(
                            "the '-' at character {position} leaves out nothing: write -word to leave a word out"
                        )))
                    }
                    Some('-') => {
                        return Err(invalid(format!(
                            "'--' at character {position}: a word can be left out only once"
                        )))
                    }
                    Some(_) => {
                        tokens.push((Token::Not, position));
                        i += 1;
                    }
                }
            }
            _ => {
                let start = i;
                while i < chars.len() && !is_break(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                if word == "OR" {
                    tokens.push((Token::Or { comma: false }, position));
                } else {
                    tokens.push((Token::Word(word), position));
                }
            }
        }
    }
    Ok(tokens)
}

/// Deepest nesting of parentheses accepted: enough for any real search,
/// and the recursion of parsing and matching stays small.
pub const MAX_DEPTH: usize = 32;

/// The first word of an alternative that had nothing to search for.
type Skipped = Option<(String, usize)>;

struct Parser {
    tokens: Vec<Spanned>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Spanned> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Spanned> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    /// `and (',' | OR) and ...`; `group_open` is the position of the `(`
    /// this list sits in, if any.
    fn parse_or(&mut self, group_open: Option<usize>) -> Result<Expr, QueryError> {
        let mut alternatives = Vec::new();
        let mut separator: Option<(bool, usize)> = None;
        loop {
            let start = self.peek().map(|(_, p)| *p);
            let (alternative, skipped) = self.parse_and()?;
            if alternative.is_empty() {
                if let Some((word, position)) = skipped {
                    return Err(invalid(format!(
                        "'{word}' at character {position} has no letters or digits to search for"
                    )));
                }
                let (comma, position, side) = match (separator, self.peek()) {
                    (Some((comma, position)), _) => (comma, position, "right"),
                    (None, Some((Token::Or { comma }, position))) => (*comma, *position, "left"),
                    (None, Some((Token::Close, position))) if group_open.is_none() => {
                        return Err(invalid(format!(
                            "the ')' at character {position} closes nothing"
                        )));
                    }
                    (None, None) if group_open.is_some() => {
                        let open = group_open.unwrap_or(1);
                        return Err(invalid(format!(
                            "the '(' at character {open} is never closed"
                        )));
                    }
                    _ => break,
                };
                let what = if comma { "','" } else { "'OR'" };
                return Err(invalid(format!(
                    "the {what} at character {position} has nothing on its {side}"
                )));
            }
            let start = start.unwrap_or(1);
            if alternative.iter().all(|e| matches!(e, Expr::Not(_))) {
                return Err(invalid(format!(
                    "the alternative at character {start} only leaves words out: add a word to look for"
                )));
            }
            alternatives.push(Expr::And(alternative));
            match self.peek() {
                Some((Token::Or { comma }, position)) => {
                    separator = Some((*comma, *position));
                    self.at += 1;
                }
                Some((Token::Close, position)) if group_open.is_none() => {
                    return Err(invalid(format!(
                        "the ')' at character {position} closes nothing"
                    )));
                }
                _ => break,
            }
        }
        if alternatives.is_empty() {
            return Err(match group_open {
                Some(open) => invalid(format!("the parentheses at character {open} are empty")),
                None => invalid("the search is empty: type a word at character 1".to_owned()),
            });
        }
        Ok(Expr::Or(alternatives))
    }

    fn parse_and(&mut self) -> Result<(Vec<Expr>, Skipped), QueryError> {
        let mut terms = Vec::new();
        let mut skipped = None;
        while let Some((token, position)) = self.peek() {
            if matches!(token, Token::Or { .. } | Token::Close) {
                break;
            }
            let position = *position;
            let word = match token {
                Token::Word(word) => word.clone(),
                Token::Phrase(text) => format!("\"{text}\""),
                _ => String::new(),
            };
            match self.parse_unary()? {
                Some(term) => terms.push(term),
                None => {
                    skipped.get_or_insert((word, position));
                }
            }
        }
        Ok((terms, skipped))
    }

    /// `None` for a word with nothing to search for (`&`, an emoji): it
    /// drops out of the search, as punctuation drops out of a post.
    fn parse_unary(&mut self) -> Result<Option<Expr>, QueryError> {
        if let Some((Token::Not, position)) = self.peek() {
            let position = *position;
            self.at += 1;
            return match self.parse_primary()? {
                Some(term) => Ok(Some(Expr::Not(Box::new(term)))),
                None => Err(invalid(format!(
                    "the '-' at character {position} leaves out nothing: write -word to leave a word out"
                ))),
            };
        }
        self.parse_primary()
    }

    fn parse_primary(&mut self) -> Result<Option<Expr>, QueryError> {
        let Some((token, position)) = self.next() else {
            let end = self.tokens.last().map_or(1, |(_, position)| position + 1);
            return Err(invalid(format!(
                "the search ends too early, at character {end}: something is missing there"
            )));
        };
        match token {
            Token::Open => {
                if self.depth >= MAX_DEPTH {
                    return Err(invalid(format!(
                        "the '(' at character {position} nests too deeply: at most {MAX_DEPTH} levels"
                    )));
                }
                self.depth += 1;
                let inner = self.parse_or(Some(position))?;
                self.depth -= 1;
                match self.next() {
                    Some((Token::Close, _)) => Ok(Some(inner)),
                    _ => Err(invalid(format!(
                        "the '(' at character {position} is never closed"
                    ))),
                }
            }
            Token::Phrase(text) => Ok(phrase(&text)),
            Token::Word(word) => word_term(&word, position),
            // The lexer never puts these here; answer sensibly anyway.
            Token::Close => Err(invalid(format!(
                "the ')' at character {position} closes nothing"
            ))),
            Token::Or { comma } => Err(invalid(format!(
                "the {} at character {position} has nothing on its left",
                if comma { "','" } else { "'OR'" }
            ))),
            Token::Not => Err(invalid(format!(
                "'--' at character {position}: a word can be left out only once"
            ))),
        }
    }
}

fn phrase(text: &str) -> Option<Expr> {
    let lower = text.to_lowercase();
    let words: Vec<PhraseWord> = lower
        .split_whitespace()
        .map(trim_punctuation)
        .filter(|w| !w.is_empty())
        .map(|w| PhraseWord {
            text: w.to_owned(),
            whole: has_inner_punctuation(w),
        })
        .collect();
    (!words.is_empty()).then_some(Expr::Term(Term::Phrase(words)))
}

/// One search word; `None` when it holds nothing to search for.
fn word_term(word: &str, position: usize) -> Result<Option<Expr>, QueryError> {
    let lower = word.to_lowercase();
    if let Some(value) = lower.strip_prefix("from:") {
        let handle = trim_trailing_punctuation(value.trim_start_matches('@'));
        if handle.is_empty() {
            return Err(invalid(format!(
                "'from:' at character {position} needs a handle, as in from:ada"
            )));
        }
        if !handle.chars().all(is_handle_char) {
            return Err(invalid(format!(
                "'{word}' at character {position} is not a handle: use letters, digits, '_', '.', '-' and '@'"
            )));
        }
        return Ok(Some(Expr::Term(Term::From(handle.to_owned()))));
    }
    if let Some(value) = lower.strip_prefix("lang:") {
        let lang = trim_punctuation(value);
        if lang.is_empty() {
            return Err(invalid(format!(
                "'lang:' at character {position} needs a language code, as in lang:en"
            )));
        }
        if !lang.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(invalid(format!(
                "'{word}' at character {position} is not a language code such as en or pt-BR"
            )));
        }
        return Ok(Some(Expr::Term(Term::Lang(lang.to_owned()))));
    }
    // Read as in a post (rule 9): `#rust-lang` is the hashtag `rust`
    // followed by `-lang`, `@twitter's` the mention `twitter`.
    if let Some(rest) = lower.strip_prefix('#') {
        let end = rest.find(|c: char| !is_word_char(c)).unwrap_or(rest.len());
        if end == 0 {
            return Err(invalid(format!(
                "'#' at character {position} needs a tag, as in #rust"
            )));
        }
        return Ok(Some(Expr::Term(Term::Hashtag(rest[..end].to_owned()))));
    }
    if let Some(rest) = lower.strip_prefix('@') {
        let end = rest
            .find(|c: char| !is_handle_char(c))
            .unwrap_or(rest.len());
        let handle = trim_trailing_punctuation(&rest[..end]);
        if handle.is_empty() {
            return Err(invalid(format!(
                "'@' at character {position} needs a handle, as in @ada"
            )));
        }
        return Ok(Some(Expr::Term(Term::Mention(handle.to_owned()))));
    }
    let trimmed = trim_punctuation(&lower);
    if trimmed.is_empty() {
        Ok(None)
    } else if has_inner_punctuation(trimmed) {
        Ok(Some(Expr::Term(Term::WholeWord(trimmed.to_owned()))))
    } else {
        Ok(Some(Expr::Term(Term::Word(trimmed.to_owned()))))
    }
}

/// Parses a search that is already known to be within the length limit.
pub(super) fn parse(term: &str) -> Result<Expr, QueryError> {
    if term.trim().is_empty() {
        return Err(invalid(
            "the search is empty: type a word at character 1".to_owned(),
        ));
    }
    let tokens = lex(term)?;
    let mut parser = Parser {
        tokens,
        at: 0,
        depth: 0,
    };
    let expr = parser.parse_or(None)?;
    if let Some((token, position)) = parser.peek() {
        // parse_or stops only at the end or at a ')' it reports itself.
        return Err(invalid(format!(
            "unexpected {} at character {position}",
            match token {
                Token::Close => "')'".to_owned(),
                other => format!("{other:?}"),
            }
        )));
    }
    Ok(expr)
}

#[cfg(test)]
mod never_panics {
    use proptest::prelude::*;

    use crate::query::{Query, QueryError};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any text at all: parsed or refused, never a panic, and every
        /// refusal says where.
        #[test]
        fn any_text_parses_or_is_refused_with_a_position(
            term in prop_oneof![
                "\\PC{0,40}",
                "[-#@()\", a-zA-Z:ORlangfrom]{0,30}",
                proptest::collection::vec(
                    proptest::sample::select(&["(", ")", "\"", "-", "OR", ",", "#", "@", "from:", "lang:", "rust", " ", "é"][..]),
                    0..20
                ).prop_map(|parts| parts.concat()),
            ]
        ) {
            match Query::parse(&term, 512) {
                Ok(query) => prop_assert!(!query.term().is_empty()),
                Err(QueryError::Invalid(message)) => {
                    prop_assert!(message.contains("character"), "{:?} refused without a position: {}", term, message);
                }
                Err(QueryError::TooLong { .. }) => prop_assert!(term.chars().count() > 512),
            }
        }
    }
}
