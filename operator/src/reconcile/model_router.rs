//! `ModelRouter`: the gateway (router-proxy) objects and the status they lead to.
//!
//! Every object is named `<router>-router-proxy` and carries the original's labels. The
//! ConfigMap holds the router manifest and the rules compiled to WebAssembly (with their
//! digest); rule changes only rewrite it, and the gateway, which watches it through the API
//! (`--config-map`), hot-swaps them without a restart, so nothing in the pod template depends
//! on it. Provider credentials are mounted from their
//! Secrets in the layout the gateway's `--credentials-dir` reads, not passed as environment
//! variables.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction,
    LocalObjectReference, ObjectFieldSelector, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SeccompProfile, SecretVolumeSource, SecurityContext, Service,
    ServiceAccount, ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use llmkube_router::bundle::{bundle_files, bundled_spec};
use llmkube_router::compiler::CompiledRules;
use llmkube_router::manifest::{ManifestMeta, RouterManifest};
use llmkube_router::spec::{
    BudgetStoreSpec, ModelRouter, ModelRouterSpec, Provider, RedisStoreSpec,
};

/// Where provider Secrets are mounted (`--credentials-dir`).
pub const CREDENTIALS_DIR: &str = "/var/run/secrets/llmkube";
/// Non-root user of the gateway container (distroless `nonroot`).
pub const GATEWAY_UID: i64 = 65532;

/// Controller settings for gateways.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Gateway image (`--router-proxy-image`), unless `spec.proxy.image` overrides it.
    pub gateway_image: String,
    /// Pull secrets handed to gateway pods (Helm `imagePullSecrets`).
    pub image_pull_secrets: Vec<String>,
    /// `--default-litellm-url`: the address of litellm backends without `external.url`.
    pub default_litellm_url: Option<String>,
    /// `--default-budget-redis-address` (and `-secret`): where routers with budgets and no
    /// `policy.budgetStore` keep their counts.
    pub default_budget_store: Option<RedisStoreSpec>,
    /// What the admin allows (here: which images `spec.proxy.image` may name).
    pub allowance: crate::reconcile::admission::Allowance,
    /// Run gateway pods as uid 65532. Off for OpenShift's restricted-v2 SCC, which assigns a
    /// uid from the namespace's range and refuses fixed ones (`--no-fixed-uid`).
    pub fixed_uid: bool,
    /// `--gateway-otlp-endpoint` (and `-protocol`): the collector gateways export traces and
    /// `otlp` audit records to, set as their `OTEL_EXPORTER_OTLP_*` variables.
    pub otlp: Option<OtlpTarget>,
}

/// A collector for the gateways.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpTarget {
    /// Base URL, e.g. `http://otel-collector.observability:4318`.
    pub endpoint: String,
    /// `grpc` or `http/protobuf`; unset: the gateway's default (HTTP/protobuf).
    pub protocol: Option<String>,
}

/// What the admin's allowance refuses in a router: a `spec.proxy.image` outside the allowed
/// registry prefixes (the gateway pod mounts every Secret its backends name).
pub fn refusals(
    spec: &ModelRouterSpec,
    settings: &Settings,
) -> Vec<llmkube_router::validate::FieldError> {
    let image = spec.proxy.as_ref().and_then(|p| p.image.as_deref());
    image
        .and_then(|image| {
            settings
                .allowance
                .check_image("image", image, &[&settings.gateway_image])
                .err()
        })
        .map(|message| llmkube_router::validate::FieldError {
            path: "spec.proxy.image".into(),
            message,
        })
        .into_iter()
        .collect()
}

/// The gateway container's environment.
fn gateway_env(settings: &Settings) -> Vec<EnvVar> {
    let mut env = vec![EnvVar {
        name: "POD_NAMESPACE".into(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: None,
                field_path: "metadata.namespace".into(),
            }),
            ..EnvVarSource::default()
        }),
    }];
    let value = |name: &str, value: &str| EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    };
    if let Some(otlp) = &settings.otlp {
        env.push(value("OTEL_EXPORTER_OTLP_ENDPOINT", &otlp.endpoint));
        if let Some(p) = &otlp.protocol {
            env.push(value("OTEL_EXPORTER_OTLP_PROTOCOL", p));
        }
        env.push(value("OTEL_SERVICE_NAME", "llmkube-gateway"));
    }
    env
}

/// Name of the router's gateway objects (Deployment, Service, ConfigMap).
pub fn object_name(router: &ModelRouter) -> String {
    format!(
        "{}-router-proxy",
        router.metadata.name.as_deref().unwrap_or_default()
    )
}

fn namespace(router: &ModelRouter) -> String {
    router
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| llmkube_router::DEFAULT_NAMESPACE.into())
}

fn port(router: &ModelRouter) -> i32 {
    router
        .spec
        .endpoint
        .as_ref()
        .and_then(|e| e.port)
        .map_or(8080, i32::from)
}

/// The in-cluster URL published in `status.endpoint`.
pub fn endpoint(router: &ModelRouter) -> String {
    format!(
        "http://{}.{}.svc.cluster.local:{}/v1/chat/completions",
        object_name(router),
        namespace(router),
        port(router)
    )
}

/// The labels of everything a router owns (as the original controller set them).
pub fn labels(router: &ModelRouter) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".into(), "llmkube".into()),
        ("app.kubernetes.io/component".into(), "router-proxy".into()),
        ("app.kubernetes.io/managed-by".into(), super::MANAGER.into()),
        (
            "inference.llmkube.dev/model-router".into(),
            router.metadata.name.clone().unwrap_or_default(),
        ),
    ])
}

fn meta(router: &ModelRouter) -> ObjectMeta {
    ObjectMeta {
        name: Some(object_name(router)),
        namespace: Some(namespace(router)),
        labels: Some(labels(router)),
        owner_references: Some(vec![OwnerReference {
            api_version: llmkube_router::API_VERSION.into(),
            kind: "ModelRouter".into(),
            name: router.metadata.name.clone().unwrap_or_default(),
            uid: router.metadata.uid.clone().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }]),
        ..ObjectMeta::default()
    }
}

/// The spec with the controller's defaults: litellm backends without `external.url` get
/// `--default-litellm-url`, and budgets without a `budgetStore` the default Redis. What is
/// validated and what the gateway receives.
pub fn with_defaults(spec: &ModelRouterSpec, settings: &Settings) -> ModelRouterSpec {
    let mut spec = spec.clone();
    for b in &mut spec.backends {
        if let Some(ext) = &mut b.external
            && ext.url.is_none()
            && ext.provider == Provider::Litellm
        {
            ext.url.clone_from(&settings.default_litellm_url);
        }
    }
    if let (Some(policy), Some(redis)) = (&mut spec.policy, &settings.default_budget_store)
        && !policy.budgets.is_empty()
        && policy.budget_store.is_none()
    {
        policy.budget_store = Some(BudgetStoreSpec {
            redis: Some(redis.clone()),
        });
    }
    spec
}

/// The spec as the gateway receives it: [`with_defaults`], and every `configMapKeyRef` policy
/// module becomes the file `<policy>.wasm` next to `router.yaml` (the controller copies it
/// there).
pub fn gateway_spec(spec: &ModelRouterSpec, settings: &Settings) -> ModelRouterSpec {
    bundled_spec(&with_defaults(spec, settings))
}

/// The ConfigMap: `router.yaml` (the manifest the gateway loads, see [`gateway_spec`]),
/// `rules.sha256`, and `rules.wasm` plus every custom policy module (`<policy>.wasm`) as binary
/// data. Refused when it would not fit in a ConfigMap.
pub fn config_map(
    router: &ModelRouter,
    settings: &Settings,
    rules: &CompiledRules,
    policy_modules: &BTreeMap<String, Vec<u8>>,
) -> Result<ConfigMap, String> {
    let manifest = RouterManifest {
        api_version: llmkube_router::API_VERSION.into(),
        kind: "ModelRouter".into(),
        metadata: ManifestMeta {
            name: router.metadata.name.clone().unwrap_or_default(),
            namespace: Some(namespace(router)),
        },
        spec: gateway_spec(&router.spec, settings),
    };
    let files = bundle_files(&manifest, rules, policy_modules).map_err(|e| e.to_string())?;
    Ok(ConfigMap {
        metadata: meta(router),
        data: Some(files.text),
        binary_data: Some(
            files
                .binary
                .into_iter()
                .map(|(key, bytes)| (key, ByteString(bytes)))
                .collect(),
        ),
        ..ConfigMap::default()
    })
}

/// The gateway's ServiceAccount.
pub fn service_account(router: &ModelRouter) -> ServiceAccount {
    ServiceAccount {
        metadata: meta(router),
        automount_service_account_token: Some(true),
        ..ServiceAccount::default()
    }
}

/// Least privilege: the gateway may only read its own ConfigMap.
pub fn role(router: &ModelRouter) -> Role {
    Role {
        metadata: meta(router),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["configmaps".into()]),
            resource_names: Some(vec![object_name(router)]),
            verbs: vec!["get".into(), "list".into(), "watch".into()],
            ..PolicyRule::default()
        }]),
    }
}

/// Binds [`role`] to [`service_account`].
pub fn role_binding(router: &ModelRouter) -> RoleBinding {
    RoleBinding {
        metadata: meta(router),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: object_name(router),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: object_name(router),
            namespace: Some(namespace(router)),
            ..Subject::default()
        }]),
    }
}

/// The Service: the API on `spec.endpoint.port` (8080) and metrics on 9090.
pub fn service(router: &ModelRouter) -> Service {
    let endpoint = router.spec.endpoint.clone().unwrap_or_default();
    let port = |name: &str, port: i32, target: &str| ServicePort {
        name: Some(name.into()),
        port,
        target_port: Some(IntOrString::String(target.into())),
        ..ServicePort::default()
    };
    Service {
        metadata: meta(router),
        spec: Some(ServiceSpec {
            type_: Some(endpoint.type_.unwrap_or_else(|| "ClusterIP".into())),
            selector: Some(labels(router)),
            ports: Some(vec![
                port("http", self::port(router), "http"),
                port("metrics", 9090, "metrics"),
            ]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// The gateway Deployment: hardened (non-root, read-only root filesystem, no capabilities,
/// RuntimeDefault seccomp), `spec.proxy` honoured.
pub fn deployment(router: &ModelRouter, settings: &Settings) -> Deployment {
    let proxy = router.spec.proxy.clone().unwrap_or_default();
    let name = object_name(router);
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    let spec = with_defaults(&router.spec, settings);
    let mut secrets: Vec<&str> = spec
        .backends
        .iter()
        .filter_map(|b| b.external.as_ref()?.credentials_secret_ref.as_ref())
        .map(|r| r.name.as_str())
        .collect();
    let auth = spec.auth.as_ref();
    secrets.extend(
        auth.and_then(|a| a.api_keys.as_ref())
            .map(|k| k.secret_ref.name.as_str()),
    );
    secrets.extend(
        auth.and_then(|a| a.jwt.as_ref()?.jwks.secret_ref.as_ref())
            .map(|r| r.name.as_str()),
    );
    let store = spec.policy.as_ref().and_then(|p| p.budget_store.as_ref());
    secrets.extend(
        store
            .and_then(|s| s.redis.as_ref()?.credentials_secret_ref.as_ref())
            .map(|r| r.name.as_str()),
    );
    secrets.sort();
    secrets.dedup();
    for (i, secret) in secrets.iter().enumerate() {
        volumes.push(Volume {
            name: format!("credentials-{i}"),
            secret: Some(SecretVolumeSource {
                secret_name: Some((*secret).to_owned()),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        });
        mounts.push(VolumeMount {
            name: format!("credentials-{i}"),
            mount_path: format!("{CREDENTIALS_DIR}/{secret}"),
            read_only: Some(true),
            ..VolumeMount::default()
        });
    }
    let quantities =
        |m: &BTreeMap<String, serde_json::Value>| -> Option<BTreeMap<String, Quantity>> {
            let out: BTreeMap<String, Quantity> = m
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        Quantity(v.as_str().map_or_else(|| v.to_string(), str::to_owned)),
                    )
                })
                .collect();
            (!out.is_empty()).then_some(out)
        };
    let resources = proxy.resources.as_ref().map(|r| ResourceRequirements {
        limits: quantities(&r.limits),
        requests: quantities(&r.requests),
        ..ResourceRequirements::default()
    });
    let probe = |path: &str, period| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("http".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        ..Probe::default()
    };
    let mut pull_secrets: Vec<LocalObjectReference> = proxy
        .image_pull_secrets
        .iter()
        .map(|s| LocalObjectReference {
            name: s.name.clone(),
        })
        .collect();
    for s in &settings.image_pull_secrets {
        if !pull_secrets.iter().any(|p| &p.name == s) {
            pull_secrets.push(LocalObjectReference { name: s.clone() });
        }
    }
    let container = Container {
        name: "gateway".into(),
        image: Some(
            proxy
                .image
                .clone()
                .unwrap_or_else(|| settings.gateway_image.clone()),
        ),
        args: Some(vec![
            "--config-map".into(),
            name.clone(),
            "--listen".into(),
            "0.0.0.0:8080".into(),
            "--metrics-listen".into(),
            "0.0.0.0:9090".into(),
            "--credentials-dir".into(),
            CREDENTIALS_DIR.into(),
            "--log-format".into(),
            "json".into(),
        ]),
        ports: Some(vec![
            ContainerPort {
                name: Some("http".into()),
                container_port: 8080,
                ..ContainerPort::default()
            },
            ContainerPort {
                name: Some("metrics".into()),
                container_port: 9090,
                ..ContainerPort::default()
            },
        ]),
        readiness_probe: Some(probe("/readyz", 5)),
        liveness_probe: Some(probe("/health", 10)),
        resources,
        // The namespace of its ConfigMap and where telemetry goes; nothing secret is in the
        // environment.
        env: Some(gateway_env(settings)),
        volume_mounts: Some(mounts).filter(|m| !m.is_empty()),
        security_context: Some(SecurityContext {
            run_as_non_root: Some(true),
            run_as_user: settings.fixed_uid.then_some(GATEWAY_UID),
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                add: None,
            }),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                localhost_profile: None,
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    };
    Deployment {
        metadata: meta(router),
        spec: Some(DeploymentSpec {
            replicas: Some(proxy.replicas.unwrap_or(1)),
            revision_history_limit: proxy.revision_history_limit,
            selector: LabelSelector {
                match_labels: Some(labels(router)),
                match_expressions: None,
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(router)),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(name),
                    containers: vec![container],
                    volumes: Some(volumes).filter(|v| !v.is_empty()),
                    node_selector: Some(proxy.node_selector.clone()).filter(|n| !n.is_empty()),
                    image_pull_secrets: Some(pull_secrets).filter(|p| !p.is_empty()),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".into(),
                            localhost_profile: None,
                        }),
                        ..PodSecurityContext::default()
                    }),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}
