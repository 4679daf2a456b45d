//! twitter-search: live search over social media streams.
//!
//! A person types a search; posts that match it appear in their browser the
//! moment a source publishes them, pushed over a WebSocket.
//!
//! # Layout
//!
//! The modules follow the journey of a post:
//!
//! 1. [`server::sources`] — one file per upstream (`demo`, `replay`, ...). A
//!    single task per server reads its source and hands each post to the hub.
//! 2. [`query`] — the search language: a search is parsed once into a
//!    [`query::Query`], a post is cut into words once into a
//!    [`query::PreparedPost`], and the two are compared.
//! 3. [`server::hub`] — every connection's search and stop/start state. Each
//!    post is checked once against each distinct active search and queued
//!    for the connections whose search matches (bounded queues; a full
//!    queue becomes a `skipped` notice, never a silent drop).
//! 4. [`server::socket`] — one task per browser WebSocket: reads commands,
//!    writes `tweets` batches and notices.
//! 5. [`ui`] — the Leptos page, rendered on the server and hydrated in the
//!    browser, which shows posts newest first.
//!
//! [`wire`] holds the messages and the post shape shared by both sides.

pub mod query;
pub mod ui;
pub mod wire;

#[cfg(feature = "ssr")]
pub mod server;

/// Entry point of the browser bundle: hydrates the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(ui::App);
}
