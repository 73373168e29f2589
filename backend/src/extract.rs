//! Request extractors whose every rejection is an [`AppError`] with a JSON body that names
//! what is wrong and where.
//!
//! - [`JsonBody`]: 400 for malformed JSON, 422 with a JSON path for a bad field, 413 for an
//!   oversized body, 415 without a JSON content type.
//! - [`Query`] and [`Path`]: axum's, with a 400 JSON answer instead of plain text.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::AppError;

/// Query-string parameters.
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Query(value))
            .map_err(|rejection| AppError::BadQuery {
                detail: rejection.body_text(),
            })
    }
}

/// Path parameters.
pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Path(value))
            .map_err(|rejection| AppError::BadQuery {
                detail: rejection.body_text(),
            })
    }
}

pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| {
                let mime = value.split(';').next().unwrap_or("").trim();
                mime.eq_ignore_ascii_case("application/json")
            });
        if !is_json {
            return Err(AppError::UnsupportedMediaType {
                detail: "expected the header `Content-Type: application/json`".into(),
            });
        }
        // The body is read as it comes: a declared encoding would be misread, not decoded.
        if let Some(encoding) = req.headers().get(header::CONTENT_ENCODING)
            && !encoding.as_bytes().eq_ignore_ascii_case(b"identity")
        {
            return Err(AppError::UnsupportedMediaType {
                detail: format!(
                    "the body must not be encoded; got `Content-Encoding: {}`",
                    String::from_utf8_lossy(encoding.as_bytes())
                ),
            });
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                AppError::TooLarge {
                    detail: rejection.body_text(),
                }
            } else {
                AppError::MalformedJson {
                    detail: rejection.body_text(),
                }
            }
        })?;
        parse(&bytes).map(JsonBody)
    }
}

/// Parses JSON, telling syntax errors (400) from data errors (422, with the JSON path).
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    // Tracking the path costs on every field; only a body that fails pays for it.
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = json_path(err.path());
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let detail = strip_position(&inner.to_string());
                AppError::Invalid {
                    path: unknown_field_path(path, &detail),
                    detail,
                }
            }
            _ => AppError::MalformedJson {
                detail: inner.to_string(),
            },
        }
    })?;
    deserializer.end().map_err(|err| AppError::MalformedJson {
        detail: err.to_string(),
    })?;
    Ok(value)
}

fn json_path(path: &serde_path_to_error::Path) -> String {
    let text = path.to_string();
    if text == "." {
        "$".to_string()
    } else if text.starts_with('[') {
        format!("${text}")
    } else {
        format!("$.{text}")
    }
}

/// Points an unknown-field error at the field itself. serde_path_to_error already does for a
/// plain struct, but inside an internally tagged enum (`{"kind": "fixed", …}`) the fields are
/// buffered first and the path stops at the enum.
fn unknown_field_path(path: String, detail: &str) -> String {
    let field = detail
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(field, _)| field);
    match field {
        Some(field) if !path.ends_with(&format!(".{field}")) => format!("{path}.{field}"),
        _ => path,
    }
}

/// serde_json appends " at line L column C", which says less than the JSON path we give.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(idx) => message[..idx].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Probe {
        items: Vec<Item>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Item {
        count: u64,
    }

    #[test]
    fn syntax_errors_are_malformed() {
        let err = parse::<Probe>(b"{\"items\": [").unwrap_err();
        assert!(matches!(err, AppError::MalformedJson { .. }), "{err:?}");
    }

    #[test]
    fn data_errors_carry_the_path() {
        let err = parse::<Probe>(br#"{"items": [{"count": 1}, {"count": -3}]}"#).unwrap_err();
        match err {
            AppError::Invalid { path, detail } => {
                assert_eq!(path, "$.items[1].count");
                assert!(detail.contains("-3"), "{detail}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn unknown_fields_are_named_in_the_path() {
        for (text, where_) in [
            (
                r#"{"items": [{"count": 1, "cuont": 2}]}"#,
                "$.items[0].cuont",
            ),
            (
                r#"{"items": [], "wait": {"kind": "fixed", "ms": 1, "jitter": 0.1}}"#,
                "$.wait.jitter",
            ),
        ] {
            match parse::<Strict>(text.as_bytes()).unwrap_err() {
                AppError::Invalid { path, .. } => assert_eq!(path, where_, "{text}"),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Strict {
        items: Vec<StrictItem>,
        #[serde(default)]
        wait: Option<protocol::WaitConfig>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct StrictItem {
        count: u64,
    }

    #[test]
    fn trailing_garbage_is_malformed() {
        let err = parse::<Probe>(br#"{"items": []} x"#).unwrap_err();
        assert!(matches!(err, AppError::MalformedJson { .. }), "{err:?}");
    }
}
