//! An immutable, fully prepared router: what one request is served with from start to end.
//!
//! Snapshots are built off the request path (at start and on reload) and swapped in with
//! `arc-swap`; a request keeps the `Arc` it started with, so a reload never changes the rules
//! under a request in flight.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use llmkube_router::compiler::{MODULE_NAME, compile_table};
use llmkube_router::defaults;
use llmkube_router::duration::parse_duration;
use llmkube_router::manifest::RouterManifest;
use llmkube_router::routing::RoutingTable;
use llmkube_router::spec::{AuditSink, ClassificationMode, ModelRouterSpec, Tier};
use llmkube_router::validate::{FieldError, ValidationErrors};
use prometheus_client::metrics::counter::Counter;

use crate::audit::{AuditTarget, AuditWriter};
use crate::auth::Access;
use crate::budget::{BudgetStores, Budgets};
use crate::http::client::HttpClient;
use crate::metrics::Label;
use crate::policy::pipeline::{ActivePolicy, PolicySet};
use crate::policy::{LoadError, PolicyEngine, PolicyModule};
use crate::router::backend::{BackendTarget, ResolveOptions, resolve_backends};
use crate::router::bundle::RouterBundle;
use crate::router::health::BackendHealth;

/// File name of the built-in PII detector in the policy directory.
pub const PII_DETECTOR_FILE: &str = "llmkube_pii_detector.wasm";

/// Prepares snapshots: what every (re)load needs besides the router's bundle.
pub struct SnapshotBuilder {
    /// Backend addresses and credentials.
    pub resolve: ResolveOptions,
    /// Counts dropped audit lines.
    pub audit_dropped: Counter,
    /// The policy engine.
    pub engine: Arc<PolicyEngine>,
    /// Directory of built-in policies (the PII detector).
    pub policy_dir: Option<PathBuf>,
    /// Where budget use is counted (kept across versions).
    pub budget_stores: BudgetStores,
    /// The upstream client, for fetching an identity provider's keys.
    pub http: HttpClient,
    /// Whether the TLS listener verifies client certificates (`--tls-client-ca`).
    pub client_certificates: bool,
    /// Where the `otlp` audit sink sends.
    pub otlp: Arc<crate::telemetry::OtlpConfig>,
    /// Counts failed OTLP audit exports.
    pub otlp_audit_errors: Counter,
}

/// Request-handling settings of a router (`spec.proxy` with defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct ProxySettings {
    /// How long a failed backend is avoided.
    pub quarantine: Duration,
    /// Default time to response headers per attempt.
    pub response_header_timeout: Duration,
    /// Longest gap between two response body chunks.
    pub stream_idle_timeout: Duration,
    /// Cap on total response streaming time.
    pub max_stream_duration: Option<Duration>,
    /// Largest request body accepted.
    pub max_body_bytes: u64,
    /// Largest body the detector scans; larger ones count as sensitive.
    pub scan_limit_bytes: usize,
    /// Failures in a row that quarantine a backend.
    pub consecutive_failures: u32,
}

impl ProxySettings {
    pub fn from_spec(spec: &ModelRouterSpec) -> Self {
        let p = spec.proxy.clone().unwrap_or_default();
        let max_body_bytes = p
            .max_request_body_bytes
            .unwrap_or(defaults::MAX_REQUEST_BODY_BYTES);
        let scan_limit = spec
            .policy
            .as_ref()
            .and_then(|p| p.classification.as_ref())
            .and_then(|c| c.scan_limit_bytes)
            .unwrap_or(max_body_bytes);
        ProxySettings {
            quarantine: defaults::duration_or(
                p.quarantine_duration.as_deref(),
                defaults::QUARANTINE,
            ),
            response_header_timeout: defaults::duration_or(
                p.response_header_timeout.as_deref(),
                defaults::RESPONSE_HEADER_TIMEOUT,
            ),
            stream_idle_timeout: defaults::duration_or(
                p.stream_idle_timeout.as_deref(),
                defaults::STREAM_IDLE_TIMEOUT,
            ),
            max_stream_duration: p
                .max_stream_duration
                .as_deref()
                .and_then(|d| parse_duration(d).ok()),
            max_body_bytes,
            scan_limit_bytes: usize::try_from(scan_limit).unwrap_or(usize::MAX),
            consecutive_failures: p
                .consecutive_failures
                .unwrap_or(defaults::CONSECUTIVE_FAILURES),
        }
    }
}

/// Why a snapshot could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The spec or its backend addresses are invalid.
    #[error("invalid ModelRouter:\n{0}")]
    Invalid(ValidationErrors),
    /// The audit file could not be opened.
    #[error("cannot open audit log {path}: {source}")]
    Audit {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The `otlp` audit sink could not be set up.
    #[error("cannot send audit records over OTLP: {0}")]
    AuditOtlp(String),
}

/// A router ready to serve.
pub struct RouterSnapshot {
    /// `metadata.name`.
    pub name: Label,
    /// `metadata.namespace`.
    pub namespace: String,
    /// The routing decision's input.
    pub table: RoutingTable,
    /// Backends, index-aligned with `table.backends`.
    pub backends: Vec<BackendTarget>,
    /// Rule names, index-aligned with `table.rules`.
    pub rule_names: Vec<Label>,
    /// Request-handling settings.
    pub settings: ProxySettings,
    /// Audit destination.
    pub audit: Arc<AuditWriter>,
    /// `policy.auditLog.includeRequestBody`.
    pub audit_body: bool,
    /// Classification values the spec knows, used as bounded metric labels.
    known_classifications: Vec<Label>,
    /// Pre-rendered `GET /v1/models` body.
    pub models_body: Bytes,
    /// Who may use the router (`spec.auth`); `None`: anyone who reaches the gateway.
    pub access: Option<Access>,
    /// Teams `spec.auth` lists, used as bounded metric labels.
    team_labels: Vec<Label>,
    /// Label for classifications the spec does not know.
    other_label: Label,
    /// Label for requests without a classification.
    none_label: Label,
    /// Label for "no rule" / "no backend".
    pub empty_label: Label,
    /// The compiled rules and the policies.
    pub policies: PolicySet,
    /// `policy.budgets`; `None` when there are none.
    pub budgets: Option<Budgets>,
}

/// What decides where a request goes: the routing table, the compiled rules with the
/// policies, and the backends. A snapshot is made of it, and `llmkube-gateway explain` runs it.
pub struct Routing {
    /// The routing decision's input.
    pub table: RoutingTable,
    /// The compiled rules and the policies.
    pub policies: PolicySet,
    /// Backends, index-aligned with `table.backends`.
    pub backends: Vec<BackendTarget>,
}

impl SnapshotBuilder {
    /// The [`Routing`] of `manifest` with the files of `bundle`; `previous` lends its backend
    /// health (by name).
    pub fn routing(
        &self,
        manifest: &RouterManifest,
        bundle: &RouterBundle,
        previous: Option<&RouterSnapshot>,
    ) -> Result<Routing, BuildError> {
        let spec = &manifest.spec;
        let table = RoutingTable::new(spec).map_err(BuildError::Invalid)?;
        let policy_dir = self.policy_dir.as_deref();
        let policies = load_policies(spec, &table, bundle, &self.engine, policy_dir)
            .map_err(|e| BuildError::Invalid(ValidationErrors(e)))?;
        let old_health: HashMap<&str, &Arc<BackendHealth>> = previous
            .map(|p| {
                p.backends
                    .iter()
                    .map(|b| (b.name.as_str(), &b.health))
                    .collect()
            })
            .unwrap_or_default();
        let backends = resolve_backends(
            &spec.backends,
            manifest.namespace(),
            &self.resolve,
            |name| {
                old_health
                    .get(name)
                    .map(|h| Arc::clone(h))
                    .unwrap_or_default()
            },
        )
        .map_err(|errors| BuildError::Invalid(ValidationErrors(errors)))?;
        Ok(Routing {
            table,
            policies,
            backends,
        })
    }

    /// Builds a snapshot of `manifest` with the files of `bundle`; `previous` lends its
    /// backend health (by name) and audit writer.
    pub fn build(
        &self,
        manifest: &RouterManifest,
        bundle: &RouterBundle,
        previous: Option<&RouterSnapshot>,
    ) -> Result<RouterSnapshot, BuildError> {
        let (opts, audit_dropped) = (&self.resolve, &self.audit_dropped);
        let spec = &manifest.spec;
        let Routing {
            table,
            policies,
            backends,
        } = self.routing(manifest, bundle, previous)?;

        let audit_spec = spec
            .policy
            .as_ref()
            .and_then(|p| p.audit_log.clone())
            .unwrap_or_default();
        let target = match (audit_spec.sink.unwrap_or_default(), &audit_spec.file_path) {
            (AuditSink::File, Some(path)) => AuditTarget::File(path.into()),
            (AuditSink::Otlp, _) => AuditTarget::Otlp,
            _ => AuditTarget::Stdout,
        };
        let audit = match previous {
            Some(p) if *p.audit.target() == target => Arc::clone(&p.audit),
            _ if target == AuditTarget::Otlp => {
                let queue = crate::telemetry::audit_logs::start(
                    &self.otlp,
                    audit_dropped.clone(),
                    self.otlp_audit_errors.clone(),
                )
                .map_err(|e| BuildError::AuditOtlp(e.to_string()))?;
                let destination = self.otlp.describe(crate::telemetry::Signal::Logs);
                tracing::info!("audit records go to {destination} as OTLP logs");
                Arc::new(AuditWriter::otlp(queue))
            }
            _ => Arc::new(
                AuditWriter::start(target.clone(), audit_dropped.clone()).map_err(|source| {
                    BuildError::Audit {
                        path: format!("{target:?}"),
                        source,
                    }
                })?,
            ),
        };
        let access = match &spec.auth {
            Some(auth) => {
                let dir = self.resolve.credentials_dir.as_deref();
                let access = Access::build(auth, dir, &self.http, self.client_certificates)
                    .map_err(|message| {
                        BuildError::Invalid(ValidationErrors(vec![FieldError {
                            path: "spec.auth.apiKeys".into(),
                            message,
                        }]))
                    })?;
                tracing::info!("requests must carry {}", access.describe());
                Some(access)
            }
            None => {
                if previous.is_none() && table.backends.iter().any(|b| b.tier == Tier::Cloud) {
                    tracing::warn!(
                        "the router has cloud-tier backends and no spec.auth: anyone who can reach the gateway can use them"
                    );
                }
                None
            }
        };
        let name = Arc::new(manifest.metadata.name.clone());
        let budgets = self
            .budget_stores
            .budgets_for(
                spec,
                manifest.namespace(),
                &name,
                opts.credentials_dir.as_deref(),
            )
            .map_err(|message| {
                BuildError::Invalid(ValidationErrors(vec![FieldError {
                    path: "spec.policy.budgetStore".into(),
                    message,
                }]))
            })?;

        let mut known: Vec<String> = table.sensitive.clone();
        known.extend(
            table
                .rules
                .iter()
                .flat_map(|r| r.classifications.iter().cloned()),
        );
        known.sort();
        known.dedup();

        Ok(RouterSnapshot {
            name,
            budgets,
            namespace: manifest.namespace().to_owned(),
            rule_names: table
                .rules
                .iter()
                .map(|r| Arc::new(r.name.clone()))
                .collect(),
            models_body: models_body(&table, &backends),
            table,
            backends,
            settings: ProxySettings::from_spec(spec),
            audit,
            audit_body: audit_spec.include_request_body,
            known_classifications: known.into_iter().map(Arc::new).collect(),
            team_labels: spec
                .auth
                .iter()
                .flat_map(|a| &a.teams)
                .map(|t| Arc::new(t.name.clone()))
                .collect(),
            access,
            policies,
            other_label: Arc::new("other".into()),
            none_label: Arc::new("none".into()),
            empty_label: Arc::new(String::new()),
        })
    }
}

impl RouterSnapshot {
    /// A bounded metric label for a request's team: a team `spec.auth` lists, else `other`,
    /// or `""` without one. Clients cannot create new series.
    pub fn team_label(&self, team: Option<&str>) -> Label {
        match team {
            None => Arc::clone(&self.empty_label),
            Some(t) => self
                .team_labels
                .iter()
                .find(|l| l.as_str() == t)
                .map_or_else(|| Arc::clone(&self.other_label), Arc::clone),
        }
    }

    /// A bounded metric label for a request's classifications: the first one the spec knows,
    /// else `other`, or `none` without any. Clients cannot create new series.
    pub fn classification_label(&self, classifications: &[String]) -> Label {
        if classifications.is_empty() {
            return Arc::clone(&self.none_label);
        }
        classifications
            .iter()
            .find_map(|c| self.known_classifications.iter().find(|k| k.as_str() == c))
            .map_or_else(|| Arc::clone(&self.other_label), Arc::clone)
    }
}

/// Compiles the rules and loads every policy module (pinned by sha256), collecting every
/// problem.
fn load_policies(
    spec: &ModelRouterSpec,
    table: &RoutingTable,
    bundle: &RouterBundle,
    engine: &Arc<PolicyEngine>,
    policy_dir: Option<&Path>,
) -> Result<PolicySet, Vec<FieldError>> {
    let mut errors = Vec::new();
    let compiled = compile_table(table);
    let (wasm, sha256) = match bundle.precompiled_rules() {
        Some((wasm, sha256)) => {
            if sha256 != compiled.sha256 {
                tracing::warn!(
                    controller = sha256,
                    gateway = %compiled.sha256,
                    "the controller compiled these rules to another module than this gateway would (different versions); serving the controller's"
                );
            }
            (wasm, sha256)
        }
        None => (&compiled.wasm[..], compiled.sha256.as_str()),
    };
    let rules = PolicyModule::load(
        engine,
        MODULE_NAME,
        wasm,
        Some(sha256),
        &serde_json::Value::Null,
    )
    .map_err(|e| {
        vec![FieldError {
            path: "spec.rules".into(),
            message: format!("compiled rules failed to load: {e}"),
        }]
    })?;
    let mut policies = Vec::new();
    for (i, p) in spec.policies.iter().enumerate() {
        let path = format!("spec.policies[{i}]");
        let bytes = match (&p.module.file, &p.module.config_map_key_ref) {
            (Some(file), _) => bundle.module(file),
            _ => Err("configMapKeyRef is resolved by the controller in Kubernetes mode; standalone mode needs module.file".into()),
        };
        let loaded = bytes.map_err(|e| (path.clone(), e)).and_then(|bytes| {
            let config = p.config.clone().unwrap_or_else(|| serde_json::json!({}));
            PolicyModule::load(engine, &p.name, &bytes, Some(&p.sha256), &config).map_err(|e| {
                // A refused configuration is about `config`, and the policy names the field.
                let at = match e {
                    LoadError::Refused(_) => format!("{path}.config"),
                    _ => path.clone(),
                };
                (at, e.to_string())
            })
        });
        match loaded {
            Ok(module) => policies.push(active(
                Some(i),
                &p.name,
                module,
                p.failure_mode.unwrap_or_default(),
            )),
            Err((path, message)) => errors.push(FieldError { path, message }),
        }
    }
    let mode = defaults::classification_mode(spec);
    let detector = if mode == ClassificationMode::HeaderOnly {
        None
    } else {
        match load_detector(policy_dir, engine) {
            Ok(module) => Some(active(
                None,
                "pii-detector",
                module,
                llmkube_router::spec::FailureMode::Closed,
            )),
            Err(message) => {
                errors.push(FieldError {
                    path: "spec.policy.classification.mode".into(),
                    message,
                });
                None
            }
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(PolicySet {
        rules,
        rule_headers: compiled.headers,
        policies,
        detector,
        mode,
    })
}

fn active(
    index: Option<usize>,
    name: &str,
    module: Arc<PolicyModule>,
    failure_mode: llmkube_router::spec::FailureMode,
) -> ActivePolicy {
    ActivePolicy {
        index,
        label: Arc::new(name.to_owned()),
        headers: module
            .meta
            .needs
            .headers
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect(),
        module,
        failure_mode,
    }
}

/// The built-in PII detector from the policy directory.
fn load_detector(
    dir: Option<&Path>,
    engine: &Arc<PolicyEngine>,
) -> Result<Arc<PolicyModule>, String> {
    let dir: PathBuf = dir
        .map(Path::to_path_buf)
        .unwrap_or_else(default_policy_dir);
    let path = dir.join(PII_DETECTOR_FILE);
    let bytes = std::fs::read(&path).map_err(|e| {
        format!(
            "detector mode needs the built-in PII detector at {} (set --policy-dir): {e}",
            path.display()
        )
    })?;
    PolicyModule::load(engine, "pii-detector", &bytes, None, &serde_json::json!({}))
        .map_err(|e| format!("PII detector: {e}"))
}

/// `policies/` next to the gateway binary, else `/usr/share/llmkube/policies`.
pub fn default_policy_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("policies")))
        .filter(|d| d.is_dir())
        .unwrap_or_else(|| PathBuf::from("/usr/share/llmkube/policies"))
}

/// `{"object":"list","data":[{id, object:"model", created, owned_by}]}` with ids exactly as
/// `BackendNameMatch` accepts them.
fn models_body(table: &RoutingTable, backends: &[BackendTarget]) -> Bytes {
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let data: Vec<serde_json::Value> = table
        .backends
        .iter()
        .zip(backends)
        .map(|(entry, target)| {
            serde_json::json!({
                "id": entry.model_id,
                "object": "model",
                "created": created,
                "owned_by": target.provider.map_or("llmkube", |p| p.as_str()),
            })
        })
        .collect();
    Bytes::from(serde_json::json!({ "object": "list", "data": data }).to_string())
}
