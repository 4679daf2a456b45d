//! The page's address: `/?q=rust&q=%23news` opens one column per `q`.
//! The server (rendering the page) and the browser (hydrating it) read the
//! same query string with the same code, so both build the same columns.

/// Columns a page holds at most.
pub const MAX_COLUMNS: usize = 4;

/// The searches of a query string (without the leading `?`), in order:
/// each non-empty `q`, at most [`MAX_COLUMNS`].
pub fn deep_link_terms(query: &str) -> Vec<String> {
    query
        .trim_start_matches('?')
        .split('&')
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_component(key) == "q").then(|| decode_component(value))
        })
        .map(|term| term.trim().to_owned())
        .filter(|term| !term.is_empty())
        .take(MAX_COLUMNS)
        .collect()
}

/// The query string (with `?`) that opens these searches, or "" for none.
pub fn query_for<'a>(terms: impl IntoIterator<Item = &'a str>) -> String {
    let pairs: Vec<String> = terms
        .into_iter()
        .map(|term| format!("q={}", encode_component(term)))
        .collect();
    if pairs.is_empty() {
        String::new()
    } else {
        format!("?{}", pairs.join("&"))
    }
}

/// Percent-encodes all but the unreserved characters; a space is `+`.
pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Reads `+` as a space and `%XX` as a byte; a broken escape stays as it
/// is, and bytes that are not UTF-8 become U+FFFD.
pub fn decode_component(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(byte) = hex {
                    out.push(byte);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_q_is_a_column_in_order() {
        assert_eq!(deep_link_terms("q=rust&q=%23news"), ["rust", "#news"]);
        assert_eq!(
            deep_link_terms("?q=rust+wasm&x=1&q=&q=%40ada"),
            ["rust wasm", "@ada"]
        );
        assert_eq!(deep_link_terms("q=a&q=b&q=c&q=d&q=e"), ["a", "b", "c", "d"]);
        assert!(deep_link_terms("").is_empty());
        assert_eq!(
            deep_link_terms("q=%E2%9C%93&q=%zz&q=%FF"),
            ["✓", "%zz", "\u{fffd}"]
        );
    }

    #[test]
    fn the_address_reads_back_as_the_same_searches() {
        let terms = [
            "rust wasm, go",
            "#news",
            "\"open source\" -react",
            "café & co",
        ];
        let query = query_for(terms);
        assert_eq!(
            query,
            "?q=rust+wasm%2C+go&q=%23news&q=%22open+source%22+-react&q=caf%C3%A9+%26+co"
        );
        assert_eq!(deep_link_terms(&query), terms);
        assert_eq!(query_for([]), "");
    }
}
