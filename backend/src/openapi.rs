//! The OpenAPI document, generated from the handlers' annotations and the `protocol` types,
//! served at `/api/openapi.json`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{alerts, api, autotune, configs, recommend, stream};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "fusebox",
        description = "Live dashboards and adaptive tuning for circuit breakers. \
                       Every error body is an ErrorBody. Authenticate with `Authorization: Bearer` \
                       and an ingest key (fbk_…) or a user token (fbu_…)."
    ),
    paths(
        api::ingest,
        api::ingest_calls,
        api::services,
        crate::auth::me,
        api::sparklines,
        api::breakers,
        api::series,
        api::timeline,
        api::transitions,
        api::metrics,
        stream::stream,
        configs::view,
        configs::put,
        configs::restore,
        configs::control,
        configs::poll,
        configs::report_status,
        configs::audit,
        recommend::create,
        recommend::list,
        recommend::get,
        recommend::accept,
        recommend::reject,
        recommend::lint_handler,
        autotune::get,
        autotune::put,
        autotune::run,
        alerts::api::list,
        alerts::api::get,
        alerts::api::acknowledge,
        alerts::api::silence,
        alerts::api::list_rules,
        alerts::api::put_rule,
        alerts::api::delete_rule,
        alerts::api::list_channels,
        alerts::api::put_channel,
        alerts::api::delete_channel,
        alerts::api::chart,
    ),
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

pub async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(doc: &serde_json::Value, name: &str) -> serde_json::Value {
        doc["components"]["schemas"][name].clone()
    }

    #[test]
    fn request_types_are_closed_and_integers_int64() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
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
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
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
}
