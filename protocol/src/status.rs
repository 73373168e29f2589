//! The states a stored thing goes through, as enums. On the wire each is its snake_case name,
//! the same text the API always sent, so clients that compare strings keep working.

use serde::{Deserialize, Serialize};

/// Declares a status enum with its wire names, `as_str`, `parse`, `Display`, and equality with
/// its wire name (`status == "canary"`).
macro_rules! status_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire (and stored) name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The value a wire (or stored) name names.
            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

status_enum! {
    /// Where an automatic change stands.
    ChangeStatus {
        /// On its canary instance; the peers run the previous config.
        Canary => "canary",
        /// Every instance runs it.
        Promoted => "promoted",
        /// The previous config again, as a newer version.
        RolledBack => "rolled_back",
        /// An admin saved another config while it was on its canary.
        Cancelled => "cancelled",
    }
}

status_enum! {
    /// What one auto-mode step did.
    StepAction {
        /// The breaker is not in auto mode.
        Off => "off",
        /// A change is on its canary; nothing decided yet.
        CanaryRunning => "canary_running",
        /// The canary's change reached every instance.
        Promoted => "promoted",
        /// The canary's change was undone.
        RolledBack => "rolled_back",
        /// Too soon after the last change or engine run.
        Cooldown => "cooldown",
        /// The suggestion is below the confidence auto mode needs, or in doubt.
        LowConfidence => "low_confidence",
        /// The suggestion, within the guardrails, is the current config.
        NoChange => "no_change",
        /// A canary started.
        CanaryStarted => "canary_started",
        /// Applied to every instance at once (none listened for configs).
        Applied => "applied",
        /// An admin set a manual mode; auto mode leaves the breaker alone.
        ManualMode => "manual_mode",
        /// The config changed while the engine ran; the next step starts over.
        Superseded => "superseded",
    }
}

status_enum! {
    /// Where a recommendation stands.
    RecommendationStatus {
        /// Waiting for an admin (or auto mode).
        Open => "open",
        Accepted => "accepted",
        Rejected => "rejected",
        /// A newer recommendation for the same breaker replaced it.
        Superseded => "superseded",
    }
}

status_enum! {
    /// Where an alert stands: firing from its opening until it resolves.
    AlertStatus {
        Firing => "firing",
        Resolved => "resolved",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip_and_match_serde() {
        for &status in ChangeStatus::ALL {
            assert_eq!(ChangeStatus::parse(status.as_str()), Some(status));
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
        for &action in StepAction::ALL {
            assert_eq!(StepAction::parse(action.as_str()), Some(action));
            assert_eq!(
                serde_json::to_string(&action).unwrap(),
                format!("\"{action}\"")
            );
        }
        for &status in RecommendationStatus::ALL {
            assert_eq!(RecommendationStatus::parse(status.as_str()), Some(status));
            assert_eq!(
                serde_json::to_string(&status).unwrap(),
                format!("\"{status}\"")
            );
        }
        for &status in AlertStatus::ALL {
            assert_eq!(AlertStatus::parse(status.as_str()), Some(status));
            assert_eq!(
                serde_json::to_string(&status).unwrap(),
                format!("\"{status}\"")
            );
        }
        assert_eq!(ChangeStatus::parse("canary_running"), None);
        assert!(StepAction::CanaryStarted == "canary_started");
        assert!(ChangeStatus::RolledBack != "rolled back");
    }
}
