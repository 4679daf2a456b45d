//! The smallest page with the Leptos parts twitter-search's page uses:
//! hydration, signals, an input, a button, a keyed list, a class and an
//! attribute bound to signals. Its bundle is the floor under the page's.
use leptos::prelude::*;

#[derive(Clone)]
struct Item {
    id: u64,
    text: String,
}

#[component]
fn App() -> impl IntoView {
    let (items, set_items) = signal(Vec::<Item>::new());
    let (term, set_term) = signal(String::new());
    let (streaming, set_streaming) = signal(true);
    view! {
        <main>
            <input prop:value=term on:input=move |e| set_term.set(event_target_value(&e)) />
            <button on:click=move |_| set_streaming.update(|s| *s = !*s)>
                {move || if streaming.get() { "Stop" } else { "Start" }}
            </button>
            <button on:click=move |_| set_items.update(|v| v.insert(0, Item { id: v.len() as u64, text: term.get_untracked() }))>"Add"</button>
            <ul class:stopped=move || !streaming.get()>
                <For each=move || items.get() key=|i| i.id let:item>
                    <li data-id=item.id>{item.text}</li>
                </For>
            </ul>
        </main>
    }
}

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
}
