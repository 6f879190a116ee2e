//! One request through the policies: classify, pre-phase policies, compiled rules, post-phase
//! policies, then the sensitivity constraint enforced by the host itself.
//!
//! The gateway has no rule matching of its own: the route comes from the compiled rule module
//! (or from a policy). What the host keeps is the safety net — whatever any module answers, a
//! sensitive request never reaches a cloud-tier backend.

use std::sync::Arc;
use std::time::Instant;

use http::HeaderMap;
use llmkube_policy_sdk::metadata::Phase;
use llmkube_router::compiler::decode_decision;
use llmkube_router::routing::{Decision, Deny, Route, RoutingTable, Via};
use llmkube_router::spec::{ClassificationMode, FailureMode, MAX_CLASSIFICATIONS, Tier};

use llmkube_policy_sdk::view::{BackendDetail, RequestView};
use llmkube_policy_sdk::wire::Writer;

use super::answer::{Action, Answer};
use super::evaluation::Sources;
use super::evaluation::{ClassificationSource, Evaluation, PolicyTrace, Timing};
use super::windows::{DETECTOR_OVERLAP, DETECTOR_WINDOW, windows};
use super::{PolicyError, PolicyModule};
use crate::metrics::{Label, PolicyResult};
use crate::request::body_text::BodyText;

/// The classification the built-in detector adds, and that an unscannable body gets.
pub const DETECTOR_CLASSIFICATION: &str = "pii";
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
    /// Every string of the body, when collected (see [`PolicySet::needs_text`]).
    pub text: &'a BodyText,
    /// Who sent it: the authenticated principal (none without `spec.auth`).
    pub principal: Option<&'a str>,
    /// The team it is for.
    pub team: Option<&'a str>,
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
        policy: Label,
        /// 400..=599, as the policy chose.
        status: u16,
        /// The policy's own machine-readable code.
        code: String,
        /// Shown to the client.
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

impl PolicySet {
    /// Why a header the rules or a policy read is ambiguous in this request, if one is: sent
    /// more than once with different values, or with a value that is not text (a policy
    /// would not see it, the backend would). Such a request is refused, as a body with a
    /// duplicate key is: a policy and the backend must not be able to read it differently.
    pub fn ambiguous_header(&self, headers: &HeaderMap) -> Option<String> {
        let read = (self.rule_headers.iter()).chain(self.policies.iter().flat_map(|p| &p.headers));
        for name in read {
            let mut values = headers.get_all(name.as_str()).iter();
            let Some(first) = values.next() else {
                continue;
            };
            if first.to_str().is_err() {
                return Some(format!(
                    "header {name} is read by the router's policies and its value is not plain text"
                ));
            }
            if values.any(|v| v != first) {
                return Some(format!(
                    "header {name} is read by the router's policies and is sent more than once with different values; send it once"
                ));
            }
        }
        None
    }

    /// Whether this request needs the body's text: the detector runs on it (detector mode,
    /// or hybrid mode without a label), or a policy reads the prompt.
    pub fn needs_text(&self, header_classes: &[String]) -> bool {
        self.runs_detector(header_classes)
            || self.policies.iter().any(|p| p.module.meta.needs.prompt)
    }

    /// Hybrid mode trusts only a header that carries at least one value: an empty header, or
    /// one holding only separators, is no label and the detector runs.
    fn runs_detector(&self, header_classes: &[String]) -> bool {
        match self.mode {
            ClassificationMode::HeaderOnly => false,
            ClassificationMode::Detector => self.detector.is_some(),
            ClassificationMode::Hybrid => self.detector.is_some() && header_classes.is_empty(),
        }
    }

    /// Runs the pipeline for one request, filling in `ev` (which the request record keeps for
    /// the audit line and dispatch) and returning the verdict.
    pub fn evaluate(
        &self,
        table: &RoutingTable,
        inputs: &Inputs<'_>,
        header_classes: Vec<String>,
        ev: &mut Evaluation,
    ) -> Verdict {
        let mut sources = Sources::default();
        let verdict = self.decide(table, inputs, header_classes, ev, &mut sources);
        ev.classification_source = sources.deciding(table, &ev.classifications);
        verdict
    }

    fn decide(
        &self,
        table: &RoutingTable,
        inputs: &Inputs<'_>,
        header_classes: Vec<String>,
        ev: &mut Evaluation,
        sources: &mut Sources,
    ) -> Verdict {
        for class in header_classes {
            sources.add(&mut ev.classifications, class, ClassificationSource::Header);
        }
        let prompt = inputs.text.as_str();
        let mut unscanned = false;
        if self.runs_detector(&ev.classifications)
            && let Some(detector) = &self.detector
        {
            match inputs.text {
                BodyText::Complete(text) => {
                    if let Step::Stop(verdict) =
                        self.run_detector(detector, table, inputs, text, ev, sources)
                    {
                        return verdict;
                    }
                }
                // Not scanned (over the scan limit, or not collected): never clean.
                BodyText::OverScanLimit | BodyText::NotCollected => {
                    unscanned = true;
                    sources.add(
                        &mut ev.classifications,
                        DETECTOR_CLASSIFICATION.to_owned(),
                        ClassificationSource::ScanLimit,
                    );
                }
            }
        }
        let pre = self
            .policies
            .iter()
            .filter(|p| p.module.meta.phase == Phase::Pre);
        let mut decided: Option<Route> = None;
        for policy in pre {
            match self.run_policy(policy, table, inputs, prompt, ev, sources, None) {
                Step::Next => {}
                Step::Routed(route) => {
                    decided = Some(route);
                    break;
                }
                Step::Stop(verdict) => return verdict,
            }
        }
        let mut decision = match decided {
            Some(route) => Decision::Route(route),
            None => match self.run_rules(table, inputs, &ev.classifications, &mut ev.rules) {
                Ok(d) => d,
                Err(error) => {
                    ev.trace.push(trace(
                        &self.rules,
                        ev.rules.map_or_else(Instant::now, |t| t.began),
                        PolicyResult::Failed,
                        Some(error.to_string()),
                    ));
                    return Verdict::Failed {
                        policy: Arc::new(self.rules.name.to_string()),
                        error,
                    };
                }
            },
        };
        if let Decision::Route(route) = &decision {
            for policy in self
                .policies
                .iter()
                .filter(|p| p.module.meta.phase == Phase::Post)
            {
                match self.run_policy(policy, table, inputs, prompt, ev, sources, Some(route)) {
                    Step::Next => {}
                    Step::Routed(new_route) => {
                        decision = Decision::Route(new_route);
                        break;
                    }
                    Step::Stop(verdict) => return verdict,
                }
            }
        }
        enforce_sensitivity(table, &ev.classifications, unscanned, decision)
    }

    /// Runs the detector over `text` window by window, stopping at the first finding.
    fn run_detector(
        &self,
        detector: &ActivePolicy,
        table: &RoutingTable,
        inputs: &Inputs<'_>,
        text: &str,
        ev: &mut Evaluation,
        sources: &mut Sources,
    ) -> Step {
        let before = ev.classifications.len();
        let traced = ev.trace.len();
        let began = Instant::now();
        let mut step = Step::Next;
        for window in windows(text, DETECTOR_WINDOW, DETECTOR_OVERLAP) {
            // One trace line for the detector, however many windows it takes: the last one,
            // timed from the first.
            ev.trace.truncate(traced);
            step = self.run_policy(detector, table, inputs, Some(window), ev, sources, None);
            if !matches!(step, Step::Next if ev.classifications.len() == before) {
                break;
            }
        }
        if let Some(t) = ev.trace.get_mut(traced) {
            t.timing = Timing::since(began);
        }
        step
    }

    fn run_rules(
        &self,
        table: &RoutingTable,
        inputs: &Inputs<'_>,
        classes: &[String],
        timing: &mut Option<Timing>,
    ) -> Result<Decision, PolicyError> {
        let began = Instant::now();
        let headers = match_headers(inputs.headers, &self.rule_headers);
        let view = RequestView {
            method: inputs.method,
            path: inputs.path,
            model: inputs.model,
            stream: inputs.stream,
            classifications: classes,
            headers: &headers,
            principal: inputs.principal,
            team: inputs.team,
            ..Default::default()
        };
        let input = encode(&view, self.rules.abi_minor);
        let decision = self
            .rules
            .evaluate(&input, |out| decode_decision(table, out));
        *timing = Some(Timing::since(began));
        decision
    }

    #[allow(clippy::too_many_arguments)]
    fn run_policy(
        &self,
        policy: &ActivePolicy,
        table: &RoutingTable,
        inputs: &Inputs<'_>,
        prompt: Option<&str>,
        ev: &mut Evaluation,
        sources: &mut Sources,
        route: Option<&Route>,
    ) -> Step {
        let began = Instant::now();
        let headers = match_headers(inputs.headers, &policy.headers);
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
        let route_details: Vec<BackendDetail<'_>> = route
            .map(|r| {
                r.backends
                    .iter()
                    .map(|&b| BackendDetail {
                        tier: table.backends[b].tier.as_str(),
                        capabilities: &table.backends[b].capabilities,
                    })
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
                .then(|| prompt.unwrap_or("")),
            principal: inputs.principal,
            team: inputs.team,
            route_details: &route_details,
        };
        let input = encode(&view, policy.module.abi_minor);
        let index = policy.index;
        match policy
            .module
            .evaluate(&input, |out| Answer::from_output(out, table, index))
        {
            Ok(answer) => {
                let source = match policy.index {
                    None => ClassificationSource::Detector,
                    Some(_) => ClassificationSource::Policy,
                };
                for class in answer.add {
                    sources.add(&mut ev.classifications, class, source);
                }
                if ev.classifications.len() > MAX_CLASSIFICATIONS {
                    let error = PolicyError::Malformed("too many classifications".into());
                    return self.failure(policy, began, error, ev);
                }
                ev.set_headers.extend(answer.set);
                ev.remove_headers.extend(answer.remove);
                ev.annotations.extend(answer.notes);
                match answer.action {
                    Action::Continue => {
                        ev.trace
                            .push(trace(&policy.module, began, PolicyResult::Continue, None));
                        Step::Next
                    }
                    Action::Route(route) => {
                        ev.trace
                            .push(trace(&policy.module, began, PolicyResult::Route, None));
                        Step::Routed(route)
                    }
                    Action::Reject {
                        status,
                        code,
                        message,
                    } => {
                        ev.trace
                            .push(trace(&policy.module, began, PolicyResult::Reject, None));
                        Step::Stop(Verdict::Rejected {
                            policy: Arc::clone(&policy.label),
                            status,
                            code,
                            message,
                        })
                    }
                }
            }
            Err(error) => self.failure(policy, began, error, ev),
        }
    }

    fn failure(
        &self,
        policy: &ActivePolicy,
        began: Instant,
        error: PolicyError,
        ev: &mut Evaluation,
    ) -> Step {
        tracing::warn!(policy = %policy.label, digest = %policy.module.digest, %error, "policy failed");
        match policy.failure_mode {
            FailureMode::Open => {
                ev.trace.push(trace(
                    &policy.module,
                    began,
                    PolicyResult::FailedOpen,
                    Some(error.to_string()),
                ));
                Step::Next
            }
            FailureMode::Closed => {
                ev.trace.push(trace(
                    &policy.module,
                    began,
                    PolicyResult::Failed,
                    Some(error.to_string()),
                ));
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

fn trace(
    module: &PolicyModule,
    began: Instant,
    result: PolicyResult,
    error: Option<String>,
) -> PolicyTrace {
    PolicyTrace {
        timing: Timing::since(began),
        name: Arc::new(module.name.to_string()),
        digest: module.digest.clone(),
        config_digest: Arc::clone(&module.config_digest),
        result,
        error,
    }
}

/// The view as a module of ABI minor `minor` reads it.
fn encode(view: &RequestView<'_>, minor: u32) -> Vec<u8> {
    let mut w = Writer::with_capacity(256 + view.prompt.map_or(0, str::len));
    view.encode_for(minor, &mut w);
    w.buf
}

/// `(name, value)` of every occurrence of each header in `names` (lowercase) with a text value.
pub(crate) fn match_headers<'a>(
    headers: &'a HeaderMap,
    names: &'a [String],
) -> Vec<(&'a str, &'a str)> {
    let mut out = Vec::new();
    for name in names {
        for value in headers.get_all(name.as_str()) {
            if let Ok(text) = value.to_str() {
                out.push((name.as_str(), text));
            }
        }
    }
    out
}

/// Whatever was decided, a sensitive request only ever goes to local backends. `unscanned`
/// marks a body the detector could not read completely: sensitive whatever its classes.
fn enforce_sensitivity(
    table: &RoutingTable,
    classes: &[String],
    unscanned: bool,
    decision: Decision,
) -> Verdict {
    let sensitive = unscanned || table.is_sensitive_classes(classes);
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
