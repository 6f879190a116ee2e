//! Reconciling a `ModelRouter`: validate it fully, copy its policy modules (checked against
//! their sha256), compile the rules, apply the gateway objects, and report every problem and
//! every backend in status.
//!
//! An invalid router never touches the running gateway: its objects keep the last good rules.

use llmkube_router::condition::Phase;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;

use super::{Context, Error, PROGRESS, RESYNC, namespace_of, write};
use crate::crd::inference_service::InferenceService;
use crate::reconcile::model_router::object_name;
use crate::reconcile::router_plan::{check_module, module_config_map, objects, spec_problems};
use crate::reconcile::router_status::{Observation, status};
use llmkube_router::defaults::backend_url;
use llmkube_router::spec::{BackendStatus, BudgetUtilization, ModelRouter, PolicyRef};
use llmkube_router::validate::{FieldError, ValidationErrors};

/// Reconciles one ModelRouter.
pub async fn reconcile(router: Arc<ModelRouter>, ctx: Arc<Context>) -> Result<Action, Error> {
    super::instrumented("ModelRouter", router.as_ref(), &ctx, run(&router, &ctx)).await
}

async fn run(router: &ModelRouter, ctx: &Context) -> Result<Action, Error> {
    let ns = namespace_of(router);
    let settings = &ctx.settings.router;
    let mut problems = spec_problems(router, &ns, settings);
    let modules = policy_modules(&router.spec.policies, &ns, ctx, &mut problems).await?;

    let mut obs = Observation::default();
    if problems.is_empty() {
        match objects(router, settings, &modules) {
            Ok(o) => {
                write::apply(&ctx.client, &o.config_map).await?;
                write::apply(&ctx.client, &o.service_account).await?;
                write::apply(&ctx.client, &o.role).await?;
                write::apply(&ctx.client, &o.role_binding).await?;
                write::apply(&ctx.client, &o.service).await?;
                let applied = write::apply(&ctx.client, &o.deployment).await?;
                let ready = applied.status.and_then(|s| s.ready_replicas).unwrap_or(0);
                let desired = applied.spec.and_then(|s| s.replicas).unwrap_or(1);
                obs.replicas = Some((ready, desired));
                if ready > 0 {
                    obs.budget_utilization = budget_report(router, &ns, ctx).await;
                }
            }
            Err(problem) => problems.push(problem),
        }
    }
    obs.backends = backend_statuses(router, &ns, ctx).await?;

    let validation = match problems.is_empty() {
        true => Ok(()),
        false => Err(ValidationErrors(problems)),
    };
    if let Err(e) = &validation {
        tracing::info!(router = %super::key(router), "refused: {}", e.to_string().replace('\n', "; "));
    }
    let mut next = status(router, &validation, &obs);
    write::status(&ctx.client, router, router.status.as_ref(), &mut next).await?;
    let budgets = router
        .spec
        .policy
        .as_ref()
        .is_some_and(|p| !p.budgets.is_empty());
    Ok(match next.phase {
        Some(Phase::Ready) if budgets => Action::requeue(BUDGET_REFRESH),
        Some(Phase::Ready) => Action::requeue(RESYNC),
        Some(Phase::Failed) => Action::await_change(),
        _ => Action::requeue(PROGRESS),
    })
}

/// How often a Ready router with budgets is looked at again, to refresh
/// `status.budgetUtilization`.
pub const BUDGET_REFRESH: Duration = Duration::from_secs(30);

/// The budget use a gateway replica reports at `GET /budgets` on its metrics port, read
/// through the API server's service proxy (no network path from the controller to the pods
/// needed), at most once per [`BUDGET_REFRESH`] per router. `None` (status keeps what it has)
/// when the router has no budgets, it was read recently, or the gateway did not answer.
async fn budget_report(
    router: &ModelRouter,
    ns: &str,
    ctx: &Context,
) -> Option<Vec<BudgetUtilization>> {
    let policy = router.spec.policy.as_ref()?;
    if policy.budgets.is_empty() {
        return None;
    }
    let name = object_name(router);
    let key = format!("{ns}/{name}");
    {
        let mut polls = ctx.budget_polls.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if polls
            .get(&key)
            .is_some_and(|last| now.duration_since(*last) < BUDGET_REFRESH)
        {
            return None;
        }
        polls.insert(key, now);
    }
    let path = format!("/api/v1/namespaces/{ns}/services/{name}:metrics/proxy/budgets");
    let request = http::Request::get(path).body(Vec::new()).ok()?;
    match ctx.client.request::<Vec<BudgetUtilization>>(request).await {
        Ok(report) => Some(report),
        Err(e) => {
            tracing::info!(router = %super::key(router), "budget use not read from the gateway: {e}");
            None
        }
    }
}

/// Reads every `configMapKeyRef` module and checks it against the policy's sha256.
async fn policy_modules(
    policies: &[PolicyRef],
    ns: &str,
    ctx: &Context,
    problems: &mut Vec<FieldError>,
) -> Result<BTreeMap<String, Vec<u8>>, Error> {
    let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ns);
    let mut modules = BTreeMap::new();
    for (i, p) in policies.iter().enumerate() {
        let found = match module_config_map(p) {
            Some(name) => config_maps.get_opt(name).await?,
            None => None,
        };
        match check_module(p, i, found.as_ref(), ns) {
            Ok(Some(bytes)) => {
                modules.insert(p.name.clone(), bytes);
            }
            Ok(None) => {}
            Err(problem) => problems.push(problem),
        }
    }
    Ok(modules)
}

/// Each backend's address and whether it can serve: an InferenceService must exist and be
/// Ready; a provider's credentials Secret must exist.
async fn backend_statuses(
    router: &ModelRouter,
    ns: &str,
    ctx: &Context,
) -> Result<Vec<BackendStatus>, Error> {
    let services: Api<InferenceService> = Api::namespaced(ctx.client.clone(), ns);
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let mut out = Vec::with_capacity(router.spec.backends.len());
    for b in &router.spec.backends {
        let address = backend_url(b, ns, ctx.settings.router.default_litellm_url.as_deref()).ok();
        let problem = if let Some(r) = &b.inference_service_ref {
            match services.get_opt(&r.name).await? {
                None => Some(format!("InferenceService {:?} not found", r.name)),
                Some(isvc) => match isvc.status.and_then(|s| s.phase) {
                    Some(Phase::Ready) => None,
                    phase => Some(format!(
                        "InferenceService {:?} is {}",
                        r.name,
                        phase.map_or("not ready yet", Phase::as_str)
                    )),
                },
            }
        } else if let Some(secret) = b
            .external
            .as_ref()
            .and_then(|e| e.credentials_secret_ref.as_ref())
        {
            match secrets.get_metadata_opt(&secret.name).await? {
                None => Some(format!("Secret {:?} not found", secret.name)),
                Some(_) => None,
            }
        } else {
            None
        };
        out.push(BackendStatus {
            name: b.name.clone(),
            tier: Some(b.effective_tier()),
            address,
            healthy: problem.is_none(),
            message: problem,
            last_probe_time: None,
        });
    }
    Ok(out)
}

/// The routers in `routers` that a change to the InferenceService `name` in `ns` affects.
pub fn routers_using_service<'a>(
    routers: impl IntoIterator<Item = &'a ModelRouter>,
    ns: &str,
    name: &str,
) -> Vec<ObjectRef<ModelRouter>> {
    routers_in(routers, ns, |r| {
        r.spec.backends.iter().any(|b| {
            b.inference_service_ref
                .as_ref()
                .is_some_and(|i| i.name == name)
        })
    })
}

/// The routers a change to the Secret or ConfigMap `name` in `ns` affects (credentials or
/// policy modules).
pub fn routers_using_object<'a>(
    routers: impl IntoIterator<Item = &'a ModelRouter>,
    ns: &str,
    name: &str,
) -> Vec<ObjectRef<ModelRouter>> {
    routers_in(routers, ns, |r| {
        let secret = r.spec.backends.iter().any(|b| {
            b.external
                .as_ref()
                .and_then(|e| e.credentials_secret_ref.as_ref())
                .is_some_and(|s| s.name == name)
        });
        let module = r.spec.policies.iter().any(|p| {
            p.module
                .config_map_key_ref
                .as_ref()
                .is_some_and(|c| c.name == name)
        });
        secret || module
    })
}

fn routers_in<'a>(
    routers: impl IntoIterator<Item = &'a ModelRouter>,
    ns: &str,
    uses: impl Fn(&ModelRouter) -> bool,
) -> Vec<ObjectRef<ModelRouter>> {
    routers
        .into_iter()
        .filter(|r| namespace_of(*r) == ns && uses(r))
        .map(ObjectRef::from)
        .collect()
}
