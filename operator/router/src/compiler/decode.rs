//! The host side of the rule module's answers, and of custom policies' route answers: backend
//! and rule names resolved against the routing table, the ABI's strategy mapped to the spec's.
//! The gateway decodes every policy answer through these.

use std::time::Duration;

use llmkube_policy_sdk::output::{Output, OutputAction, Strategy as AbiStrategy};
use llmkube_policy_sdk::wire::Strs;

use super::{
    FAIL_CLOSED_CODE, NO_ROUTE_CODE, RULE_ANNOTATION, SENSITIVE_ANNOTATION, VIA_ANNOTATION,
};
use crate::routing::{Decision, Deny, Route, RoutingTable, Via};
use crate::spec::Strategy;

/// Turns a rule module's (or any routing policy's) output into a routing decision against
/// `table`. Unknown backend or rule names, and answers other than route/no-route/fail-closed,
/// are errors: the caller treats them as a policy failure.
pub fn decode_decision(table: &RoutingTable, output: &Output<'_>) -> Result<Decision, String> {
    let annotation = |key: &str| {
        output
            .annotations()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    };
    match &output.action {
        OutputAction::Route {
            backends,
            strategy,
            fail_closed,
            timeout_ms,
            rule,
        } => {
            let via = match (rule, annotation(VIA_ANNOTATION)) {
                (Some(name), _) => Via::Rule(rule_index(table, name)?),
                (None, Some("backend-name")) => Via::BackendName,
                (None, Some("default-route")) => Via::DefaultRoute,
                (None, other) => {
                    return Err(format!(
                        "a route needs a rule or a via annotation, got {other:?}"
                    ));
                }
            };
            let mut route = route_from(
                table,
                backends.clone(),
                *strategy,
                *fail_closed,
                *timeout_ms,
                via,
            )?;
            route.sensitive = annotation(SENSITIVE_ANNOTATION) == Some("true");
            Ok(Decision::Route(route))
        }
        OutputAction::Reject { code, .. } if *code == NO_ROUTE_CODE => {
            Ok(Decision::Deny(Deny::NoRoute))
        }
        OutputAction::Reject { code, .. } if *code == FAIL_CLOSED_CODE => {
            Ok(Decision::Deny(Deny::FailClosed {
                rule: annotation(RULE_ANNOTATION)
                    .map(|name| rule_index(table, name))
                    .transpose()?,
            }))
        }
        OutputAction::Reject { code, .. } => Err(format!("unexpected reject code {code:?}")),
        OutputAction::Continue => Err("a rule module must decide, not continue".to_owned()),
    }
}

/// A route answer (of the rule module or of a custom policy) as the [`Route`] it selects
/// `via`: backend names resolved against `table`, the ABI's strategy and timeout mapped. Not
/// marked sensitive: only the rules know that (their `sensitive` annotation).
pub fn route_from(
    table: &RoutingTable,
    backends: Strs<'_>,
    strategy: Option<AbiStrategy>,
    fail_closed: bool,
    timeout_ms: Option<u32>,
    via: Via,
) -> Result<Route, String> {
    Ok(Route {
        via,
        backends: resolve_backends(table, backends)?,
        strategy: strategy_from_abi(strategy),
        fail_closed,
        timeout: timeout_ms.map(|ms| Duration::from_millis(u64::from(ms))),
        sensitive: false,
    })
}

/// Resolves a route answer's backend names against `table` (for the rule module and for
/// custom policies alike); an unknown name is an error.
pub fn resolve_backends(table: &RoutingTable, names: Strs<'_>) -> Result<Vec<usize>, String> {
    names
        .map(|name| {
            table
                .backends
                .iter()
                .position(|b| b.name == name)
                .ok_or_else(|| format!("routes to unknown backend {name:?}"))
        })
        .collect()
}

/// The dispatch strategy of a route answer (unspecified means primary-fallback).
pub fn strategy_from_abi(strategy: Option<AbiStrategy>) -> Strategy {
    match strategy {
        None | Some(AbiStrategy::PrimaryFallback) => Strategy::PrimaryFallback,
        Some(AbiStrategy::Weighted) => Strategy::Weighted,
        Some(AbiStrategy::Shadow) => Strategy::Shadow,
    }
}

fn rule_index(table: &RoutingTable, name: &str) -> Result<usize, String> {
    table
        .rules
        .iter()
        .position(|r| r.name == name)
        .ok_or_else(|| format!("unknown rule {name:?}"))
}
