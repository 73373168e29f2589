//! The one list of the API's routes: each handler with who may call it. The router and the
//! OpenAPI document are both made from it (utoipa-axum), so neither can name a route the
//! other lacks, and each operation's `security` states its access as role names, which the
//! auth matrix test reads back to try every route as every kind of caller.

use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{HttpMethod, PathItem};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::routes;

use crate::alerts::api as alerts;
use crate::auth::{self, session};
use crate::configs::http as configs;
use crate::ingest::http as ingest;
use crate::query::{http as query, stream};
use crate::state::AppState;
use crate::tuning::autotune::http as auto;
use crate::tuning::recommend::http as recommend;

/// Who may call a route. In the document, the roles of its `bearer` requirement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, with or without credentials.
    Public,
    /// Viewers and admins; anyone under `--anonymous-viewer`.
    Read,
    /// An ingest key of the service named (in the path or the body), or an admin.
    Ingest,
    /// A service's configs: its ingest keys, viewers and admins; anyone under
    /// `--anonymous-viewer`.
    Config,
    /// Admins only.
    Admin,
}

impl Access {
    /// The roles a `bearer` requirement lists for this access; none for public routes.
    pub fn roles(self) -> &'static [&'static str] {
        match self {
            Access::Public => &[],
            Access::Read => &["viewer", "admin"],
            Access::Ingest => &["ingest", "admin"],
            Access::Config => &["ingest", "viewer", "admin"],
            Access::Admin => &["admin"],
        }
    }

    /// The access a route's roles state (the inverse of [`Access::roles`]).
    pub fn from_roles(roles: &[&str]) -> Option<Access> {
        [
            Access::Public,
            Access::Read,
            Access::Ingest,
            Access::Config,
            Access::Admin,
        ]
        .into_iter()
        .find(|access| access.roles() == roles)
    }
}

/// `routes` with their access written into every operation they add to the document.
fn with(access: Access, routes: UtoipaMethodRouter<AppState>) -> UtoipaMethodRouter<AppState> {
    let (schemas, mut paths, method_router) = routes;
    for item in paths.paths.values_mut() {
        for method in METHODS {
            if let Some(op) = operation_mut(item, method) {
                op.security = Some(match access {
                    Access::Public => Vec::new(),
                    _ => vec![SecurityRequirement::new("bearer", access.roles().to_vec())],
                });
            }
        }
    }
    (schemas, paths, method_router)
}

const METHODS: [HttpMethod; 4] = [
    HttpMethod::Get,
    HttpMethod::Post,
    HttpMethod::Put,
    HttpMethod::Delete,
];

fn operation_mut(
    item: &mut PathItem,
    method: HttpMethod,
) -> Option<&mut utoipa::openapi::path::Operation> {
    match method {
        HttpMethod::Get => item.get.as_mut(),
        HttpMethod::Post => item.post.as_mut(),
        HttpMethod::Put => item.put.as_mut(),
        HttpMethod::Delete => item.delete.as_mut(),
        _ => None,
    }
}

/// Every API route, with its handler and access.
pub fn api() -> OpenApiRouter<AppState> {
    use Access::*;
    OpenApiRouter::with_openapi(<crate::openapi::ApiDoc as utoipa::OpenApi>::openapi())
        // Ingest.
        .routes(with(Ingest, routes!(ingest::ingest)))
        .routes(with(Ingest, routes!(ingest::ingest_calls)))
        // Reading what was stored.
        .routes(with(Read, routes!(query::services)))
        .routes(with(Read, routes!(query::breakers)))
        .routes(with(Read, routes!(query::sparklines)))
        .routes(with(Read, routes!(query::series)))
        .routes(with(Read, routes!(query::timeline)))
        .routes(with(Read, routes!(query::transitions)))
        .routes(with(Read, routes!(query::metrics)))
        .routes(with(Read, routes!(stream::stream)))
        // Who is asking; the dashboard's cookie.
        .routes(with(Read, routes!(auth::me)))
        .routes(with(Public, routes!(session::sign_in)))
        .routes(with(Public, routes!(session::sign_out)))
        // Configs.
        .routes(with(Read, routes!(configs::view)))
        .routes(with(Admin, routes!(configs::put)))
        .routes(with(Admin, routes!(configs::restore)))
        .routes(with(Admin, routes!(configs::control)))
        .routes(with(Config, routes!(configs::poll)))
        .routes(with(Ingest, routes!(configs::report_status)))
        .routes(with(Read, routes!(configs::audit)))
        // Tuning.
        .routes(with(Admin, routes!(recommend::create)))
        .routes(with(Read, routes!(recommend::list)))
        .routes(with(Read, routes!(recommend::get)))
        .routes(with(Admin, routes!(recommend::accept)))
        .routes(with(Admin, routes!(recommend::reject)))
        .routes(with(Read, routes!(recommend::lint_handler)))
        .routes(with(Read, routes!(auto::get)))
        .routes(with(Admin, routes!(auto::put)))
        .routes(with(Admin, routes!(auto::run)))
        // Alerts.
        .routes(with(Read, routes!(alerts::list)))
        .routes(with(Read, routes!(alerts::get)))
        .routes(with(Admin, routes!(alerts::acknowledge)))
        .routes(with(Admin, routes!(alerts::silence)))
        .routes(with(Read, routes!(alerts::list_rules)))
        .routes(with(Admin, routes!(alerts::put_rule)))
        .routes(with(Admin, routes!(alerts::delete_rule)))
        .routes(with(Read, routes!(alerts::list_channels)))
        .routes(with(Admin, routes!(alerts::put_channel)))
        .routes(with(Admin, routes!(alerts::delete_channel)))
        .routes(with(Read, routes!(alerts::chart)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_name_each_access_once() {
        for access in [
            Access::Public,
            Access::Read,
            Access::Ingest,
            Access::Config,
            Access::Admin,
        ] {
            assert_eq!(Access::from_roles(access.roles()), Some(access));
        }
        assert_eq!(Access::from_roles(&["viewer"]), None);
    }

    #[test]
    fn every_operation_states_its_access() {
        let doc = api().into_openapi();
        let mut n = 0;
        for (path, item) in doc.paths.paths {
            let mut item = item;
            for method in METHODS {
                let Some(op) = operation_mut(&mut item, method) else {
                    continue;
                };
                n += 1;
                let security = op.security.as_ref().unwrap_or_else(|| panic!("{path}"));
                let json = serde_json::to_value(security).unwrap();
                let roles: Vec<&str> = json
                    .get(0)
                    .and_then(|req| req["bearer"].as_array())
                    .map(|roles| roles.iter().map(|r| r.as_str().unwrap()).collect())
                    .unwrap_or_default();
                assert!(Access::from_roles(&roles).is_some(), "{path}: {roles:?}");
            }
        }
        assert_eq!(n, 40, "operations in the route list");
    }
}
