//! Any text as a search: parsed or refused with a position, never a panic;
//! a parsed search matches against its own text without a panic either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twitter_search::query::{PreparedPost, Query, QueryError};

fuzz_target!(|data: &[u8]| {
    let Ok(term) = std::str::from_utf8(data) else {
        return;
    };
    match Query::parse(term, 512) {
        Ok(query) => {
            let post = PreparedPost::from_parts(term, term, Some(term));
            let _ = query.matches(&post);
        }
        Err(QueryError::Invalid(message)) => assert!(message.contains("character"), "{message}"),
        Err(QueryError::TooLong { .. }) => assert!(term.chars().count() > 512),
    }
});
