//! Writes the table of word characters (docs/search.md rule 2: letters with
//! their marks, digits and `_`) as a sorted list of ranges, from the
//! `unicode-properties` crate's general categories.
//!
//! The server and the browser both read this one table: the matcher and the
//! page's highlights cut text the same way, and the browser bundle carries a
//! few kilobytes of ranges instead of the whole general category table.

use std::io::Write;

use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

fn is_word_char(c: char) -> bool {
    c == '_'
        || matches!(
            c.general_category_group(),
            GeneralCategoryGroup::Letter
                | GeneralCategoryGroup::Mark
                | GeneralCategoryGroup::Number
        )
}

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for c in (0..=0x10FFFF_u32).filter_map(char::from_u32) {
        if !is_word_char(c) {
            continue;
        }
        let code = c as u32;
        match ranges.last_mut() {
            // Surrogates are not chars: a range may step over them.
            Some((_, end)) if *end + 1 == code || (*end == 0xD7FF && code == 0xE000) => *end = code,
            _ => ranges.push((code, code)),
        }
    }
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut file = std::fs::File::create(out.join("word_chars.rs")).expect("create word_chars.rs");
    writeln!(
        file,
        "/// Word characters as inclusive ranges of code points, sorted.\npub static WORD_CHAR_RANGES: [(u32, u32); {}] = [",
        ranges.len()
    )
    .expect("write");
    for (start, end) in &ranges {
        writeln!(file, "({start:#x}, {end:#x}),").expect("write");
    }
    writeln!(file, "];").expect("write");
}
