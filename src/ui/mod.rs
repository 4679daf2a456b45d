//! The page: rendered on the server, hydrated in the browser, fed by the
//! WebSocket client in [`client`].

pub mod client;
pub mod feed;

use std::sync::Arc;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Meta, MetaTags, Stylesheet, Title};

use self::client::{Command, Link, LinkState};
use self::feed::{avatar_src, safe_link, Card, Feed, FADE_MS, PLACEHOLDER_AVATAR};
use crate::wire::{ClientMessage, Tweet, UpstreamState};

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
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
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
    provide_meta_context();
    #[cfg(feature = "ssr")]
    if let (Some(nonce), Some(response)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) {
        if let Ok(value) = axum::http::HeaderValue::from_str(&content_security_policy(&nonce)) {
            response.insert_header(axum::http::header::CONTENT_SECURITY_POLICY, value);
        }
    }
    view! {
        <Stylesheet id="leptos" href="/pkg/twitter-search.css"/>
        <Title text="twitter-search: live search"/>
        <Meta name="description" content="Posts that match your search, the moment they are published."/>
        // One page, so no client-side router: it would only add weight to
        // the WASM bundle. Other paths are static files or a plain 404.
        <SearchPage/>
    }
}

/// Everything the page shows, as signals the WebSocket client writes.
#[derive(Clone, Copy)]
pub struct PageState {
    pub link: RwSignal<LinkState>,
    pub upstream: RwSignal<Option<(UpstreamState, Option<String>)>>,
    pub source: RwSignal<Option<String>>,
    /// The term of the last `updatedTerm`.
    pub term: RwSignal<Option<String>>,
    pub streaming: RwSignal<bool>,
    pub search_error: RwSignal<String>,
    pub feed: RwSignal<Feed>,
    pub limit: RwSignal<usize>,
    pub skipped: RwSignal<u64>,
}

impl PageState {
    fn new() -> Self {
        PageState {
            link: RwSignal::new(LinkState::Connecting),
            upstream: RwSignal::new(None),
            source: RwSignal::new(None),
            term: RwSignal::new(None),
            streaming: RwSignal::new(true),
            search_error: RwSignal::new(String::new()),
            feed: RwSignal::new(Feed::default()),
            limit: RwSignal::new(DEFAULT_LIMIT),
            skipped: RwSignal::new(0),
        }
    }

    /// Shows new posts and starts the fade-out of those past the limit.
    pub fn admit(&self, tweets: Vec<Arc<Tweet>>) {
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

#[component]
fn SearchPage() -> impl IntoView {
    let state = PageState::new();
    let link = Link::start(state);
    let typed = RwSignal::new(String::new());

    let send = move |message: ClientMessage| link.send(Command::Send(message));
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        send(ClientMessage::UpdateTerm {
            term: typed.get_untracked(),
        });
    };
    let on_toggle = move |_| {
        if state.streaming.get_untracked() {
            send(ClientMessage::StopStream);
        } else {
            send(ClientMessage::StartStream);
        }
    };
    let on_slider = move |ev: leptos::ev::Event| {
        let value = event_target_value(&ev)
            .parse::<usize>()
            .unwrap_or(DEFAULT_LIMIT)
            .clamp(MIN_LIMIT, MAX_LIMIT);
        state.limit.set(value);
        state.apply_limit();
    };

    let has_term = move || state.term.with(Option::is_some);
    let link_label = move || {
        let upstream = state.upstream.get();
        match (state.link.get(), upstream) {
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
        <Masthead state link_label/>
        <main class="container">
            <Controls state typed has_term on_submit on_toggle on_slider/>
            <Results state has_term/>
        </main>
        <footer class="footer">
            <p>"Search words: spaces mean all of them, commas or OR mean any; \"quotes\" for a phrase, -word to leave out, #tag, @name, from:handle, lang:en."</p>
        </footer>
    }
}

// The page is split into parts whose views are type-erased (`into_any`):
// one nested view type for the whole page is too deep for the compiler.

#[component]
fn Masthead(
    state: PageState,
    link_label: impl Fn() -> (&'static str, String) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    view! {
        <header class="masthead">
            <h1>"Twitter Search"</h1>
            <p class="tagline">"Posts that match your search, the moment they are published."</p>
            <p id="connection-state" data-state=move || link_label().0 aria-live="polite">
                <span class="dot" aria-hidden="true"></span>
                {move || link_label().1}
                {move || state.source.get().map(|s| format!(" · source: {s}"))}
            </p>
        </header>
    }
    .into_any()
}

#[component]
fn Controls(
    state: PageState,
    typed: RwSignal<String>,
    has_term: impl Fn() -> bool + Copy + Send + Sync + 'static,
    on_submit: impl FnMut(leptos::ev::SubmitEvent) + 'static,
    on_toggle: impl FnMut(leptos::ev::MouseEvent) + 'static,
    on_slider: impl Fn(leptos::ev::Event) + Copy + 'static,
) -> impl IntoView {
    view! {
        <section class="controls">
            <form name="search" class="search-form" on:submit=on_submit>
                <label for="searchTerm" class="visually-hidden">"Search"</label>
                <input
                    type="search"
                    id="searchTerm"
                    name="searchTerm"
                    placeholder="music, rust OR python, #news, coffee -tea"
                    autocomplete="off"
                    on:input=move |ev| typed.set(event_target_value(&ev))
                    prop:value=move || typed.get()
                />
                <button type="submit" class="btn btn-primary">"Search"</button>
                <button
                    type="button"
                    id="toggle-button"
                    class="btn"
                    class:stopped=move || !state.streaming.get()
                    hidden=move || !has_term()
                    on:click=on_toggle
                >
                    {move || if state.streaming.get() { "Stop Streaming" } else { "Start Streaming" }}
                </button>
            </form>
            <p id="search-error" role="alert" class:has-error=move || state.search_error.with(|e| !e.is_empty())>
                {move || state.search_error.get()}
            </p>
            <div class="slider-row">
                <label for="slider">"Posts on screen: "</label>
                <input
                    type="range"
                    id="slider"
                    min=MIN_LIMIT.to_string()
                    max=MAX_LIMIT.to_string()
                    step="1"
                    value=DEFAULT_LIMIT.to_string()
                    prop:value=move || state.limit.get().to_string()
                    on:input=on_slider
                    on:change=on_slider
                />
                <output id="sliderValue" for="slider">{move || state.limit.get()}</output>
                <button type="button" id="clear-button" class="btn" on:click=move |_| state.feed.update(Feed::clear)>
                    "Clear"
                </button>
            </div>
        </section>
    }
    .into_any()
}

#[component]
fn Results(
    state: PageState,
    has_term: impl Fn() -> bool + Copy + Send + Sync + 'static,
) -> impl IntoView {
    view! {
        <h2 class="results-heading" hidden=move || !has_term()>
            "Displaying Tweets for \""
            <span id="search-term">{move || state.term.get().unwrap_or_default()}</span>
            "\""
        </h2>
        <p id="skipped-notice" class="notice" hidden=move || state.skipped.get() == 0>
            {move || format!("{} matching posts were skipped because this page fell behind.", state.skipped.get())}
        </p>
        <div id="tweet-container">
            <For
                each=move || state.feed.get().cards
                key=|card| card.key
                children=move |card: Card| view! { <TweetCard card state/> }.into_any()
            />
        </div>
    }
    .into_any()
}

#[component]
fn TweetCard(card: Card, state: PageState) -> impl IntoView {
    let key = card.key;
    let tweet = card.tweet;
    let leaving = move || state.feed.with(|f| f.is_leaving(key));
    let avatar = avatar_src(&tweet.user_profile_image);
    let permalink = safe_link(tweet.url.as_deref());
    let handle = format!("@{}", tweet.screen_name);
    let alt = format!("Avatar of {}", tweet.name);
    view! {
        <article class="tweet" class:fadeIn=move || !leaving() class:fadeOut=leaving lang=tweet.lang.clone().unwrap_or_default()>
            <img
                class="avatar"
                src=avatar
                alt=alt
                width="48"
                height="48"
                loading="lazy"
                referrerpolicy="no-referrer"
                on:error=move |ev| {
                    // A broken avatar link still gets an image, once.
                    let img = event_target::<leptos::web_sys::HtmlImageElement>(&ev);
                    if !img.src().ends_with(PLACEHOLDER_AVATAR) {
                        img.set_src(PLACEHOLDER_AVATAR);
                    }
                }
            />
            <div class="tweet-body">
                <div class="author">
                    <span class="full-name" dir="auto">{tweet.name.clone()}</span>
                    " "
                    <span class="username" dir="auto">{handle}</span>
                    {permalink.map(|href| view! {
                        <a class="permalink" href=href target="_blank" rel="noopener noreferrer nofollow">"open"</a>
                    })}
                </div>
                <p class="text" dir="auto">{tweet.text.clone()}</p>
            </div>
        </article>
    }
    .into_any()
}
