//! Fixture files: requests and the decisions a policy must reach for them.
//!
//! The same file drives `cargo test` on the native build (the `testing` module) and the gateway's
//! harness on the built `.wasm` under production limits (`llmkube-gateway policy-test`). Both
//! show each case to the policy as the gateway would, from the policy's own metadata: headers
//! it does not declare are not seen, nor the prompt unless it asks for it, and a rule or route
//! only in the post phase. The file's JSON Schema is `policy-sdk/fixtures.schema.json`.
//!
//! ```json
//! {
//!   "config": { "tenants": ["acme"] },
//!   "cases": [
//!     { "name": "known tenant passes",
//!       "request": { "model": "llama-3", "headers": { "x-tenant": "acme" } },
//!       "expect": { "action": "continue" } },
//!     { "name": "unknown tenant is refused",
//!       "request": { "headers": { "x-tenant": "evil" } },
//!       "expect": { "action": "reject", "status": 403 } }
//!   ]
//! }
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::metadata::{Phase, PolicyMeta};
use crate::output::{Action, Decision};
use crate::view::{BackendDetail, RequestView};

/// A fixture file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureFile {
    /// The policy's configuration for every case.
    #[serde(default)]
    pub config: serde_json::Value,
    /// The cases.
    pub cases: Vec<Case>,
}

/// One request and what must come of it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// What the case shows.
    pub name: String,
    /// The request.
    #[serde(default)]
    pub request: FixtureRequest,
    /// The expected decision.
    pub expect: Expect,
}

/// A request, as a fixture writes it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FixtureRequest {
    /// Method (default POST).
    #[serde(default)]
    pub method: Option<String>,
    /// Path (default `/v1/chat/completions`).
    #[serde(default)]
    pub path: Option<String>,
    /// Body `model`.
    #[serde(default)]
    pub model: String,
    /// Body `stream`.
    #[serde(default)]
    pub stream: bool,
    /// Classifications so far.
    #[serde(default)]
    pub classifications: Vec<String>,
    /// Headers (names are lowercased).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Rule that matched (for post-phase policies).
    #[serde(default)]
    pub rule: Option<String>,
    /// Route backends (for post-phase policies).
    #[serde(default)]
    pub route_backends: Vec<String>,
    /// Tier (`local`, `cloud`) of each of `routeBackends`, in order (empty: unknown).
    #[serde(default)]
    pub route_tiers: Vec<String>,
    /// Capabilities of each of `routeBackends`, in order.
    #[serde(default)]
    pub route_capabilities: Vec<Vec<String>>,
    /// Prompt text.
    #[serde(default)]
    pub prompt: Option<String>,
    /// Authenticated principal.
    #[serde(default)]
    pub principal: Option<String>,
    /// Team.
    #[serde(default)]
    pub team: Option<String>,
}

/// What a decision must look like; absent fields are not checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Expect {
    /// `continue`, `route` or `reject`.
    pub action: String,
    /// Reject status.
    #[serde(default)]
    pub status: Option<u16>,
    /// Reject code.
    #[serde(default)]
    pub code: Option<String>,
    /// Route backends, in order.
    #[serde(default)]
    pub backends: Option<Vec<String>>,
    /// Classifications added (as a set).
    #[serde(default)]
    pub add_classifications: Option<Vec<String>>,
    /// Annotations that must be present.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

impl FixtureFile {
    /// Parses a fixture file.
    pub fn parse(json: &str) -> Result<Self, String> {
        serde_json::from_str(json).map_err(|e| format!("invalid fixture file: {e}"))
    }
}

impl FixtureRequest {
    /// Runs `f` with the request as the gateway would show it to a policy declaring `meta`:
    /// only the headers it asks for (`needs.headers`), the prompt only when it asks for it,
    /// the rule and route only in the post phase. A fixture that gives a pre-phase policy a
    /// rule or a route is an error: the gateway never would, so the case could not be right.
    pub fn view_for<T>(
        &self,
        meta: &PolicyMeta,
        f: impl FnOnce(&RequestView<'_>) -> T,
    ) -> Result<T, String> {
        let post = meta.phase == Phase::Post;
        let routed = !self.route_backends.is_empty() || !self.route_tiers.is_empty();
        if !post && (self.rule.is_some() || routed) {
            return Err(
                "the case sets `rule` or `routeBackends`, but the policy runs before the rules \
                 (its metadata's phase is pre): add `\"phase\": \"post\"` to its metadata, or drop \
                 them from the case"
                    .into(),
            );
        }
        let names: Vec<String> = self
            .headers
            .keys()
            .map(|k| k.to_ascii_lowercase())
            .collect();
        let asked = |name: &str| {
            meta.needs
                .headers
                .iter()
                .any(|h| h.eq_ignore_ascii_case(name))
        };
        let headers: Vec<(&str, &str)> = names
            .iter()
            .zip(self.headers.values())
            .filter(|(k, _)| asked(k))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let backends: Vec<&str> = self.route_backends.iter().map(String::as_str).collect();
        let no_caps = Vec::new();
        let details: Vec<BackendDetail<'_>> = (0..backends.len())
            .map(|i| BackendDetail {
                tier: self.route_tiers.get(i).map_or("", String::as_str),
                capabilities: self.route_capabilities.get(i).unwrap_or(&no_caps),
            })
            .collect();
        Ok(f(&RequestView {
            method: self.method.as_deref().unwrap_or("POST"),
            path: self.path.as_deref().unwrap_or("/v1/chat/completions"),
            model: &self.model,
            stream: self.stream,
            classifications: &self.classifications,
            headers: &headers,
            rule: self.rule.as_deref().filter(|_| post),
            route_backends: &backends,
            prompt: self.prompt.as_deref().filter(|_| meta.needs.prompt),
            principal: self.principal.as_deref(),
            team: self.team.as_deref(),
            route_details: &details,
        }))
    }

    /// What the case gives that a policy declaring `meta` will not see, as a note for a
    /// failing case (empty when nothing is hidden).
    pub fn hidden_from(&self, meta: &PolicyMeta) -> String {
        let mut hidden: Vec<String> = self
            .headers
            .keys()
            .filter(|k| !meta.needs.headers.iter().any(|h| h.eq_ignore_ascii_case(k)))
            .map(|k| format!("header {k} (not in its metadata's needs.headers)"))
            .collect();
        if self.prompt.is_some() && !meta.needs.prompt {
            hidden.push("the prompt (its metadata's needs.prompt is false)".into());
        }
        if hidden.is_empty() {
            String::new()
        } else {
            format!(" [the policy does not see: {}]", hidden.join(", "))
        }
    }
}

impl Expect {
    /// Checks a decision against the expectation; the error says every difference.
    pub fn check(&self, d: &Decision) -> Result<(), String> {
        let mut problems = Vec::new();
        let action = match &d.action {
            Action::Continue => "continue",
            Action::Route { .. } => "route",
            Action::Reject { .. } => "reject",
        };
        if action != self.action {
            problems.push(format!("action is {action}, expected {}", self.action));
        }
        if let (Some(want), Action::Reject { status, .. }) = (self.status, &d.action)
            && want != *status
        {
            problems.push(format!("status is {status}, expected {want}"));
        }
        if let (Some(want), Action::Reject { code, .. }) = (&self.code, &d.action)
            && want != code
        {
            problems.push(format!("code is {code:?}, expected {want:?}"));
        }
        if let (Some(want), Action::Route { backends, .. }) = (&self.backends, &d.action)
            && want != backends
        {
            problems.push(format!("backends are {backends:?}, expected {want:?}"));
        }
        if let Some(want) = &self.add_classifications {
            let mut got = d.add_classifications.clone();
            let mut want = want.clone();
            got.sort();
            got.dedup();
            want.sort();
            want.dedup();
            if got != want {
                problems.push(format!("added classifications {got:?}, expected {want:?}"));
            }
        }
        for (k, v) in &self.annotations {
            if !d.annotations.iter().any(|(ak, av)| ak == k && av == v) {
                problems.push(format!(
                    "annotation {k}={v} missing (got {:?})",
                    d.annotations
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}
