//! The router bundle: the files the controller publishes for one router (in the gateway's
//! ConfigMap) and the gateway reads back as one unit. Both sides name the files through this
//! module, so the contract between them is written once.

use std::collections::BTreeMap;

use crate::compiler::CompiledRules;
use crate::manifest::RouterManifest;
use crate::spec::ModelRouterSpec;

/// The router manifest the gateway loads.
pub const ROUTER_KEY: &str = "router.yaml";
/// The rules compiled by the controller.
pub const RULES_KEY: &str = "rules.wasm";
/// Their sha256, lowercase hex.
pub const RULES_SHA_KEY: &str = "rules.sha256";
/// Most bytes of manifest, rules and modules together: a ConfigMap holds 1 MiB, metadata
/// included.
pub const MAX_BYTES: usize = 1_000_000;

/// The file holding the module of the custom policy `policy`.
pub fn module_key(policy: &str) -> String {
    format!("{policy}.wasm")
}

/// `spec` as it travels in a bundle: a custom policy whose module a ConfigMap key names
/// (`module.configMapKeyRef`, resolved by the controller) names its file in the bundle instead.
pub fn bundled_spec(spec: &ModelRouterSpec) -> ModelRouterSpec {
    let mut spec = spec.clone();
    for p in &mut spec.policies {
        if p.module.config_map_key_ref.take().is_some() {
            p.module.file = Some(module_key(&p.name));
        }
    }
    spec
}

/// A bundle's files: text (a ConfigMap's `data`) and binary (`binaryData`).
#[derive(Debug, Clone, PartialEq)]
pub struct BundleFiles {
    /// By key: the manifest and the rules digest.
    pub text: BTreeMap<String, String>,
    /// By key: the compiled rules and the policy modules.
    pub binary: BTreeMap<String, Vec<u8>>,
}

/// Why a router cannot be published as a bundle.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The manifest could not be serialised.
    #[error("cannot write the router manifest: {0}")]
    Manifest(String),
    #[error(
        "the router's configuration is {0} bytes (rules, manifest and policy modules); a ConfigMap holds at most {MAX_BYTES}: use smaller policy modules"
    )]
    /// Over a ConfigMap's size limit (bytes).
    TooLarge(usize),
}

/// The files of a bundle: the manifest, the compiled rules and their digest, and each policy
/// module (keyed by policy name) under [`module_key`].
pub fn bundle_files(
    manifest: &RouterManifest,
    rules: &CompiledRules,
    modules: &BTreeMap<String, Vec<u8>>,
) -> Result<BundleFiles, BundleError> {
    let yaml =
        serde_yaml_ng::to_string(manifest).map_err(|e| BundleError::Manifest(e.to_string()))?;
    let mut binary = BTreeMap::from([(RULES_KEY.to_owned(), rules.wasm.clone())]);
    for (policy, bytes) in modules {
        binary.insert(module_key(policy), bytes.clone());
    }
    let size = yaml.len() + binary.values().map(Vec::len).sum::<usize>();
    if size > MAX_BYTES {
        return Err(BundleError::TooLarge(size));
    }
    Ok(BundleFiles {
        text: BTreeMap::from([
            (ROUTER_KEY.to_owned(), yaml),
            (RULES_SHA_KEY.to_owned(), rules.sha256.clone()),
        ]),
        binary,
    })
}
