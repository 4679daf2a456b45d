//! A column's post cards: avatar, author, the text with its links,
//! searchable tags and mentions and the marks of the column's search (the
//! server sends them with the post), and a permalink with the post's live
//! age. Post text is untrusted: it only ever becomes text nodes, and only
//! checked http(s) addresses become `href`s.
//!
//! The cards are built with the DOM directly rather than as Leptos views.
//! They are never rendered on the server (a column starts empty), so they
//! need no hydration, and a card's view types with a keyed `For` of them
//! cost the WASM bundle 3.6 KB more with brotli than these few calls
//! (docs/building.md, "Page weight"). The list is small (at most 20 cards
//! staying and those fading out), so it is brought in line with the
//! column's [`Feed`] by a plain keyed walk.

use leptos::wasm_bindgen::{JsCast, JsValue};
use leptos::web_sys::{Document, Element, HtmlImageElement, MouseEvent, Node};

use super::address::deep_link_terms;
use super::feed::{age_label, avatar_src, safe_link, Card, Feed, PLACEHOLDER_AVATAR};
use super::text::{marks_in, runs, search_href, Kind};

/// The cards a column shows, in the order of its container's children
/// (newest first).
#[derive(Default)]
pub struct CardList {
    shown: Vec<ShownCard>,
}

struct ShownCard {
    key: u64,
    root: Element,
    time: Element,
    created_ms: f64,
    created_at: String,
    age: String,
    leaving: bool,
}

impl CardList {
    /// Makes `container` show `feed`: new cards built and put in place,
    /// fading ones marked, removed ones taken out, and every age brought
    /// up to `now_ms`.
    pub fn sync(&mut self, container: &Element, feed: &Feed, now_ms: f64, year: i32) {
        let Some(document) = container.owner_document() else {
            return;
        };
        let mut previous = std::mem::take(&mut self.shown);
        for card in &feed.cards {
            let mut shown = match previous.iter().position(|s| s.key == card.key) {
                Some(at) => previous.swap_remove(at),
                None => match build(&document, card) {
                    Ok(shown) => shown,
                    // Only a browser out of memory fails to make elements;
                    // the post is then left out rather than half shown.
                    Err(_) => continue,
                },
            };
            if card.leaving != shown.leaving {
                shown.leaving = card.leaving;
                shown.root.set_class_name(card_class(card.leaving));
            }
            self.shown.push(shown);
        }
        for gone in previous {
            gone.root.remove();
        }

        let mut cursor: Option<Node> = container.first_child();
        for shown in &mut self.shown {
            let root: &Node = shown.root.as_ref();
            if cursor.as_ref() == Some(root) {
                cursor = root.next_sibling();
            } else {
                let _ = container.insert_before(root, cursor.as_ref());
            }
            let age = age_label(
                (now_ms - shown.created_ms) / 1000.0,
                &shown.created_at,
                year,
            );
            if age != shown.age {
                shown.time.set_text_content(Some(&age));
                shown.age = age;
            }
        }
    }
}

fn card_class(leaving: bool) -> &'static str {
    if leaving {
        "tweet fadeOut"
    } else {
        "tweet fadeIn"
    }
}

fn element(
    document: &Document,
    tag: &str,
    attributes: &[(&str, &str)],
) -> Result<Element, JsValue> {
    let element = document.create_element(tag)?;
    for (name, value) in attributes {
        element.set_attribute(name, value)?;
    }
    Ok(element)
}

fn append(parent: &Element, child: &Element) -> Result<(), JsValue> {
    parent.append_with_node_1(child)
}

/// An element holding only `text`, as a text node.
fn text_element(
    document: &Document,
    tag: &str,
    attributes: &[(&str, &str)],
    text: &str,
) -> Result<Element, JsValue> {
    let element = element(document, tag, attributes)?;
    element.set_text_content(Some(text));
    Ok(element)
}

fn build(document: &Document, card: &Card) -> Result<ShownCard, JsValue> {
    let tweet = &card.tweet;
    let root = element(
        document,
        "article",
        &[
            ("class", card_class(false)),
            ("lang", tweet.lang.as_deref().unwrap_or_default()),
        ],
    )?;
    append(
        &root,
        &element(
            document,
            "img",
            &[
                ("class", "avatar"),
                ("src", &avatar_src(&tweet.user_profile_image)),
                ("alt", &format!("Avatar of {}", tweet.name)),
                ("width", "48"),
                ("height", "48"),
                ("loading", "lazy"),
                ("referrerpolicy", "no-referrer"),
            ],
        )?,
    )?;

    let author = element(document, "div", &[("class", "author")])?;
    let auto = ("dir", "auto");
    append(
        &author,
        &text_element(
            document,
            "span",
            &[("class", "full-name"), auto],
            &tweet.name,
        )?,
    )?;
    author.append_with_str_1(" ")?;
    append(
        &author,
        &text_element(
            document,
            "span",
            &[("class", "username"), auto],
            &format!("@{}", tweet.screen_name),
        )?,
    )?;
    author.append_with_str_1(" ")?;
    let time = element(document, "time", &[("datetime", &tweet.created_at)])?;
    let stamp = match safe_link(tweet.url.as_deref()) {
        Some(href) => element(
            document,
            "a",
            &[
                ("class", "permalink"),
                ("href", &href),
                ("target", "_blank"),
                ("rel", "noopener noreferrer"),
            ],
        )?,
        None => element(document, "span", &[("class", "age")])?,
    };
    append(&stamp, &time)?;
    append(&author, &stamp)?;

    let text = element(document, "p", &[("class", "text"), auto])?;
    for run in runs(tweet, &marks_in(tweet)) {
        let link = match run.kind {
            Kind::Plain => None,
            Kind::Link { href } => Some(element(
                document,
                "a",
                &[
                    ("href", &href),
                    ("target", "_blank"),
                    ("rel", "noopener noreferrer nofollow"),
                    auto,
                ],
            )?),
            Kind::Search { search } => Some(element(
                document,
                "a",
                &[
                    ("class", "search-link"),
                    ("href", &search_href(&search)),
                    auto,
                ],
            )?),
        };
        let parent = link.as_ref().unwrap_or(&text);
        for (part, marked) in &run.parts {
            if *marked {
                append(parent, &text_element(document, "mark", &[], part)?)?;
            } else {
                parent.append_with_str_1(part)?;
            }
        }
        if let Some(link) = &link {
            text.append_with_node_1(link)?;
        }
    }

    let body = element(document, "div", &[("class", "tweet-body")])?;
    append(&body, &author)?;
    append(&body, &text)?;
    append(&root, &body)?;
    Ok(ShownCard {
        key: card.key,
        root,
        time,
        created_ms: super::clock::parse_ms(&tweet.created_at),
        created_at: tweet.created_at.clone(),
        // Empty, so that the first sync writes the age.
        age: String::new(),
        leaving: false,
    })
}

/// The search of the `a.search-link` a plain click went to, if it did. A
/// click with a modifier or another button is left to the browser, which
/// opens the link as usual (a new tab with that search).
pub fn search_link_clicked(event: &MouseEvent) -> Option<String> {
    let plain = event.button() == 0
        && !(event.ctrl_key() || event.meta_key() || event.shift_key() || event.alt_key());
    if !plain {
        return None;
    }
    let target: Element = event.target()?.dyn_into().ok()?;
    let link = target.closest("a.search-link").ok()??;
    let search = deep_link_terms(&link.get_attribute("href")?)
        .into_iter()
        .next()?;
    event.prevent_default();
    Some(search)
}

/// A broken avatar link still gets an image, once.
pub fn avatar_failed(event: &leptos::web_sys::Event) {
    let Some(image) = event
        .target()
        .and_then(|t| t.dyn_into::<HtmlImageElement>().ok())
    else {
        return;
    };
    if image.class_name() == "avatar" && !image.src().ends_with(PLACEHOLDER_AVATAR) {
        image.set_src(PLACEHOLDER_AVATAR);
    }
}
