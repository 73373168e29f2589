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

/// Checks a query parameter that names a service, instance or breaker: a name no batch could
/// have stored is a bad query (400), not an empty answer.
pub fn name_param(param: &str, value: Option<&str>) -> Result<(), AppError> {
    match value {
        Some(name) => protocol::validate_name(name).map_err(|detail| AppError::BadQuery {
            detail: format!("{param}: {detail}"),
        }),
        None => Ok(()),
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
        if !declares_json(req.headers()) {
            return Err(AppError::UnsupportedMediaType {
                detail: "expected the header `Content-Type: application/json`".into(),
            });
        }
        let bytes = body_bytes(req, state).await?;
        parse(&bytes).map(JsonBody)
    }
}

/// Whether the headers declare a JSON body (`Content-Type: application/json`, any parameters).
pub fn declares_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            let mime = value.split(';').next().unwrap_or("").trim();
            mime.eq_ignore_ascii_case("application/json")
        })
}

/// A request's whole body, refused when it declares a `Content-Encoding` (it would be misread,
/// not decoded) or is over the body limit (413).
pub async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, AppError> {
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
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            AppError::TooLarge {
                detail: rejection.body_text(),
            }
        } else {
            AppError::MalformedJson {
                detail: rejection.body_text(),
            }
        }
    })
}

/// Parses JSON, telling syntax errors (400) from data errors (422, with the JSON path).
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    // Tracking the path costs on every field; only a body that fails pays for it.
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    // JSON has one number type: `5.0` is the integer 5 to JSON Schema, and so to clients that
    // generate requests from the OpenAPI document. serde refuses it for an integer field, so a
    // body that fails is read again with integral floats written as integers.
    if let Some(value) = integral_floats_as_integers(bytes)
        && let Ok(value) = T::deserialize(value)
    {
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

/// The body as a JSON value with every float that holds an integer (within int64) written as
/// that integer; `None` when it is not JSON or has no such float.
fn integral_floats_as_integers(bytes: &[u8]) -> Option<serde_json::Value> {
    fn visit(value: &mut serde_json::Value) -> bool {
        match value {
            serde_json::Value::Number(number) if number.is_f64() => {
                let float = number.as_f64().unwrap_or(f64::NAN);
                // 2^63 itself does not fit i64; the bound is exclusive.
                if float.fract() == 0.0 && float.abs() < 9_223_372_036_854_775_808.0 {
                    *value = serde_json::Value::from(float as i64);
                    true
                } else {
                    false
                }
            }
            serde_json::Value::Array(items) => items
                .iter_mut()
                .fold(false, |seen, item| visit(item) | seen),
            serde_json::Value::Object(fields) => fields
                .values_mut()
                .fold(false, |seen, item| visit(item) | seen),
            _ => false,
        }
    }
    let mut value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    visit(&mut value).then_some(value)
}

pub fn json_path(path: &serde_path_to_error::Path) -> String {
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
    fn integral_floats_are_integers() {
        let probe = parse::<Probe>(br#"{"items": [{"count": 3.0}, {"count": 4e2}]}"#).unwrap();
        assert_eq!(
            probe
                .items
                .iter()
                .map(|item| item.count)
                .collect::<Vec<_>>(),
            [3, 400]
        );
        for body in [
            &br#"{"items": [{"count": 3.5}]}"#[..],
            br#"{"items": [{"count": 1e19}]}"#,
        ] {
            let err = parse::<Probe>(body).unwrap_err();
            assert!(
                matches!(&err, AppError::Invalid { path, .. } if path == "$.items[0].count"),
                "{err:?}"
            );
        }
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
