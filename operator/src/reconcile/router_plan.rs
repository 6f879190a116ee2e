//! What a `ModelRouter` leads to, decided without the API server: every problem in it (its
//! validation, backend addresses, the admin's refusals, policy modules against their pins) and,
//! when there is none, the gateway objects to apply. The controller and `llmkube-controller
//! render` both go through here, so a dry run refuses and builds exactly what a cluster would.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use sha2::{Digest, Sha256};

use super::model_router::{
    Settings, config_map, deployment, refusals, role, role_binding, service, service_account,
    with_defaults,
};
use llmkube_router::compiler::{compile, hex};
use llmkube_router::defaults::backend_url;
use llmkube_router::spec::{ModelRouter, PolicyRef};
use llmkube_router::validate::{FieldError, validate_spec};

/// The objects a valid router's gateway is made of, in the order they are applied: the
/// ConfigMap with the compiled rules first, the Deployment that reads it last.
#[derive(Debug, Clone)]
pub struct RouterObjects {
    /// `router.yaml`, the compiled rules and the policy modules.
    pub config_map: ConfigMap,
    /// The gateway's identity.
    pub service_account: ServiceAccount,
    /// Read access to its own ConfigMap (for hot reload).
    pub role: Role,
    /// Binds the Role to the ServiceAccount.
    pub role_binding: RoleBinding,
    /// The gateway's address.
    pub service: Service,
    /// The gateway pods.
    pub deployment: Deployment,
}

/// Problems found in the spec alone, in `ns`: validation (with the controller's defaults),
/// external backend addresses, and what the admin's allowance refuses.
pub fn spec_problems(router: &ModelRouter, ns: &str, settings: &Settings) -> Vec<FieldError> {
    let mut problems = validate_spec(&with_defaults(&router.spec, settings))
        .err()
        .map_or(Vec::new(), |e| e.0);
    for (i, b) in router.spec.backends.iter().enumerate() {
        if b.external.is_some()
            && let Err(e) = backend_url(b, ns, settings.default_litellm_url.as_deref())
        {
            problems.push(FieldError {
                path: format!("spec.backends[{i}]{}", e.field),
                message: e.message,
            });
        }
    }
    problems.extend(refusals(&router.spec, settings));
    problems
}

/// The ConfigMap a policy's module comes from (`None`: a policy with no `configMapKeyRef`).
pub fn module_config_map(policy: &PolicyRef) -> Option<&str> {
    policy
        .module
        .config_map_key_ref
        .as_ref()
        .map(|r| r.name.as_str())
}

/// Policy `index`'s module, from `found` (its ConfigMap in `ns` as looked up, `None` if
/// absent): `Ok(None)` for a policy without a `configMapKeyRef`, the bytes when they match the
/// policy's sha256, else the problem.
pub fn check_module(
    policy: &PolicyRef,
    index: usize,
    found: Option<&ConfigMap>,
    ns: &str,
) -> Result<Option<Vec<u8>>, FieldError> {
    let path = format!("spec.policies[{index}].module");
    let Some(source) = &policy.module.config_map_key_ref else {
        if policy.module.file.is_some() {
            return Err(FieldError {
                path: format!("{path}.file"),
                message: "module.file is for standalone gateways; in a cluster put the module in a ConfigMap and use configMapKeyRef".into(),
            });
        }
        return Ok(None);
    };
    let problem = |message| FieldError {
        path: format!("{path}.configMapKeyRef"),
        message,
    };
    let Some(cm) = found else {
        return Err(problem(format!(
            "ConfigMap {:?} not found in namespace {ns:?}",
            source.name
        )));
    };
    let Some(bytes) = module_bytes(cm, &source.key) else {
        return Err(problem(format!(
            "ConfigMap {:?} has no key {:?} (modules belong in binaryData)",
            source.name, source.key
        )));
    };
    let digest = hex(&Sha256::digest(&bytes));
    if !digest.eq_ignore_ascii_case(&policy.sha256) {
        return Err(problem(format!(
            "module {}/{} has sha256 {digest}, but the policy pins {}",
            source.name, source.key, policy.sha256
        )));
    }
    Ok(Some(bytes))
}

/// A ConfigMap key's bytes: `binaryData` first, then `data`.
fn module_bytes(cm: &ConfigMap, key: &str) -> Option<Vec<u8>> {
    if let Some(b) = cm.binary_data.as_ref().and_then(|b| b.get(key)) {
        return Some(b.0.clone());
    }
    cm.data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|s| s.clone().into_bytes())
}

/// The gateway objects of a router that has no [`spec_problems`], with its checked policy
/// modules (by policy name). Refused when the rules do not compile or the ConfigMap would not
/// fit.
pub fn objects(
    router: &ModelRouter,
    settings: &Settings,
    modules: &BTreeMap<String, Vec<u8>>,
) -> Result<RouterObjects, FieldError> {
    let problem = |message| FieldError {
        path: "spec".into(),
        message,
    };
    let rules = compile(&router.spec).map_err(|e| problem(e.to_string()))?;
    let config_map = config_map(router, settings, &rules, modules).map_err(problem)?;
    Ok(RouterObjects {
        config_map,
        service_account: service_account(router),
        role: role(router),
        role_binding: role_binding(router),
        service: service(router),
        deployment: deployment(router, settings),
    })
}
