//! A ModelRouter's status from what the controller observed: the conditions (`Validated`,
//! `BackendsReady`, `Available`, `Authenticated`), the phase they add up to, the backends and
//! the budget use the gateways report.

use llmkube_router::condition::{Condition, Phase};
use llmkube_router::spec::{
    BackendStatus, BudgetUtilization, ModelRouter, ModelRouterStatus, Tier,
};
use llmkube_router::validate::ValidationErrors;

use super::model_router::endpoint;

/// What the controller observed about a router.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observation {
    /// `(ready, desired)` gateway replicas, when the Deployment exists.
    pub replicas: Option<(i32, i32)>,
    /// Every backend with its address and readiness (`healthy` false carries the reason).
    pub backends: Vec<BackendStatus>,
    /// Budget use a gateway replica reported; `None` keeps what status has.
    pub budget_utilization: Option<Vec<BudgetUtilization>>,
}

fn condition(
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
) -> Condition {
    Condition {
        type_: type_.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: reason.into(),
        message,
        observed_generation: generation,
        ..Condition::default()
    }
}

/// Whether requests must carry credentials. Off is allowed (the original had no
/// authentication) but stays visible, loudest when cloud backends are open to anyone.
fn authenticated(router: &ModelRouter, generation: Option<i64>) -> Condition {
    let spec = &router.spec;
    let cloud = spec
        .backends
        .iter()
        .any(|b| b.effective_tier() == Tier::Cloud);
    let auth = spec.auth.as_ref();
    let keys = auth.and_then(|a| a.api_keys.as_ref());
    let jwt = auth.and_then(|a| a.jwt.as_ref());
    let (ok, reason, message) = match (keys, jwt, cloud) {
        (Some(k), None, _) => (
            true,
            "APIKeys",
            format!("requests must carry one of the API keys in Secret {:?}", k.secret_ref.name),
        ),
        (None, Some(j), _) => (
            true,
            "JWT",
            format!("requests must carry a JSON Web Token issued by {:?}", j.issuer),
        ),
        (Some(k), Some(j), _) => (
            true,
            "APIKeysAndJWT",
            format!(
                "requests must carry one of the API keys in Secret {:?} or a JSON Web Token issued by {:?}",
                k.secret_ref.name, j.issuer
            ),
        ),
        (None, None, true) => (
            false,
            "Unauthenticated",
            "Warning: no spec.auth, so anyone who can reach the gateway can use its cloud-tier backends, paid with the site's provider keys".to_owned(),
        ),
        (None, None, false) => (
            false,
            "AuthenticationOff",
            "no spec.auth: anyone who can reach the gateway can use it".to_owned(),
        ),
    };
    condition("Authenticated", ok, reason, message, generation)
}

/// The status a router should have. `validation` is the full validation result: every problem
/// is listed in the `Validated` condition's message.
pub fn status(
    router: &ModelRouter,
    validation: &Result<(), ValidationErrors>,
    obs: &Observation,
) -> ModelRouterStatus {
    let generation = router.metadata.generation;
    let validated = match validation {
        Ok(()) => condition(
            "Validated",
            true,
            "Valid",
            "the spec is valid".into(),
            generation,
        ),
        Err(errors) => condition(
            "Validated",
            false,
            "Invalid",
            errors.to_string().replace('\n', "; "),
            generation,
        ),
    };
    let unready: Vec<String> = obs
        .backends
        .iter()
        .filter(|b| !b.healthy)
        .map(|b| {
            format!(
                "{}: {}",
                b.name,
                b.message.as_deref().unwrap_or("not ready")
            )
        })
        .collect();
    let backends_ready = if unready.is_empty() {
        condition(
            "BackendsReady",
            true,
            "AllReady",
            "every backend is ready".into(),
            generation,
        )
    } else {
        condition(
            "BackendsReady",
            false,
            "BackendsNotReady",
            unready.join("; "),
            generation,
        )
    };
    let available = match obs.replicas {
        Some((r, d)) if r > 0 && r >= d => condition(
            "Available",
            true,
            "Ready",
            format!("{r}/{d} gateway replicas ready"),
            generation,
        ),
        Some((r, d)) => condition(
            "Available",
            false,
            "Progressing",
            format!("{r}/{d} gateway replicas ready"),
            generation,
        ),
        None => condition(
            "Available",
            false,
            "Provisioning",
            "creating the gateway".into(),
            generation,
        ),
    };
    let phase = if validation.is_err() {
        Phase::Failed
    } else if available.status != "True" {
        Phase::Provisioning
    } else if backends_ready.status != "True" {
        Phase::Degraded
    } else {
        Phase::Ready
    };
    ModelRouterStatus {
        phase: Some(phase),
        endpoint: validation.is_ok().then(|| endpoint(router)),
        active_rules: validation.is_ok().then_some(router.spec.rules.len() as i32),
        backends: obs.backends.clone(),
        conditions: vec![
            validated,
            backends_ready,
            available,
            authenticated(router, generation),
        ],
        observed_generation: generation,
        budget_utilization: obs.budget_utilization.clone().unwrap_or_else(|| {
            (router.status.as_ref())
                .map(|s| s.budget_utilization.clone())
                .unwrap_or_default()
        }),
        ..ModelRouterStatus::default()
    }
}
