//! Policy metadata, carried in the module's `llmkube.policy` custom section as JSON:
//! `{"abi":{"major":1,"minor":1},"policy":{...}}`.

use serde::{Deserialize, Serialize};

/// The whole custom section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    /// ABI the module was built for.
    pub abi: AbiVersion,
    /// What the policy says about itself.
    pub policy: PolicyMeta,
}

/// An ABI version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbiVersion {
    /// Incompatible changes.
    pub major: u32,
    /// Compatible additions.
    pub minor: u32,
}

/// When a policy runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Before the ModelRouter rules (classifiers, allowlists). Sees no route yet.
    #[default]
    Pre,
    /// After the rules, seeing the rule and route they chose.
    Post,
}

/// A policy's description of itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyMeta {
    /// Policy name.
    pub name: String,
    /// Policy version.
    pub version: String,
    /// What of the request it needs to see.
    #[serde(default)]
    pub needs: Needs,
    /// Whether one instance may serve many requests (default: a fresh instance per request,
    /// so nothing of one request survives into the next).
    #[serde(default)]
    pub reuse: bool,
    /// When it runs.
    #[serde(default)]
    pub phase: Phase,
    /// JSON schema of its configuration (documentation and tooling).
    #[serde(default)]
    pub config_schema: serde_json::Value,
    /// Free-form description.
    #[serde(default)]
    pub description: String,
}

/// What a policy needs to see.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Needs {
    /// The prompt text (message contents).
    #[serde(default)]
    pub prompt: bool,
    /// Headers, by (case-insensitive) name.
    #[serde(default)]
    pub headers: Vec<String>,
}

/// Parses a metadata section.
pub fn parse_section(bytes: &[u8]) -> Result<Section, String> {
    let section: Section =
        serde_json::from_slice(bytes).map_err(|e| format!("invalid policy metadata: {e}"))?;
    if section.policy.name.trim().is_empty() {
        return Err("invalid policy metadata: name must not be empty".into());
    }
    Ok(section)
}

/// A policy exported with [`crate::export_policy!`], which implements this: its metadata, as
/// the gateway will read it from the built module.
pub trait Exported {
    /// The metadata the module's custom section carries.
    fn metadata() -> PolicyMeta;
}
