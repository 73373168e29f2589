//! The OpenAPI document: what it says of the routes, schemas and bounds.

use super::*;

fn schema(doc: &serde_json::Value, name: &str) -> serde_json::Value {
    doc["components"]["schemas"][name].clone()
}

#[test]
fn request_types_are_closed_and_integers_int64() {
    let doc = document();
    for name in [
        "IngestBatch",
        "Aggregate",
        "OutcomeCounts",
        "Transition",
        "CallBatch",
    ] {
        assert_eq!(
            schema(&doc, name)["additionalProperties"],
            false,
            "{name} should refuse unknown fields"
        );
    }
    let seq = &schema(&doc, "IngestBatch")["properties"]["seq"];
    assert_eq!(
        (&seq["format"], &seq["minimum"]),
        (&"int64".into(), &0.into())
    );
}

/// A record's transition fields sit beside its own on the wire; the schema must say so
/// rather than `allOf` a closed `Transition` that no record could match.
#[test]
fn transition_records_have_a_flat_schema() {
    let doc = document();
    let record = schema(&doc, "TransitionRecord");
    assert!(record.get("allOf").is_none(), "{record}");
    for field in [
        "id", "service", "instance", "breaker", "at_ms", "from", "to", "trigger",
    ] {
        assert!(
            record["properties"].get(field).is_some(),
            "{field}: {record}"
        );
    }
}

/// Every operation lists the answers its extractors can give, and the bounds they check.
#[test]
fn every_operation_lists_its_shared_answers_and_bounds() {
    let doc = document();
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let statuses = op["responses"].as_object().unwrap();
            let has = |status: &str| statuses.contains_key(status);
            assert!(has("400"), "{method} {path}");
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            if secured {
                assert!(has("401") && has("403") && has("429"), "{method} {path}");
            }
            if op.get("requestBody").is_some() {
                assert!(has("413") && has("415") && has("422"), "{method} {path}");
            }
            for param in op["parameters"].as_array().into_iter().flatten() {
                let schema = &param["schema"];
                assert!(
                    !schema["type"]
                        .as_array()
                        .is_some_and(|t| t.contains(&"null".into())),
                    "{method} {path} {param}: a parameter is text, never null"
                );
                match param["name"].as_str().unwrap() {
                    "limit" | "days" => {
                        assert_eq!(schema["minimum"], 1, "{method} {path}");
                        assert!(schema["maximum"].is_u64(), "{method} {path}");
                    }
                    "from_ms" | "to_ms" => {
                        assert_eq!(schema["maximum"], crate::time::MAX_MS, "{method} {path}")
                    }
                    "service" | "instance" | "breaker" => {
                        assert_eq!(schema["pattern"], NAME_PATTERN, "{method} {path}")
                    }
                    _ => {}
                }
            }
        }
    }
    assert!(operations >= 40, "{operations}");
    let rule = schema(&doc, "AlertRule");
    assert_eq!(
        rule["properties"]["name"]["maxLength"],
        protocol::MAX_NAME_LEN
    );
    assert_eq!(rule["allOf"].as_array().unwrap().len(), 4);
    let batch = schema(&doc, "IngestBatch");
    assert_eq!(batch["properties"]["instance"]["minLength"], 1);
    let config = schema(&doc, "BreakerConfig");
    assert_eq!(config["properties"]["half_open_probes"]["minimum"], 1);
    assert_eq!(
        config["properties"]["half_open_probes"]["maximum"],
        u32::MAX
    );
    let events = &doc["paths"]["/api/v1/stream"]["get"]["responses"]["200"]["content"]["text/event-stream"]
        ["schema"]["oneOf"];
    let kinds: Vec<_> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["properties"]["event"]["const"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "ready",
            "transition",
            "summary",
            "summaries",
            "alert",
            "revoked"
        ]
    );
}

/// The name pattern refuses exactly what `protocol::validate_name` refuses for characters.
#[test]
fn the_name_pattern_matches_the_validation() {
    let refused = |c: char| protocol::validate_name(&format!("a{c}b")).is_err();
    let in_class = |c: char| {
        let class = NAME_PATTERN
            .trim_start_matches("^[^")
            .trim_end_matches("]*$");
        let mut ranges = Vec::new();
        let mut rest = class;
        while let Some(item) = rest.strip_prefix("\\u") {
            let start = u32::from_str_radix(&item[..4], 16).unwrap();
            rest = &item[4..];
            let end = match rest.strip_prefix("-\\u") {
                Some(tail) => {
                    rest = &tail[4..];
                    u32::from_str_radix(&tail[..4], 16).unwrap()
                }
                None => start,
            };
            ranges.push(start..=end);
        }
        assert!(rest.is_empty(), "unparsed: {rest}");
        ranges.iter().any(|range| range.contains(&u32::from(c)))
    };
    for c in (0..=0x3000)
        .filter_map(char::from_u32)
        .chain(['\u{FEFF}', '\u{FFFD}'])
    {
        assert_eq!(refused(c), in_class(c), "U+{:04X}", u32::from(c));
    }
}

/// Every `$ref` names a schema the document holds: a type used only as a parameter is not
/// collected, and a dangling reference breaks clients generated from the document.
#[test]
fn every_reference_resolves() {
    fn refs<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a str>) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::String(target)) = map.get("$ref") {
                    out.push(target);
                }
                map.values().for_each(|v| refs(v, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let doc = document();
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(found.len() > 20, "{} references", found.len());
    let dangling: Vec<&str> = found
        .into_iter()
        .filter(|target| {
            let name = target.strip_prefix("#/components/schemas/");
            name.is_none_or(|name| doc["components"]["schemas"].get(name).is_none())
        })
        .collect();
    assert!(dangling.is_empty(), "dangling: {dangling:?}");
    // The stream's summary form is a parameter of words, listed.
    let params = &doc["paths"]["/api/v1/stream"]["get"]["parameters"];
    let form = (params.as_array().unwrap().iter())
        .find(|p| p["name"] == "summaries")
        .unwrap();
    assert_eq!(
        form["schema"]["enum"],
        serde_json::json!(["each", "batched"])
    );
}
