//! How wide the page shows an element, kept current with a `ResizeObserver`, so charts are drawn
//! as wide as they are shown: one SVG pixel is one CSS pixel, and a 13 px label reads 13 px.
//!
//! A chart drawn at a fixed width and scaled to its container shrinks its text with it (880 SVG
//! pixels in a 674 px column turn 12 px labels into 9 px ones); drawing at the shown width, and
//! telling the charts that width (`charts::Options::shown_width`), keeps every text at least
//! 12 CSS px. A window resize, or a scrollbar appearing, redraws.

use leptos::html::ElementType;
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;

/// A drawn width: whole SVG pixels, and the CSS width it is shown at.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ShownWidth {
    /// What to draw the SVG at.
    pub svg_px: u32,
    /// What the page shows it at (fractional).
    pub css_px: f64,
}

/// The content width of `node`'s element once it is in the page, `None` before; follows every
/// resize until the owner is cleaned up.
pub fn shown_width<E>(node: NodeRef<E>) -> ReadSignal<Option<ShownWidth>>
where
    E: ElementType + 'static,
    E::Output: JsCast + Clone + Into<web_sys::Element> + 'static,
{
    let (width, set_width) = signal(None::<ShownWidth>);
    let set = move |css_px: f64| {
        // Narrower than any chart can be drawn: not laid out yet.
        if css_px < 100.0 {
            return;
        }
        let next = ShownWidth {
            svg_px: css_px.round() as u32,
            css_px,
        };
        if width
            .get_untracked()
            .is_none_or(|known| known.svg_px != next.svg_px)
        {
            set_width.set(Some(next));
        }
    };
    let observer = StoredValue::new_local(None::<Observer>);
    node.on_load(move |element| {
        let element: web_sys::Element = element.into();
        set(element.get_bounding_client_rect().width() - border_x(&element));
        let callback = Closure::<dyn FnMut(js_sys::Array)>::new(move |entries: js_sys::Array| {
            let entry = entries.get(0).dyn_into::<web_sys::ResizeObserverEntry>();
            if let Ok(entry) = entry {
                set(entry.content_rect().width());
            }
        });
        if let Ok(resize) = web_sys::ResizeObserver::new(callback.as_ref().unchecked_ref()) {
            resize.observe(&element);
            observer.set_value(Some(Observer {
                resize,
                _callback: callback,
            }));
        }
    });
    on_cleanup(move || {
        if let Some(Some(observer)) = observer.try_update_value(Option::take) {
            observer.resize.disconnect();
        }
    });
    width
}

/// An observer and the callback it calls, which must live as long as it.
struct Observer {
    resize: web_sys::ResizeObserver,
    _callback: Closure<dyn FnMut(js_sys::Array)>,
}

/// The left and right borders of `element`, in CSS pixels (its content box is what a chart
/// fills).
fn border_x(element: &web_sys::Element) -> f64 {
    match element.dyn_ref::<web_sys::HtmlElement>() {
        Some(html) => f64::from(html.offset_width() - html.client_width()).max(0.0),
        None => 0.0,
    }
}
