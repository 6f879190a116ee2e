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
use crate::reconcile::model::{
    Observation, Source, cache_keys, download_report, parse_source, status,
};
use crate::reconcile::model_cache::{ModelCache, cleanup_job};

/// Reconciles one Model.
pub async fn reconcile(model: Arc<Model>, ctx: Arc<Context>) -> Result<Action, Error> {
    super::instrumented("Model", model.as_ref(), &ctx, run(&model, &ctx)).await
}

async fn run(model: &Model, ctx: &Context) -> Result<Action, Error> {
    let ns = namespace_of(model);
    let mut obs = Observation {
        cache: ctx.settings.inference.model_cache.is_some(),
        ..Observation::default()
    };
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
    let inference = &ctx.settings.inference;
    if let (true, Some(cache)) = (inference.model_cache_cleanup, &inference.model_cache) {
        clean_cache(&ns, cache, ctx).await?;
    }
    Ok(match next.phase {
        Some(Phase::Pending) => Action::requeue(PROGRESS),
        _ => Action::requeue(RESYNC),
    })
}

/// With cleanup on: the Job that removes from the namespace's cache what none of its Models
/// references. Its name follows the set of keys, so applying it again is a no-op until the set
/// changes (or its finished Job expires, when it runs again).
async fn clean_cache(ns: &str, cache: &ModelCache, ctx: &Context) -> Result<(), Error> {
    let models: Api<Model> = Api::namespaced(ctx.client.clone(), ns);
    let listed = models.list(&ListParams::default()).await?.items;
    let keep = cache_keys(listed.iter().map(|m| &m.spec));
    let settings = &ctx.settings.inference;
    let job = cleanup_job(
        ns,
        cache.claim(),
        &keep,
        &settings.images.init,
        settings.allowance.container_security(None),
    );
    super::write::apply(&ctx.client, &job).await?;
    Ok(())
}
