//! `llmkube-gateway explain`: what the gateway would do with one request, without serving it.
//!
//! It loads the router file as the server does ([`SnapshotBuilder::routing`]: the same compiled
//! rule module, policies and backend addresses), reads the request through the server's own
//! steps (classification header, body limits, JSON parsing, ambiguous headers), evaluates the
//! pipeline, and maps its verdict with the server's [`answer_for`]. The one thing it adds is the
//! reason each rule before the deciding one did not match, from the router library's reference
//! matcher, which the compiled module is fuzzed against; the decision itself is the module's.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use llmkube_router::defaults::TASK_COMPLEXITY_HEADER;
use llmkube_router::manifest::load_router;
use llmkube_router::routing::{Deny, RequestFacts, Route, RoutingTable, Via};
use serde::Serialize;

use crate::http::error::ApiError;
use crate::policy::evaluation::{ClassificationSource, Evaluation, PolicyTrace};
use crate::policy::pipeline::{Inputs, PolicySet, Verdict, match_headers};
use crate::policy::{EngineSettings, PolicyEngine};
use crate::request::dispatch::order;
use crate::request::inbound::classifications;
use crate::request::json_body::parse_json_body;
use crate::request::proxy::answer_for;
use crate::request::record::Outcome;
use crate::router::backend::{BackendTarget, ResolveOptions};
use crate::router::reload::read_bundle;
use crate::router::snapshot::{ProxySettings, Routing, SnapshotBuilder};

/// What to explain.
#[derive(Debug, Clone)]
pub struct ExplainRequest {
    /// The ModelRouter file (or bundle directory) the server would load.
    pub router: PathBuf,
    /// Which router of the file, when it holds several.
    pub router_name: Option<String>,
    /// Request headers, `(name, value)`.
    pub headers: Vec<(String, String)>,
    /// The body's `model` (replaces the body's own, or makes a one-message chat body).
    pub model: Option<String>,
    /// The request body; `None`: a one-message chat request.
    pub body: Option<Bytes>,
    /// The endpoint the request is for (policies see it).
    pub path: String,
    /// Backend addresses and credentials, as the server's flags give them.
    pub resolve: ResolveOptions,
    /// Directory of the built-in policies (the PII detector).
    pub policy_dir: Option<PathBuf>,
    /// How long to try a TCP connection to each candidate; `None`: do not probe.
    pub probe: Option<Duration>,
}

/// Why `explain` could not explain: the router does not load.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// The file cannot be read, is not a valid router, or its modules do not load.
    #[error("{0}")]
    Router(String),
    /// The body given is not JSON (and `model` was to be set in it).
    #[error("the body is not a JSON object: {0}")]
    Body(String),
    /// A `-H` header is not a valid HTTP header.
    #[error("{0}")]
    Header(String),
}

/// What the gateway would do with the request (`-o json` prints this).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    /// The router's `metadata.name`.
    pub(crate) router: String,
    /// Final classifications.
    pub(crate) classifications: Vec<String>,
    /// Where the deciding classification came from.
    pub(crate) classification_source: Option<ClassificationSource>,
    /// Each policy that ran, in order, with its module's digest and result.
    pub(crate) policies: Vec<PolicyTrace>,
    /// Each rule, in spec order, and what it made of the request.
    pub(crate) rules: Vec<RuleReport>,
    /// The route, when there is one.
    pub(crate) route: Option<RouteReport>,
    /// What the client gets.
    pub(crate) answer: AnswerReport,
}

/// One rule's part.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RuleReport {
    /// Rule name.
    pub name: String,
    /// What happened.
    pub outcome: RuleOutcome,
    /// Why it did not match, or why a match did not route.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What a rule made of the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RuleOutcome {
    /// It decided the request (a route, or a fail-closed refusal).
    Decided,
    /// It did not match.
    NoMatch,
    /// It matched, but none of its backends may serve a sensitive request, and it is not
    /// fail-closed: evaluation went on.
    PassedOn,
    /// Evaluation never reached it.
    NotReached,
}

/// The route and its candidates.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RouteReport {
    /// `rule`, `backend-name`, `default-route`, `policy` or `detector`.
    pub via: &'static str,
    /// The rule or policy name, when one decided.
    pub by: Option<String>,
    /// `primary-fallback`, `weighted` or `shadow`.
    pub strategy: &'static str,
    /// Refuse (503) rather than anything else when no candidate can serve.
    pub fail_closed: bool,
    /// The request is sensitive: only local backends are candidates.
    pub sensitive: bool,
    /// In the order they would be tried.
    pub candidates: Vec<Candidate>,
}

/// A backend the request may go to.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Candidate {
    /// Backend name.
    pub name: String,
    /// `local` or `cloud`.
    pub tier: &'static str,
    /// Base URL.
    pub address: String,
    /// `reachable`, `unreachable: <why>`, or `not probed`.
    pub health: String,
}

/// What the client gets.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AnswerReport {
    /// HTTP status: 200 when routed (the backend's answer decides the rest).
    pub status: u16,
    /// The audit outcome of a refusal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<&'static str>,
    /// The error code of a refusal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The error message of a refusal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Explanation {
    /// Routed (exit code 0), or refused (1).
    pub fn routed(&self) -> bool {
        self.route.is_some()
    }

    /// As JSON (`-o json`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// The text `explain` prints without `-o json`.
impl std::fmt::Display for Explanation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "router          {}", self.router)?;
        let source = self.classification_source.map(|s| match s {
            ClassificationSource::Header => "from the classification header",
            ClassificationSource::Detector => "found by the PII detector",
            ClassificationSource::Policy => "added by a policy",
            ClassificationSource::ScanLimit => {
                "the body was over the scan limit, so it counts as sensitive"
            }
        });
        match (self.classifications.is_empty(), source) {
            (true, _) => writeln!(f, "classification  none")?,
            (false, Some(source)) => writeln!(
                f,
                "classification  {} ({source})",
                self.classifications.join(", ")
            )?,
            (false, None) => writeln!(f, "classification  {}", self.classifications.join(", "))?,
        }
        if !self.policies.is_empty() {
            writeln!(f, "policies")?;
            for p in &self.policies {
                let digest = p.digest.get(..12).unwrap_or(&p.digest);
                write!(
                    f,
                    "  {:<24} {:<12} sha256:{digest}",
                    p.name,
                    p.result.as_str()
                )?;
                match &p.error {
                    Some(e) => writeln!(f, "  {e}")?,
                    None => writeln!(f)?,
                }
            }
        }
        if !self.rules.is_empty() {
            writeln!(f, "rules")?;
            for (i, r) in self.rules.iter().enumerate() {
                let outcome = match r.outcome {
                    RuleOutcome::Decided => "decided",
                    RuleOutcome::NoMatch => "no match",
                    RuleOutcome::PassedOn => "matched, passed on",
                    RuleOutcome::NotReached => "not reached",
                };
                write!(f, "  {:>2}. {:<24} {outcome}", i + 1, r.name)?;
                match &r.reason {
                    Some(reason) => writeln!(f, ": {reason}")?,
                    None => writeln!(f)?,
                }
            }
        }
        if let Some(route) = &self.route {
            let by = route
                .by
                .as_deref()
                .map(|b| format!(" {b}"))
                .unwrap_or_default();
            let closed = if route.fail_closed {
                ", fail-closed"
            } else {
                ""
            };
            let sensitive = if route.sensitive {
                ", sensitive: local only"
            } else {
                ""
            };
            writeln!(
                f,
                "route           via {}{by} ({}{closed}{sensitive})",
                route.via, route.strategy
            )?;
            writeln!(f, "candidates")?;
            for (i, c) in route.candidates.iter().enumerate() {
                writeln!(
                    f,
                    "  {:>2}. {:<24} {:<6} {}  {}",
                    i + 1,
                    c.name,
                    c.tier,
                    c.address,
                    c.health
                )?;
            }
        }
        match (&self.route, &self.answer.message) {
            (Some(route), _) => {
                let first = route.candidates.first().map_or("", |c| c.name.as_str());
                writeln!(
                    f,
                    "answer          {} from {first} (the candidates in order until one answers)",
                    self.answer.status
                )
            }
            (None, message) => writeln!(
                f,
                "answer          {} {} ({}): {}",
                self.answer.status,
                self.answer.code.as_deref().unwrap_or_default(),
                self.answer.outcome.unwrap_or_default(),
                message.as_deref().unwrap_or_default()
            ),
        }
    }
}

/// Explains `req`.
pub async fn explain(req: &ExplainRequest) -> Result<Explanation, ExplainError> {
    let router = |e: String| ExplainError::Router(e);
    let bundle = read_bundle(&req.router).map_err(|e| router(e.to_string()))?;
    let manifest = load_router(&bundle.text, req.router_name.as_deref())
        .map_err(|e| router(format!("{}: {e}", req.router.display())))?;
    let engine = PolicyEngine::new(EngineSettings::default()).map_err(|e| router(e.to_string()))?;
    let http = crate::http::client::build_client(None, Duration::from_secs(5))
        .map_err(|e| router(e.to_string()))?;
    let builder = SnapshotBuilder {
        resolve: req.resolve.clone(),
        audit_dropped: Default::default(),
        engine,
        policy_dir: req.policy_dir.clone(),
        budget_stores: Default::default(),
        http,
        client_certificates: false,
        otlp: Default::default(),
        otlp_audit_errors: Default::default(),
    };
    let routing = (builder.routing(&manifest, &bundle, None))
        .map_err(|e| router(format!("{}: {e}", req.router.display())))?;
    let settings = ProxySettings::from_spec(&manifest.spec);
    let headers = header_map(&req.headers).map_err(ExplainError::Header)?;
    let body = request_body(req)?;

    let mut out = Explanation {
        router: manifest.metadata.name.clone(),
        classifications: Vec::new(),
        classification_source: None,
        policies: Vec::new(),
        rules: Vec::new(),
        route: None,
        answer: AnswerReport {
            status: 200,
            outcome: None,
            code: None,
            message: None,
        },
    };
    let Routing {
        table,
        policies,
        backends,
    } = &routing;
    let evaluated = evaluate(req, table, policies, &settings, &headers, body);
    let (model, ev, verdict) = match evaluated {
        Ok(done) => done,
        Err(refused) => {
            out.answer = refusal(&refused, Outcome::BadRequest);
            out.rules = reports(table, None, Reach::Never);
            return Ok(out);
        }
    };
    let facts_headers = match_headers(&headers, &table.header_names);
    let facts = RequestFacts {
        model: &model,
        classifications: &ev.classifications,
        task_complexity: (headers.get(TASK_COMPLEXITY_HEADER)).and_then(|v| v.to_str().ok()),
        headers: &facts_headers,
    };
    out.rules = reports(table, Some(&facts), reach(&verdict, policies));
    out.classifications = ev.classifications.clone();
    out.classification_source = ev.classification_source;
    out.policies = ev.trace.clone();
    match answer_for(table, &model, verdict) {
        Ok(route) => {
            let report = route_report(&route, table, policies, backends, req.probe).await;
            out.route = Some(report);
        }
        Err(refused) => out.answer = refusal(&refused.error, refused.outcome),
    }
    Ok(out)
}

/// The server's steps up to the verdict; a request they refuse gives the error.
fn evaluate(
    req: &ExplainRequest,
    table: &RoutingTable,
    policies: &PolicySet,
    settings: &ProxySettings,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<(String, Evaluation, Verdict), ApiError> {
    let header_classes = classifications(headers, &table.classification_header)?;
    let scan_limit = (policies.needs_text(&header_classes)).then_some(settings.scan_limit_bytes);
    if body.len() as u64 > settings.max_body_bytes {
        return Err(ApiError::too_large(settings.max_body_bytes));
    }
    let json = parse_json_body(body, scan_limit)?;
    if let Some(why) = policies.ambiguous_header(headers) {
        return Err(ApiError::bad_request(why, None));
    }
    let inputs = Inputs {
        method: "POST",
        path: &req.path,
        model: &json.model,
        stream: json.stream,
        headers,
        text: &json.text,
        principal: None,
        team: None,
    };
    let mut ev = Evaluation::default();
    let verdict = policies.evaluate(table, &inputs, header_classes, &mut ev);
    Ok((json.model.clone(), ev, verdict))
}

/// How far evaluation went through the rules.
#[derive(Debug, Clone, Copy)]
enum Reach {
    /// A rule decided: those after it were not reached.
    UpTo(usize),
    /// Every rule was evaluated and none decided.
    All,
    /// The rules never ran (a pre-phase policy or the detector decided, or the request was
    /// refused before).
    Never,
}

fn reach(verdict: &Verdict, policies: &PolicySet) -> Reach {
    use llmkube_policy_sdk::metadata::Phase;
    let pre = |label: &str| {
        let detector = policies.detector.as_ref().map(|d| d.label.as_str());
        detector == Some(label)
            || (policies.policies.iter())
                .any(|p| p.label.as_str() == label && p.module.meta.phase == Phase::Pre)
    };
    match verdict {
        Verdict::Route(Route {
            via: Via::Rule(i), ..
        })
        | Verdict::Deny(Deny::FailClosed { rule: Some(i) }) => Reach::UpTo(*i),
        Verdict::Route(Route {
            via: Via::Policy(i),
            ..
        }) if policies.policies.get(*i).map(|p| p.module.meta.phase) == Some(Phase::Pre) => {
            Reach::Never
        }
        Verdict::Route(Route {
            via: Via::Detector, ..
        }) => Reach::Never,
        Verdict::Rejected { policy, .. } | Verdict::Failed { policy, .. }
            if pre(policy.as_str()) =>
        {
            Reach::Never
        }
        _ => Reach::All,
    }
}

/// Each rule's part, given how far evaluation went.
fn reports(
    table: &RoutingTable,
    facts: Option<&RequestFacts<'_>>,
    reach: Reach,
) -> Vec<RuleReport> {
    let sensitive = facts.is_some_and(|f| table.is_sensitive(f));
    (table.rules.iter().enumerate())
        .map(|(i, rule)| {
            let (outcome, reason) = match (reach, facts) {
                (Reach::UpTo(d), _) if i == d => (RuleOutcome::Decided, None),
                (Reach::UpTo(d), _) if i > d => (RuleOutcome::NotReached, None),
                (Reach::Never, _) | (_, None) => (RuleOutcome::NotReached, None),
                (_, Some(facts)) => match table.rule_mismatch(i, facts) {
                    Some(m) => (RuleOutcome::NoMatch, Some(m.describe(rule))),
                    None if sensitive => (
                        RuleOutcome::PassedOn,
                        Some(
                            "the request is sensitive and every backend of its route is cloud-tier"
                                .into(),
                        ),
                    ),
                    None => (RuleOutcome::PassedOn, None),
                },
            };
            RuleReport {
                name: rule.name.clone(),
                outcome,
                reason,
            }
        })
        .collect()
}

async fn route_report(
    route: &Route,
    table: &RoutingTable,
    policies: &PolicySet,
    backends: &[BackendTarget],
    probe: Option<Duration>,
) -> RouteReport {
    let (via, by) = match route.via {
        Via::Rule(i) => ("rule", Some(table.rules[i].name.clone())),
        Via::BackendName => ("backend-name", None),
        Via::DefaultRoute => ("default-route", None),
        Via::Policy(i) => (
            "policy",
            policies.policies.get(i).map(|p| p.label.to_string()),
        ),
        Via::Detector => ("detector", None),
    };
    let mut candidates = Vec::new();
    for b in order(route, table) {
        let target = &backends[b];
        let health = match probe {
            Some(timeout) => reachability(target, timeout).await,
            None => "not probed".into(),
        };
        candidates.push(Candidate {
            name: target.name.to_string(),
            tier: target.tier.as_str(),
            address: format!(
                "{}://{}{}",
                target.scheme, target.authority, target.base_path
            ),
            health,
        });
    }
    RouteReport {
        via,
        by,
        strategy: route.strategy.as_str(),
        fail_closed: route.fail_closed,
        sensitive: route.sensitive,
        candidates,
    }
}

/// Whether a TCP connection to the backend opens within `timeout`.
async fn reachability(target: &BackendTarget, timeout: Duration) -> String {
    let https = target.scheme == http::uri::Scheme::HTTPS;
    let port = target
        .authority
        .port_u16()
        .unwrap_or(if https { 443 } else { 80 });
    let host = target
        .authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port))).await {
        Ok(Ok(_)) => "reachable".into(),
        Ok(Err(e)) => format!("unreachable: {e}"),
        Err(_) => format!("unreachable: no connection within {timeout:?}"),
    }
}

fn refusal(error: &ApiError, outcome: Outcome) -> AnswerReport {
    AnswerReport {
        status: error.status.as_u16(),
        outcome: Some(outcome.as_str()),
        code: Some(error.code.to_string()),
        message: Some(error.message.clone()),
    }
}

fn header_map(headers: &[(String, String)]) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let name =
            HeaderName::try_from(name.trim()).map_err(|e| format!("header {name:?}: {e}"))?;
        let value =
            HeaderValue::try_from(value.trim()).map_err(|e| format!("header {name}: {e}"))?;
        map.append(name, value);
    }
    Ok(map)
}

/// The body to explain: the one given (with `model` set in it when asked), or a one-message
/// chat request for `model`.
fn request_body(req: &ExplainRequest) -> Result<Bytes, ExplainError> {
    let Some(body) = &req.body else {
        let chat = serde_json::json!({
            "model": req.model.as_deref().unwrap_or_default(),
            "messages": [{"role": "user", "content": "hello"}],
        });
        return Ok(Bytes::from(chat.to_string()));
    };
    let Some(model) = &req.model else {
        return Ok(body.clone());
    };
    let mut json: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ExplainError::Body(e.to_string()))?;
    let object =
        (json.as_object_mut()).ok_or_else(|| ExplainError::Body("not an object".into()))?;
    object.insert("model".into(), model.clone().into());
    Ok(Bytes::from(json.to_string()))
}
