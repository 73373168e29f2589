//! The config panel: the stored config (or word that there is none), what lint says about it
//! against the last 7 days, and which version each instance runs.

use leptos::prelude::*;
use protocol::{ConfigView, LintFinding};

use super::DetailPage;
use crate::format;
use crate::loading::Loading;
use crate::tuning;

#[component]
pub(super) fn ConfigPanel(page: DetailPage) -> impl IntoView {
    view! {
        <section class="config" aria-label="config">
            <h3>"Config"</h3>
            <Loading what="the config">
                {move || page.config.get().map(|config| config.map(|view| config_view(page, view)))}
            </Loading>
        </section>
    }
}

fn config_view(page: DetailPage, view: ConfigView) -> impl IntoView {
    let current = view.current.map(|stored| {
        let config = stored.config;
        let rows = tuning::config_fields(&config);
        view! {
            <p data-config-version=config.version>
                "version " {config.version} " by " {stored.created_by} " at "
                {format::timestamp(stored.created_ms)} " UTC"
            </p>
            <dl class="config-fields">
                {rows.into_iter().map(|(name, value)| view! { <dt>{name}</dt><dd>{value}</dd> }).collect_view()}
            </dl>
        }
    });
    let current = current.map(|view| view.into_any()).unwrap_or_else(|| {
        view! { <p class="hint">"No stored config: the instances run what their service compiled in."</p> }.into_any()
    });
    view! {
        {current}
        <LintFindings page=page />
        <h4>"Instances"</h4>
        <table class="table sync">
            <thead><tr><th>"instance"</th><th>"running"</th><th>"in sync"</th><th>"refused"</th></tr></thead>
            <tbody>
                {view.instances.into_iter().map(|sync| {
                    let refused = sync.refused.map(|refusal| {
                        format!("v{}: {} ({})", refusal.version, refusal.field, refusal.rule)
                    }).unwrap_or_else(|| "–".into());
                    let instance = sync.instance.clone();
                    view! {
                        <tr data-instance=instance data-in-sync=sync.in_sync.to_string() data-running=sync.running_version>
                            <td>{sync.instance}</td>
                            <td>"v" {sync.running_version}</td>
                            <td>{if sync.in_sync { "✓ yes" } else { "✕ no" }}</td>
                            <td>{refused}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// What lint says about the current config against the last 7 days.
#[component]
fn LintFindings(page: DetailPage) -> impl IntoView {
    view! {
        <Loading what="lint">
            {move || page.lint.get().map(|lint| lint.map(findings))}
        </Loading>
    }
}

fn findings(findings: Vec<LintFinding>) -> AnyView {
    if findings.is_empty() {
        return view! { <p class="hint lint-none">"Lint: no findings against the last 7 days."</p> }
            .into_any();
    }
    view! {
        <h4>"Lint"</h4>
        <ul class="lint">
            {findings.into_iter().map(|finding| view! {
                <li data-rule=finding.rule.clone()>{finding.detail}</li>
            }).collect_view()}
        </ul>
    }
    .into_any()
}
