//! What evaluating a request found, kept on its record for the audit line, metrics and
//! traces: the classifications and where they came from, which policies ran with what result,
//! and when each ran.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderName, HeaderValue};
use llmkube_router::routing::RoutingTable;

use crate::metrics::{Label, PolicyResult};

/// Where a request's classification came from (the audit `classificationSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClassificationSource {
    /// The client's classification header.
    Header,
    /// The built-in PII detector found personal data.
    Detector,
    /// A custom policy added it.
    Policy,
    /// The body was larger than the scan limit, so it was not scanned and counts as sensitive.
    ScanLimit,
}

impl ClassificationSource {
    /// The audit spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ClassificationSource::Header => "header",
            ClassificationSource::Detector => "detector",
            ClassificationSource::Policy => "policy",
            ClassificationSource::ScanLimit => "scan-limit",
        }
    }
}

/// What one policy did, for the audit line.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PolicyTrace {
    /// Policy name.
    pub name: Label,
    /// Module sha256.
    pub digest: String,
    /// sha256 of the configuration it ran with (its JSON).
    #[serde(rename = "configDigest")]
    pub config_digest: Arc<str>,
    pub result: PolicyResult,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When it ran, for its trace span (not in the audit line).
    #[serde(skip)]
    pub timing: Timing,
}

/// When a step of the evaluation ran and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub began: Instant,
    pub took: Duration,
}

impl Timing {
    /// From `began` until now.
    pub fn since(began: Instant) -> Self {
        Timing {
            began,
            took: began.elapsed(),
        }
    }
}

/// What the pipeline found and asked for besides its verdict; kept on the request record.
#[derive(Default)]
pub struct Evaluation {
    /// Final classifications (header ones plus any policy added).
    pub classifications: Vec<String>,
    /// Where the deciding classification came from: the first sensitive one, else the first.
    pub classification_source: Option<ClassificationSource>,
    /// Headers to set on the upstream request.
    pub set_headers: Vec<(HeaderName, HeaderValue)>,
    /// Headers to remove from the upstream request.
    pub remove_headers: Vec<HeaderName>,
    /// Notes for the audit line.
    pub annotations: Vec<(String, String)>,
    /// Which policies ran and how.
    pub trace: Vec<PolicyTrace>,
    /// When the compiled rules ran, if they did (their failures are in `trace`).
    pub rules: Option<Timing>,
}

/// Where each classification came from, index-aligned with the classifications.
#[derive(Default)]
pub(super) struct Sources(Vec<ClassificationSource>);

impl Sources {
    pub(super) fn add(
        &mut self,
        classes: &mut Vec<String>,
        class: String,
        source: ClassificationSource,
    ) {
        if !classes.contains(&class) {
            classes.push(class);
            self.0.push(source);
        }
    }

    /// The source of the first sensitive classification, else of the first one.
    pub(super) fn deciding(
        &self,
        table: &RoutingTable,
        classes: &[String],
    ) -> Option<ClassificationSource> {
        classes
            .iter()
            .position(|c| table.is_sensitive_classes(std::slice::from_ref(c)))
            .or((!classes.is_empty()).then_some(0))
            .and_then(|i| self.0.get(i).copied())
    }
}
