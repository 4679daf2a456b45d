//! Avatars drawn by the server itself, so that the demo needs no network and
//! a post without a usable picture still gets a friendly face.
//!
//! The handle comes straight from a URL: it is filtered down to a few safe
//! characters before anything is derived from it, and only its initials
//! (letters and digits) and a colour from a fixed palette ever reach the
//! SVG, so no input can inject markup.

/// The longest handle looked at; the rest cannot change the picture anyway.
const MAX_HANDLE_CHARS: usize = 64;

/// Mid-dark tones on which white letters stay readable.
const PALETTE: [&str; 12] = [
    "#c2410c", // orange
    "#b45309", // amber
    "#4d7c0f", // lime
    "#15803d", // green
    "#0f766e", // teal
    "#0369a1", // sky
    "#1d4ed8", // blue
    "#4338ca", // indigo
    "#7e22ce", // purple
    "#a21caf", // fuchsia
    "#be123c", // rose
    "#475569", // slate
];

/// Used when nothing usable is left of the handle.
const UNKNOWN_COLOUR: &str = "#64748b";

/// A generated avatar for `handle`: a rounded square in a colour picked from
/// the handle, with its initials in white. The same handle always gives the
/// same picture, whatever its case.
pub fn avatar_svg(handle: &str) -> String {
    let handle = clean_handle(handle);
    let initials = initials(&handle);
    let (colour, letters) = if initials.is_empty() {
        (UNKNOWN_COLOUR, String::from("?"))
    } else {
        (
            PALETTE[(fnv1a(handle.as_bytes()) % PALETTE.len() as u64) as usize],
            initials,
        )
    };
    // One letter is drawn larger than two, so both fill the square alike.
    let font_size = if letters.chars().count() > 1 { 38 } else { 46 };
    // Elements sit on their own lines: the markup never holds `"><`, which
    // keeps the output easy to check for injection.
    format!(
        concat!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"96\" height=\"96\" viewBox=\"0 0 96 96\" role=\"img\" aria-label=\"avatar\">\n",
            "<rect width=\"96\" height=\"96\" rx=\"20\" fill=\"{colour}\"/>\n",
            "<text x=\"48\" y=\"48\" dy=\"0.35em\" text-anchor=\"middle\" ",
            "font-family=\"system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif\" ",
            "font-size=\"{font_size}\" font-weight=\"600\" fill=\"#ffffff\">\n",
            "{letters}\n",
            "</text>\n",
            "</svg>\n"
        ),
        colour = colour,
        font_size = font_size,
        letters = letters,
    )
}

/// A neutral grey silhouette, for posts whose own avatar cannot be shown.
pub fn placeholder_svg() -> &'static str {
    concat!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"96\" height=\"96\" viewBox=\"0 0 96 96\" role=\"img\" aria-label=\"no avatar\">\n",
        "<rect width=\"96\" height=\"96\" rx=\"20\" fill=\"#e2e8f0\"/>\n",
        "<circle cx=\"48\" cy=\"38\" r=\"17\" fill=\"#94a3b8\"/>\n",
        "<path d=\"M16 88c2-17 16-28 32-28s30 11 32 28z\" fill=\"#94a3b8\"/>\n",
        "</svg>\n"
    )
}

/// The handle lower-cased, with only `[a-z0-9_.-]` kept, at most
/// [`MAX_HANDLE_CHARS`] long.
fn clean_handle(handle: &str) -> String {
    handle
        .chars()
        .filter(|c| c.is_ascii())
        .map(|c| c.to_ascii_lowercase())
        .filter(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-'))
        .take(MAX_HANDLE_CHARS)
        .collect()
}

/// The first letter or digit of the handle's first two parts (`amara_codes`
/// gives `AC`, `kenji` gives `K`), upper-cased.
fn initials(clean: &str) -> String {
    clean
        .split(['_', '.', '-'])
        .filter_map(|part| part.chars().find(|c| c.is_ascii_alphanumeric()))
        .take(2)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// FNV-1a: stable across builds and platforms, unlike `std`'s hasher, so a
/// person keeps their colour after a server upgrade.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill_of(svg: &str) -> &str {
        let start = svg.find("<rect").expect("a background");
        let rest = &svg[start..];
        let fill = rest.find("fill=\"").expect("a fill") + "fill=\"".len();
        let end = rest[fill..].find('"').expect("a closing quote");
        &rest[fill..fill + end]
    }

    fn letters_of(svg: &str) -> &str {
        let start = svg.find("<text").expect("letters");
        let open = svg[start..].find('>').expect("end of the text tag") + start + 1;
        let close = svg[open..].find("</text>").expect("closing text tag") + open;
        svg[open..close].trim()
    }

    #[test]
    fn avatars_are_standalone_svg_documents() {
        for svg in [avatar_svg("amara_codes"), placeholder_svg().to_owned()] {
            assert!(svg.starts_with("<svg"), "{svg}");
            assert!(
                svg.contains("xmlns=\"http://www.w3.org/2000/svg\""),
                "{svg}"
            );
            assert!(svg.trim_end().ends_with("</svg>"), "{svg}");
            assert!(svg.contains("viewBox=\"0 0 96 96\""), "{svg}");
        }
    }

    #[test]
    fn same_handle_gives_same_colour_whatever_its_case() {
        assert_eq!(avatar_svg("kenji_w"), avatar_svg("kenji_w"));
        assert_eq!(
            fill_of(&avatar_svg("Kenji_W")),
            fill_of(&avatar_svg("kenji_w"))
        );
        assert!(PALETTE.contains(&fill_of(&avatar_svg("kenji_w"))));
    }

    #[test]
    fn handles_spread_over_the_palette() {
        let handles = [
            "amara_codes",
            "kenji_w",
            "lucia_fz",
            "ahmed_alrashid",
            "priya_nat",
            "jonas_mueller",
            "chloe_dbs",
            "olga_iv",
            "mateo_rojas",
            "camila_souza",
            "yuki_tnk",
            "giulia_romano",
            "seoyeon_p",
            "kwame_m",
            "noah_b",
            "em_carter",
        ];
        let colours: std::collections::HashSet<String> = handles
            .iter()
            .map(|h| fill_of(&avatar_svg(h)).to_owned())
            .collect();
        assert!(colours.len() >= 5, "only {colours:?}");
    }

    #[test]
    fn letters_are_the_initials_of_the_handle() {
        assert_eq!(letters_of(&avatar_svg("amara_codes")), "AC");
        assert_eq!(letters_of(&avatar_svg("ada.bsky.social")), "AB");
        assert_eq!(letters_of(&avatar_svg("kenji")), "K");
        assert_eq!(letters_of(&avatar_svg("_9lives")), "9");
        assert_eq!(letters_of(&avatar_svg("Émile")), "M");
    }

    #[test]
    fn nothing_usable_draws_a_question_mark() {
        for handle in ["", "___", "—", "日本語", "<>\"'&"] {
            let svg = avatar_svg(handle);
            assert_eq!(letters_of(&svg), "?", "{handle:?}");
            assert_eq!(fill_of(&svg), UNKNOWN_COLOUR);
        }
    }

    #[test]
    fn hostile_handles_cannot_inject_markup() {
        for handle in [
            "<script>alert(1)</script>",
            "\"><img src=x onerror=alert(1)>",
            "a\" onload=\"alert(1)",
            "&lt;script&gt;",
            "]]><foo/>",
            "<!-- x -->",
            "x\u{0}y",
        ] {
            let svg = avatar_svg(handle);
            assert!(!svg.to_lowercase().contains("<script"), "{handle:?}: {svg}");
            assert!(!svg.contains("\"><"), "{handle:?}: {svg}");
            assert!(!svg.contains("<img"), "{handle:?}: {svg}");
            assert!(
                !svg.contains("onerror") && !svg.contains("onload"),
                "{handle:?}: {svg}"
            );
            assert!(
                !svg.contains("<foo") && !svg.contains("<!--"),
                "{handle:?}: {svg}"
            );
            assert!(!svg.contains('\u{0}'), "{handle:?}");
            let letters = letters_of(&svg);
            assert!(
                letters == "?" || letters.chars().all(|c| c.is_ascii_alphanumeric()),
                "{handle:?}: {letters:?}"
            );
        }
    }

    #[test]
    fn handles_are_filtered_and_capped() {
        assert_eq!(clean_handle("Ada.Bsky-Social_1"), "ada.bsky-social_1");
        assert_eq!(clean_handle("a b/c?d#e"), "abcde");
        assert_eq!(clean_handle(&"x".repeat(500)).len(), MAX_HANDLE_CHARS);
        // Past the cap, nothing changes the picture.
        let long = "y".repeat(MAX_HANDLE_CHARS);
        assert_eq!(avatar_svg(&long), avatar_svg(&format!("{long}zzz")));
    }

    #[test]
    fn placeholder_is_a_neutral_silhouette() {
        let svg = placeholder_svg();
        assert!(svg.contains("<circle"));
        assert!(svg.contains("<path"));
        assert!(!svg.contains("\"><"));
    }
}
