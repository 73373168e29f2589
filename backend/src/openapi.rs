//! The OpenAPI document, generated from the route list ([`crate::routes`]), the handlers'
//! annotations and the `protocol` types, served at `/api/openapi.json`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "fusebox",
        description = "Live dashboards and adaptive tuning for circuit breakers. \
                       Every error body is an ErrorBody. Authenticate with `Authorization: Bearer` \
                       and an ingest key (fbk_…) or a user token (fbu_…)."
    ),
    components(schemas(protocol::AlertNotice)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// `GET /api/openapi.json`: the document, serialised once.
pub async fn openapi_json() -> impl axum::response::IntoResponse {
    static DOCUMENT: std::sync::OnceLock<axum::body::Bytes> = std::sync::OnceLock::new();
    let body = DOCUMENT
        .get_or_init(|| document().to_string().into())
        .clone();
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
}

/// The served document: the annotations' paths and schemas, completed with what every route
/// shares and the annotations cannot say once for all (see [`complete`]).
pub fn document() -> serde_json::Value {
    let mut doc =
        serde_json::to_value(crate::routes::api().into_openapi()).expect("the document serialises");
    complete(&mut doc);
    doc
}

/// Fields that hold a service, instance or breaker name, which `protocol::validate_name` checks.
const NAME_FIELDS: [&str; 3] = ["service", "instance", "breaker"];
/// Query parameters that are timestamps, which `time::checked_ms` checks.
const TIME_PARAMS: [&str; 2] = ["from_ms", "to_ms"];

/// Query parameters that take one of a few words: (path, parameter, words).
const QUERY_ENUMS: [(&str, &str, &[&str]); 4] = [
    ("/api/v1/stream", "summaries", &["each", "batched"]),
    ("/api/v1/alerts", "status", &["firing", "resolved"]),
    (
        "/api/v1/recommendations",
        "status",
        &["open", "accepted", "rejected", "superseded"],
    ),
    (
        "/api/v1/breakers/{service}/{breaker}/transitions",
        "to",
        &["closed", "open", "half_open"],
    ),
];

/// Adds to the generated document:
/// - the answers every route can give: 400 (a malformed path, query or header), 401, 403 and
///   429 (too many failed authentications from one address) where credentials are needed,
///   413, 415 and 422 where there is a body, 404 where the path names a resource;
/// - the bounds shared by many fields: names (1–200 characters, no control, invisible or
///   text-reordering characters), timestamps in queries (`0..=time::MAX_MS`), trigger kinds;
/// - the live stream's events, each an SSE message whose `data` is JSON of its own schema;
/// - the ingest body's compact form, beside JSON.
fn complete(doc: &mut serde_json::Value) {
    use serde_json::{Value, json};
    let error = |description: &str| {
        json!({"description": description,
               "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}})
    };
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, op) in item.iter_mut() {
                let Some(op) = op.as_object_mut() else {
                    continue;
                };
                let secured = op
                    .get("security")
                    .and_then(Value::as_array)
                    .is_some_and(|list| !list.is_empty());
                let has_body = op.contains_key("requestBody");
                if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
                    for param in params {
                        let name = param["name"].as_str().unwrap_or_default().to_string();
                        let name = name.as_str();
                        // A path, query or header value is text: it is never JSON's null.
                        if let Some(types) = param["schema"]["type"].as_array_mut() {
                            types.retain(|t| t != "null");
                            if types.len() == 1 {
                                param["schema"]["type"] = types[0].clone();
                            }
                        }
                        if TIME_PARAMS.contains(&name) {
                            param["schema"]["minimum"] = json!(0);
                            param["schema"]["maximum"] = json!(crate::time::MAX_MS);
                        }
                        if NAME_FIELDS.contains(&name) {
                            param["schema"] = name_schema();
                        }
                        if let Some((.., values)) = QUERY_ENUMS
                            .iter()
                            .find(|(on, param, _)| *on == path.as_str() && *param == name)
                        {
                            param["schema"]["enum"] = json!(values);
                        }
                    }
                }
                let responses = op
                    .entry("responses")
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                    .expect("responses is an object");
                let mut add = |status: &str, description: &str| {
                    responses
                        .entry(status)
                        .or_insert_with(|| error(description));
                };
                add("400", "A malformed path, query, header or JSON body");
                if secured {
                    add("401", "No or unknown credentials");
                    add("403", "Credentials without the right");
                    add(
                        "429",
                        "Too many failed authentications from this address; retry after \
                         `Retry-After`",
                    );
                }
                if has_body {
                    add("413", "Body over the limit");
                    add("415", "Not declared as JSON, or encoded");
                    add("422", "A field is invalid; `path` says which");
                }
                if path.contains('{') && method != "put" {
                    add("404", "No such resource");
                }
            }
        }
    }
    // An ingest body may also come in the compact form (`protocol::compact`), which the Rust
    // reporter sends: postcard bytes of the same batch.
    if let Some(content) = doc
        .pointer_mut("/paths/~1api~1v1~1ingest/post/requestBody/content")
        .and_then(Value::as_object_mut)
    {
        content.insert(
            protocol::compact::MEDIA_TYPE.into(),
            json!({"schema": {
                "type": "string",
                "contentMediaType": protocol::compact::MEDIA_TYPE,
                "description": "The IngestBatch in postcard's binary form (fields in order, \
                                integers as varints), version 1; see `protocol::compact`"
            }}),
        );
    }
    if let Some(schemas) = doc["components"]["schemas"].as_object_mut() {
        let name = name_schema();
        for schema in schemas.values_mut() {
            for_each_object(schema, &mut |object| {
                if let Some(properties) =
                    object.get_mut("properties").and_then(Value::as_object_mut)
                {
                    for field in NAME_FIELDS {
                        if let Some(property) = properties.get_mut(field)
                            && property["type"] == "string"
                        {
                            let description = property.get("description").cloned();
                            *property = name.clone();
                            if let Some(description) = description {
                                property["description"] = description;
                            }
                        }
                    }
                }
            });
        }
        // utoipa writes a u32 as int32 with minimum 0, but a u32 goes to 4294967295.
        for schema in schemas.values_mut() {
            widen_u32(schema);
        }
        for (schema, field, bound) in field_bounds() {
            let Some(schema) = schemas.get_mut(schema) else {
                panic!("no schema {schema}")
            };
            let mut found = false;
            for_each_object(schema, &mut |object| {
                if let Some(property) = object
                    .get_mut("properties")
                    .and_then(|properties| properties.get_mut(field))
                    .and_then(Value::as_object_mut)
                {
                    for (key, value) in bound.as_object().expect("a bound is an object") {
                        property.insert(key.clone(), value.clone());
                    }
                    found = true;
                }
            });
            assert!(found, "no field {field}");
        }
        // What `alerts::rules::check_rule` asks of each kind.
        let when = |kind: &str, then: Value| json!({"if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]}, "then": then});
        let positive = |fields: &[&str]| {
            let properties: serde_json::Map<String, Value> = fields
                .iter()
                .map(|field| (field.to_string(), json!({"type": "integer", "minimum": 1})))
                .collect();
            json!({"required": fields, "properties": properties})
        };
        if let Some(rule) = schemas.get_mut("AlertRule") {
            rule["allOf"] = json!([
                when("open_longer", positive(&["for_ms"])),
                when("flapping", positive(&["openings", "within_ms"])),
                when("min_instances", positive(&["min_open"])),
                when(
                    "trip",
                    json!({"properties": {"group_by": {"enum": [null, "dependency", "breaker"]}}})
                ),
            ]);
        }
        // Exactly one of `token` and `code` (`auth::session::sign_in`).
        if let Some(sign_in) = schemas.get_mut("SignInRequest") {
            sign_in["minProperties"] = json!(1);
            sign_in["maxProperties"] = json!(1);
        }
        if let Some(kind) = schemas
            .get_mut("Trigger")
            .and_then(|trigger| trigger["properties"].get_mut("kind"))
        {
            kind["enum"] = json!(protocol::TRIGGER_KINDS);
        }
    }
    let sse = &mut doc["paths"]["/api/v1/stream"]["get"]["responses"]["200"]["content"]["text/event-stream"];
    if sse.is_object() {
        let event = |kind: &str, data: Value| {
            json!({
                "type": "object",
                "required": ["event", "data"],
                "properties": {
                    "event": {"const": kind},
                    "id": {"type": "string"},
                    "retry": {"type": "integer"},
                    "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": data},
                },
            })
        };
        let record = |name: &str| json!({"$ref": format!("#/components/schemas/{name}")});
        // A summary's JSON per `data:` line: JSON Lines once the lines are joined.
        let mut summaries = event("summaries", record("StreamEvent"));
        summaries["properties"]["data"] = json!({
            "type": "string", "contentMediaType": "application/jsonl",
            "description": "one StreamEvent (a summary) per line, in order",
        });
        sse["schema"] = json!({
            "description": "One SSE message. `ready` comes first; a stream whose credential \
                            is revoked ends with `revoked`.",
            "oneOf": [
                event("ready", json!({"type": "object", "required": ["last_id"],
                    "properties": {"last_id": {"type": "integer", "format": "int64"}}})),
                event("transition", record("StreamEvent")),
                event("summary", record("StreamEvent")),
                summaries,
                event("alert", record("AlertNotice")),
                event("revoked", json!({"type": "object", "required": ["detail"],
                    "properties": {"detail": {"type": "string"}}})),
            ],
        });
    }
}

/// Bounds of single fields that the validation of their type enforces (`breaker::ConfigBuilder`
/// for configs, `AutoTuneSettings::check`, the alert handlers, sign-in): (schema, field, JSON
/// Schema keywords). Rules that relate two fields are stated in the operations' descriptions.
fn field_bounds() -> Vec<(&'static str, &'static str, serde_json::Value)> {
    use serde_json::json;
    const DAY_MS: i64 = 86_400_000;
    let rate = json!({"exclusiveMinimum": 0, "maximum": 1});
    let at_least_one = json!({"minimum": 1});
    let pair = |items: serde_json::Value| json!({"minItems": 2, "maxItems": 2, "items": items});
    let mut bounds = vec![
        ("BreakerConfig", "failure_rate_threshold", rate.clone()),
        ("BreakerConfig", "slow_call_rate_threshold", rate.clone()),
        (
            "BreakerConfig",
            "consecutive_failures",
            at_least_one.clone(),
        ),
        ("BreakerConfig", "minimum_calls", at_least_one.clone()),
        ("BreakerConfig", "half_open_probes", at_least_one.clone()),
        ("BreakerConfig", "half_open_successes", at_least_one.clone()),
        (
            "BreakerConfig",
            "half_open_max_wait_ms",
            at_least_one.clone(),
        ),
        ("BreakerConfig", "call_timeout_ms", at_least_one.clone()),
        (
            "WindowConfig",
            "calls",
            json!({"minimum": 1, "maximum": breaker::config::MAX_WINDOW_CALLS}),
        ),
        (
            "WindowConfig",
            "seconds",
            json!({"minimum": 1, "maximum": breaker::config::MAX_WINDOW_SECONDS}),
        ),
        ("WaitConfig", "ms", at_least_one.clone()),
        ("WaitConfig", "initial_ms", at_least_one.clone()),
        (
            "WaitConfig",
            "multiplier",
            json!({"minimum": 1, "maximum": 100}),
        ),
        ("WaitConfig", "jitter", json!({"minimum": 0, "maximum": 1})),
        (
            "AutoTuneSettings",
            "max_step",
            json!({"exclusiveMinimum": 0, "maximum": 10}),
        ),
        (
            "AutoTuneSettings",
            "cooldown_ms",
            json!({"minimum": 0, "maximum": 30 * DAY_MS}),
        ),
        (
            "AutoTuneSettings",
            "canary_ms",
            json!({"minimum": 1_000, "maximum": 7 * DAY_MS}),
        ),
        (
            "AutoTuneSettings",
            "min_confidence",
            json!({"minimum": 0, "maximum": 1}),
        ),
        (
            "AutoTuneSettings",
            "days",
            json!({"minimum": 1, "maximum": 30}),
        ),
        (
            "AutoTuneBounds",
            "failure_rate_threshold",
            pair(json!({"type": "number", "exclusiveMinimum": 0, "maximum": 1})),
        ),
        (
            "AutoTuneBounds",
            "slow_call_rate_threshold",
            pair(json!({"type": "number", "exclusiveMinimum": 0, "maximum": 1})),
        ),
        (
            "AutoTuneBounds",
            "minimum_calls",
            pair(json!({"type": "integer", "format": "int64", "minimum": 1, "maximum": u32::MAX})),
        ),
        (
            "AutoTuneBounds",
            "consecutive_failures",
            pair(json!({"type": "integer", "format": "int64", "minimum": 1, "maximum": u32::MAX})),
        ),
        (
            "AutoTuneBounds",
            "wait_ms",
            pair(
                json!({"type": "integer", "format": "int64", "minimum": 100, "maximum": 3_600_000}),
            ),
        ),
        (
            "SilenceRequest",
            "for_ms",
            json!({"minimum": 0, "maximum": 30 * DAY_MS}),
        ),
        (
            "AlertRule",
            "severity",
            json!({"minLength": 1, "maxLength": 50}),
        ),
        ("AlertChannel", "url", json!({"format": "uri"})),
    ];
    for schema in ["AlertRule", "AlertChannel"] {
        bounds.push((schema, "name", name_schema()));
    }
    for field in ["token", "code"] {
        bounds.push((
            "SignInRequest",
            field,
            json!({"pattern": "^[A-Za-z0-9_]+$"}),
        ));
    }
    bounds
}

fn name_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "string",
        "minLength": 1,
        "maxLength": protocol::MAX_NAME_LEN,
        "pattern": NAME_PATTERN,
    })
}

/// What `protocol::validate_name` refuses besides length: control characters (Unicode Cc) and
/// the invisible or text-reordering ones of `is_spoofing`.
const NAME_PATTERN: &str = "^[^\\u0000-\\u001F\\u007F-\\u009F\\u00AD\\u061C\\u180E\\u200B-\\u200F\\u2028-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*$";

/// Rewrites `{"format": "int32", "minimum": 0}` (how utoipa writes a u32) to the u32 range.
fn widen_u32(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(object) => {
            if object.get("format").and_then(|f| f.as_str()) == Some("int32")
                && object.get("minimum").and_then(|m| m.as_i64()) == Some(0)
            {
                object.insert("format".into(), "int64".into());
                object.insert("maximum".into(), u32::MAX.into());
            }
            object.values_mut().for_each(widen_u32);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(widen_u32),
        _ => {}
    }
}

/// Calls `f` on `schema` and every object schema nested in it through `allOf`/`oneOf`/`anyOf`,
/// `properties` and `items`.
fn for_each_object(
    schema: &mut serde_json::Value,
    f: &mut impl FnMut(&mut serde_json::Map<String, serde_json::Value>),
) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    f(object);
    for key in ["allOf", "oneOf", "anyOf"] {
        if let Some(list) = object
            .get_mut(key)
            .and_then(serde_json::Value::as_array_mut)
        {
            for item in list {
                for_each_object(item, f);
            }
        }
    }
    if let Some(properties) = object
        .get_mut("properties")
        .and_then(serde_json::Value::as_object_mut)
    {
        for property in properties.values_mut() {
            for_each_object(property, f);
        }
    }
    if let Some(items) = object.get_mut("items") {
        for_each_object(items, f);
    }
}

#[cfg(test)]
mod tests;
