//! Entry point of the dashboard: sets up panic logging and mounts the app; nothing else.

#[cfg(target_arch = "wasm32")]
fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(frontend::app::App);
}

/// On the host only the pure modules are built (for their tests); the page itself is wasm32.
#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("the dashboard runs in a browser: build it with `cargo xtask build-ui`");
    std::process::exit(2);
}
