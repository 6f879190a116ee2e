//! Writing to the API server: server-side apply of owned objects and of status.
//!
//! Every write uses the field manager `llmkube-controller` with `force`, so fields the
//! controller stops setting are removed and nobody else's fields are touched. Status is only
//! written when it changed, so a status write does not trigger another.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::crd::inference_service::InferenceServiceStatus;
use crate::crd::model::ModelStatus;
use llmkube_router::condition::{Condition, settle_transitions};
use llmkube_router::spec::ModelRouterStatus;

pub use crate::reconcile::MANAGER;

/// Server-side applies `obj` (named and namespaced) and returns what the server stored.
pub async fn apply<K>(client: &Client, obj: &K) -> Result<K, kube::Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    let meta = obj.meta();
    let namespace = meta
        .namespace
        .as_deref()
        .unwrap_or(llmkube_router::DEFAULT_NAMESPACE);
    let name = meta.name.as_deref().unwrap_or_default();
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    api.patch(
        name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(obj),
    )
    .await
}

/// A status the controller writes.
pub trait Status: Serialize + PartialEq {
    /// Its conditions.
    fn conditions_mut(&mut self) -> &mut Vec<Condition>;
    /// Its conditions (read).
    fn conditions(&self) -> &[Condition];
    /// Sets the write time: `previous`'s (for comparing), or now (when writing). Statuses
    /// without one ignore it.
    fn set_written(&mut self, _previous: Option<&Self>) {}
}

/// The condition accessors of a status with a `conditions` field.
macro_rules! conditions_field {
    () => {
        fn conditions_mut(&mut self) -> &mut Vec<Condition> {
            &mut self.conditions
        }
        fn conditions(&self) -> &[Condition] {
            &self.conditions
        }
    };
}

impl Status for ModelStatus {
    conditions_field!();
    fn set_written(&mut self, previous: Option<&Self>) {
        self.last_updated = match previous {
            Some(p) => p.last_updated.clone(),
            None => Some(Time(k8s_openapi::jiff::Timestamp::now())),
        };
    }
}

impl Status for InferenceServiceStatus {
    conditions_field!();
}

impl Status for ModelRouterStatus {
    conditions_field!();
    fn set_written(&mut self, previous: Option<&Self>) {
        self.last_updated = match previous {
            Some(p) => p.last_updated.clone(),
            None => Some(super::now()),
        };
    }
}

/// Server-side applies `next` to `obj`'s status subresource unless, with the transition times
/// and write time of `current` carried over, nothing changed. Returns whether it wrote.
pub async fn status<K, S>(
    client: &Client,
    obj: &K,
    current: Option<&S>,
    next: &mut S,
) -> Result<bool, super::Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + DeserializeOwned,
    S: Status,
{
    let none: &[Condition] = &[];
    settle_transitions(
        current.map_or(none, |s| s.conditions()),
        next.conditions_mut(),
        &super::now(),
    );
    if let Some(current) = current {
        next.set_written(Some(current));
        if current == next {
            return Ok(false);
        }
    }
    next.set_written(None);
    let api: Api<K> = Api::namespaced(client.clone(), &super::namespace_of(obj));
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": next,
    });
    let name = obj.meta().name.as_deref().unwrap_or_default();
    api.patch_status(
        name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(body),
    )
    .await?;
    Ok(true)
}
