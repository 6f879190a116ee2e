//! The built-in PII detector policy.
//!
//! Scans the prompt text (chat message contents, completion prompts, embedding inputs) for
//! e-mail addresses, phone numbers, US social security numbers, payment card numbers (Luhn),
//! IBANs (mod-97) and configured terms, and adds the classification `pii` (configurable) when
//! it finds any. It never reports the values themselves: the audit annotation lists only the
//! kinds found. The gateway runs it for `policy.classification.mode: detector` (every request)
//! and `hybrid` (requests without a classification header).
//!
//! It declares `reuse`: the gateway keeps one instance per worker thread instead of a fresh
//! one per request (about 1 µs instead of 10 µs). That is safe here because the detector keeps
//! no state between requests (its buffers are freed after each evaluation) and its output never
//! contains request content; custom policies get a fresh instance unless they declare it too.

pub mod scan;

use llmkube_policy_sdk::{Decision, Policy, Request, export_policy};
use serde::Deserialize;

use crate::scan::{Kind, Kinds};

/// Configuration.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Classification to add (default `pii`).
    pub classification: String,
    /// Kinds to look for (default: all of `email`, `phone`, `ssn`, `card`, `iban`, `term`).
    pub detect: Vec<String>,
    /// Extra terms (case-insensitive, whole words), e.g. code names.
    pub terms: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            classification: "pii".to_owned(),
            detect: Kind::ALL.iter().map(|k| k.name().to_owned()).collect(),
            terms: Vec::new(),
        }
    }
}

/// The detector.
pub struct PiiDetector {
    classification: String,
    enabled: Kinds,
    terms: Vec<String>,
}

impl Policy for PiiDetector {
    type Config = Config;

    fn configure(config: Config) -> Result<Self, String> {
        let mut enabled = Kinds::default();
        for name in &config.detect {
            let kind = Kind::ALL
                .into_iter()
                .find(|k| k.name() == name)
                .ok_or_else(|| format!("unknown kind {name:?} in detect"))?;
            enabled.insert(kind);
        }
        let classification = config.classification.trim().to_ascii_lowercase();
        if classification.is_empty() || classification.contains(',') {
            return Err("classification must be a single non-empty value".into());
        }
        Ok(PiiDetector {
            classification,
            enabled,
            terms: config
                .terms
                .iter()
                .map(|t| t.trim().to_ascii_lowercase())
                .filter(|t| !t.is_empty())
                .collect(),
        })
    }

    fn evaluate(&self, request: &Request<'_>) -> Decision {
        let Some(prompt) = request.prompt() else {
            return Decision::proceed();
        };
        let found = scan::scan(prompt, self.enabled, &self.terms);
        if found.is_empty() {
            return Decision::proceed();
        }
        let kinds: Vec<&str> = found.iter().map(Kind::name).collect();
        Decision::proceed()
            .classify(self.classification.clone())
            .annotate("pii.kinds", kinds.join(","))
    }
}

export_policy!(
    PiiDetector,
    r#"{
    "name": "pii-detector",
    "version": "0.1.0",
    "description": "Adds classification pii when the prompt holds e-mail addresses, phone numbers, SSNs, card numbers, IBANs or configured terms",
    "needs": { "prompt": true },
    "reuse": true,
    "configSchema": {
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "classification": { "type": "string", "default": "pii" },
            "detect": { "type": "array", "items": { "enum": ["email", "phone", "ssn", "card", "iban", "term"] } },
            "terms": { "type": "array", "items": { "type": "string" } }
        }
    }
}"#
);
