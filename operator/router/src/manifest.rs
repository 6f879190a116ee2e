//! Loading a `ModelRouter` from YAML: a single object or a multi-document file.
//!
//! Loading is strict where it protects users: an unknown field under `spec` (a typo such as
//! `failclosed`) is an error, not silently dropped, and type errors carry their field path.
//! The result has passed [`validate_spec`](crate::validate::validate_spec).

use serde::{Deserialize, Serialize};

use crate::API_VERSION;
use crate::spec::ModelRouterSpec;
use crate::validate::{FieldError, ValidationErrors, validate_spec};

/// A `ModelRouter` object as written in a manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouterManifest {
    /// Must be `inference.llmkube.dev/v1alpha1`.
    pub api_version: String,
    /// Must be `ModelRouter`.
    pub kind: String,
    /// Name and namespace.
    pub metadata: ManifestMeta,
    /// The router's desired state.
    pub spec: ModelRouterSpec,
}

/// The parts of `metadata` the gateway uses; other metadata fields are ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ManifestMeta {
    /// Object name.
    pub name: String,
    /// Namespace (`default` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl RouterManifest {
    /// The object's namespace, `default` when unset.
    pub fn namespace(&self) -> &str {
        self.metadata
            .namespace
            .as_deref()
            .unwrap_or(crate::DEFAULT_NAMESPACE)
    }
}

/// Why a router manifest could not be loaded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LoadError {
    /// Not YAML.
    #[error("not valid YAML: {0}")]
    Yaml(String),
    /// No document of kind `ModelRouter`.
    #[error("no ModelRouter object found")]
    NotFound,
    /// Several routers and no name to choose one.
    #[error("several ModelRouter objects found ({0}); choose one by name")]
    Ambiguous(String),
    /// A router with that name is not in the file.
    #[error("no ModelRouter named {0:?} found")]
    NoSuchName(String),
    /// Structure or validation problems, each with its field path.
    #[error("invalid ModelRouter:\n{0}")]
    Invalid(ValidationErrors),
}

/// Loads the `ModelRouter` named `name` (or the only one) from a YAML file's text.
pub fn load_router(yaml: &str, name: Option<&str>) -> Result<RouterManifest, LoadError> {
    let mut routers = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(yaml) {
        let value =
            serde_json::Value::deserialize(document).map_err(|e| LoadError::Yaml(e.to_string()))?;
        if value.get("kind").and_then(|k| k.as_str()) == Some("ModelRouter") {
            routers.push(value);
        }
    }
    let name_of = |v: &serde_json::Value| {
        v.pointer("/metadata/name")
            .and_then(|n| n.as_str())
            .unwrap_or("")
            .to_owned()
    };
    let chosen = match name {
        Some(wanted) => routers
            .into_iter()
            .find(|r| name_of(r) == wanted)
            .ok_or_else(|| LoadError::NoSuchName(wanted.to_owned()))?,
        None if routers.len() > 1 => {
            let names: Vec<String> = routers.iter().map(name_of).collect();
            return Err(LoadError::Ambiguous(names.join(", ")));
        }
        None => routers.pop().ok_or(LoadError::NotFound)?,
    };
    router_from_value(chosen)
}

/// Turns one parsed object into a validated router manifest.
pub fn router_from_value(value: serde_json::Value) -> Result<RouterManifest, LoadError> {
    let mut errors = Vec::new();
    let mut unknown = Vec::new();
    let mut on_ignored = |path: serde_ignored::Path<'_>| {
        let path = json_path(&path);
        if path.starts_with("spec") {
            unknown.push(path);
        }
    };
    let ignored = serde_ignored::Deserializer::new(value, &mut on_ignored);
    let parsed: Result<RouterManifest, _> = serde_path_to_error::deserialize(ignored);
    for path in unknown {
        errors.push(FieldError {
            path,
            message: "unknown field".to_owned(),
        });
    }
    let manifest = match parsed {
        Ok(m) => m,
        Err(e) => {
            errors.push(FieldError {
                path: e.path().to_string(),
                message: e.inner().to_string(),
            });
            return Err(LoadError::Invalid(ValidationErrors(errors)));
        }
    };
    if manifest.api_version != API_VERSION {
        errors.push(FieldError {
            path: "apiVersion".to_owned(),
            message: format!("{:?} is not {API_VERSION}", manifest.api_version),
        });
    }
    if manifest.metadata.name.is_empty() {
        errors.push(FieldError {
            path: "metadata.name".to_owned(),
            message: "is required".to_owned(),
        });
    }
    if let Err(ValidationErrors(more)) = validate_spec(&manifest.spec) {
        errors.extend(more);
    }
    if errors.is_empty() {
        Ok(manifest)
    } else {
        Err(LoadError::Invalid(ValidationErrors(errors)))
    }
}

/// Formats a serde_ignored path the way `kubectl` and our validation do: `spec.rules[1].match.x`.
fn json_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", json_path(parent)),
        Path::Map { parent, key } => {
            let parent = json_path(parent);
            if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => json_path(parent),
    }
}
