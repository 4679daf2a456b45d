//! One conversion of a service's post into the protocol's post shape, so
//! every source writes `created_at`, `lang`, the avatar and the links the
//! same way.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::wire::{PostLink, Tweet};

/// A post as a source read it, before it takes the protocol's shape.
#[derive(Debug, Default)]
pub struct RawPost<'a> {
    pub id: String,
    pub name: &'a str,
    pub handle: &'a str,
    pub text: String,
    pub avatar: Option<&'a str>,
    pub url: Option<String>,
    /// As the service wrote it; `fallback_time` when absent or not RFC 3339.
    pub created_at: Option<&'a str>,
    pub fallback_time: Option<OffsetDateTime>,
    pub lang: Option<&'a str>,
    pub links: Vec<PostLink>,
    pub tags: Vec<String>,
}

/// The protocol's post for `raw`, from `source`.
pub fn to_tweet(source: &str, raw: RawPost<'_>) -> Tweet {
    let handle = raw.handle.trim().trim_start_matches('@');
    let name = raw.name.trim();
    Tweet {
        id: raw.id,
        name: if name.is_empty() { handle } else { name }.to_owned(),
        screen_name: handle.to_owned(),
        text: raw.text,
        user_profile_image: raw
            .avatar
            .filter(|a| is_http_url(a))
            .unwrap_or("")
            .to_owned(),
        url: raw.url.filter(|u| is_http_url(u)),
        created_at: rfc3339(raw.created_at, raw.fallback_time),
        lang: raw.lang.and_then(language),
        source: source.to_owned(),
        links: raw
            .links
            .into_iter()
            .filter(|l| is_http_url(&l.url))
            .collect(),
        tags: raw.tags,
        marks: Vec::new(),
        spans: Vec::new(),
    }
}

/// True for an absolute http(s) URL: the only kind a page may link to.
pub fn is_http_url(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://"))
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// `created_at` as RFC 3339 in UTC; the fallback (else now) when the
/// service's time is missing or unreadable.
pub fn rfc3339(created_at: Option<&str>, fallback: Option<OffsetDateTime>) -> String {
    let parsed = created_at.and_then(|t| OffsetDateTime::parse(t.trim(), &Rfc3339).ok());
    let time = parsed
        .or(fallback)
        .unwrap_or_else(OffsetDateTime::now_utc)
        .to_offset(time::UtcOffset::UTC);
    time.format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// A BCP 47 tag as the service gave it, or `None` for a missing, malformed
/// or "undetermined" one (X's `und`, `zxx` for no language, `qme` and the
/// like for media-only posts).
pub fn language(tag: &str) -> Option<String> {
    let tag = tag.trim();
    let well_formed = !tag.is_empty()
        && tag.len() <= 35
        && tag.split('-').all(|part| {
            !part.is_empty() && part.len() <= 8 && part.bytes().all(|b| b.is_ascii_alphanumeric())
        });
    let primary = tag.split('-').next().unwrap_or("").to_ascii_lowercase();
    let undetermined = matches!(primary.as_str(), "und" | "zxx" | "mul")
        || (primary.len() == 3 && primary.starts_with('q') && primary.as_str() <= "qtz");
    (well_formed && !undetermined).then(|| tag.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_become_utc_rfc3339_and_bad_ones_fall_back() {
        assert_eq!(
            rfc3339(Some("2024-09-09T21:46:02.102+02:00"), None),
            "2024-09-09T19:46:02.102Z"
        );
        let fallback = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(
            rfc3339(Some("yesterday"), Some(fallback)),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(rfc3339(None, Some(fallback)), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn languages_keep_real_tags_only() {
        assert_eq!(language("en"), Some("en".to_owned()));
        assert_eq!(language("pt-BR"), Some("pt-BR".to_owned()));
        assert_eq!(language("und"), None);
        assert_eq!(language("qme"), None);
        assert_eq!(language("zxx"), None);
        assert_eq!(language(""), None);
        assert_eq!(language("en us"), None);
        assert_eq!(language("<script>"), None);
    }

    #[test]
    fn only_http_links_and_avatars_are_kept() {
        let tweet = to_tweet(
            "x",
            RawPost {
                id: "1".into(),
                name: "",
                handle: "@ada",
                text: "hi".into(),
                avatar: Some("javascript:alert(1)"),
                url: Some("data:text/html,x".into()),
                created_at: Some("2026-01-01T00:00:00Z"),
                links: vec![
                    PostLink {
                        url: "https://example.com/a".into(),
                        start: 0,
                        end: 2,
                    },
                    PostLink {
                        url: "javascript:x".into(),
                        start: 0,
                        end: 2,
                    },
                ],
                ..Default::default()
            },
        );
        assert_eq!(tweet.name, "ada", "an empty name falls back to the handle");
        assert_eq!(tweet.screen_name, "ada");
        assert_eq!(tweet.user_profile_image, "");
        assert_eq!(tweet.url, None);
        assert_eq!(tweet.links.len(), 1);
        assert!(is_http_url("HTTPS://EXAMPLE.COM"));
        assert!(!is_http_url("https://exa mple.com"));
    }
}
