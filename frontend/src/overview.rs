//! The overview: a toolbar (search, state filter, sort, view; all in the URL) and either one live
//! tile per breaker, grouped by service, or the matrix (a row of small state cells per service),
//! which a fleet of more than [`View::MATRIX_ABOVE`] breakers gets unless the URL asks for tiles.
//! The logic is in [`crate::board`], [`crate::filter`], [`crate::matrix`] and [`crate::format`];
//! components bind it to elements.
//!
//! Updates are fine-grained: each tile or cell re-renders only when its own breaker changed (its
//! trigger in [`Live`]), and the grouping and order are recomputed only when a breaker appeared or
//! a key the current sort or filter reads changed. Keyed `<For>`s then add or remove only what
//! came or went: elements stay in the order of their names and CSS `order` places them (see
//! [`crate::order`]).

use leptos::prelude::*;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_navigate, use_query_map};

use protocol::State;

use crate::board::{Grouping, Key};
use crate::filter::{Filter, SortBy, StateFilter, View};
use crate::format;
use crate::live::Live;
use crate::matrix;
use crate::order::{self, Positions};

#[component]
pub fn Overview() -> impl IntoView {
    let live = expect_context::<Live>();
    let query = use_query_map();
    let filter = Memo::new(move |_| query.with(|query| Filter::from_query(|key| query.get(key))));
    // Made from the last ones: only the services that changed are grouped again.
    let groups = Memo::new_owning(move |previous: Option<Grouping>| {
        let filter = filter.get();
        live.track_order(filter.sort);
        live.with_board(|board| board.regroup(&filter, previous))
    });
    // The services in the order shown, for the tiles and the matrix alike.
    let services = Placed::new(move || {
        groups.with(|grouping| {
            (grouping.groups.iter())
                .map(|group| group.service.clone())
                .collect()
        })
    });
    let is_empty = Memo::new(move |_| live.is_empty());
    // The fleet's size is read only while the URL names no view.
    let view = Memo::new(move |_| {
        filter
            .with(|filter| filter.view)
            .unwrap_or_else(|| View::for_fleet(live.len()))
    });
    view! {
        <Toolbar filter=filter view=view />
        <section class="board" aria-label="breakers" data-view=move || view.get().as_str()>
            {move || match view.get() {
                View::Tiles => view! {
                    <div class="services">
                        <For
                            each=move || services.by_name.get()
                            key=|service| service.clone()
                            children=move |service| view! { <ServiceSection service=service groups=groups positions=services.positions /> }
                        />
                    </div>
                }
                .into_any(),
                View::Matrix => view! { <Matrix groups=groups services=services /> }.into_any(),
            }}
            <Show when=move || is_empty.get()>
                <p class="empty">
                    "No breaker has reported yet. Point a breaker's reporter at this server and its tile appears here."
                </p>
            </Show>
            <Show when=move || !is_empty.get() && groups.with(|grouping| grouping.groups.is_empty())>
                <p class="empty">"No breaker matches the filter."</p>
            </Show>
        </section>
    }
}

#[component]
fn Toolbar(filter: Memo<Filter>, view: Memo<View>) -> impl IntoView {
    let navigate = use_navigate();
    let set = move |change: &dyn Fn(&mut Filter)| {
        let mut next = filter.get_untracked();
        change(&mut next);
        let url = format!("/{}", format::query_string(&next.query_pairs()));
        navigate(
            &url,
            NavigateOptions {
                replace: true,
                scroll: false,
                ..Default::default()
            },
        );
    };
    let set_search = set.clone();
    let set_state = set.clone();
    let set_view = set.clone();
    view! {
        <div class="toolbar" role="search">
            <input
                type="search"
                name="q"
                placeholder="search breakers and services"
                prop:value=move || filter.with(|filter| filter.search.clone())
                on:input=move |event| {
                    let text = event_target_value(&event);
                    set_search(&move |filter| filter.search = text.clone());
                }
            />
            <label>
                "show "
                <select
                    name="state"
                    on:change=move |event| {
                        let value = event_target_value(&event);
                        set_state(&move |filter| {
                            filter.state = StateFilter::parse(&value).unwrap_or_default();
                        });
                    }
                >
                    {StateFilter::ALL
                        .into_iter()
                        .map(|option| {
                            view! {
                                <option
                                    value=option.as_str()
                                    selected=move || filter.with(|filter| filter.state == option)
                                >
                                    {option.label()}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
            </label>
            <label>
                "sort by "
                <select
                    name="sort"
                    on:change=move |event| {
                        let value = event_target_value(&event);
                        set(&move |filter| filter.sort = SortBy::parse(&value).unwrap_or_default());
                    }
                >
                    {SortBy::ALL
                        .into_iter()
                        .map(|option| {
                            view! {
                                <option
                                    value=option.as_str()
                                    selected=move || filter.with(|filter| filter.sort == option)
                                >
                                    {option.label()}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
            </label>
            <div class="view-switch" role="group" aria-label="view">
                {View::ALL
                    .into_iter()
                    .map(|option| {
                        let set_view = set_view.clone();
                        view! {
                            <button
                                type="button"
                                data-view=option.as_str()
                                aria-pressed=move || (view.get() == option).to_string()
                                on:click=move |_| set_view(&move |filter| filter.view = Some(option))
                            >
                                {option.label()}
                            </button>
                        }
                    })
                    .collect_view()}
            </div>
        </div>
    }
}

/// The matrix: a row of cells per service, in the order and under the filter the tiles use.
#[component]
fn Matrix(groups: Memo<Grouping>, services: Placed) -> impl IntoView {
    view! {
        <div class="matrix">
            <For
                each=move || services.by_name.get()
                key=|service| service.clone()
                children=move |service| view! { <MatrixLine service=service groups=groups positions=services.positions /> }
            />
        </div>
    }
}

/// A list shown in a sort's order by elements that stay in the order of their names (see
/// [`crate::order`]): what the `<For>` renders, and each name's position.
#[derive(Clone, Copy)]
struct Placed {
    by_name: Memo<Vec<String>>,
    /// A signal set when the positions change, not a memo: every element reads it, and a
    /// memo's readers are all marked for checking whenever what it reads might have changed
    /// (every regrouping, for every row of the matrix: 10,000 cells).
    positions: RwSignal<Positions>,
}

impl Placed {
    /// `shown`: the names in the sort's order (tracked).
    fn new(shown: impl Fn() -> Vec<String> + Send + Sync + 'static) -> Placed {
        let shown = Memo::new(move |_| shown());
        let positions = RwSignal::new(shown.with_untracked(|shown| Positions::new(shown)));
        Effect::new(move |_| {
            // Names that kept their place among the others keep their values.
            let next = shown.with(|shown| positions.with_untracked(|now| now.next(shown)));
            if positions.with_untracked(|positions| *positions != next) {
                positions.set(next);
            }
        });
        Placed {
            by_name: Memo::new(move |_| shown.with(|shown| order::by_name(shown))),
            positions,
        }
    }

    /// `name`'s position (the CSS `order` of its element), changing only when it moves.
    fn position_of(self, name: String) -> Memo<i32> {
        position_in(self.positions, name)
    }
}

/// `name`'s position in `positions`, changing only when it moves.
fn position_in(positions: RwSignal<Positions>, name: String) -> Memo<i32> {
    Memo::new(move |_| positions.with(|positions| positions.of(&name)))
}

#[component]
fn MatrixLine(
    service: String,
    groups: Memo<Grouping>,
    positions: RwSignal<Positions>,
) -> impl IntoView {
    let order = position_in(positions, service.clone());
    let name = service.clone();
    // The row's counts and cells; the names are shared with the groups, not copied.
    let row = Memo::new(move |_| {
        groups.with(|grouping| {
            grouping
                .groups
                .iter()
                .find(|group| group.service == name)
                .map(|group| (group.counts, group.breakers.clone()))
        })
    });
    // A count changing elsewhere in the row leaves its `<For>` alone.
    let cells = Placed::new(move || {
        row.with(|row| {
            row.as_ref()
                .map_or_else(Vec::new, |(_, cells)| cells.to_vec())
        })
    });
    let summary = move || {
        row.with(|row| {
            row.as_ref()
                .map(|(counts, _)| matrix::row_summary(*counts))
                .unwrap_or_default()
        })
    };
    let data_service = service.clone();
    let heading = service.clone();
    view! {
        <section class="matrix-row" data-service=data_service style=move || format!("order: {}", order.get())>
            <h2>
                <span class="matrix-service">{heading}</span>
                <span class="matrix-counts">{summary}</span>
            </h2>
            <div class="cells">
                <For
                    each=move || cells.by_name.get()
                    key=|breaker| breaker.clone()
                    children=move |breaker| view! { <Cell service=service.clone() order=cells.position_of(breaker.clone()) breaker=breaker /> }
                />
            </div>
        </section>
    }
}

/// One breaker's cell: its state as colour, as a shape for Open and Half-Open, and as text in
/// its title and label; a link to its page, as its tile is.
#[component]
fn Cell(service: String, breaker: String, order: Memo<i32>) -> impl IntoView {
    let live = expect_context::<Live>();
    let href = format::detail_href(&service, &breaker);
    let key = (service.clone(), breaker.clone());
    let trigger = live.tile_trigger(&key);
    // The trigger fires on every summary; the memo passes on only a change of state.
    let state = Memo::new(move |_| {
        trigger.track();
        live.with_board(|board| {
            board
                .entry(&key)
                .map_or(State::Closed, |entry| entry.summary.state)
        })
    });
    let label = {
        let (service, breaker) = (service.clone(), breaker.clone());
        move || matrix::cell_label(&service, &breaker, state.get())
    };
    let icon = move || match state.get() {
        State::Closed => "",
        state => format::state_icon(state),
    };
    view! {
        <a
            class="cell"
            href=href
            style=move || format!("order: {}", order.get())
            data-service=service
            data-breaker=breaker
            data-state=move || state.get().as_str()
            title=label.clone()
            aria-label=label
        >
            <span aria-hidden="true">{icon}</span>
        </a>
    }
}

/// A service with more tiles than this takes the overview's whole width.
const WIDE_FROM_TILES: usize = 4;

#[component]
fn ServiceSection(
    service: String,
    groups: Memo<Grouping>,
    positions: RwSignal<Positions>,
) -> impl IntoView {
    let name = service.clone();
    let order = position_in(positions, service.clone());
    // A reorder elsewhere leaves this service's list, and its `<For>`, alone.
    let breakers = Placed::new(move || {
        groups.with(|grouping| {
            (grouping.groups.iter())
                .find(|group| group.service == name)
                .map_or_else(Vec::new, |group| group.breakers.to_vec())
        })
    });
    let n_tiles = Memo::new(move |_| breakers.by_name.with(Vec::len));
    let wide = Memo::new(move |_| n_tiles.get() > WIDE_FROM_TILES);
    let heading = service.clone();
    let data_service = service.clone();
    // Small services sit side by side, each as wide as its tiles; a service with more tiles
    // than fit beside another takes the whole width (see `.service` in style.css).
    view! {
        <section
            class="service"
            class:wide=wide
            data-service=data_service
            style=move || format!("--tiles: {}; order: {}", n_tiles.get().clamp(1, WIDE_FROM_TILES), order.get())
        >
            <h2>{heading}</h2>
            <div class="tiles">
                <For
                    each=move || breakers.by_name.get()
                    key=|breaker| breaker.clone()
                    children=move |breaker| view! { <Tile order=breakers.position_of(breaker.clone()) key=(service.clone(), breaker) /> }
                />
            </div>
        </section>
    }
}

#[component]
fn Tile(key: Key, order: Memo<i32>) -> impl IntoView {
    let live = expect_context::<Live>();
    let lookup = key.clone();
    let trigger = live.tile_trigger(&key);
    let tile = Memo::new(move |_| {
        trigger.track();
        live.with_board(|board| board.entry(&lookup).map(format::tile_view))
    });
    let since = move || {
        let now_ms = live.now_ms.get();
        tile.with(|tile| {
            tile.as_ref()
                .map(|tile| format::since(tile.state, tile.since_ms, now_ms))
                .unwrap_or_default()
        })
    };
    let field = move |read: fn(&format::TileView) -> String| {
        move || tile.with(|tile| tile.as_ref().map(read).unwrap_or_default())
    };
    let label = move |read: fn(&format::TileView) -> &'static str, otherwise: &'static str| {
        move || tile.with(|tile| tile.as_ref().map_or(otherwise, read))
    };
    // Whether a metric shows the value that tripped the breaker: the `data-at-trip` hook.
    let at_trip = move |read: fn(&format::TileView) -> bool| {
        tile.with(|tile| tile.as_ref().is_some_and(read))
            .to_string()
    };
    let state_key = move || tile.with(|tile| tile.as_ref().map_or("closed", |tile| tile.state_key));
    let (service, breaker) = key.clone();
    let href = format::detail_href(&service, &breaker);
    let name = breaker.clone();
    view! {
        <a
            class="tile"
            href=href
            style=move || format!("order: {}", order.get())
            class:over=move || tile.with(|tile| tile.as_ref().is_some_and(|tile| tile.over_threshold))
            data-service=service
            data-breaker=breaker
            data-state=state_key
        >
            <span class="tile-head">
                <span class="tile-name">{name}</span>
                <span class="state">
                    <span class="icon" aria-hidden="true">{move || tile.with(|tile| tile.as_ref().map_or("", |tile| tile.state_icon))}</span>
                    <span class="state-text">{move || tile.with(|tile| tile.as_ref().map_or("", |tile| tile.state_text))}</span>
                </span>
            </span>
            <span class="metrics">
                <span class="metric">
                    <span class="label">{label(|tile| tile.failure_rate_label, "failure rate")}</span>
                    <span class="value rate" data-metric="failure_rate" data-at-trip=move || at_trip(|tile| tile.failure_rate_at_trip)>{field(|tile| tile.failure_rate.clone())}</span>
                    <span class="of">" / " {field(|tile| tile.threshold.clone())}</span>
                </span>
                <span class="metric">
                    <span class="label">{label(|tile| tile.slow_label, "slow")}</span>
                    <span class="value" data-metric="slow_call_rate" data-at-trip=move || at_trip(|tile| tile.slow_call_rate_at_trip)>{field(|tile| tile.slow_call_rate.clone())}</span>
                </span>
                <span class="metric">
                    <span class="label">"p99"</span>
                    <span class="value" data-metric="p99">{field(|tile| tile.p99.clone())}</span>
                </span>
                <span class="metric">
                    <span class="label">"calls"</span>
                    <span class="value" data-metric="calls_per_s">{field(|tile| tile.calls_per_s.clone())}</span>
                </span>
            </span>
            <svg class="spark" viewBox="0 0 120 24" preserveAspectRatio="none" aria-label="calls per second, last 2 minutes">
                <polyline points=field(|tile| tile.spark_points.clone()) />
            </svg>
            <span class="tile-foot">{since} " · " <span data-metric="instances">{field(|tile| tile.instances.clone())}</span></span>
            {move || tile.with(|tile| tile.as_ref().and_then(|tile| tile.trigger.clone())).map(|text| view! { <span class="trigger">{text}</span> })}
        </a>
    }
}
