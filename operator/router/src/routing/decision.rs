//! The inputs and output of a routing decision.

use std::time::Duration;

use crate::spec::Strategy;

/// What routing may look at in a request. Everything is borrowed from the request.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestFacts<'a> {
    /// The body's `model` (empty when absent).
    pub model: &'a str,
    /// Classifications of the request: lowercased, trimmed, without empties.
    pub classifications: &'a [String],
    /// The `x-llmkube-task-complexity` header as received (compared case-insensitively).
    pub task_complexity: Option<&'a str>,
    /// `(lowercased name, value)` of every header named in some rule's `match.headers`,
    /// once per occurrence (repeated headers appear several times).
    pub headers: &'a [(&'a str, &'a str)],
}

/// The outcome of routing one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Serve the request from these backends.
    Route(Route),
    /// Refuse it.
    Deny(Deny),
}

/// Where and how to dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// What selected the route.
    pub via: Via,
    /// Candidate backends (indices into `spec.backends`), in the route's order, already
    /// narrowed to those with the required capabilities and, for a sensitive request, to the
    /// local tier. Never empty.
    pub backends: Vec<usize>,
    /// How to use them.
    pub strategy: Strategy,
    /// When none of them can serve, answer 503 instead of anything else. Always set for a
    /// sensitive request.
    pub fail_closed: bool,
    /// The rule's per-attempt timeout, if it has one.
    pub timeout: Option<Duration>,
    /// The request carries a sensitive classification: no copy may reach a cloud backend.
    pub sensitive: bool,
}

/// What selected a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The rule at this index of `spec.rules`.
    Rule(usize),
    /// `BackendNameMatch`: the request's `model` is a backend's published id.
    BackendName,
    /// `spec.defaultRoute`.
    DefaultRoute,
    /// The custom policy at this index of `spec.policies` routed the request.
    Policy(usize),
    /// The built-in PII detector routed the request (its answers decode like a policy's).
    Detector,
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deny {
    /// No rule, backend name or default route applies (503).
    NoRoute,
    /// A fail-closed rule (or a sensitive request with no local route) cannot be served (503).
    /// `rule` is the fail-closed rule that matched, if any.
    FailClosed {
        /// Index into `spec.rules` of the rule that matched.
        rule: Option<usize>,
    },
}

/// Why a fail-closed route refused a request: rule `rule` (by name) allowed none of its
/// backends, or, with no rule, the request is sensitive and nothing local is routed. The
/// compiled rules and the gateway word it alike.
pub fn fail_closed_message(rule: Option<&str>) -> String {
    match rule {
        Some(name) => {
            format!("rule {name:?} is fail-closed and none of its backends may serve this request")
        }
        None => {
            "the request is classified sensitive and no local backend is routed for it".to_owned()
        }
    }
}
