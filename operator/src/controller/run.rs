//! Wiring: one `Controller` per kind with its owned objects and the watches that re-reconcile
//! dependants (a Model's InferenceServices, an InferenceService's or Secret's routers, ...).

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret, Service};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, ResourceExt};

use super::{Context, error_policy, inference_service, model, model_router, namespace_of};
use crate::crd::inference_service::InferenceService;
use crate::crd::model::Model;
use crate::reconcile::inference_service::{ISVC_LABEL, MODEL_LABEL};
use crate::reconcile::model::{Source, parse_source};

/// Selects what this controller created.
pub const MANAGED: &str = "app.kubernetes.io/managed-by=llmkube-controller";

/// Runs the three controllers until a shutdown signal (SIGTERM / Ctrl-C).
pub async fn run_controllers(client: Client, ctx: Arc<Context>) {
    let managed = || watcher::Config::default().labels(MANAGED);
    let inference_pods = || {
        watcher::Config::default()
            .labels(&format!("{MANAGED},app.kubernetes.io/component=inference"))
    };

    let models = Controller::new(
        Api::<Model>::all(client.clone()),
        watcher::Config::default(),
    );
    let model_store = models.store();
    let models = models
        .watches(
            Api::<PartialObjectMeta<PersistentVolumeClaim>>::all(client.clone()),
            watcher::Config::default(),
            move |pvc| {
                let ns = namespace_of(&pvc);
                model_store
                    .state()
                    .into_iter()
                    .filter(|m| namespace_of(m.as_ref()) == ns)
                    .filter(|m| {
                        matches!(parse_source(&m.spec), Ok(Source::Pvc { claim, .. }) if claim == pvc.name_any())
                    })
                    .map(|m| ObjectRef::from(m.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .watches(
            Api::<PartialObjectMeta<Pod>>::all(client.clone()),
            inference_pods(),
            |pod| labelled::<Model>(&pod.metadata, MODEL_LABEL),
        )
        .shutdown_on_signal()
        .run(model::reconcile, error_policy, Arc::clone(&ctx))
        .for_each(|r| log("Model", r));

    let services = Controller::new(
        Api::<InferenceService>::all(client.clone()),
        watcher::Config::default(),
    );
    let service_store = services.store();
    let services = services
        .owns(Api::<Deployment>::all(client.clone()), managed())
        .owns(Api::<Service>::all(client.clone()), managed())
        .watches(
            Api::<Model>::all(client.clone()),
            watcher::Config::default(),
            move |m| {
                let ns = namespace_of(&m);
                service_store
                    .state()
                    .into_iter()
                    .filter(|i| namespace_of(i.as_ref()) == ns && i.spec.model_ref == m.name_any())
                    .map(|i| ObjectRef::from(i.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .watches(
            Api::<PartialObjectMeta<Pod>>::all(client.clone()),
            inference_pods(),
            |pod| labelled::<InferenceService>(&pod.metadata, ISVC_LABEL),
        )
        .shutdown_on_signal()
        .run(inference_service::reconcile, error_policy, Arc::clone(&ctx))
        .for_each(|r| log("InferenceService", r));

    let routers = Controller::new(
        Api::<llmkube_router::spec::ModelRouter>::all(client.clone()),
        watcher::Config::default(),
    );
    let (by_service, by_secret, by_config_map) =
        (routers.store(), routers.store(), routers.store());
    let routers = routers
        .owns(Api::<Deployment>::all(client.clone()), managed())
        .owns(Api::<Service>::all(client.clone()), managed())
        .owns(Api::<ConfigMap>::all(client.clone()), managed())
        .watches(
            Api::<InferenceService>::all(client.clone()),
            watcher::Config::default(),
            move |i| {
                let state = by_service.state();
                model_router::routers_using_service(
                    state.iter().map(AsRef::as_ref),
                    &namespace_of(&i),
                    &i.name_any(),
                )
            },
        )
        .watches(
            Api::<PartialObjectMeta<Secret>>::all(client.clone()),
            watcher::Config::default(),
            move |s| {
                let state = by_secret.state();
                model_router::routers_using_object(
                    state.iter().map(AsRef::as_ref),
                    &namespace_of(&s),
                    &s.name_any(),
                )
            },
        )
        .watches(
            Api::<PartialObjectMeta<ConfigMap>>::all(client.clone()),
            watcher::Config::default(),
            move |c| {
                let state = by_config_map.state();
                model_router::routers_using_object(
                    state.iter().map(AsRef::as_ref),
                    &namespace_of(&c),
                    &c.name_any(),
                )
            },
        )
        .shutdown_on_signal()
        .run(model_router::reconcile, error_policy, Arc::clone(&ctx))
        .for_each(|r| log("ModelRouter", r));

    tracing::info!("controllers for Model, InferenceService and ModelRouter started");
    tokio::join!(models, services, routers);
}

/// The object named by label `key` of a pod, in the pod's namespace.
fn labelled<K>(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    key: &str,
) -> Option<ObjectRef<K>>
where
    K: kube::Resource<DynamicType = ()>,
{
    let name = meta.labels.as_ref()?.get(key)?;
    Some(ObjectRef::new(name).within(meta.namespace.as_deref()?))
}

async fn log<K: kube::Resource, E: std::fmt::Display>(
    kind: &str,
    result: Result<
        (ObjectRef<K>, kube::runtime::controller::Action),
        kube::runtime::controller::Error<E, watcher::Error>,
    >,
) {
    use kube::runtime::controller::Error as E2;
    match result {
        Ok((obj, _)) => tracing::debug!(kind, object = %obj.name, "reconciled"),
        // Already logged, with its retry delay, by the error policy.
        Err(E2::ReconcilerFailed(..) | E2::ObjectNotFound(..)) => {}
        // Watch failures (RBAC, API server away) retry with backoff; they must be visible.
        Err(e) => tracing::warn!(kind, "{e}"),
    }
}

#[cfg(test)]
mod tests {
    /// The selector is a literal (a `const` cannot format); it must name the manager.
    #[test]
    fn the_selector_names_the_manager() {
        assert_eq!(
            super::MANAGED,
            format!("app.kubernetes.io/managed-by={}", crate::reconcile::MANAGER)
        );
    }
}
