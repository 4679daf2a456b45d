//! One search column: its own WebSocket, search, Stop/Start, slider, list,
//! hold while reading and rate. The first column carries the original
//! page's ids (`#searchTerm`, `#tweet-container`, ...); every column has
//! the same parts by class (docs/protocol.md, "The page").

use std::sync::Arc;

use leptos::prelude::*;

use super::client::{Command, Link, LinkState};
use super::feed::{Feed, RateWindow, FADE_MS};
use super::{clock, ColumnEntry, PageState, DEFAULT_LIMIT, MAX_LIMIT, MIN_LIMIT};
use crate::wire::{ClientMessage, Tweet};

/// Everything one column shows, as signals its WebSocket client writes.
#[derive(Clone, Copy)]
pub struct ColumnState {
    pub id: u32,
    pub link: RwSignal<LinkState>,
    /// The term of the last `updatedTerm`.
    pub term: RwSignal<Option<String>>,
    pub streaming: RwSignal<bool>,
    pub search_error: RwSignal<String>,
    pub feed: RwSignal<Feed>,
    pub limit: RwSignal<usize>,
    pub skipped: RwSignal<u64>,
    /// Posts that arrived while the person was reading the list, oldest first.
    pub held: RwSignal<Vec<Arc<Tweet>>>,
    pub pointer_inside: RwSignal<bool>,
    pub focus_inside: RwSignal<bool>,
    pub rate: RwSignal<RateWindow>,
}

impl ColumnState {
    fn new(entry: &ColumnEntry) -> Self {
        ColumnState {
            id: entry.id,
            link: entry.link,
            term: entry.term,
            streaming: RwSignal::new(true),
            search_error: RwSignal::new(String::new()),
            feed: RwSignal::new(Feed::default()),
            limit: RwSignal::new(DEFAULT_LIMIT),
            skipped: RwSignal::new(0),
            held: RwSignal::new(Vec::new()),
            pointer_inside: RwSignal::new(false),
            focus_inside: RwSignal::new(false),
            rate: RwSignal::new(RateWindow::default()),
        }
    }

    /// Back to an empty column, for a place that was closed.
    fn reset(&self) {
        self.term.set(None);
        self.streaming.set(true);
        self.search_error.set(String::new());
        // Cleared, not replaced: card keys are never reused on one page.
        self.feed.update(Feed::clear);
        self.limit.set(DEFAULT_LIMIT);
        self.skipped.set(0);
        self.held.set(Vec::new());
        self.pointer_inside.set(false);
        self.focus_inside.set(false);
        self.rate.set(RateWindow::default());
    }

    fn is_first(&self) -> bool {
        self.id == 0
    }

    /// The server accepted `term`.
    pub fn accepted(&self, term: String) {
        self.term.set(Some(term));
        self.streaming.set(true);
        self.search_error.set(String::new());
        self.skipped.set(0);
    }

    /// Matching posts arrived (oldest first): counted, then shown, or held
    /// while the person reads the list.
    pub fn receive(&self, tweets: Vec<Arc<Tweet>>, page: &PageState) {
        if tweets.is_empty() {
            return;
        }
        let now = clock::now_ms();
        self.rate.update(|rate| rate.record(now, tweets.len()));
        page.posts_arrived(self, tweets.len());
        if self.is_holding() {
            self.held.update(|held| {
                held.extend(tweets);
                // Only the newest `MAX_LIMIT` can ever be shown.
                let excess = held.len().saturating_sub(MAX_LIMIT);
                held.drain(..excess);
            });
        } else {
            self.admit(tweets);
        }
    }

    fn is_holding(&self) -> bool {
        self.pointer_inside.get_untracked() || self.focus_inside.get_untracked()
    }

    /// Shows the held posts, newest first, the slider's limit applied.
    pub fn release(&self) {
        let held = self.held.try_update(std::mem::take).unwrap_or_default();
        if !held.is_empty() {
            self.admit(held);
        }
    }

    /// Shows new posts and starts the fade-out of those past the limit.
    fn admit(&self, tweets: Vec<Arc<Tweet>>) {
        let limit = self.limit.get_untracked();
        let leaving = self
            .feed
            .try_update(|feed| feed.admit(tweets, limit))
            .unwrap_or_default();
        self.remove_later(leaving);
    }

    fn apply_limit(&self) {
        let limit = self.limit.get_untracked();
        let leaving = self
            .feed
            .try_update(|feed| feed.enforce_limit(limit))
            .unwrap_or_default();
        self.remove_later(leaving);
    }

    fn remove_later(&self, keys: Vec<u64>) {
        if keys.is_empty() {
            return;
        }
        let feed = self.feed;
        set_timeout(
            move || feed.update(|f| f.remove(&keys)),
            std::time::Duration::from_millis(FADE_MS),
        );
    }
}

/// `base` for the first column (the original page's id), `base-<n>` for
/// the others, so that every label still points at its own control.
fn element_id(column: u32, base: &str) -> String {
    if column == 0 {
        base.to_owned()
    } else {
        format!("{base}-{column}")
    }
}

#[component]
pub fn Column(entry: ColumnEntry, page: PageState) -> impl IntoView {
    let state = ColumnState::new(&entry);
    let link = Link::start(state, page);
    on_cleanup(move || link.send(Command::Close));
    let typed = RwSignal::new(entry.initial.clone().unwrap_or_default());
    if let Some(term) = entry.initial.clone() {
        link.send(Command::Send(ClientMessage::UpdateTerm { term }));
    }
    let id = state.id;
    let open = move || page.is_open(id);
    // A place connects when it opens; when it closes, its WebSocket is
    // closed and it is emptied for the next column opened there.
    Effect::new(move |was_open: Option<bool>| {
        let now_open = open();
        if now_open && was_open != Some(true) {
            link.send(Command::Open);
        } else if !now_open && was_open == Some(true) {
            link.send(Command::Close);
            state.reset();
            typed.set(String::new());
        }
        now_open
    });
    let search = move |term: String| {
        typed.set(term.clone());
        link.send(Command::Send(ClientMessage::UpdateTerm { term }));
    };
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        search(typed.get_untracked());
    };
    let on_toggle = move |_| {
        let message = if state.streaming.get_untracked() {
            ClientMessage::StopStream
        } else {
            ClientMessage::StartStream
        };
        link.send(Command::Send(message));
    };
    let on_slider = move |ev: leptos::ev::Event| {
        let value = event_target_value(&ev)
            .parse::<usize>()
            .unwrap_or(DEFAULT_LIMIT)
            .clamp(MIN_LIMIT, MAX_LIMIT);
        state.limit.set(value);
        state.apply_limit();
    };
    let on_search_link = Callback::new(search);
    let first = state.is_first();
    let has_term = move || state.term.with(Option::is_some);
    let close = (!first).then(|| {
        view! {
            <button
                type="button"
                class="btn close-column"
                aria-label="Close this column"
                on:click=move |_| page.close_column(id)
            >
                "×"
            </button>
        }
    });
    view! {
        <section
            class=move || if open() { "column" } else { "column-place" }
            data-column=id.to_string()
            hidden=move || !open()
            aria-label=move || column_label(state)
        >
            {close}
            <form class="search search-form" name=first.then_some("search") on:submit=on_submit>
                <label for=element_id(id, "searchTerm") class="visually-hidden">"Search"</label>
                <input
                    type="search"
                    id=element_id(id, "searchTerm")
                    class="search-input"
                    name="searchTerm"
                    placeholder="music, rust OR python, #news, coffee -tea"
                    autocomplete="off"
                    value=entry.initial.clone().unwrap_or_default()
                    on:input=move |ev| typed.set(event_target_value(&ev))
                    prop:value=move || typed.get()
                />
                <button type="submit" class="btn btn-primary">"Search"</button>
                <button
                    type="button"
                    id=first.then_some("toggle-button")
                    class="btn toggle-button"
                    class:stopped=move || !state.streaming.get()
                    hidden=move || !has_term()
                    on:click=on_toggle
                >
                    {move || if state.streaming.get() { "Stop Streaming" } else { "Start Streaming" }}
                </button>
            </form>
            <p
                id=first.then_some("search-error")
                class="search-error"
                role="alert"
                class:has-error=move || state.search_error.with(|e| !e.is_empty())
            >
                {move || state.search_error.get()}
            </p>
            <div class="slider-row">
                <label for=element_id(id, "slider")>"Posts on screen: "</label>
                <input
                    type="range"
                    id=element_id(id, "slider")
                    class="slider"
                    min=MIN_LIMIT.to_string()
                    max=MAX_LIMIT.to_string()
                    step="1"
                    value=DEFAULT_LIMIT.to_string()
                    prop:value=move || state.limit.get().to_string()
                    on:input=on_slider
                    on:change=on_slider
                />
                <output id=element_id(id, "sliderValue") class="slider-value" for=element_id(id, "slider")>
                    {move || state.limit.get()}
                </output>
                <button
                    type="button"
                    id=first.then_some("clear-button")
                    class="btn clear-button"
                    on:click=move |_| {
                        state.held.set(Vec::new());
                        state.feed.update(Feed::clear);
                    }
                >
                    "Clear"
                </button>
            </div>
            <ColumnResults state page on_search_link/>
        </section>
    }
}

fn column_label(state: ColumnState) -> String {
    match state.term.get() {
        Some(term) => format!("Posts for \u{201c}{term}\u{201d}"),
        None => "New search".to_owned(),
    }
}

#[component]
fn ColumnResults(
    state: ColumnState,
    page: PageState,
    on_search_link: Callback<String>,
) -> impl IntoView {
    let first = state.id == 0;
    let has_term = move || state.term.with(Option::is_some);
    let held = move || state.held.with(Vec::len);
    let rate = move || {
        page.now_ms.track();
        format!(
            "{} / min",
            state.rate.with(|r| r.per_minute(clock::now_ms()))
        )
    };
    let container = NodeRef::<leptos::html::Div>::new();
    // The cards follow the feed and the clock (their ages); only the
    // browser shows cards, so the server renders the list empty.
    #[cfg(feature = "hydrate")]
    Effect::new(move |list: Option<super::card::CardList>| {
        let mut list = list.unwrap_or_default();
        let now = page.now_ms.get().max(clock::now_ms());
        // A copy (at most 40 shared posts), so that nothing the DOM
        // changes set off (a focused card removed fires `focusout`, which
        // may show held posts) runs while the feed is borrowed.
        let feed = state.feed.get();
        if let Some(container) = container.get() {
            list.sync(&container, &feed, now, clock::current_year());
        }
        list
    });
    let leave = move || {
        state.pointer_inside.set(false);
        if !state.focus_inside.get_untracked() {
            state.release();
        }
    };
    view! {
        <div class="results-head">
            <h2 class="results-heading" hidden=move || !has_term()>
                "Displaying Tweets for \""
                <span id=first.then_some("search-term") class="search-term">
                    {move || state.term.get().unwrap_or_default()}
                </span>
                "\""
            </h2>
            <span class="rate" title="matching posts in the last minute">{rate}</span>
        </div>
        <p id=first.then_some("skipped-notice") class="notice skipped-notice" hidden=move || state.skipped.get() == 0>
            {move || format!("{} matching posts were skipped because this page fell behind.", state.skipped.get())}
        </p>
        <button type="button" class="btn new-posts" hidden=move || held() == 0 on:click=move |_| state.release()>
            {move || match held() {
                1 => "1 new post".to_owned(),
                n => format!("{n} new posts"),
            }}
        </button>
        <div
            id=first.then_some("tweet-container")
            class="tweet-container"
            node_ref=container
            on:click=move |ev: leptos::ev::MouseEvent| {
                #[cfg(feature = "hydrate")]
                if let Some(search) = super::card::search_link_clicked(&ev) {
                    on_search_link.run(search);
                }
                #[cfg(not(feature = "hydrate"))]
                let _ = (ev, on_search_link);
            }
            on:error:capture=move |ev| {
                #[cfg(feature = "hydrate")]
                super::card::avatar_failed(&ev);
                #[cfg(not(feature = "hydrate"))]
                let _ = ev;
            }
            on:pointerenter=move |_| state.pointer_inside.set(true)
            on:pointerleave=move |_| leave()
            on:focusin=move |_| state.focus_inside.set(true)
            on:focusout=move |ev: leptos::ev::FocusEvent| {
                if !focus_stays_inside(&ev) {
                    state.focus_inside.set(false);
                    if !state.pointer_inside.get_untracked() {
                        state.release();
                    }
                }
            }
        >
        </div>
    }
}

/// Whether focus moves to another element of the same list.
fn focus_stays_inside(ev: &leptos::ev::FocusEvent) -> bool {
    #[cfg(feature = "hydrate")]
    {
        use leptos::wasm_bindgen::JsCast;
        let container = ev
            .current_target()
            .and_then(|t| t.dyn_into::<leptos::web_sys::Node>().ok());
        let next = ev
            .related_target()
            .and_then(|t| t.dyn_into::<leptos::web_sys::Node>().ok());
        matches!((container, next), (Some(c), Some(n)) if c.contains(Some(&n)))
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = ev;
        false
    }
}
