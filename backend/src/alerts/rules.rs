//! Rules: validation, scope (service and breaker globs), and writing the settings' rules and
//! channels at start (their tables are read and written in `store::rules`).
//!
//! Rules and channels come from three places: the migration's default rule, the settings file
//! and command line (`source = 'config'`, rewritten at every start), and the admin API.

use protocol::{AlertChannel, AlertChannelKind, AlertRule, AlertRuleKind};

use crate::alerts::store;
use crate::error::AppError;
use crate::store::Store;

/// A channel as the delivery task uses it.
#[derive(Clone, Debug)]
pub struct ChannelRow {
    pub id: i64,
    pub spec: AlertChannel,
    pub source: String,
}

/// Whether `text` matches `glob`, where `*` is any run of characters and `?` any one.
pub fn glob_matches(glob: &str, text: &str) -> bool {
    let glob: Vec<char> = glob.chars().collect();
    let text: Vec<char> = text.chars().collect();
    // Iterative matching with backtracking to the last `*`.
    let (mut g, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if g < glob.len() && (glob[g] == '?' || glob[g] == text[t]) {
            g += 1;
            t += 1;
        } else if g < glob.len() && glob[g] == '*' {
            star = Some((g, t));
            g += 1;
        } else if let Some((star_g, star_t)) = star {
            g = star_g + 1;
            t = star_t + 1;
            star = Some((star_g, star_t + 1));
        } else {
            return false;
        }
    }
    glob[g..].iter().all(|&c| c == '*')
}

/// Whether a rule applies to a breaker.
pub fn in_scope(rule: &AlertRule, service: &str, breaker: &str) -> bool {
    rule.enabled && glob_matches(&rule.service, service) && glob_matches(&rule.breaker, breaker)
}

fn invalid(path: &str, detail: impl Into<String>) -> AppError {
    AppError::Invalid {
        detail: detail.into(),
        path: path.to_string(),
    }
}

/// Checks a rule's fields for its kind; 422 names the field.
pub fn check_rule(rule: &AlertRule) -> Result<(), AppError> {
    protocol::validate_name(&rule.name).map_err(|d| invalid("$.name", d))?;
    // A glob is a name in which `*` matches any run of characters.
    for (path, glob) in [("$.service", &rule.service), ("$.breaker", &rule.breaker)] {
        protocol::validate_name(glob).map_err(|d| invalid(path, d))?;
    }
    if rule.severity.is_empty() || rule.severity.chars().count() > 50 {
        return Err(invalid("$.severity", "a severity is 1 to 50 characters"));
    }
    let positive = |path: &str, value: Option<i64>| match value {
        Some(v) if v > 0 => Ok(()),
        _ => Err(invalid(path, "required for this kind, and above 0")),
    };
    match rule.kind {
        AlertRuleKind::Trip => match rule.group_by.as_deref() {
            None | Some("dependency") | Some("breaker") => Ok(()),
            Some(_) => Err(invalid("$.group_by", "either `dependency` or `breaker`")),
        },
        AlertRuleKind::OpenLonger => positive("$.for_ms", rule.for_ms),
        AlertRuleKind::Flapping => {
            positive("$.openings", rule.openings.map(i64::from))?;
            positive("$.within_ms", rule.within_ms)
        }
        AlertRuleKind::MinInstances => positive("$.min_open", rule.min_open.map(i64::from)),
        AlertRuleKind::Recovery | AlertRuleKind::AutoTune => Ok(()),
    }
}

/// Checks a channel: a name, an http(s) URL, a secret for a webhook only when given.
pub fn check_channel(channel: &AlertChannel) -> Result<(), AppError> {
    protocol::validate_name(&channel.name).map_err(|d| invalid("$.name", d))?;
    let url = reqwest::Url::parse(&channel.url).map_err(|err| invalid("$.url", err.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid("$.url", "an http:// or https:// URL with a host"));
    }
    if channel.secret.as_ref().is_some_and(|s| s.is_empty()) {
        return Err(invalid(
            "$.secret",
            "an empty secret signs nothing; omit it",
        ));
    }
    if channel.kind != AlertChannelKind::Webhook && channel.secret.is_some() {
        return Err(invalid("$.secret", "only webhook channels are signed"));
    }
    Ok(())
}

pub fn kind_str(kind: AlertChannelKind) -> &'static str {
    match kind {
        AlertChannelKind::Webhook => "webhook",
        AlertChannelKind::Slack => "slack",
        AlertChannelKind::Alertmanager => "alertmanager",
    }
}

pub fn rule_kind_str(kind: AlertRuleKind) -> &'static str {
    match kind {
        AlertRuleKind::Trip => "trip",
        AlertRuleKind::OpenLonger => "open_longer",
        AlertRuleKind::Flapping => "flapping",
        AlertRuleKind::Recovery => "recovery",
        AlertRuleKind::MinInstances => "min_instances",
        AlertRuleKind::AutoTune => "auto_tune",
    }
}

/// Writes the settings' rules and channels, and removes those an earlier start's settings had
/// that these no longer have. Rules and channels set through the API are kept.
pub async fn sync_config(
    store: &Store,
    rules: &[AlertRule],
    channels: &[AlertChannel],
    now_ms: i64,
) -> anyhow::Result<()> {
    for rule in rules {
        check_rule(rule).map_err(|err| anyhow::anyhow!("alert rule {:?}: {err}", rule.name))?;
        store::rules::upsert_rule(store, rule, "config", now_ms).await?;
    }
    for channel in channels {
        check_channel(channel)
            .map_err(|err| anyhow::anyhow!("alert channel {:?}: {err}", channel.name))?;
        store::rules::upsert_channel(store, channel, "config", now_ms).await?;
    }
    let rule_names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
    let channel_names: Vec<&str> = channels.iter().map(|c| c.name.as_str()).collect();
    store::rules::remove_config_except(store, &rule_names, &channel_names).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::glob_matches;

    #[test]
    fn globs() {
        for (glob, text, want) in [
            ("*", "anything", true),
            ("*", "", true),
            ("pay*", "payments-api", true),
            ("pay*", "checkout", false),
            ("*-api", "payments-api", true),
            ("p?y*api", "payments-api", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("checkout", "checkout", true),
            ("checkout", "checkout-2", false),
        ] {
            assert_eq!(glob_matches(glob, text), want, "{glob} vs {text}");
        }
    }
}
