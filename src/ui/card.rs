//! A post's card: avatar, author, the text with its links, searchable tags
//! and mentions and the marks of the column's search (the server sends
//! them with the post), and a permalink with
//! the post's live age. Post text is untrusted: it only ever becomes text
//! nodes, and only checked http(s) addresses become `href`s.

use leptos::either::{Either, EitherOf3};
use leptos::prelude::*;

use super::column::ColumnState;
use super::feed::{age_label, avatar_src, safe_link, Card, PLACEHOLDER_AVATAR};
use super::text::{marks_in, runs, search_href, Kind, Run};
use super::{clock, PageState};

#[component]
pub fn TweetCard(
    card: Card,
    column: ColumnState,
    page: PageState,
    on_search_link: Callback<String>,
) -> impl IntoView {
    let key = card.key;
    let tweet = card.tweet;
    let leaving = move || column.feed.with(|f| f.is_leaving(key));
    let avatar = avatar_src(&tweet.user_profile_image);
    let permalink = safe_link(tweet.url.as_deref());
    let handle = format!("@{}", tweet.screen_name);
    let alt = format!("Avatar of {}", tweet.name);
    let created_at = tweet.created_at.clone();
    let created_ms = clock::parse_ms(&created_at);
    let age = {
        let created_at = created_at.clone();
        move || {
            let now = page.now_ms.get().max(clock::now_ms());
            age_label(
                (now - created_ms) / 1000.0,
                &created_at,
                clock::current_year(),
            )
        }
    };
    let time = view! { <time datetime=created_at.clone()>{age}</time> };
    let stamp = match permalink {
        Some(href) => Either::Left(view! {
            <a class="permalink" href=href target="_blank" rel="noopener noreferrer">{time}</a>
        }),
        None => Either::Right(view! { <span class="age">{time}</span> }),
    };
    let text = runs(&tweet, &marks_in(&tweet))
        .into_iter()
        .map(|run| render_run(run, on_search_link))
        .collect_view();
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
                    " "
                    {stamp}
                </div>
                <p class="text" dir="auto">{text}</p>
            </div>
        </article>
    }
}

fn render_parts(parts: Vec<(String, bool)>) -> impl IntoView {
    parts
        .into_iter()
        .map(|(text, marked)| {
            if marked {
                Either::Left(view! { <mark>{text}</mark> })
            } else {
                Either::Right(text)
            }
        })
        .collect_view()
}

fn render_run(run: Run, on_search_link: Callback<String>) -> impl IntoView {
    let parts = render_parts(run.parts);
    match run.kind {
        Kind::Plain => EitherOf3::A(parts),
        Kind::Link { href } => EitherOf3::B(view! {
            <a href=href target="_blank" rel="noopener noreferrer nofollow">{parts}</a>
        }),
        Kind::Search { search } => {
            let href = search_href(&search);
            EitherOf3::C(view! {
                <a
                    class="search-link"
                    href=href
                    on:click=move |ev: leptos::ev::MouseEvent| {
                        // A plain click searches in this column; with a
                        // modifier or another button the browser opens the
                        // link as usual (a new tab with that search).
                        let plain = ev.button() == 0
                            && !(ev.ctrl_key() || ev.meta_key() || ev.shift_key() || ev.alt_key());
                        if plain {
                            ev.prevent_default();
                            on_search_link.run(search.clone());
                        }
                    }
                >
                    {parts}
                </a>
            })
        }
    }
}
