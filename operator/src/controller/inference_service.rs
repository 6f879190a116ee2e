//! Reconciling an `InferenceService`: apply its Deployment and Service once its Model is
//! Ready, read the pods for download failures and GPU shortage, write status and Events.

use llmkube_router::condition::Phase;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};

use super::{Context, Error, PROGRESS, RESYNC, namespace_of, write};
use crate::crd::inference_service::InferenceService;
use crate::crd::model::Model;
use crate::reconcile::inference_service::{
    ISVC_LABEL, Observation, cache_claim, deployment, observe_pods, service, status,
};

/// Reconciles one InferenceService.
pub async fn reconcile(isvc: Arc<InferenceService>, ctx: Arc<Context>) -> Result<Action, Error> {
    super::instrumented("InferenceService", isvc.as_ref(), &ctx, run(&isvc, &ctx)).await
}

async fn run(isvc: &InferenceService, ctx: &Context) -> Result<Action, Error> {
    let ns = namespace_of(isvc);
    let models: Api<Model> = Api::namespaced(ctx.client.clone(), &ns);
    let model = models.get_opt(&isvc.spec.model_ref).await?;
    let mut obs = Observation::default();
    if let Some(model) = &model {
        obs.model_ready = model
            .status
            .as_ref()
            .is_some_and(|s| s.phase == Some(Phase::Ready));
    }
    if let (true, Some(model)) = (obs.model_ready, &model) {
        let settings = &ctx.settings.inference;
        match (deployment(isvc, model, settings), service(isvc, settings)) {
            (Ok(desired_deployment), Ok(desired_service)) => {
                if let Some(claim) = cache_claim(model, &ns, settings) {
                    write::apply(&ctx.client, &claim).await?;
                }
                write::apply(&ctx.client, &desired_service).await?;
                let applied = write::apply(&ctx.client, &desired_deployment).await?;
                let ready = applied.status.and_then(|s| s.ready_replicas).unwrap_or(0);
                let desired = applied.spec.and_then(|s| s.replicas).unwrap_or(1);
                obs.replicas = Some((ready, desired));
                let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
                let selector = format!("{ISVC_LABEL}={}", isvc.name_any());
                let pods = pods.list(&ListParams::default().labels(&selector)).await?;
                (obs.init_failure, obs.waiting_for_gpu) = observe_pods(&pods.items);
            }
            (Err(why), _) | (_, Err(why)) => obs.config_error = Some(why),
        }
    }

    let mut next = status(isvc, &obs);
    let current = isvc.status.as_ref();
    if write::status(&ctx.client, isvc, current, &mut next).await? {
        announce_failure(isvc, current, &next, ctx).await;
    }
    Ok(match next.phase {
        Some(Phase::Ready) => Action::requeue(RESYNC),
        _ => Action::requeue(PROGRESS),
    })
}

/// Publishes a Warning Event when the Ready condition turns into a new failure, so that
/// `kubectl describe` and `kubectl get events` show the readable reason.
async fn announce_failure(
    isvc: &InferenceService,
    current: Option<&crate::crd::inference_service::InferenceServiceStatus>,
    next: &crate::crd::inference_service::InferenceServiceStatus,
    ctx: &Context,
) {
    let Some(ready) = next.conditions.iter().find(|c| c.type_ == "Ready") else {
        return;
    };
    let failing = matches!(next.phase, Some(Phase::Failed | Phase::WaitingForGpu));
    let before = current.and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
    if !failing || before.is_some_and(|b| b.message == ready.message) {
        return;
    }
    let event = Event {
        type_: EventType::Warning,
        reason: ready.reason.clone(),
        note: Some(ready.message.chars().take(1000).collect()),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &isvc.object_ref(&())).await {
        tracing::warn!("cannot publish an Event for {}: {e}", isvc.name_any());
    }
}
