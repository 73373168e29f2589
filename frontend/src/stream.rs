//! The live stream (`/api/v1/stream`, Server-Sent Events) as callbacks of [`StreamMessage`]s.
//!
//! `EventSource` reconnects by itself after a dropped connection; only when the browser gives up
//! (the server answered with an error status) is the source closed, and the caller opens a new one.

use protocol::{AlertNotice, TransitionRecord};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{EventSource, MessageEvent};

/// What the stream tells the page.
pub enum StreamMessage {
    /// Connected (again): events flow from now on, and anything missed before must be fetched.
    Opened,
    /// Disconnected; `gave_up` when the browser will not retry by itself.
    Failed {
        gave_up: bool,
    },
    Transition(TransitionRecord),
    /// Summaries' JSON, one per line: an `event: summaries` message (the page asks for them so,
    /// see [`crate::api::STREAM_URL`]) or an `event: summary` one (a server that sends them
    /// one by one). Split and read lazily by [`crate::coalesce`]: most are superseded before a
    /// frame.
    Summaries(String),
    Alert(AlertNotice),
}

/// An open `EventSource` and its listeners; closed when dropped.
pub struct LiveStream {
    source: EventSource,
    _listeners: Vec<Closure<dyn FnMut(web_sys::Event)>>,
}

impl LiveStream {
    pub fn connect(
        url: &str,
        on_message: impl Fn(StreamMessage) + 'static,
    ) -> Result<LiveStream, String> {
        let source =
            EventSource::new(url).map_err(|err| format!("could not open {url}: {err:?}"))?;
        let on_message = std::rc::Rc::new(on_message);
        let mut listeners = Vec::new();

        let mut listen = |name: &str, listener: Closure<dyn FnMut(web_sys::Event)>| {
            let _ =
                source.add_event_listener_with_callback(name, listener.as_ref().unchecked_ref());
            listeners.push(listener);
        };
        let callback = on_message.clone();
        listen(
            "open",
            Closure::new(move |_: web_sys::Event| callback(StreamMessage::Opened)),
        );
        let callback = on_message.clone();
        let watched = source.clone();
        listen(
            "error",
            Closure::new(move |_: web_sys::Event| {
                let gave_up = watched.ready_state() == EventSource::CLOSED;
                callback(StreamMessage::Failed { gave_up });
            }),
        );
        // Each message names its kind in `event:`.
        for name in ["transition", "summary", "summaries", "alert"] {
            let callback = on_message.clone();
            listen(
                name,
                Closure::new(move |event: web_sys::Event| {
                    let Some(data) = event
                        .dyn_ref::<MessageEvent>()
                        .and_then(|message| message.data().as_string())
                    else {
                        return;
                    };
                    match parse(name, data) {
                        Ok(message) => callback(message),
                        Err(err) => leptos::logging::warn!(
                            "ignoring a stream event that does not parse: {err}"
                        ),
                    }
                }),
            );
        }
        Ok(LiveStream {
            source,
            _listeners: listeners,
        })
    }
}

fn parse(name: &str, data: String) -> Result<StreamMessage, serde_json::Error> {
    Ok(match name {
        "summary" | "summaries" => StreamMessage::Summaries(data),
        "alert" => StreamMessage::Alert(serde_json::from_str(&data)?),
        // `{"type": "transition", …TransitionRecord}`: the record ignores the tag.
        _ => StreamMessage::Transition(serde_json::from_str(&data)?),
    })
}

impl Drop for LiveStream {
    fn drop(&mut self) {
        self.source.close();
    }
}
