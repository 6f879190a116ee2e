//! Apply-time validation of a `ModelRouter` spec.
//!
//! Every problem is collected (not just the first) and labelled with the JSON path of the field
//! it concerns, e.g. `spec.rules[1].route.backends[0]: unknown backend "x"`. The same function
//! gates the standalone gateway (start and reload) and the controller's `Validated` condition.

mod auth;
mod budget;

pub use auth::valid_name;

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::time::Duration;

use crate::defaults;
use crate::duration::{format_duration, parse_duration};
use crate::names::{check_model_glob, check_url, is_dns_label, is_dns_subdomain, is_header_name};
use crate::spec::{
    AuditSink, MAX_BACKENDS, MAX_CLASSIFICATION_LEN, MAX_CLASSIFICATIONS, MAX_ROUTE_BACKENDS,
    MAX_RULES, ModelRouterSpec, Provider, Tier,
};

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path, e.g. `spec.rules[1].route.backends[0]`.
    pub path: String,
    /// What is wrong, for a human.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// All problems found in a manifest; never empty when returned as an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl ValidationErrors {}

/// Collects errors while walking a spec.
#[derive(Default)]
pub(crate) struct Collector(Vec<FieldError>);

impl Collector {
    pub(crate) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    pub(crate) fn finish(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(self.0))
        }
    }
}

/// Inclusive bounds of every per-attempt timeout (`rules[].timeout`, `backends[].timeout`,
/// `proxy.responseHeaderTimeout`).
pub const TIMEOUT_RANGE: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_secs(30 * 60));

/// Validates a spec; `Ok` means the gateway can load it and the controller can compile it.
pub fn validate_spec(spec: &ModelRouterSpec) -> Result<(), ValidationErrors> {
    let mut c = Collector::default();
    let backend_index = check_backends(spec, &mut c);
    let sensitive = defaults::sensitive_classifications(spec);
    check_rules(spec, &backend_index, &sensitive, &mut c);
    if let Some(default) = &spec.default_route
        && !backend_index.contains_key(default.as_str())
    {
        c.push("spec.defaultRoute", format!("unknown backend {default:?}"));
    }
    check_policy(spec, &mut c);
    check_policies(spec, &mut c);
    check_proxy(spec, &mut c);
    auth::check_auth(spec, &mut c);
    budget::check_budgets(spec, &mut c);
    check_bounds(spec, &mut c);
    c.finish()
}

fn check_bounds(spec: &ModelRouterSpec, c: &mut Collector) {
    let mut at_most = |path: String, len: usize, max: usize| {
        if len > max {
            c.push(path, format!("has {len} items; at most {max} are allowed"));
        }
    };
    at_most("spec.backends".into(), spec.backends.len(), MAX_BACKENDS);
    at_most("spec.rules".into(), spec.rules.len(), MAX_RULES);
    for (i, r) in spec.rules.iter().enumerate() {
        let path = format!("spec.rules[{i}]");
        at_most(
            format!("{path}.route.backends"),
            r.route.backends.len(),
            MAX_ROUTE_BACKENDS,
        );
        if let Some(m) = &r.match_ {
            at_most(
                format!("{path}.match.dataClassification"),
                m.data_classification.len(),
                MAX_CLASSIFICATIONS,
            );
        }
    }
    let sensitive = spec
        .policy
        .as_ref()
        .and_then(|p| p.classification.as_ref())
        .and_then(|c| c.sensitive_classifications.as_ref());
    if let Some(list) = sensitive {
        at_most(
            "spec.policy.classification.sensitiveClassifications".into(),
            list.len(),
            MAX_CLASSIFICATIONS,
        );
    }
    let values = spec
        .rules
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            r.match_.iter().flat_map(move |m| {
                m.data_classification.iter().enumerate().map(move |(j, v)| {
                    (format!("spec.rules[{i}].match.dataClassification[{j}]"), v)
                })
            })
        })
        .chain(sensitive.into_iter().flatten().enumerate().map(|(j, v)| {
            (
                format!("spec.policy.classification.sensitiveClassifications[{j}]"),
                v,
            )
        }));
    for (path, v) in values {
        if v.len() > MAX_CLASSIFICATION_LEN {
            c.push(
                path,
                format!("is longer than {MAX_CLASSIFICATION_LEN} characters"),
            );
        }
    }
}

fn check_backends<'a>(spec: &'a ModelRouterSpec, c: &mut Collector) -> HashMap<&'a str, usize> {
    let mut index = HashMap::new();
    let mut model_ids: HashMap<&str, usize> = HashMap::new();
    if spec.backends.is_empty() {
        c.push("spec.backends", "at least one backend is required");
    }
    for (i, b) in spec.backends.iter().enumerate() {
        let path = format!("spec.backends[{i}]");
        if !is_dns_label(&b.name) {
            c.push(
                format!("{path}.name"),
                format!("{:?} must match ^[a-z0-9][a-z0-9-]{{0,62}}$", b.name),
            );
        }
        if let Some(first) = index.insert(b.name.as_str(), i) {
            index.insert(b.name.as_str(), first);
            c.push(
                format!("{path}.name"),
                format!(
                    "duplicate backend name {:?} (also spec.backends[{first}])",
                    b.name
                ),
            );
        }
        if let Some(first) = model_ids.insert(b.model_id(), i)
            && first != i
        {
            model_ids.insert(b.model_id(), first);
            c.push(
                format!("{path}.displayName"),
                format!(
                    "model id {:?} is already published by spec.backends[{first}]; ids in /v1/models must be unique",
                    b.model_id()
                ),
            );
        }
        match (&b.inference_service_ref, &b.external) {
            (Some(_), Some(_)) | (None, None) => c.push(
                path.clone(),
                "exactly one of inferenceServiceRef and external must be set",
            ),
            (Some(isvc), None) => {
                if !is_dns_label(&isvc.name) {
                    c.push(
                        format!("{path}.inferenceServiceRef.name"),
                        format!("{:?} is not a valid InferenceService name", isvc.name),
                    );
                }
                if b.tier == Some(Tier::Cloud) {
                    c.push(
                        format!("{path}.tier"),
                        "an inferenceServiceRef backend runs in the cluster and cannot be tier cloud",
                    );
                }
            }
            (None, Some(ext)) => {
                if matches!(ext.provider, Provider::Bedrock | Provider::VertexAi) {
                    c.push(
                        format!("{path}.external.provider"),
                        format!(
                            "provider {} is not supported; use openai, anthropic or litellm (e.g. through an internal LiteLLM proxy)",
                            ext.provider.as_str()
                        ),
                    );
                }
                if let Some(url) = &ext.url
                    && let Err(why) = check_url(url)
                {
                    c.push(format!("{path}.external.url"), why);
                }
                if let Some(secret) = &ext.credentials_secret_ref
                    && !is_dns_subdomain(&secret.name)
                {
                    c.push(
                        format!("{path}.external.credentialsSecretRef.name"),
                        format!(
                            "{:?} is not a valid Secret name (a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', at most 253)",
                            secret.name
                        ),
                    );
                }
                if ext.model.as_deref() == Some("") {
                    c.push(
                        format!("{path}.external.model"),
                        "must not be empty when set",
                    );
                }
            }
        }
        check_timeout(b.timeout.as_deref(), &format!("{path}.timeout"), c);
        if let Some(check) = &b.health_check {
            if let Some(p) = &check.path
                && (!p.starts_with('/')
                    || p.len() > 256
                    || p.contains(|ch: char| ch == '?' || ch == '#' || ch.is_whitespace()))
            {
                c.push(
                    format!("{path}.healthCheck.path"),
                    format!("{p:?} must be an absolute path of at most 256 bytes without query or fragment"),
                );
            }
            if let Some(n) = check.interval_seconds
                && !(1..=3600).contains(&n)
            {
                c.push(
                    format!("{path}.healthCheck.intervalSeconds"),
                    format!("{n} is outside 1..3600"),
                );
            }
            if let Some(n) = check.timeout_seconds
                && !(1..=60).contains(&n)
            {
                c.push(
                    format!("{path}.healthCheck.timeoutSeconds"),
                    format!("{n} is outside 1..60"),
                );
            }
        }
        for (j, cap) in b.capabilities.iter().enumerate() {
            if cap.trim().is_empty() {
                c.push(format!("{path}.capabilities[{j}]"), "must not be empty");
            }
        }
    }
    index
}

fn check_rules(
    spec: &ModelRouterSpec,
    backends: &HashMap<&str, usize>,
    sensitive: &BTreeSet<String>,
    c: &mut Collector,
) {
    let mut names = HashMap::new();
    for (i, rule) in spec.rules.iter().enumerate() {
        let path = format!("spec.rules[{i}]");
        if rule.name.trim().is_empty() {
            c.push(format!("{path}.name"), "must not be empty");
        } else if let Some(first) = names.insert(rule.name.as_str(), i) {
            names.insert(rule.name.as_str(), first);
            c.push(
                format!("{path}.name"),
                format!(
                    "duplicate rule name {:?} (also spec.rules[{first}])",
                    rule.name
                ),
            );
        }
        check_timeout(rule.timeout.as_deref(), &format!("{path}.timeout"), c);
        if rule.route.backends.is_empty() {
            c.push(
                format!("{path}.route.backends"),
                "at least one backend is required",
            );
        }
        let mut route_backends = Vec::new();
        for (j, name) in rule.route.backends.iter().enumerate() {
            match backends.get(name.as_str()) {
                Some(&idx) => route_backends.push(&spec.backends[idx]),
                None => c.push(
                    format!("{path}.route.backends[{j}]"),
                    format!("unknown backend {name:?}"),
                ),
            }
        }
        let Some(m) = &rule.match_ else { continue };
        let sensitive_here: Vec<&String> = m
            .data_classification
            .iter()
            .filter(|v| sensitive.contains(&v.to_ascii_lowercase()))
            .collect();
        if !sensitive_here.is_empty() {
            if !rule.fail_closed {
                c.push(
                    format!("{path}.failClosed"),
                    format!(
                        "must be true: the rule matches sensitive classification {:?}",
                        sensitive_here[0]
                    ),
                );
            }
            for (j, name) in rule.route.backends.iter().enumerate() {
                if let Some(&idx) = backends.get(name.as_str())
                    && spec.backends[idx].effective_tier() != Tier::Local
                {
                    c.push(
                        format!("{path}.route.backends[{j}]"),
                        format!(
                            "backend {name:?} is tier cloud; a rule matching sensitive classification {:?} may only name local backends",
                            sensitive_here[0]
                        ),
                    );
                }
            }
        }
        for (j, value) in m.data_classification.iter().enumerate() {
            if value.trim().is_empty() || value.contains(',') {
                c.push(
                    format!("{path}.match.dataClassification[{j}]"),
                    "must be a single non-empty value",
                );
            }
        }
        if m.task_complexity
            .as_deref()
            .is_some_and(|t| t.trim().is_empty())
        {
            c.push(
                format!("{path}.match.taskComplexity"),
                "must not be empty when set",
            );
        }
        for name in m.headers.keys() {
            if !is_header_name(name) {
                c.push(
                    format!("{path}.match.headers[{name:?}]"),
                    "is not a valid HTTP header name",
                );
            }
        }
        for (j, pattern) in m.models.iter().enumerate() {
            if let Err(why) = check_model_glob(pattern) {
                c.push(format!("{path}.match.models[{j}]"), why);
            }
        }
        if !m.required_capabilities.is_empty()
            && !route_backends.is_empty()
            && !route_backends.iter().any(|b| {
                m.required_capabilities
                    .iter()
                    .all(|cap| b.capabilities.contains(cap))
            })
        {
            c.push(
                format!("{path}.match.requiredCapabilities"),
                "no backend of the route has all of these capabilities, so the rule can never match",
            );
        }
    }
}

fn check_policy(spec: &ModelRouterSpec, c: &mut Collector) {
    let Some(policy) = &spec.policy else { return };
    if let Some(cls) = &policy.classification {
        if let Some(key) = &cls.header_key
            && !is_header_name(key)
        {
            c.push(
                "spec.policy.classification.headerKey",
                format!("{key:?} is not a valid HTTP header name"),
            );
        }
        if let Some(n) = cls.scan_limit_bytes
            && !(1..=1 << 30).contains(&n)
        {
            c.push(
                "spec.policy.classification.scanLimitBytes",
                format!("{n} is outside 1..1073741824"),
            );
        }
        for (i, v) in cls.sensitive_classifications.iter().flatten().enumerate() {
            if v.trim().is_empty() || v.contains(',') {
                c.push(
                    format!("spec.policy.classification.sensitiveClassifications[{i}]"),
                    "must be a single non-empty value",
                );
            }
        }
    }
    if let Some(audit) = &policy.audit_log
        && audit.sink == Some(AuditSink::File)
        && audit.file_path.as_deref().is_none_or(str::is_empty)
    {
        c.push(
            "spec.policy.auditLog.filePath",
            "is required when sink is file",
        );
    }
}

fn check_policies(spec: &ModelRouterSpec, c: &mut Collector) {
    let mut names = HashMap::new();
    for (i, p) in spec.policies.iter().enumerate() {
        let path = format!("spec.policies[{i}]");
        if !is_dns_label(&p.name) {
            c.push(
                format!("{path}.name"),
                format!("{:?} must match ^[a-z0-9][a-z0-9-]{{0,62}}$", p.name),
            );
        } else if let Some(first) = names.insert(p.name.as_str(), i) {
            names.insert(p.name.as_str(), first);
            c.push(
                format!("{path}.name"),
                format!(
                    "duplicate policy name {:?} (also spec.policies[{first}])",
                    p.name
                ),
            );
        }
        match (&p.module.file, &p.module.config_map_key_ref) {
            (Some(f), None) if f.trim().is_empty() => {
                c.push(format!("{path}.module.file"), "must not be empty")
            }
            (None, Some(r)) if r.name.is_empty() || r.key.is_empty() => c.push(
                format!("{path}.module.configMapKeyRef"),
                "needs a name and a key",
            ),
            (Some(_), None) | (None, Some(_)) => {}
            _ => c.push(
                format!("{path}.module"),
                "exactly one of file and configMapKeyRef must be set",
            ),
        }
        if p.sha256.len() != 64 || !p.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            c.push(
                format!("{path}.sha256"),
                "must be the module's sha256 as 64 hex characters",
            );
        }
        if p.config.as_ref().is_some_and(|v| !v.is_object()) {
            c.push(format!("{path}.config"), "must be an object");
        }
    }
}

fn check_proxy(spec: &ModelRouterSpec, c: &mut Collector) {
    let Some(proxy) = &spec.proxy else { return };
    if let Some(r) = proxy.replicas
        && !(1..=10).contains(&r)
    {
        c.push("spec.proxy.replicas", format!("{r} is outside 1..10"));
    }
    check_timeout(
        proxy.response_header_timeout.as_deref(),
        "spec.proxy.responseHeaderTimeout",
        c,
    );
    let ranges = [
        (
            &proxy.quarantine_duration,
            "spec.proxy.quarantineDuration",
            Duration::ZERO,
            Duration::from_secs(3600),
        ),
        (
            &proxy.stream_idle_timeout,
            "spec.proxy.streamIdleTimeout",
            Duration::from_secs(1),
            Duration::from_secs(24 * 3600),
        ),
        (
            &proxy.max_stream_duration,
            "spec.proxy.maxStreamDuration",
            Duration::from_secs(1),
            Duration::from_secs(24 * 3600),
        ),
    ];
    for (value, path, min, max) in ranges {
        check_duration(value.as_deref(), path, (min, max), c);
    }
    if let Some(n) = proxy.consecutive_failures
        && !(1..=1000).contains(&n)
    {
        c.push(
            "spec.proxy.consecutiveFailures",
            format!("{n} is outside 1..1000"),
        );
    }
    if let Some(n) = proxy.max_request_body_bytes
        && !(1..=1 << 30).contains(&n)
    {
        c.push(
            "spec.proxy.maxRequestBodyBytes",
            format!("{n} is outside 1..1073741824"),
        );
    }
}

fn check_timeout(value: Option<&str>, path: &str, c: &mut Collector) {
    check_duration(value, path, TIMEOUT_RANGE, c);
}

fn check_duration(
    value: Option<&str>,
    path: &str,
    (min, max): (Duration, Duration),
    c: &mut Collector,
) {
    let Some(text) = value else { return };
    match parse_duration(text) {
        Err(e) => c.push(path, e.to_string()),
        Ok(d) if d < min || d > max => c.push(
            path,
            format!(
                "{text:?} is outside {}..{}",
                format_duration(min),
                format_duration(max)
            ),
        ),
        Ok(_) => {}
    }
}
