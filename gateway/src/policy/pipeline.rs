//! One request through the policies: classify, pre-phase policies, compiled rules, post-phase
//! policies, then the sensitivity constraint enforced by the host itself.
//!
//! The gateway has no rule matching of its own: the route comes from the compiled rule module
//! (or from a policy). What the host keeps is the safety net — whatever any module answers, a
//! sensitive request never reaches a cloud-tier backend.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use llmkube_operator::compiler::{decode_decision, resolve_backends, strategy_from_abi};
use llmkube_operator::crd::model_router::{ClassificationMode, FailureMode, Tier};
use llmkube_operator::routing::{Decision, Deny, Route, RoutingTable, Via};
use llmkube_policy_sdk::metadata::Phase;
use llmkube_policy_sdk::output::{Output, OutputAction};
use llmkube_policy_sdk::view::RequestView;
use llmkube_policy_sdk::wire::Writer;

use super::{PolicyError, PolicyModule};
use crate::metrics::Label;

/// Most classifications a request may end up with.
const MAX_CLASSIFICATIONS: usize = 16;
/// Most annotations per policy answer.
const MAX_ANNOTATIONS: usize = 16;

/// A policy active in a router.
pub struct ActivePolicy {
    /// Index in `spec.policies` (`None` for the built-in detector).
    pub index: Option<usize>,
    /// Name for audit lines and metrics.
    pub label: Label,
    /// The module.
    pub module: Arc<PolicyModule>,
    /// What happens when it fails.
    pub failure_mode: FailureMode,
    /// Headers it asked for, lowercase.
    pub headers: Vec<String>,
}

/// The policies of one router.
pub struct PolicySet {
    /// The compiled ModelRouter rules.
    pub rules: Arc<PolicyModule>,
    /// Headers the rule module reads.
    pub rule_headers: Vec<String>,
    /// Custom policies in spec order.
    pub policies: Vec<ActivePolicy>,
    /// The PII detector, when the classification mode uses it.
    pub detector: Option<ActivePolicy>,
    /// `policy.classification.mode`.
    pub mode: ClassificationMode,
}

/// The request as policies see it.
pub struct Inputs<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Request path.
    pub path: &'a str,
    /// Body `model`.
    pub model: &'a str,
    /// Body `stream`.
    pub stream: bool,
    /// Client headers.
    pub headers: &'a HeaderMap,
    /// Whether the client sent the classification header at all.
    pub classification_header_present: bool,
    /// Computes the prompt text (only called when a policy needs it).
    pub prompt: &'a (dyn Fn() -> String + Sync),
}

/// What one policy did, for the audit line.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PolicyTrace {
    /// Policy name.
    pub name: Label,
    /// Module sha256.
    pub digest: String,
    /// `continue`, `route`, `reject`, `failed`, `failed-open`.
    pub result: &'static str,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The final word on a request.
#[derive(Debug)]
pub enum Verdict {
    /// Dispatch.
    Route(Route),
    /// No route or fail-closed (from the rules or the sensitivity constraint).
    Deny(Deny),
    /// A policy refused the request.
    Rejected {
        /// Which policy.
        policy: Label,
        /// Its status.
        status: u16,
        /// Its code.
        code: String,
        /// Its message.
        message: String,
    },
    /// A policy failed closed.
    Failed {
        /// Which policy.
        policy: Label,
        /// How.
        error: PolicyError,
    },
}

/// Everything the pipeline decided.
pub struct Evaluation {
    /// The verdict.
    pub verdict: Verdict,
    /// Final classifications (header ones plus any policy added).
    pub classifications: Vec<String>,
    /// Headers to set on the upstream request.
    pub set_headers: Vec<(HeaderName, HeaderValue)>,
    /// Headers to remove from the upstream request.
    pub remove_headers: Vec<HeaderName>,
    /// Notes for the audit line.
    pub annotations: Vec<(String, String)>,
    /// Which policies ran and how.
    pub trace: Vec<PolicyTrace>,
}

/// What a policy's answer contributes, validated.
struct Answer {
    action: Action,
    add: Vec<String>,
    set: Vec<(HeaderName, HeaderValue)>,
    remove: Vec<HeaderName>,
    notes: Vec<(String, String)>,
}

enum Action {
    Continue,
    Route(Route),
    Reject {
        status: u16,
        code: String,
        message: String,
    },
}

impl PolicySet {
    /// Runs the pipeline for one request.
    pub fn evaluate(
        &self,
        table: &RoutingTable,
        inputs: &Inputs<'_>,
        header_classes: Vec<String>,
    ) -> Evaluation {
        let mut ev = Evaluation {
            verdict: Verdict::Deny(Deny::NoRoute),
            classifications: header_classes,
            set_headers: Vec::new(),
            remove_headers: Vec::new(),
            annotations: Vec::new(),
            trace: Vec::new(),
        };
        let mut prompt: Option<String> = None;
        let run_detector = match self.mode {
            ClassificationMode::HeaderOnly => false,
            ClassificationMode::Detector => true,
            ClassificationMode::Hybrid => !inputs.classification_header_present,
        };
        let pre = self.detector.iter().filter(|_| run_detector).chain(
            self.policies
                .iter()
                .filter(|p| p.module.meta.phase == Phase::Pre),
        );
        let mut decided: Option<Route> = None;
        for policy in pre {
            match self.run_policy(policy, table, inputs, &mut prompt, &mut ev, None) {
                Step::Next => {}
                Step::Routed(route) => {
                    decided = Some(route);
                    break;
                }
                Step::Stop(verdict) => {
                    ev.verdict = verdict;
                    return ev;
                }
            }
        }
        let mut decision = match decided {
            Some(route) => Decision::Route(route),
            None => match self.run_rules(table, inputs, &ev.classifications) {
                Ok(d) => d,
                Err(error) => {
                    ev.trace
                        .push(trace(&self.rules, "failed", Some(error.to_string())));
                    ev.verdict = Verdict::Failed {
                        policy: Arc::new(self.rules.name.to_string()),
                        error,
                    };
                    return ev;
                }
            },
        };
        if let Decision::Route(route) = &decision {
            for policy in self
                .policies
                .iter()
                .filter(|p| p.module.meta.phase == Phase::Post)
            {
                match self.run_policy(policy, table, inputs, &mut prompt, &mut ev, Some(route)) {
                    Step::Next => {}
                    Step::Routed(new_route) => {
                        decision = Decision::Route(new_route);
                        break;
                    }
                    Step::Stop(verdict) => {
                        ev.verdict = verdict;
                        return ev;
                    }
                }
            }
        }
        ev.verdict = enforce_sensitivity(table, &ev.classifications, decision);
        ev
    }

    fn run_rules(
        &self,
        table: &RoutingTable,
        inputs: &Inputs<'_>,
        classes: &[String],
    ) -> Result<Decision, PolicyError> {
        let headers = crate::inbound::match_headers(inputs.headers, &self.rule_headers);
        let view = RequestView {
            method: inputs.method,
            path: inputs.path,
            model: inputs.model,
            stream: inputs.stream,
            classifications: classes,
            headers: &headers,
            ..Default::default()
        };
        let input = encode(&view);
        self.rules
            .evaluate(&input, |out| decode_decision(table, out))
    }

    fn run_policy(
        &self,
        policy: &ActivePolicy,
        table: &RoutingTable,
        inputs: &Inputs<'_>,
        prompt: &mut Option<String>,
        ev: &mut Evaluation,
        route: Option<&Route>,
    ) -> Step {
        if policy.module.meta.needs.prompt && prompt.is_none() {
            *prompt = Some((inputs.prompt)());
        }
        let headers = crate::inbound::match_headers(inputs.headers, &policy.headers);
        let rule = route.and_then(|r| match r.via {
            Via::Rule(i) => Some(table.rules[i].name.as_str()),
            _ => None,
        });
        let route_backends: Vec<&str> = route
            .map(|r| {
                r.backends
                    .iter()
                    .map(|&b| table.backends[b].name.as_str())
                    .collect()
            })
            .unwrap_or_default();
        let view = RequestView {
            method: inputs.method,
            path: inputs.path,
            model: inputs.model,
            stream: inputs.stream,
            classifications: &ev.classifications,
            headers: &headers,
            rule,
            route_backends: &route_backends,
            prompt: policy
                .module
                .meta
                .needs
                .prompt
                .then(|| prompt.as_deref().unwrap_or("")),
        };
        let input = encode(&view);
        let index = policy.index;
        match policy
            .module
            .evaluate(&input, |out| Answer::from_output(out, table, index))
        {
            Ok(answer) => {
                for class in answer.add {
                    if !ev.classifications.contains(&class) {
                        ev.classifications.push(class);
                    }
                }
                if ev.classifications.len() > MAX_CLASSIFICATIONS {
                    let error = PolicyError::Malformed("too many classifications".into());
                    return self.failure(policy, error, ev);
                }
                ev.set_headers.extend(answer.set);
                ev.remove_headers.extend(answer.remove);
                ev.annotations.extend(answer.notes);
                match answer.action {
                    Action::Continue => {
                        ev.trace.push(trace(&policy.module, "continue", None));
                        Step::Next
                    }
                    Action::Route(route) => {
                        ev.trace.push(trace(&policy.module, "route", None));
                        Step::Routed(route)
                    }
                    Action::Reject {
                        status,
                        code,
                        message,
                    } => {
                        ev.trace.push(trace(&policy.module, "reject", None));
                        Step::Stop(Verdict::Rejected {
                            policy: Arc::clone(&policy.label),
                            status,
                            code,
                            message,
                        })
                    }
                }
            }
            Err(error) => self.failure(policy, error, ev),
        }
    }

    fn failure(&self, policy: &ActivePolicy, error: PolicyError, ev: &mut Evaluation) -> Step {
        tracing::warn!(policy = %policy.label, digest = %policy.module.digest, %error, "policy failed");
        match policy.failure_mode {
            FailureMode::Open => {
                ev.trace.push(trace(
                    &policy.module,
                    "failed-open",
                    Some(error.to_string()),
                ));
                Step::Next
            }
            FailureMode::Closed => {
                ev.trace
                    .push(trace(&policy.module, "failed", Some(error.to_string())));
                Step::Stop(Verdict::Failed {
                    policy: Arc::clone(&policy.label),
                    error,
                })
            }
        }
    }

    /// Every module digest of this set (for the module cache).
    pub fn digests(&self) -> Vec<&str> {
        let mut all = vec![self.rules.digest.as_str()];
        all.extend(
            self.policies
                .iter()
                .chain(&self.detector)
                .map(|p| p.module.digest.as_str()),
        );
        all
    }
}

enum Step {
    Next,
    Routed(Route),
    Stop(Verdict),
}

fn trace(module: &PolicyModule, result: &'static str, error: Option<String>) -> PolicyTrace {
    PolicyTrace {
        name: Arc::new(module.name.to_string()),
        digest: module.digest.clone(),
        result,
        error,
    }
}

fn encode(view: &RequestView<'_>) -> Vec<u8> {
    let mut w = Writer::with_capacity(256 + view.prompt.map_or(0, str::len));
    view.encode(&mut w);
    w.buf
}

/// Whatever was decided, a sensitive request only ever goes to local backends.
fn enforce_sensitivity(table: &RoutingTable, classes: &[String], decision: Decision) -> Verdict {
    let sensitive = table.is_sensitive_classes(classes);
    match decision {
        Decision::Route(mut route) if sensitive => {
            route
                .backends
                .retain(|&b| table.backends[b].tier == Tier::Local);
            route.sensitive = true;
            route.fail_closed = true;
            if route.backends.is_empty() {
                let rule = match route.via {
                    Via::Rule(i) => Some(i),
                    _ => None,
                };
                Verdict::Deny(Deny::FailClosed { rule })
            } else {
                Verdict::Route(route)
            }
        }
        Decision::Route(route) => Verdict::Route(route),
        Decision::Deny(deny) => Verdict::Deny(deny),
    }
}

/// Headers a policy may not set or remove.
fn reserved(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "host"
            | "content-length"
            | "transfer-encoding"
            | "connection"
            | "keep-alive"
            | "te"
            | "trailer"
            | "upgrade"
            | "proxy-authorization"
            | "proxy-connection"
            | "authorization"
            | "x-api-key"
    )
}

impl Answer {
    fn from_output(
        out: &Output<'_>,
        table: &RoutingTable,
        policy: Option<usize>,
    ) -> Result<Self, String> {
        let action = match &out.action {
            OutputAction::Continue => Action::Continue,
            OutputAction::Reject {
                status,
                code,
                message,
            } => Action::Reject {
                status: *status,
                code: (*code).to_owned(),
                message: (*message).to_owned(),
            },
            OutputAction::Route {
                backends,
                strategy,
                fail_closed,
                timeout_ms,
                ..
            } => {
                let backends = resolve_backends(table, backends.clone())?;
                Action::Route(Route {
                    via: Via::Policy(policy.unwrap_or(usize::MAX)),
                    backends,
                    strategy: strategy_from_abi(*strategy),
                    fail_closed: *fail_closed,
                    timeout: timeout_ms.map(|ms| Duration::from_millis(u64::from(ms))),
                    sensitive: false,
                })
            }
        };
        let mut add = Vec::new();
        for class in out.add_classifications() {
            let class = class.trim().to_ascii_lowercase();
            if class.is_empty() || class.len() > 64 || class.contains(',') {
                return Err(format!("invalid classification {class:?}"));
            }
            add.push(class);
        }
        let header = |name: &str| -> Result<HeaderName, String> {
            let name =
                HeaderName::try_from(name).map_err(|_| format!("invalid header name {name:?}"))?;
            if reserved(&name) {
                return Err(format!("may not change header {name}"));
            }
            Ok(name)
        };
        let mut set = Vec::new();
        for (name, value) in out.set_headers() {
            let value = HeaderValue::try_from(value)
                .map_err(|_| format!("invalid value for header {name}"))?;
            set.push((header(name)?, value));
        }
        let remove = out
            .remove_headers()
            .map(header)
            .collect::<Result<Vec<_>, _>>()?;
        let notes: Vec<(String, String)> = out
            .annotations()
            .map(|(k, v)| (k.chars().take(64).collect(), v.chars().take(256).collect()))
            .collect();
        if notes.len() > MAX_ANNOTATIONS {
            return Err(format!("more than {MAX_ANNOTATIONS} annotations"));
        }
        Ok(Answer {
            action,
            add,
            set,
            remove,
            notes,
        })
    }
}
