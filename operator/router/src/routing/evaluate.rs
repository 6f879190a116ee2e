//! The reference routing semantics.

use crate::spec::{Strategy, Tier};

use super::decision::{Decision, Deny, RequestFacts, Route, Via};
use super::table::{RoutingTable, RuleEntry};

impl RoutingTable {
    /// Decides where a request goes.
    ///
    /// 1. Rules in order; the first whose declared match fields all hold wins. Its candidates
    ///    are its route backends (narrowed by `requiredCapabilities`); for a sensitive request
    ///    only the local ones. With no candidate left, a `failClosed` rule denies; any other
    ///    rule lets evaluation continue.
    /// 2. With `BackendNameMatch`, the backend whose published id equals `model`.
    /// 3. `defaultRoute`.
    /// 4. Deny: fail-closed for a sensitive request, no-route otherwise.
    ///
    /// A sensitive request is never routed to a cloud backend, on any of these paths.
    pub fn decide(&self, facts: &RequestFacts<'_>) -> Decision {
        let sensitive = self.is_sensitive(facts);
        let allowed = |b: usize| !sensitive || self.backends[b].tier == Tier::Local;
        for (i, rule) in self.rules.iter().enumerate() {
            if !rule_matches(rule, facts) {
                continue;
            }
            let backends: Vec<usize> = rule
                .backends
                .iter()
                .copied()
                .filter(|&b| allowed(b))
                .collect();
            if !backends.is_empty() {
                return Decision::Route(Route {
                    via: Via::Rule(i),
                    backends,
                    strategy: rule.strategy,
                    fail_closed: rule.fail_closed || sensitive,
                    timeout: rule.timeout,
                    sensitive,
                });
            }
            if rule.fail_closed {
                return Decision::Deny(Deny::FailClosed { rule: Some(i) });
            }
        }
        let by_name = self
            .backend_name_match
            .then(|| self.backends.iter().position(|b| b.model_id == facts.model))
            .flatten()
            .filter(|&b| allowed(b))
            .map(|b| (Via::BackendName, b));
        let by_default = self
            .default_route
            .filter(|&b| allowed(b))
            .map(|b| (Via::DefaultRoute, b));
        match by_name.or(by_default) {
            Some((via, b)) => Decision::Route(Route {
                via,
                backends: vec![b],
                strategy: Strategy::PrimaryFallback,
                fail_closed: sensitive,
                timeout: None,
                sensitive,
            }),
            None if sensitive => Decision::Deny(Deny::FailClosed { rule: None }),
            None => Decision::Deny(Deny::NoRoute),
        }
    }

    /// Whether the request carries a sensitive classification.
    pub fn is_sensitive(&self, facts: &RequestFacts<'_>) -> bool {
        self.is_sensitive_classes(facts.classifications)
    }

    /// Whether any of `classifications` (lowercase) is sensitive.
    pub fn is_sensitive_classes(&self, classifications: &[String]) -> bool {
        classifications.iter().any(|c| self.sensitive.contains(c))
    }
}

/// Why a rule did not match a request: the first of its conditions, in the order they are
/// checked, that the request fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// Its route lost every backend to `requiredCapabilities`, so it never matches.
    NoCapableBackend,
    /// The request carries none of its `dataClassification` values.
    Classification,
    /// The `x-llmkube-task-complexity` header is absent or another value.
    TaskComplexity,
    /// The `match.headers` entry with this (lowercase) name is absent or another value.
    Header(String),
    /// The request's model is not among its `match.models`.
    Model,
}

impl Mismatch {
    /// A sentence for `rule` (what it wanted), as `llmkube-gateway explain` prints it.
    pub fn describe(&self, rule: &RuleEntry) -> String {
        match self {
            Mismatch::NoCapableBackend => {
                "no backend of its route has every requiredCapability".into()
            }
            Mismatch::Classification => format!(
                "classification is none of {}",
                rule.classifications.join(", ")
            ),
            Mismatch::TaskComplexity => format!(
                "task complexity is not {}",
                rule.task_complexity.as_deref().unwrap_or_default()
            ),
            Mismatch::Header(name) => {
                let want = (rule.headers.iter().find(|(n, _)| n == name)).map(|(_, v)| v);
                format!("header {name} is not {:?}", want.map_or("", String::as_str))
            }
            Mismatch::Model => format!("model is none of {}", rule.models.join(", ")),
        }
    }
}

impl RoutingTable {
    /// Why rule `index` does not match `facts` (`None`: it matches). [`Self::decide`] matches
    /// rules with this very function.
    pub fn rule_mismatch(&self, index: usize, facts: &RequestFacts<'_>) -> Option<Mismatch> {
        self.rules.get(index).and_then(|rule| mismatch(rule, facts))
    }
}

fn rule_matches(rule: &RuleEntry, facts: &RequestFacts<'_>) -> bool {
    mismatch(rule, facts).is_none()
}

fn mismatch(rule: &RuleEntry, facts: &RequestFacts<'_>) -> Option<Mismatch> {
    if rule.backends.is_empty() {
        return Some(Mismatch::NoCapableBackend);
    }
    if !rule.classifications.is_empty()
        && !(facts.classifications.iter()).any(|c| rule.classifications.contains(c))
    {
        return Some(Mismatch::Classification);
    }
    if let Some(want) = rule.task_complexity.as_deref()
        && !(facts.task_complexity).is_some_and(|got| got.trim_ascii().eq_ignore_ascii_case(want))
    {
        return Some(Mismatch::TaskComplexity);
    }
    for (name, value) in &rule.headers {
        if !(facts.headers.iter()).any(|(n, v)| n == name && v == value) {
            return Some(Mismatch::Header(name.clone()));
        }
    }
    if !rule.model_matches(facts.model) {
        return Some(Mismatch::Model);
    }
    None
}
