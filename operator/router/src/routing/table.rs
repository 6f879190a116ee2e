//! A validated spec, prepared for evaluation.

use std::time::Duration;

use super::globs::Globs;

use crate::defaults;
use crate::duration::parse_duration;
use crate::spec::{ModelRouterSpec, Strategy, Tier};
use crate::validate::{ValidationErrors, validate_spec};

/// Everything routing needs to know about one backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendEntry {
    /// `spec.backends[].name`.
    pub name: String,
    /// Published model id (`displayName`, else `name`).
    pub model_id: String,
    /// Effective tier.
    pub tier: Tier,
    /// Effective weight.
    pub weight: u32,
    /// Per-attempt timeout of this backend.
    pub timeout: Option<Duration>,
    /// `capabilities`, as the spec lists them.
    pub capabilities: Vec<String>,
}

/// One rule, with its match normalised for evaluation.
#[derive(Debug, Clone)]
pub struct RuleEntry {
    /// Rule name.
    pub name: String,
    /// Lowercased `match.dataClassification`; empty means "any".
    pub classifications: Vec<String>,
    /// Lowercased `match.taskComplexity`.
    pub task_complexity: Option<String>,
    /// `(lowercased name, exact value)` pairs of `match.headers`.
    pub headers: Vec<(String, String)>,
    /// Normalised `match.models` globs; empty means "any".
    pub models: Vec<String>,
    model_set: Globs,
    /// Route backends that have every required capability, in route order.
    pub backends: Vec<usize>,
    /// Route strategy.
    pub strategy: Strategy,
    /// `failClosed`.
    pub fail_closed: bool,
    /// Per-attempt timeout.
    pub timeout: Option<Duration>,
}

impl RuleEntry {
    /// Whether the request's model matches `match.models` (true when there are none).
    pub fn model_matches(&self, model: &str) -> bool {
        self.model_set.allows(model)
    }
}

/// A validated `ModelRouter` spec in the form the evaluator (and the rule compiler) use.
#[derive(Debug, Clone)]
pub struct RoutingTable {
    /// Backends in spec order.
    pub backends: Vec<BackendEntry>,
    /// Rules in spec order.
    pub rules: Vec<RuleEntry>,
    /// Index of `spec.defaultRoute`.
    pub default_route: Option<usize>,
    /// `defaultRouteStrategy: BackendNameMatch`.
    pub backend_name_match: bool,
    /// Sensitive classifications, lowercased and sorted.
    pub sensitive: Vec<String>,
    /// Classification header name, lowercased.
    pub classification_header: String,
    /// Every header name some rule matches on, lowercased, sorted, unique.
    pub header_names: Vec<String>,
}

/// Collapses runs of `*` (so `**` has no path-recursive meaning) and leaves the rest as is.
pub fn normalize_glob(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    for ch in pattern.chars() {
        if !(ch == '*' && out.ends_with('*')) {
            out.push(ch);
        }
    }
    out
}

impl RoutingTable {
    /// Validates `spec` and prepares it for evaluation.
    pub fn new(spec: &ModelRouterSpec) -> Result<Self, ValidationErrors> {
        validate_spec(spec)?;
        let backends: Vec<BackendEntry> = spec
            .backends
            .iter()
            .map(|b| BackendEntry {
                name: b.name.clone(),
                model_id: b.model_id().to_owned(),
                tier: b.effective_tier(),
                weight: b.effective_weight(),
                timeout: whole_millis(b.timeout.as_deref()),
                capabilities: b.capabilities.clone(),
            })
            .collect();
        let index_of = |name: &str| backends.iter().position(|b| b.name == name);
        let mut header_names = Vec::new();
        let rules = spec
            .rules
            .iter()
            .map(|rule| {
                let m = rule.match_.clone().unwrap_or_default();
                let headers: Vec<(String, String)> = m
                    .headers
                    .iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                    .collect();
                header_names.extend(headers.iter().map(|(k, _)| k.clone()));
                let models: Vec<String> = m.models.iter().map(|p| normalize_glob(p)).collect();
                let route_backends = rule
                    .route
                    .backends
                    .iter()
                    .filter_map(|name| index_of(name))
                    .filter(|&i| {
                        m.required_capabilities
                            .iter()
                            .all(|cap| spec.backends[i].capabilities.contains(cap))
                    })
                    .collect();
                RuleEntry {
                    name: rule.name.clone(),
                    classifications: m
                        .data_classification
                        .iter()
                        .map(|c| c.trim().to_ascii_lowercase())
                        .collect(),
                    task_complexity: m
                        .task_complexity
                        .as_deref()
                        .map(|t| t.trim().to_ascii_lowercase()),
                    headers,
                    model_set: Globs::new(&models),
                    models,
                    backends: route_backends,
                    strategy: rule.route.strategy.unwrap_or_default(),
                    fail_closed: rule.fail_closed,
                    timeout: whole_millis(rule.timeout.as_deref()),
                }
            })
            .collect();
        header_names.sort();
        header_names.dedup();
        Ok(RoutingTable {
            default_route: spec.default_route.as_deref().and_then(index_of),
            backends,
            rules,
            backend_name_match: defaults::backend_name_match(spec),
            sensitive: defaults::sensitive_classifications(spec)
                .into_iter()
                .collect(),
            classification_header: defaults::classification_header(spec),
            header_names,
        })
    }
}

/// A timeout with millisecond resolution (how it travels through the policy ABI).
fn whole_millis(value: Option<&str>) -> Option<Duration> {
    value
        .and_then(|t| parse_duration(t).ok())
        .map(|d| Duration::from_millis(d.as_millis() as u64))
}
