//! The optional TOML settings file of `fusebox serve` / `fusebox demo` (`--config FILE`).
//!
//! Precedence: command-line flags, then environment variables, then this file, then defaults.
//! Parsing is pure ([`parse`]); unknown keys are refused with their name, so a typo does not
//! silently keep a default.
//!
//! ```toml
//! bind = "0.0.0.0:7878"
//! database = "sqlite:///var/lib/fusebox/fusebox.db"
//! dist = "/usr/share/fusebox/dist"
//! max_body_bytes = 1048576
//! anonymous_viewer = false
//! ingest_queue = 1024
//!
//! public_url = "https://fusebox.example.com"
//! # How often auto mode takes a step for each breaker in it (see docs/auto-mode.md).
//! auto_tune_period_s = 60
//!
//! [engine]
//! # The time budget of one engine run (a recommendation, an auto-mode step's engine run, a
//! # lint's history read); past it the request answers 503 engine_budget_exceeded.
//! budget_ms = 20000
//! # How many names ingest takes in; a batch that would create one more is refused with a
//! # 422 `limit_exceeded` (see docs/protocol.md). These are the defaults.
//! [limits]
//! max_services = 1000
//! max_breakers_per_service = 1000
//! max_instances_per_service = 10000
//! # The most calls one aggregate may report per second of its interval.
//! max_calls_per_s = 1000000
//!
//! # Connection caps and deadlines, and the failed-authentication throttle. The defaults:
//! [connections]
//! max_connections = 4096
//! max_connections_per_ip = 512
//! # How long a client may take to send a request head (also closes idle connections).
//! header_read_timeout_s = 20
//! body_read_timeout_s = 30
//! # Failed authentications per client address and minute before it gets 429.
//! failed_auth_per_minute = 10
//!
//! [retention]
//! # On PostgreSQL raw aggregates go a day at a time, once the whole (UTC) day is older.
//! raw_hours = 48
//! minute_days = 30
//! hour_days = 400
//!
//! [[alerts.rules]]
//! name = "payments-flapping"
//! kind = "flapping"
//! service = "checkout"
//! breaker = "payments-*"
//! severity = "warning"
//! openings = 3
//! within_ms = 600000
//!
//! [[alerts.channels]]
//! name = "oncall"
//! kind = "webhook"
//! url = "https://hooks.example.com/fusebox"
//! secret = "…"
//! ```
//!
//! Rules and channels are described in `docs/alerts.md`.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub bind: Option<SocketAddr>,
    pub database: Option<String>,
    pub dist: Option<PathBuf>,
    pub max_body_bytes: Option<usize>,
    pub anonymous_viewer: Option<bool>,
    pub ingest_queue: Option<usize>,
    /// The base URL alert notifications link to.
    pub public_url: Option<String>,
    pub auto_tune_period_s: Option<u64>,
    #[serde(default)]
    pub retention: RetentionSettings,
    #[serde(default)]
    pub limits: LimitsSettings,
    #[serde(default)]
    pub connections: ConnectionSettings,
    #[serde(default)]
    pub alerts: AlertsSettings,
    #[serde(default)]
    pub engine: EngineSettings,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSettings {
    /// The time budget of one engine run, in milliseconds (default 20 000).
    pub budget_ms: Option<u64>,
}

/// The `[limits]` table; each key overrides its default in [`crate::ingest::limits::Limits`].
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSettings {
    pub max_services: Option<usize>,
    pub max_breakers_per_service: Option<usize>,
    pub max_instances_per_service: Option<usize>,
    pub max_calls_per_s: Option<u64>,
}

/// The `[connections]` table; each key overrides its default in
/// [`crate::listen::ConnectionLimits`] or the failed-authentication throttle.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionSettings {
    pub max_connections: Option<usize>,
    pub max_connections_per_ip: Option<usize>,
    pub header_read_timeout_s: Option<u64>,
    pub body_read_timeout_s: Option<u64>,
    pub failed_auth_per_minute: Option<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsSettings {
    #[serde(default)]
    pub rules: Vec<protocol::AlertRule>,
    #[serde(default)]
    pub channels: Vec<protocol::AlertChannel>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    pub raw_hours: Option<u64>,
    pub minute_days: Option<u64>,
    pub hour_days: Option<u64>,
}

/// Parses a settings file's text.
pub fn parse(text: &str) -> Result<FileSettings, toml::de::Error> {
    toml::from_str(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_parses() {
        let settings = parse(
            r#"
            bind = "0.0.0.0:9000"
            database = "sqlite://x.db"
            anonymous_viewer = true
            [retention]
            raw_hours = 6
            [engine]
            budget_ms = 5000
            "#,
        )
        .unwrap();
        assert_eq!(settings.engine.budget_ms, Some(5_000));
        assert_eq!(settings.bind, Some("0.0.0.0:9000".parse().unwrap()));
        assert_eq!(settings.database.as_deref(), Some("sqlite://x.db"));
        assert_eq!(settings.anonymous_viewer, Some(true));
        assert_eq!(settings.retention.raw_hours, Some(6));
        assert_eq!(settings.max_body_bytes, None);
    }

    #[test]
    fn an_unknown_key_is_named() {
        let err = parse("bnd = \"0.0.0.0:1\"").unwrap_err().to_string();
        assert!(err.contains("bnd"), "{err}");
    }

    #[test]
    fn alert_rules_and_channels_parse() {
        let settings = parse(
            r#"
            [[alerts.rules]]
            name = "flaps"
            kind = "flapping"
            openings = 3
            within_ms = 60000
            [[alerts.channels]]
            name = "oncall"
            kind = "webhook"
            url = "http://127.0.0.1:9/hook"
            secret = "s3cret"
            "#,
        )
        .unwrap();
        assert_eq!(settings.alerts.rules[0].openings, Some(3));
        assert_eq!(settings.alerts.rules[0].service, "*");
        assert_eq!(
            settings.alerts.channels[0].secret.as_deref(),
            Some("s3cret")
        );
        let err = parse("[[alerts.rules]]\nname = \"x\"\nkind = \"trip\"\nsevrity = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("sevrity"), "{err}");
    }

    #[test]
    fn limits_parse_and_unknown_ones_are_named() {
        let settings = parse("[limits]\nmax_services = 5\nmax_breakers_per_service = 7").unwrap();
        assert_eq!(settings.limits.max_services, Some(5));
        assert_eq!(settings.limits.max_breakers_per_service, Some(7));
        assert_eq!(settings.limits.max_instances_per_service, None);
        let err = parse("[limits]\nmax_service = 5").unwrap_err().to_string();
        assert!(err.contains("max_service"), "{err}");
    }

    #[test]
    fn connection_settings_and_the_call_rate_limit_parse() {
        let settings = parse(
            "[limits]\nmax_calls_per_s = 5000\n[connections]\nmax_connections = 64\n\
             failed_auth_per_minute = 1000\nheader_read_timeout_s = 5",
        )
        .unwrap();
        assert_eq!(settings.limits.max_calls_per_s, Some(5_000));
        assert_eq!(settings.connections.max_connections, Some(64));
        assert_eq!(settings.connections.failed_auth_per_minute, Some(1_000));
        assert_eq!(settings.connections.header_read_timeout_s, Some(5));
        assert_eq!(settings.connections.max_connections_per_ip, None);
        let err = parse("[connections]\nmax_conections = 5")
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_conections"), "{err}");
    }

    #[test]
    fn an_empty_file_is_all_defaults() {
        assert_eq!(parse("").unwrap(), FileSettings::default());
    }
}
