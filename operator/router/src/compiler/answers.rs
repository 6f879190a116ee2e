//! Every answer a rule module can give, encoded at compile time: a rule's route, its
//! local-only variant for sensitive requests, backend-name and default routes, and denials.

use std::time::Duration;

use llmkube_policy_sdk::output::{Action, Decision as Answer, Strategy as AbiStrategy};

use super::{RULE_ANNOTATION, SENSITIVE_ANNOTATION, VIA_ANNOTATION};
use crate::routing::RoutingTable;
use crate::spec::Strategy;

/// A route answer, before encoding.
pub struct RouteAnswer<'a> {
    pub backends: &'a [usize],
    pub strategy: Strategy,
    pub fail_closed: bool,
    pub timeout: Option<Duration>,
    pub rule: Option<&'a str>,
    pub via: Option<&'a str>,
    pub sensitive: bool,
}

impl RouteAnswer<'_> {
    /// A single-backend, primary-fallback answer (backend-name and default routes).
    pub fn single<'a>(backend: &'a [usize], via: &'a str, sensitive: bool) -> RouteAnswer<'a> {
        RouteAnswer {
            backends: backend,
            strategy: Strategy::PrimaryFallback,
            fail_closed: sensitive,
            timeout: None,
            rule: None,
            via: Some(via),
            sensitive,
        }
    }

    pub fn encode(&self, table: &RoutingTable) -> Answer {
        let mut answer = Answer::route(
            self.backends
                .iter()
                .map(|&b| table.backends[b].name.clone()),
        );
        if let Action::Route {
            strategy,
            fail_closed,
            timeout_ms,
            rule,
            ..
        } = &mut answer.action
        {
            *strategy = Some(match self.strategy {
                Strategy::PrimaryFallback => AbiStrategy::PrimaryFallback,
                Strategy::Weighted => AbiStrategy::Weighted,
                Strategy::Shadow => AbiStrategy::Shadow,
            });
            *fail_closed = self.fail_closed;
            *timeout_ms = self
                .timeout
                .map(|t| t.as_millis().min(u128::from(u32::MAX)) as u32);
            *rule = self.rule.map(str::to_owned);
        }
        if let Some(via) = self.via {
            answer = answer.annotate(VIA_ANNOTATION, via);
        }
        if self.sensitive {
            answer = answer.annotate(SENSITIVE_ANNOTATION, "true");
        }
        answer
    }
}

/// A 503 denial answer.
pub fn deny_answer(code: &str, message: String, rule: Option<&str>) -> Answer {
    let answer = Answer::reject(503, message).with_code(code);
    match rule {
        Some(r) => answer.annotate(RULE_ANNOTATION, r),
        None => answer,
    }
}
