//! The range's pictures: the state timeline (one lane per instance, segments positioned over the
//! SVG so each has its own tooltip) and the four series charts, any of which can be brushed to
//! zoom into the range under the drag.
//!
//! Charts come from the shared `charts` crate as SVG strings (plotters escapes every text), drawn
//! as wide as the page shows them ([`crate::shown`]), so their text reads at the size it was set.

use charts::{Kind, geometry};
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;
use protocol::Timeline;
use wasm_bindgen::JsCast;

use super::DetailPage;
use super::range_bar::go_to_range;
use crate::loading::Loading;
use crate::range::TimeRange;
use crate::shown::{ShownWidth, shown_width};

/// Which chart is being brushed, and the SVG x where the drag started and is now.
type Brush = RwSignal<Option<(Kind, f64, f64)>>;

#[component]
pub(super) fn TimelineView(page: DetailPage) -> impl IntoView {
    let section = NodeRef::<leptos::html::Section>::new();
    let width = shown_width(section);
    view! {
        <section class="timeline" aria-label="state timeline" node_ref=section>
            <Loading what="the timeline">
                {move || page.timeline.get().map(|timeline| timeline.map(|timeline| {
                    width.get().map(|width| lanes(&timeline, width))
                }))}
            </Loading>
        </section>
    }
}

/// The timeline's SVG with a positioned element per lane and per segment over it.
fn lanes(timeline: &Timeline, width: ShownWidth) -> impl IntoView + use<> {
    let svg = charts::timeline::render(timeline, width.svg_px, Some(width.css_px));
    let lanes = charts::timeline::layout(timeline);
    let width = f64::from(svg.width);
    let height = f64::from(svg.height);
    let left = f64::from(svg.plot_left) / width * 100.0;
    let span = f64::from(svg.plot_right - svg.plot_left) / width * 100.0;
    let lane_height = f64::from(svg.plot_bottom - svg.plot_top) / lanes.len().max(1) as f64;
    let n_lanes = lanes.len();
    let plot_top = f64::from(svg.plot_top);
    view! {
        <div class="timeline-wrap" data-lanes=n_lanes>
            <div class="svg" inner_html=svg.svg></div>
            {lanes.into_iter().enumerate().map(|(idx, lane)| {
                let top = (plot_top + lane_height * idx as f64) / height * 100.0;
                let lane_style = format!(
                    "top:{top:.3}%;height:{:.3}%;left:{left:.3}%;width:{span:.3}%",
                    lane_height / height * 100.0
                );
                view! {
                    <div class="lane" data-instance=lane.instance.clone() title=lane.instance.clone() style=lane_style>
                        {lane.segments.into_iter().map(|segment| {
                            let style = format!(
                                "left:{:.3}%;width:{:.3}%",
                                segment.from_fraction * 100.0,
                                (segment.to_fraction - segment.from_fraction) * 100.0
                            );
                            view! {
                                <div class="segment" data-state=segment.key() title=segment.tooltip style=style></div>
                            }
                        }).collect_view()}
                    </div>
                }
            }).collect_view()}
        </div>
    }
}

#[component]
pub(super) fn ChartsView(page: DetailPage) -> impl IntoView {
    // The slow-call threshold line follows the config as loaded (none until it has loaded).
    let slow_threshold = Memo::new(move |_| {
        page.config.with(|config| match config {
            Some(Ok(view)) => view
                .current
                .as_ref()
                .and_then(|current| current.config.slow_call_rate_threshold),
            _ => None,
        })
    });
    let bounds = Memo::new(move |_| {
        page.series.with(|series| match series {
            Some(Ok(series)) => (series.from_ms, series.to_ms),
            _ => (0, 0),
        })
    });
    let brush: Brush = RwSignal::new(None);
    view! {
        <section
            class="charts"
            data-from=move || bounds.get().0
            data-to=move || bounds.get().1
            data-fetches=move || page.fetches.get()
        >
            <Loading what="the series">
                {move || page.series.get().map(|series| series.map(|series| {
                    let series = StoredValue::new(series);
                    Kind::ALL
                        .iter()
                        .map(|&kind| {
                            // Drawn for the width the chart is shown at, once known.
                            let draw = move |width: ShownWidth| {
                                let options = charts::Options {
                                    width: width.svg_px,
                                    shown_width: Some(width.css_px),
                                    slow_call_rate_threshold: slow_threshold.get(),
                                    ..charts::Options::default()
                                };
                                series.with_value(|series| charts::render(kind, series, &options))
                            };
                            view! { <Chart page=page kind=kind draw=draw bounds=bounds brush=brush /> }
                        })
                        .collect_view()
                }))}
            </Loading>
        </section>
    }
}

/// One chart, drawn by `draw` for the width it is shown at; a drag across it goes to the range
/// under the drag.
#[component]
fn Chart(
    page: DetailPage,
    kind: Kind,
    draw: impl Fn(ShownWidth) -> String + Send + Sync + 'static,
    bounds: Memo<(i64, i64)>,
    brush: Brush,
) -> impl IntoView {
    let navigate = use_navigate();
    let chart = NodeRef::<leptos::html::Div>::new();
    let shown = shown_width(chart);
    // The width the SVG is drawn at, in its own pixels: what brushed x coordinates are in.
    let drawn_width = move || shown.get().map_or(geometry::WIDTH, |width| width.svg_px);
    let svg = move || shown.get().map(&draw).unwrap_or_default();
    let overlay = move || {
        brush
            .get()
            .filter(|(on, _, _)| *on == kind)
            .map(|(_, a, b)| {
                let width = f64::from(drawn_width());
                format!(
                    "left:{:.3}%;width:{:.3}%",
                    a.min(b) / width * 100.0,
                    (a - b).abs() / width * 100.0
                )
            })
    };
    view! {
        <div
            class="chart"
            id=format!("chart-{}", kind.as_str())
            data-kind=kind.as_str()
            node_ref=chart
            on:mousedown=move |event| {
                event.prevent_default();
                let x = svg_x(&event, untrack(drawn_width));
                brush.set(Some((kind, x, x)));
            }
            on:mousemove=move |event| {
                if brush.with_untracked(|brush| brush.is_some_and(|(on, _, _)| on == kind)) {
                    let x = svg_x(&event, untrack(drawn_width));
                    brush.update(|brush| if let Some(brush) = brush { brush.2 = x });
                }
            }
            on:mouseleave=move |_| brush.set(None)
            on:mouseup=move |_| {
                let Some((_, a, b)) = brush.get_untracked() else { return };
                brush.set(None);
                let (from_ms, to_ms) = bounds.get_untracked();
                let width = untrack(drawn_width);
                let at = |x| geometry::time_at(x, width, from_ms, to_ms);
                if let Some(range) = TimeRange::brushed(at(a), at(b)) {
                    go_to_range(page, &navigate, range);
                }
            }
        >
            <div class="svg" inner_html=svg></div>
            {move || overlay().map(|style| view! { <div class="brush" style=style></div> })}
        </div>
    }
}

/// The pointer's x in the chart's SVG coordinates, for an SVG drawn `drawn_width` wide and
/// scaled to the element's width.
fn svg_x(event: &leptos::ev::MouseEvent, drawn_width: u32) -> f64 {
    let Some(element) = event
        .current_target()
        .and_then(|target| target.dyn_into::<web_sys::Element>().ok())
    else {
        return 0.0;
    };
    let rect = element.get_bounding_client_rect();
    if rect.width() <= 0.0 {
        return 0.0;
    }
    (f64::from(event.client_x()) - rect.left()) / rect.width() * f64::from(drawn_width)
}
