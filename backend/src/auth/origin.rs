//! Writes authenticated by the dashboard's cookie must come from the dashboard's own origin.
//!
//! A browser attaches the cookie to a request that another site's page makes (a form POST, a
//! `fetch`), and `SameSite=Strict` does not cover another port or subdomain of the same site.
//! So an unsafe method (anything but GET, HEAD, OPTIONS) without an `Authorization` header is
//! refused (403) unless the browser says it is same-origin: `Sec-Fetch-Site: same-origin` (or
//! `none`, a user's own navigation), or, from browsers without Fetch metadata, an `Origin` equal
//! to the request's own origin or the configured public one. A request with neither header is
//! not a browser's cross-origin request (browsers send `Origin` on every cross-origin POST).
//! Clients with a bearer token are unaffected: another site cannot make a browser send one.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::AppError;
use crate::state::AppState;

/// The middleware: refuses cross-origin writes that would be authenticated by the cookie.
pub async fn same_origin_writes(
    State(app): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let unsafe_method = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if unsafe_method
        && !request.headers().contains_key(header::AUTHORIZATION)
        && !is_same_origin(request.headers(), app.web.public_origin.as_deref())
    {
        app.metrics.record_cross_origin_refused();
        tracing::warn!(
            method = %request.method(),
            path = request.uri().path(),
            origin = ?request.headers().get(header::ORIGIN),
            sec_fetch_site = ?request.headers().get("sec-fetch-site"),
            "refused a cross-origin write"
        );
        return AppError::Forbidden {
            detail: "a write authenticated by the dashboard's cookie must come from the \
                     dashboard's own origin; API clients send `Authorization: Bearer …`"
                .into(),
        }
        .into_response();
    }
    next.run(request).await
}

/// Whether the browser says this request comes from the server's own origin.
pub fn is_same_origin(headers: &HeaderMap, public_origin: Option<&str>) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if public_origin.is_some_and(|public| public.eq_ignore_ascii_case(origin)) {
        return true;
    }
    // Without TLS of its own the server cannot tell http from https behind a proxy, so the
    // origin's host and port are compared with the Host the browser addressed.
    let host = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok());
    let origin_authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    matches!((origin_authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
}

/// `scheme://host[:port]` of a URL, lower-cased, without path; `None` when it is not http(s).
pub fn origin_of(url: &str) -> Option<String> {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty() {
        return None;
    }
    Some(format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn fetch_metadata_decides_when_present() {
        let public = None;
        assert!(is_same_origin(
            &headers(&[("sec-fetch-site", "same-origin")]),
            public
        ));
        assert!(is_same_origin(
            &headers(&[("sec-fetch-site", "none")]),
            public
        ));
        for site in ["same-site", "cross-site"] {
            let h = headers(&[
                ("sec-fetch-site", site),
                ("origin", "http://fusebox:7878"),
                ("host", "fusebox:7878"),
            ]);
            assert!(!is_same_origin(&h, public), "{site}");
        }
    }

    #[test]
    fn origin_must_match_the_host_or_the_public_origin() {
        let same = headers(&[
            ("origin", "http://127.0.0.1:7878"),
            ("host", "127.0.0.1:7878"),
        ]);
        assert!(is_same_origin(&same, None));
        let other_port = headers(&[
            ("origin", "http://127.0.0.1:9999"),
            ("host", "127.0.0.1:7878"),
        ]);
        assert!(!is_same_origin(&other_port, None));
        let evil = headers(&[
            ("origin", "http://evil.example"),
            ("host", "127.0.0.1:7878"),
        ]);
        assert!(!is_same_origin(&evil, None));
        let null = headers(&[("origin", "null"), ("host", "127.0.0.1:7878")]);
        assert!(!is_same_origin(&null, None));
        let proxied = headers(&[
            ("origin", "https://fusebox.example.com"),
            ("host", "10.0.0.5:7878"),
        ]);
        assert!(is_same_origin(
            &proxied,
            Some("https://fusebox.example.com")
        ));
        assert!(
            is_same_origin(&headers(&[]), None),
            "no browser headers: not a browser"
        );
    }

    #[test]
    fn origins_of_urls() {
        assert_eq!(
            origin_of("https://Fusebox.example.com/board?x=1").as_deref(),
            Some("https://fusebox.example.com")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:7878").as_deref(),
            Some("http://127.0.0.1:7878")
        );
        assert_eq!(origin_of("ftp://x"), None);
        assert_eq!(origin_of("not a url"), None);
    }
}
