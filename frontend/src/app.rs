//! The page's components: header, stream banner, one tile per breaker grouped by service, and the
//! chart of the selected breaker. They bind signals to elements; the logic lives in
//! [`crate::board`], [`crate::format`] and [`crate::chart`].
//!
//! Names are untrusted: they are only ever text nodes and attribute values. The one string
//! inserted as HTML is the chart's SVG, whose texts plotters escapes.

use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use protocol::StreamEvent;

use crate::api;
use crate::board::{Board, Key};
use crate::chart;
use crate::format;
use crate::stream::{LiveStream, StreamMessage};

/// How often the selected breaker's chart is fetched again, summaries or not.
const CHART_REFRESH: Duration = Duration::from_secs(5);
/// A summary of the selected breaker refreshes its chart at most this often.
const CHART_MIN_INTERVAL_MS: f64 = 2000.0;
/// After the browser gave up on the stream, a new one is opened this much later.
const STREAM_RETRY: Duration = Duration::from_secs(3);

/// The state of the live stream, as the header and banner show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Connection {
    Connecting,
    Live,
    Down,
}

/// The page's signals; `Copy`, so closures and child components take it by value.
#[derive(Clone, Copy)]
struct Page {
    board: RwSignal<Board>,
    connection: RwSignal<Connection>,
    load_error: RwSignal<Option<String>>,
    /// The server refused to let us read: show the token form.
    needs_token: RwSignal<bool>,
    selected: RwSignal<Option<Key>>,
    /// The selected breaker's chart (SVG), or why it could not be fetched.
    chart: RwSignal<Option<Result<String, String>>>,
    /// Bumped per chart request, so a slow answer for an earlier selection is dropped.
    chart_generation: StoredValue<u64>,
    chart_fetched_at: StoredValue<f64>,
    now_ms: RwSignal<i64>,
    stream: StoredValue<Option<LiveStream>, LocalStorage>,
}

#[component]
pub fn App() -> impl IntoView {
    let page = Page {
        board: RwSignal::new(Board::default()),
        connection: RwSignal::new(Connection::Connecting),
        load_error: RwSignal::new(None),
        needs_token: RwSignal::new(false),
        selected: RwSignal::new(None),
        chart: RwSignal::new(None),
        chart_generation: StoredValue::new(0),
        chart_fetched_at: StoredValue::new(0.0),
        now_ms: RwSignal::new(js_sys::Date::now() as i64),
        stream: StoredValue::new_local(None),
    };
    connect_stream(page);
    on_cleanup(move || page.stream.set_value(None));

    Effect::new(move |_| {
        page.selected.track();
        load_chart(page);
    });
    let timers = [
        set_interval_with_handle(
            move || page.now_ms.set(js_sys::Date::now() as i64),
            Duration::from_secs(1),
        ),
        set_interval_with_handle(move || load_chart(page), CHART_REFRESH),
    ];
    on_cleanup(move || {
        for timer in timers.into_iter().flatten() {
            timer.clear();
        }
    });

    view! {
        <Header page=page />
        <StreamBanner page=page />
        <Show when=move || page.needs_token.get()>
            <TokenForm page=page />
        </Show>
        <main class="layout">
            <section class="board" aria-label="breakers">
                <Groups page=page />
            </section>
            <Detail page=page />
        </main>
    }
}

/// Opens the live stream; on (re)connect, fetches the list to catch up on what was missed.
fn connect_stream(page: Page) {
    let result = LiveStream::connect(api::STREAM_URL, move |message| match message {
        StreamMessage::Opened => {
            page.connection.set(Connection::Live);
            fetch_list(page);
        }
        StreamMessage::Failed { gave_up } => {
            page.connection.set(Connection::Down);
            if gave_up {
                // The browser gives up on an error status, such as a missing token: ask the list
                // endpoint why, and try again later.
                fetch_list(page);
                set_timeout(move || connect_stream(page), STREAM_RETRY);
            }
        }
        StreamMessage::Event(event) => {
            let refresh_chart = match &event {
                StreamEvent::Summary(summary) => page.selected.with_untracked(|selected| {
                    selected.as_ref().is_some_and(|(service, breaker)| {
                        *service == summary.service && *breaker == summary.breaker
                    })
                }),
                StreamEvent::Transition(_) => false,
            };
            page.board.update(|board| board.apply(event));
            if refresh_chart
                && js_sys::Date::now() - page.chart_fetched_at.get_value() >= CHART_MIN_INTERVAL_MS
            {
                load_chart(page);
            }
        }
    });
    match result {
        Ok(stream) => page.stream.set_value(Some(stream)),
        Err(err) => {
            page.connection.set(Connection::Down);
            page.load_error.set(Some(err));
            set_timeout(move || connect_stream(page), STREAM_RETRY);
        }
    }
}

fn fetch_list(page: Page) {
    spawn_local(async move {
        match api::list_breakers().await {
            Ok(summaries) => {
                page.load_error.set(None);
                page.needs_token.set(false);
                page.board.update(|board| board.apply_snapshot(summaries));
            }
            Err(err) if err.is_unauthorized() => page.needs_token.set(true),
            Err(err) => page.load_error.set(Some(err.to_string())),
        }
    });
}

fn load_chart(page: Page) {
    let Some((service, breaker)) = page.selected.get_untracked() else {
        page.chart.set(None);
        return;
    };
    page.chart_generation
        .update_value(|generation| *generation += 1);
    let generation = page.chart_generation.get_value();
    page.chart_fetched_at.set_value(js_sys::Date::now());
    spawn_local(async move {
        let result = api::series(&service, &breaker).await;
        if page.chart_generation.get_value() != generation {
            return;
        }
        page.chart.set(Some(
            result
                .map(|series| chart::render(&series))
                .map_err(|err| err.to_string()),
        ));
    });
}

#[component]
fn Header(page: Page) -> impl IntoView {
    let counts = Memo::new(move |_| page.board.with(Board::counts));
    let connection_text = move || match page.connection.get() {
        Connection::Connecting => "connecting…",
        Connection::Live => "live",
        Connection::Down => "disconnected",
    };
    let connection_class = move || match page.connection.get() {
        Connection::Connecting => "pill connecting",
        Connection::Live => "pill live",
        Connection::Down => "pill down",
    };
    view! {
        <header class="top">
            <h1>"fusebox"</h1>
            <span class="subtitle">"circuit breakers"</span>
            <div class="counts">
                <span class="count open">{move || counts.get().open} " open"</span>
                <span class="count half_open">{move || counts.get().half_open} " half-open"</span>
                <span class="count closed">{move || counts.get().closed} " closed"</span>
            </div>
            <span class=connection_class>{connection_text}</span>
        </header>
    }
}

#[component]
fn StreamBanner(page: Page) -> impl IntoView {
    view! {
        <Show when=move || page.connection.get() == Connection::Down>
            <div class="banner" role="alert">
                "Live updates are disconnected; reconnecting… States shown may be out of date."
            </div>
        </Show>
        {move || {
            page.load_error
                .get()
                .map(|err| view! { <div class="banner" role="alert">"Could not load breakers: " {err}</div> })
        }}
    }
}

#[component]
fn Groups(page: Page) -> impl IntoView {
    let groups = Memo::new(move |_| page.board.with(Board::groups));
    view! {
        <Show when=move || !page.board.with(Board::is_empty)>
            <For
                each=move || groups.get()
                key=|group| group.service.clone()
                children=move |group| {
                    let service = group.service;
                    view! { <ServiceSection service=service groups=groups page=page /> }
                }
            />
        </Show>
        <Show when=move || page.board.with(Board::is_empty)>
            <p class="empty">
                "No breaker has reported yet. Point a breaker's reporter at this server and its tile appears here."
            </p>
        </Show>
    }
}

#[component]
fn ServiceSection(
    service: String,
    groups: Memo<Vec<crate::board::ServiceGroup>>,
    page: Page,
) -> impl IntoView {
    let name = service.clone();
    let breakers = move || {
        groups.with(|groups| {
            groups
                .iter()
                .find(|group| group.service == name)
                .map(|group| group.breakers.clone())
                .unwrap_or_default()
        })
    };
    let heading = service.clone();
    view! {
        <section class="service">
            <h2>{heading}</h2>
            <div class="tiles">
                <For
                    each=breakers
                    key=|breaker| breaker.clone()
                    children=move |breaker| {
                        view! { <Tile key=(service.clone(), breaker) page=page /> }
                    }
                />
            </div>
        </section>
    }
}

#[component]
fn Tile(key: Key, page: Page) -> impl IntoView {
    let lookup = key.clone();
    let tile = Memo::new(move |_| {
        let now_ms = page.now_ms.get();
        page.board.with(|board| {
            board
                .entry(&lookup)
                .map(|entry| format::tile_view(entry, now_ms))
        })
    });
    let field = move |read: fn(&format::TileView) -> String| {
        move || tile.with(|tile| tile.as_ref().map(read).unwrap_or_default())
    };
    let state_key = move || tile.with(|tile| tile.as_ref().map_or("closed", |tile| tile.state_key));
    let selected_key = key.clone();
    let is_selected = move || {
        page.selected
            .with(|selected| selected.as_ref() == Some(&selected_key))
    };
    let (service, breaker) = key.clone();
    let name = breaker.clone();
    let select_key = key.clone();
    view! {
        <button
            class="tile"
            class:selected=is_selected.clone()
            class:over=move || tile.with(|tile| tile.as_ref().is_some_and(|tile| tile.over_threshold))
            data-service=service
            data-breaker=breaker
            data-state=state_key
            aria-pressed=move || if is_selected() { "true" } else { "false" }
            on:click=move |_| page.selected.set(Some(select_key.clone()))
        >
            <span class="tile-head">
                <span class="tile-name">{name}</span>
                <span class="state">{move || tile.with(|tile| tile.as_ref().map_or("", |tile| tile.state_text))}</span>
            </span>
            <span class="metrics">
                <span class="metric">
                    <span class="label">"failure rate"</span>
                    <span class="value rate">{field(|tile| tile.failure_rate.clone())}</span>
                    <span class="of">" / " {field(|tile| tile.threshold.clone())}</span>
                </span>
                <span class="metric">
                    <span class="label">"calls"</span>
                    <span class="value">{field(|tile| tile.calls_per_s.clone())}</span>
                </span>
            </span>
            <span class="tile-foot">{field(|tile| tile.since.clone())} " · " {field(|tile| tile.instances.clone())}</span>
            {move || tile.with(|tile| tile.as_ref().and_then(|tile| tile.trigger.clone())).map(|text| view! { <span class="trigger">{text}</span> })}
        </button>
    }
}

#[component]
fn Detail(page: Page) -> impl IntoView {
    let title = move || match page.selected.get() {
        Some((service, breaker)) => format!("{service} / {breaker}"),
        None => "No breaker selected".to_string(),
    };
    let svg = move || {
        page.chart.with(|chart| {
            chart
                .as_ref()
                .and_then(|chart| chart.as_ref().ok().cloned())
                .unwrap_or_default()
        })
    };
    let error = move || {
        page.chart.with(|chart| match chart {
            Some(Err(err)) => Some(format!("Could not load the series: {err}")),
            _ => None,
        })
    };
    view! {
        <aside class="detail" aria-label="selected breaker">
            <h2>{title}</h2>
            <p class="hint">
                {move || if page.selected.with(Option::is_none) {
                    "Select a tile to chart its failure rate over the last 15 minutes."
                } else {
                    "Failure rate over the last 15 minutes (UTC), against the breaker's threshold. Refreshes live."
                }}
            </p>
            <div id="chart" inner_html=svg></div>
            {move || error().map(|err| view! { <p class="chart-error">{err}</p> })}
        </aside>
    }
}

/// Asks for a viewer token when the server does not allow anonymous reading.
#[component]
fn TokenForm(page: Page) -> impl IntoView {
    let token = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<String>);
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        match api::set_token(&token.get_untracked()) {
            Ok(()) => {
                problem.set(None);
                page.stream.set_value(None);
                connect_stream(page);
            }
            Err(err) => problem.set(Some(err)),
        }
    };
    view! {
        <form class="signin" on:submit=submit>
            <label>
                "This server needs a viewer token to show its breakers "
                <span class="hint">"(create one with `fusebox users add NAME`)"</span>
                <input
                    type="password"
                    autocomplete="off"
                    placeholder="fbu_…"
                    prop:value=move || token.get()
                    on:input=move |event| token.set(event_target_value(&event))
                />
            </label>
            <button type="submit">"Sign in"</button>
            {move || problem.get().map(|problem| view! { <span class="chart-error">{problem}</span> })}
        </form>
    }
}
