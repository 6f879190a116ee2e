//! Kubernetes mode: the router comes from the gateway's own ConfigMap, read and watched
//! through the API server (RBAC: get/list/watch on that one ConfigMap), and hot-swapped as
//! soon as the watch delivers a change, without a restart and without waiting for the
//! kubelet's volume sync.

use std::fmt;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::task::JoinHandle;

use llmkube_router::bundle::ROUTER_KEY;

use crate::router::bundle::RouterBundle;
use crate::router::reload::{ReloadError, swap_in};
use crate::state::AppState;

/// The ConfigMap a gateway serves (written by the controller).
#[derive(Clone)]
pub struct ConfigMapSource {
    /// API client (in-cluster service account, or a kubeconfig).
    pub client: Client,
    /// Namespace of the ConfigMap.
    pub namespace: String,
    /// Name of the ConfigMap (`<router>-router-proxy`).
    pub name: String,
}

impl fmt::Debug for ConfigMapSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "configmap {}/{}", self.namespace, self.name)
    }
}

impl ConfigMapSource {
    fn api(&self) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Reads the ConfigMap once (at start).
    pub(crate) async fn fetch(&self) -> Result<RouterBundle, ReloadError> {
        let cm = self
            .api()
            .get(&self.name)
            .await
            .map_err(|e| ReloadError::Source {
                origin: format!("{self:?}"),
                message: e.to_string(),
            })?;
        bundle(&cm, &format!("{self:?}"))
    }

    /// Watches the ConfigMap and swaps in every new version until the task is aborted. The
    /// watch retries with backoff when the API server is away; the gateway keeps serving.
    pub(crate) fn spawn_watcher(
        &self,
        state: Arc<AppState>,
        router_name: Option<String>,
    ) -> JoinHandle<()> {
        let origin = format!("{self:?}");
        let config = watcher::Config::default().fields(&format!("metadata.name={}", self.name));
        let stream = watcher(self.api(), config)
            .default_backoff()
            .applied_objects();
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                let cm = match event {
                    Ok(cm) => cm,
                    Err(e) => {
                        tracing::warn!("watching {origin}: {e}; retrying");
                        continue;
                    }
                };
                let result = bundle(&cm, &origin)
                    .and_then(|b| swap_in(&state, &b, router_name.as_deref(), false));
                match result {
                    // swap_in logged what changed.
                    Ok(_) => {}
                    Err(e) => tracing::error!(
                        "router reload refused, the previous router keeps serving: {e}"
                    ),
                }
            }
        })
    }
}

/// The router bundle a ConfigMap holds: `router.yaml` and, as files, every other key
/// (`rules.wasm`, `rules.sha256`, `<policy>.wasm`).
pub(crate) fn bundle(cm: &ConfigMap, origin: &str) -> Result<RouterBundle, ReloadError> {
    let mut files = std::collections::BTreeMap::new();
    for (k, v) in cm.data.iter().flatten() {
        files.insert(k.clone(), v.clone().into_bytes());
    }
    for (k, v) in cm.binary_data.iter().flatten() {
        files.insert(k.clone(), v.0.clone());
    }
    let text = files
        .remove(ROUTER_KEY)
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ReloadError::Source {
            origin: origin.to_owned(),
            message: format!("has no {ROUTER_KEY} (text)"),
        })?;
    Ok(RouterBundle {
        origin: origin.to_owned(),
        text,
        dir: None,
        files,
    })
}
