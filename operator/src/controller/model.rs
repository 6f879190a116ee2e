//! Reconciling a `Model`: look at its PVC or at the model-downloader's verdict, write status.

use llmkube_router::condition::Phase;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::ListParams;
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};

use super::{Context, Error, PROGRESS, RESYNC, namespace_of};
use crate::crd::model::Model;
use crate::reconcile::inference_service::MODEL_LABEL;
use crate::reconcile::model::{Observation, Source, download_report, parse_source, status};

/// Reconciles one Model.
pub async fn reconcile(model: Arc<Model>, ctx: Arc<Context>) -> Result<Action, Error> {
    super::instrumented("Model", model.as_ref(), &ctx, run(&model, &ctx)).await
}

async fn run(model: &Model, ctx: &Context) -> Result<Action, Error> {
    let ns = namespace_of(model);
    let mut obs = Observation::default();
    let allowance = &ctx.settings.inference.allowance;
    match parse_source(&model.spec) {
        Ok(Source::Pvc { claim, .. }) => {
            let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
            obs.pvc_phase = pvcs.get_opt(&claim).await?.map(|pvc| {
                Some(
                    pvc.status
                        .and_then(|s| s.phase)
                        .unwrap_or_else(|| "Pending".into()),
                )
            });
        }
        Ok(Source::File(path)) if let Err(why) = allowance.check_host_path(&path) => {
            obs.refused = Some(why);
        }
        Ok(Source::Remote(_) | Source::File(_)) => {
            let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
            let selector = format!("{MODEL_LABEL}={}", model.name_any());
            let pods = pods.list(&ListParams::default().labels(&selector)).await?;
            obs.download = download_report(&pods.items);
        }
        Ok(Source::HfRepo(_)) | Err(_) => {}
    }
    let mut next = status(&model.spec, &ns, &obs);
    super::write::status(&ctx.client, model, model.status.as_ref(), &mut next).await?;
    Ok(match next.phase {
        Some(Phase::Pending) => Action::requeue(PROGRESS),
        _ => Action::requeue(RESYNC),
    })
}
