//! Serving the dashboard: the wasm bundle built by `cargo xtask build-ui` from a dist folder.
//!
//! When the bundle is missing, every page says how to build it instead of going blank.

use std::path::{Path, PathBuf};

use axum::Router;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use tower_http::services::{ServeDir, ServeFile};

/// The dist folder: `FUSEBOX_DIST` when set, else `frontend/dist` under the working directory,
/// else the one beside the sources this binary was built from.
pub fn default_dist_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FUSEBOX_DIST") {
        return PathBuf::from(dir);
    }
    let local = PathBuf::from("frontend/dist");
    if local.join("index.html").is_file() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../frontend/dist")
}

pub fn router(dist_dir: &Path) -> Router {
    let index = dist_dir.join("index.html");
    if index.is_file() {
        Router::new().fallback_service(ServeDir::new(dist_dir).fallback(ServeFile::new(index)))
    } else {
        let message = missing_bundle_page(dist_dir);
        Router::new().fallback(move || {
            let message = message.clone();
            async move { (StatusCode::SERVICE_UNAVAILABLE, Html(message)).into_response() }
        })
    }
}

fn missing_bundle_page(dist_dir: &Path) -> String {
    let dir = dist_dir
        .display()
        .to_string()
        .replace('&', "&amp;")
        .replace('<', "&lt;");
    format!(
        "<!doctype html><meta charset=utf-8><title>fusebox: dashboard not built</title>\
         <body style=\"font-family:sans-serif;max-width:40em;margin:3em auto\">\
         <h1>The dashboard is not built</h1>\
         <p>fusebox found no <code>index.html</code> in <code>{dir}</code>.</p>\
         <p>Build it with <code>cargo xtask build-ui</code> in the fusebox checkout, or point the \
         server at a built bundle with <code>--dist DIR</code> (or <code>FUSEBOX_DIST</code>).</p>\
         <p>The API is up: try <a href=\"/api/v1/breakers\">/api/v1/breakers</a>.</p>"
    )
}
