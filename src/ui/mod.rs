//! The page: rendered on the server, hydrated in the browser, fed by the
//! WebSocket client in [`client`].

pub mod address;
#[cfg(feature = "hydrate")]
mod card;
pub mod client;
mod column;
pub mod feed;
#[cfg(feature = "hydrate")]
mod json;
pub mod text;

use leptos::prelude::*;
use leptos_meta::HashedStylesheet;

use self::address::{deep_link_terms, MAX_COLUMNS};
use self::client::LinkState;
use self::column::{Column, ColumnState};
use crate::wire::UpstreamState;

/// Slider bounds and default from docs/protocol.md.
pub const MIN_LIMIT: usize = 1;
pub const MAX_LIMIT: usize = 20;
pub const DEFAULT_LIMIT: usize = 10;

/// The HTML document around the app.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                // The title as it is before any search is accepted (that
                // takes the WebSocket); the browser keeps it up to date
                // from then on (`start_page_tasks`).
                <title>{BASE_TITLE}</title>
                <meta name="description" content="Posts that match your search, the moment they are published."/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                // With hashed file names (release builds), the stylesheet's
                // name carries its content hash, so it can be cached for good.
                <HashedStylesheet options=options.clone() id="leptos"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The page's Content Security Policy: scripts only from this site or
/// carrying this response's nonce, no plugins, no framing. Post text is
/// rendered as text anyway; this is the second line of defence.
pub fn content_security_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' http: https:; connect-src 'self' ws: wss:; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

#[component]
pub fn App() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let (Some(nonce), Some(response)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) {
        if let Ok(value) = axum::http::HeaderValue::from_str(&content_security_policy(&nonce)) {
            response.insert_header(axum::http::header::CONTENT_SECURITY_POLICY, value);
        }
    }
    // One page, so no client-side router: it would only add weight to the
    // WASM bundle. Other paths are static files or a plain 404. The title
    // and description are the shell's, not `leptos_meta`'s components:
    // those cost the bundle 5.8 KB with brotli for one line of text.
    view! { <SearchPage/> }
}

/// One of the page's [`MAX_COLUMNS`] column places, as the page knows it:
/// what the address and the title need.
#[derive(Clone)]
pub struct ColumnEntry {
    /// Its place, 0 to `MAX_COLUMNS - 1`; 0 is the first column, which is
    /// always open.
    pub id: u32,
    /// The search from the address, sent as soon as the column connects.
    pub initial: Option<String>,
    /// The column's accepted search.
    pub term: RwSignal<Option<String>>,
    pub link: RwSignal<LinkState>,
}

impl ColumnEntry {
    fn new(id: u32, initial: Option<String>) -> Self {
        ColumnEntry {
            id,
            initial,
            term: RwSignal::new(None),
            link: RwSignal::new(LinkState::Connecting),
        }
    }
}

/// What the page shows beyond its columns.
#[derive(Clone, Copy)]
pub struct PageState {
    pub upstream: RwSignal<Option<(UpstreamState, Option<String>)>>,
    pub source: RwSignal<Option<String>>,
    /// The source's posts per second, from `stats`.
    pub source_rate: RwSignal<Option<f64>>,
    /// Every column place, open or not.
    entries: StoredValue<Vec<ColumnEntry>>,
    /// The open columns' places, in the order they are shown.
    pub columns: RwSignal<Vec<u32>>,
    /// The time, refreshed every few seconds for ages and rates.
    pub now_ms: RwSignal<f64>,
    /// Posts that arrived while the tab was hidden.
    pub unseen: RwSignal<u64>,
    hidden: RwSignal<bool>,
    /// Posts not announced yet: column id, its search, how many.
    pending_announcement: StoredValue<Vec<(u32, String, u64)>>,
    pub announcement: RwSignal<String>,
}

/// The page's title while no search is accepted.
const BASE_TITLE: &str = "twitter-search: live search";

/// How often ages and rates are refreshed.
const TICK_MS: u32 = 5_000;
/// Screen readers hear about new posts at most this often.
const ANNOUNCE_EVERY_MS: u32 = 10_000;

impl PageState {
    fn new(initial: Vec<String>) -> Self {
        let open = initial.len().clamp(1, MAX_COLUMNS) as u32;
        let mut initial = initial.into_iter();
        let entries = (0..MAX_COLUMNS as u32)
            .map(|id| ColumnEntry::new(id, initial.next()))
            .collect();
        PageState {
            upstream: RwSignal::new(None),
            source: RwSignal::new(None),
            source_rate: RwSignal::new(None),
            entries: StoredValue::new(entries),
            columns: RwSignal::new((0..open).collect()),
            now_ms: RwSignal::new(clock::now_ms()),
            unseen: RwSignal::new(0),
            hidden: RwSignal::new(false),
            pending_announcement: StoredValue::new(Vec::new()),
            announcement: RwSignal::new(String::new()),
        }
    }

    /// Opens the first closed place as the last column.
    pub fn add_column(&self) {
        self.columns.update(|columns| {
            if let Some(id) = (0..MAX_COLUMNS as u32).find(|id| !columns.contains(id)) {
                columns.push(id);
            }
        });
    }

    pub fn close_column(&self, id: u32) {
        if id != 0 {
            self.columns
                .update(|columns| columns.retain(|open| *open != id));
            self.pending_announcement
                .update_value(|pending| pending.retain(|(column, _, _)| *column != id));
        }
    }

    /// Matching posts arrived in `column`: counted for the hidden tab's
    /// title and for the next announcement.
    pub fn posts_arrived(&self, column: &ColumnState, count: usize) {
        if self.hidden.get_untracked() {
            self.unseen.update(|n| *n += count as u64);
        }
        let term = column.term.get_untracked().unwrap_or_default();
        self.pending_announcement.update_value(|pending| {
            match pending
                .iter_mut()
                .find(|(id, t, _)| *id == column.id && *t == term)
            {
                Some((_, _, n)) => *n += count as u64,
                None => pending.push((column.id, term, count as u64)),
            }
        });
    }

    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    fn announce(&self) {
        let pending = std::mem::take(&mut *self.pending_announcement.write_value());
        if pending.is_empty() {
            return;
        }
        let text = announcement_text(&pending);
        if self.announcement.with_untracked(|current| *current == text) {
            // A live region says nothing when its text stays the same (a
            // steady stream brings the same count every time): emptied
            // first, the same news is heard again.
            self.announcement.set(String::new());
            let announcement = self.announcement;
            set_timeout(
                move || announcement.set(text),
                std::time::Duration::from_millis(100),
            );
        } else {
            self.announcement.set(text);
        }
    }

    pub fn is_open(&self, id: u32) -> bool {
        self.columns.with(|columns| columns.contains(&id))
    }

    /// The column at place `id`.
    pub fn entry(&self, id: u32) -> Option<ColumnEntry> {
        self.entries
            .with_value(|entries| entries.get(id as usize).cloned())
    }

    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    fn first_term(&self) -> Option<String> {
        self.entry(0).and_then(|first| first.term.get())
    }

    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    fn title(&self) -> String {
        let base = match self.first_term() {
            Some(term) => format!("\"{term}\" · twitter-search"),
            None => BASE_TITLE.to_owned(),
        };
        match self.unseen.get() {
            0 => base,
            n => format!("({n}) {base}"),
        }
    }
}

/// "3 new posts for “rust”; 1 new post for “#news”".
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
fn announcement_text(pending: &[(u32, String, u64)]) -> String {
    pending
        .iter()
        .map(|(_, term, n)| {
            let posts = if *n == 1 { "post" } else { "posts" };
            format!("{n} new {posts} for \u{201c}{term}\u{201d}")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The time in the browser; on the server, where no post is shown, a
/// stand-in that keeps the rendered page the same on every request.
pub mod clock {
    pub fn now_ms() -> f64 {
        #[cfg(feature = "hydrate")]
        return js_sys::Date::now();
        #[cfg(not(feature = "hydrate"))]
        return 0.0;
    }

    /// Milliseconds since 1970 of an RFC 3339 time, NaN when unreadable.
    pub fn parse_ms(rfc3339: &str) -> f64 {
        #[cfg(feature = "hydrate")]
        return js_sys::Date::parse(rfc3339);
        #[cfg(not(feature = "hydrate"))]
        {
            let _ = rfc3339;
            f64::NAN
        }
    }

    pub fn current_year() -> i32 {
        #[cfg(feature = "hydrate")]
        return js_sys::Date::new_0().get_utc_full_year() as i32;
        #[cfg(not(feature = "hydrate"))]
        return 1970;
    }
}

/// The query string of the address the page was opened with, read the
/// same way on the server (rendering) and in the browser (hydrating).
fn opening_query() -> String {
    #[cfg(feature = "ssr")]
    if let Some(parts) = use_context::<axum::http::request::Parts>() {
        return parts.uri.query().unwrap_or_default().to_owned();
    }
    #[cfg(feature = "hydrate")]
    return window().location().search().unwrap_or_default();
    #[allow(unreachable_code)]
    String::new()
}

#[component]
fn SearchPage() -> impl IntoView {
    let page = PageState::new(deep_link_terms(&opening_query()));
    start_page_tasks(page);

    let first_link = move || {
        page.entry(0)
            .map(|first| first.link.get())
            .unwrap_or(LinkState::Connecting)
    };
    let columns = NodeRef::<leptos::html::Div>::new();
    keep_columns_in_order(page, columns);
    let link_label = move || {
        let upstream = page.upstream.get();
        match (first_link(), upstream) {
            (LinkState::Connecting, _) => ("connecting", "Connecting…".to_owned()),
            (LinkState::Reconnecting, _) => ("reconnecting", "Reconnecting…".to_owned()),
            (
                LinkState::Connected,
                Some((UpstreamState::Failed | UpstreamState::Reconnecting, detail)),
            ) => (
                "upstream-down",
                match detail {
                    Some(detail) => format!("Source unavailable: {detail}"),
                    None => "Source unavailable".to_owned(),
                },
            ),
            (LinkState::Connected, Some((UpstreamState::Connecting, Some(detail)))) => {
                ("upstream-connecting", format!("Source: {detail}"))
            }
            (LinkState::Connected, _) => ("connected", "Live".to_owned()),
        }
    };

    view! {
        <Masthead page link_label/>
        <main class="container">
            <div class="columns-bar">
                <button
                    type="button"
                    id="add-column"
                    class="btn"
                    disabled=move || { page.columns.with(Vec::len) >= MAX_COLUMNS }
                    on:click=move |_| page.add_column()
                >
                    "+ Add column"
                </button>
            </div>
            // Every place is rendered, the closed ones hidden: the page
            // then hydrates a fixed list instead of a keyed one, which
            // costs the WASM bundle 9.7 KB less with brotli (docs/building.md,
            // "Page weight"). Only open places are `section.column`.
            <div class="columns" node_ref=columns>
                {page
                    .entries
                    .get_value()
                    .into_iter()
                    .map(|entry| view! { <Column entry page/> })
                    .collect_view()}
            </div>
        </main>
        <div id="announcer" class="visually-hidden" aria-live="polite" role="status">
            {move || page.announcement.get()}
        </div>
        <footer class="footer">
            <p>"Search words: spaces mean all of them, commas or OR mean any; \"quotes\" for a phrase, -word to leave out, #tag, @name, from:handle, lang:en. Press / to search."</p>
        </footer>
    }
}

/// Timers and listeners that only the browser runs: the clock for ages and
/// rates, announcements, the hidden tab's count, `/` to search, and the
/// address that follows the accepted searches.
fn start_page_tasks(page: PageState) {
    #[cfg(feature = "hydrate")]
    {
        use self::address::query_for;
        use leptos::wasm_bindgen::JsCast;

        let tick = set_interval_with_handle(
            move || page.now_ms.set(clock::now_ms()),
            std::time::Duration::from_millis(u64::from(TICK_MS)),
        );
        let announce = set_interval_with_handle(
            move || page.announce(),
            std::time::Duration::from_millis(u64::from(ANNOUNCE_EVERY_MS)),
        );
        let visibility = window_event_listener(leptos::ev::visibilitychange, move |_| {
            let hidden = document().hidden();
            page.hidden.set(hidden);
            if !hidden {
                page.unseen.set(0);
            }
        });
        let keys = window_event_listener(leptos::ev::keydown, move |ev| {
            if ev.key() != "/" || ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
                return;
            }
            let typing = ev
                .target()
                .and_then(|t| t.dyn_into::<leptos::web_sys::Element>().ok())
                .is_some_and(|el| {
                    matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT")
                        || el.closest("[contenteditable]").ok().flatten().is_some()
                });
            if typing {
                return;
            }
            if let Some(input) = document()
                .get_element_by_id("searchTerm")
                .and_then(|el| el.dyn_into::<leptos::web_sys::HtmlElement>().ok())
            {
                ev.prevent_default();
                let _ = input.focus();
            }
        });
        on_cleanup(move || {
            if let Ok(tick) = tick {
                tick.clear();
            }
            if let Ok(announce) = announce {
                announce.clear();
            }
            visibility.remove();
            keys.remove();
        });

        Effect::new(move |_| document().set_title(&page.title()));

        // The address shows the accepted searches, in column order, once
        // any search was accepted (until then it keeps the deep link).
        let any_accepted = StoredValue::new(false);
        Effect::new(move |_| {
            let terms: Vec<String> = page.columns.with(|columns| {
                columns
                    .iter()
                    .filter_map(|&id| page.entry(id).and_then(|c| c.term.get()))
                    .collect()
            });
            if terms.is_empty() && !any_accepted.get_value() {
                return;
            }
            any_accepted.set_value(true);
            let location = window().location();
            let path = location.pathname().unwrap_or_else(|_| "/".to_owned());
            let query = query_for(terms.iter().map(String::as_str));
            let url = format!("{path}{query}");
            let current = format!("{path}{}", location.search().unwrap_or_default());
            if url != current {
                if let Ok(history) = window().history() {
                    let _ = history.replace_state_with_url(
                        &leptos::wasm_bindgen::JsValue::NULL,
                        "",
                        Some(&url),
                    );
                }
            }
        });
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = (page, TICK_MS, ANNOUNCE_EVERY_MS);
    }
}

/// Shows the open columns in the order they were opened: a column opened
/// in a place freed by a closed one goes last, as in a list. Moving the
/// elements is safe: the places are a fixed list that Leptos never
/// rebuilds.
fn keep_columns_in_order(page: PageState, container: NodeRef<leptos::html::Div>) {
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        let order = page.columns.get();
        let Some(container) = container.get() else {
            return;
        };
        // Only what is out of order moves, so focus stays where it is.
        let mut previous: Option<leptos::web_sys::Element> = None;
        for id in order {
            let selector = format!(":scope > [data-column=\"{id}\"]");
            let Ok(Some(section)) = container.query_selector(&selector) else {
                continue;
            };
            let in_order = previous.as_ref().is_none_or(|previous| {
                previous.compare_document_position(&section)
                    & leptos::web_sys::Node::DOCUMENT_POSITION_FOLLOWING
                    != 0
            });
            if !in_order {
                let _ = container.append_child(&section);
            }
            previous = Some(section);
        }
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = (page, container);
}

// The page's parts keep their concrete view types: each type erased with
// `into_any` carries its own copies of the build, rebuild and (sync and
// async) hydration code in the WASM, which cost the columns, the results
// list, the masthead and the (then Leptos) card 20.6 KB with brotli
// (docs/building.md, "Page weight").

#[component]
fn Masthead(
    page: PageState,
    link_label: impl Fn() -> (&'static str, String) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let source_rate = move || page.source_rate.get().map(rate_label);
    view! {
        <header class="masthead">
            <h1>"Twitter Search"</h1>
            <p class="tagline">"Posts that match your search, the moment they are published."</p>
            <p id="connection-state" data-state=move || link_label().0 aria-live="polite">
                <span class="dot" aria-hidden="true"></span>
                {move || link_label().1}
                {move || page.source.get().map(|s| format!(" · source: {s}"))}
                " "
                <span id="source-rate" title="posts per second from the source">{source_rate}</span>
            </p>
        </header>
    }
}

/// `85 posts/s`, or one decimal under 10 (`2.5 posts/s`). Integer
/// arithmetic: formatting a float would add its whole machinery to the
/// browser bundle.
pub fn rate_label(posts_per_second: f64) -> String {
    let tenths = (posts_per_second.max(0.0) * 10.0).round() as u64;
    if tenths >= 100 || tenths.is_multiple_of(10) {
        format!("{} posts/s", (tenths + 5) / 10)
    } else {
        format!("{}.{} posts/s", tenths / 10, tenths % 10)
    }
}

#[cfg(test)]
mod tests {
    use super::{announcement_text, rate_label};

    #[test]
    fn source_rates_read_as_people_write_them() {
        assert_eq!(rate_label(85.4), "85 posts/s");
        assert_eq!(rate_label(85.5), "86 posts/s");
        assert_eq!(rate_label(2.5), "2.5 posts/s");
        assert_eq!(rate_label(4.0), "4 posts/s");
        assert_eq!(rate_label(0.04), "0 posts/s");
        assert_eq!(rate_label(-1.0), "0 posts/s");
        assert_eq!(rate_label(f64::NAN), "0 posts/s");
    }

    #[test]
    fn announcements_name_each_search() {
        assert_eq!(
            announcement_text(&[(0, "rust".into(), 3), (1, "#news".into(), 1)]),
            "3 new posts for \u{201c}rust\u{201d}; 1 new post for \u{201c}#news\u{201d}"
        );
    }
}
