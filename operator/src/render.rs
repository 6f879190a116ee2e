//! `llmkube-controller render`: every object the controller would apply for the Models,
//! InferenceServices and ModelRouters of a manifest file, built by the same reconcilers with
//! the same settings, with no API server, so that a reviewer sees what will run before it runs.
//!
//! What only a cluster knows is assumed, and said here once: every Model of the file is Ready
//! (its download is the runtime's business), `pvc://` claims exist, and owner references carry
//! the empty uid the API server fills in. Whatever the controller would refuse is refused with
//! the message its status condition would carry, and that object's children are left out.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Resource;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::controller::Settings;
use crate::crd::inference_service::InferenceService;
use crate::crd::model::Model;
use crate::reconcile::inference_service::{cache_claim, deployment, service};
use crate::reconcile::model::{Observation, Source, cache_keys, parse_source, status};
use crate::reconcile::model_cache::cleanup_job;
use crate::reconcile::router_plan::{check_module, module_config_map, objects, spec_problems};
use llmkube_router::condition::Phase;
use llmkube_router::spec::ModelRouter;

/// A manifest file that cannot be read as Kubernetes objects.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A document is not YAML, or not the object its `kind` says.
    #[error("document {index}: {message}")]
    Document {
        /// 1-based position in the file.
        index: usize,
        /// What is wrong with it.
        message: String,
    },
}

/// The objects of a manifest file the controller acts on (other kinds are not its business).
#[derive(Debug, Default)]
pub struct Manifests {
    models: Vec<Model>,
    services: Vec<InferenceService>,
    routers: Vec<ModelRouter>,
    /// Where ModelRouter policy modules come from.
    config_maps: Vec<ConfigMap>,
    /// How many documents were of other kinds.
    pub skipped: usize,
}

/// One object the controller would refuse, as `Kind/namespace/name` and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `Kind/namespace/name`.
    pub object: String,
    /// The controller's message (for a router, one line per problem).
    pub message: String,
}

/// What rendering a file gives: the objects as YAML documents, in the order the controller
/// applies them, and what it would refuse.
#[derive(Debug, Default)]
pub struct Rendered {
    /// Each object as a YAML document (without the `---` separator).
    pub documents: Vec<String>,
    /// The refused objects.
    pub refusals: Vec<Refusal>,
}

impl Rendered {
    fn push<K: Serialize>(&mut self, object: &K) {
        match serde_yaml_ng::to_string(object) {
            Ok(yaml) => self.documents.push(yaml),
            // The reconcilers' types always serialise; say so rather than drop an object.
            Err(e) => self.refusals.push(Refusal {
                object: "render".into(),
                message: format!("an object did not serialise: {e}"),
            }),
        }
    }

    fn refuse<K: Resource<DynamicType = ()>>(&mut self, object: &K, message: String) {
        self.refusals.push(Refusal {
            object: crate::controller::key(object),
            message,
        });
    }
}

/// Reads the objects of `text` (YAML documents), placing those without a namespace in
/// `namespace`, as `kubectl apply -n` would.
pub fn parse(text: &str, namespace: &str) -> Result<Manifests, RenderError> {
    let mut out = Manifests::default();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let index = i + 1;
        let fail = |message: String| RenderError::Document { index, message };
        let value = serde_yaml_ng::Value::deserialize(doc).map_err(|e| fail(e.to_string()))?;
        if value.is_null() {
            continue;
        }
        let kind = value["kind"].as_str().unwrap_or_default().to_owned();
        let group = value["apiVersion"].as_str().unwrap_or_default();
        let (ours, core) = (group == llmkube_router::API_VERSION, group == "v1");
        match (ours, kind.as_str()) {
            (true, "Model") => out.models.push(typed(value, &kind, index, namespace)?),
            (true, "InferenceService") => out.services.push(typed(value, &kind, index, namespace)?),
            (true, "ModelRouter") => out.routers.push(typed(value, &kind, index, namespace)?),
            (false, "ConfigMap") if core => {
                out.config_maps.push(typed(value, &kind, index, namespace)?)
            }
            _ => out.skipped += 1,
        }
    }
    Ok(out)
}

/// Document `index` as a `kind`, in `namespace` unless it names its own. Unknown fields are
/// refused, as `kubectl apply` (strict field validation) refuses them.
fn typed<K: Resource + DeserializeOwned>(
    value: serde_yaml_ng::Value,
    kind: &str,
    index: usize,
    namespace: &str,
) -> Result<K, RenderError> {
    let fail = |message: String| RenderError::Document { index, message };
    let mut unknown = Vec::new();
    let mut object: K = serde_ignored::deserialize(value, |path| unknown.push(path.to_string()))
        .map_err(|e| fail(format!("{kind}: {e}")))?;
    // The kube derive reads apiVersion and kind outside serde's view.
    unknown.retain(|p| p != "apiVersion" && p != "kind");
    if !unknown.is_empty() {
        return Err(fail(format!(
            "{kind}: unknown field(s) {}",
            unknown.join(", ")
        )));
    }
    object
        .meta_mut()
        .namespace
        .get_or_insert_with(|| namespace.to_owned());
    Ok(object)
}

/// The objects the controller with `settings` would apply for `manifests`.
pub fn render(manifests: &Manifests, settings: &Settings) -> Rendered {
    let mut out = Rendered::default();
    let inference = &settings.inference;
    let ready = models(manifests, settings, &mut out);

    let mut claimed = BTreeSet::new();
    for isvc in &manifests.services {
        let ns = crate::controller::namespace_of(isvc);
        let wanted = (ns.clone(), isvc.spec.model_ref.clone());
        let Some(model) = manifests.models.iter().find(|m| same(*m, &wanted)) else {
            let message = format!(
                "Model {:?} is not in the file, so it cannot be rendered (render assumes the file holds what it references)",
                isvc.spec.model_ref
            );
            out.refuse(isvc, message);
            continue;
        };
        if !ready.contains(&wanted) {
            let message = format!("waits for Model {:?}, which is refused", wanted.1);
            out.refuse(isvc, message);
            continue;
        }
        match (deployment(isvc, model, inference), service(isvc, inference)) {
            (Ok(desired_deployment), Ok(desired_service)) => {
                if let Some(claim) = cache_claim(model, &ns, inference)
                    && claimed.insert(ns.clone())
                {
                    out.push(&claim);
                }
                out.push(&desired_service);
                out.push(&desired_deployment);
            }
            (Err(why), _) | (_, Err(why)) => out.refuse(isvc, why),
        }
    }

    for router in &manifests.routers {
        routers(router, manifests, settings, &mut out);
    }
    out
}

/// Checks every Model as its controller would, adds the cache cleanup Job of each namespace
/// (with cleanup on), and returns the `(namespace, name)` of those that become Ready.
fn models(
    manifests: &Manifests,
    settings: &Settings,
    out: &mut Rendered,
) -> BTreeSet<(String, String)> {
    let inference = &settings.inference;
    let mut ready = BTreeSet::new();
    let mut by_namespace: BTreeMap<String, Vec<&Model>> = BTreeMap::new();
    for model in &manifests.models {
        let ns = crate::controller::namespace_of(model);
        let mut obs = Observation {
            cache: inference.model_cache.is_some(),
            ..Observation::default()
        };
        match parse_source(&model.spec) {
            Ok(Source::Pvc { .. }) => obs.pvc_phase = Some(Some("Bound".into())),
            Ok(Source::File(path)) => {
                obs.refused = inference.allowance.check_host_path(&path).err()
            }
            _ => {}
        }
        let next = status(&model.spec, &ns, &obs);
        if next.phase == Some(Phase::Failed) {
            let message = next.conditions.first().map(|c| c.message.clone());
            out.refuse(model, message.unwrap_or_default());
            continue;
        }
        ready.insert((ns.clone(), model.metadata.name.clone().unwrap_or_default()));
        by_namespace.entry(ns).or_default().push(model);
    }
    if let (true, Some(cache)) = (inference.model_cache_cleanup, &inference.model_cache) {
        for (ns, models) in by_namespace {
            let keep = cache_keys(models.iter().map(|m| &m.spec));
            let security = inference.allowance.container_security(None);
            let init = &inference.images.init;
            out.push(&cleanup_job(&ns, cache.claim(), &keep, init, security));
        }
    }
    ready
}

/// A router's gateway objects, or its problems, with modules from the file's ConfigMaps.
fn routers(router: &ModelRouter, manifests: &Manifests, settings: &Settings, out: &mut Rendered) {
    let ns = crate::controller::namespace_of(router);
    let mut problems = spec_problems(router, &ns, &settings.router);
    let mut modules = BTreeMap::new();
    for (i, policy) in router.spec.policies.iter().enumerate() {
        let found = module_config_map(policy).and_then(|name| {
            let wanted = (ns.clone(), name.to_owned());
            manifests.config_maps.iter().find(|cm| same(*cm, &wanted))
        });
        match check_module(policy, i, found, &ns) {
            Ok(Some(bytes)) => {
                modules.insert(policy.name.clone(), bytes);
            }
            Ok(None) => {}
            Err(problem) => problems.push(problem),
        }
    }
    if problems.is_empty() {
        match objects(router, &settings.router, &modules) {
            Ok(o) => {
                out.push(&o.config_map);
                out.push(&o.service_account);
                out.push(&o.role);
                out.push(&o.role_binding);
                out.push(&o.service);
                out.push(&o.deployment);
                return;
            }
            Err(problem) => problems.push(problem),
        }
    }
    let lines: Vec<String> = problems
        .iter()
        .map(|p| format!("{}: {}", p.path, p.message))
        .collect();
    out.refuse(router, lines.join("\n"));
}

/// Whether `object` is `(namespace, name)`.
fn same<K: Resource>(object: &K, (namespace, name): &(String, String)) -> bool {
    let meta = object.meta();
    meta.namespace.as_ref() == Some(namespace) && meta.name.as_ref() == Some(name)
}
