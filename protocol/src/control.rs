//! What the server shows and accepts about configs, manual control and the audit log.

use serde::{Deserialize, Serialize};

use crate::{BreakerConfig, BreakerMode, ConfigRefusal};

/// One stored version of a breaker's config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredConfig {
    pub config: BreakerConfig,
    pub created_ms: i64,
    /// The admin (or the engine) that made this version.
    pub created_by: String,
    pub reason: String,
}

/// Whether one instance runs the current config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstanceSync {
    pub instance: String,
    /// The version the instance last reported running.
    pub running_version: u64,
    pub in_sync: bool,
    /// The latest pushed version it refused, and why.
    #[serde(default)]
    pub refused: Option<ConfigRefusal>,
}

/// A breaker's current config, its history (newest first) and per-instance sync status.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConfigView {
    pub service: String,
    pub breaker: String,
    pub current: Option<StoredConfig>,
    pub history: Vec<StoredConfig>,
    pub instances: Vec<InstanceSync>,
}

/// A new config for a breaker; the server assigns its version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConfigChange {
    pub config: BreakerConfig,
    #[serde(default)]
    pub reason: Option<String>,
}

/// A manual state for a breaker: forced open, disabled, metrics only, or back to automatic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ControlRequest {
    pub mode: BreakerMode,
    #[serde(default)]
    pub reason: Option<String>,
}

/// Restores an earlier version as a new version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    #[serde(deserialize_with = "crate::int64::u64")]
    pub version: u64,
}

/// One audited change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub id: i64,
    pub at_ms: i64,
    pub actor: String,
    /// `config`, `control`, `restore`, …
    pub action: String,
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub breaker: Option<String>,
    pub detail: String,
}

/// Who the request's credentials name (`GET /api/v1/me`), so the dashboard knows whether to
/// show admin controls.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Me {
    /// The user's name; `None` when reading anonymously.
    #[serde(default)]
    pub name: Option<String>,
    pub role: AccessRole,
}

/// What a dashboard user may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AccessRole {
    /// No token, on a server that lets anyone read.
    Anonymous,
    Viewer,
    Admin,
}

/// `POST /api/v1/session`: the dashboard signs in with exactly one of a viewer or admin
/// `token`, or a one-time sign-in `code` (such as the one `fusebox demo` prints in its admin
/// link), which the server exchanges for the token it stands for and forgets. The server
/// answers with [`Me`] and keeps the token in an HttpOnly cookie that page scripts cannot read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub code: Option<String>,
}
