//! `InferenceService`: the Deployment and Service that serve a Model, and the status they lead to.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, HTTPGetAction,
    HostPathVolumeSource, KeyToPath, LocalObjectReference, PersistentVolumeClaimVolumeSource, Pod,
    PodSpec, PodTemplateSpec, Probe, ResourceRequirements, Service, ServicePort, ServiceSpec,
    Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

use super::downloader::{explain_init_failure, newest_downloader_exit};
use super::model::{Source, downloaded_path, parse_source};
use super::model_cache::ModelCache;
use super::runtime_args::runtime_args;
use crate::crd::inference_service::{InferenceService, InferenceServiceStatus, Runtime};
use crate::crd::model::Model;
use crate::reconcile::admission::Allowance;
use llmkube_router::condition::{Condition, Phase};

/// The Service port every InferenceService is reached on (routers dial it).
pub const SERVICE_PORT: i32 = llmkube_router::defaults::INFERENCE_SERVICE_PORT as i32;
pub use super::model_cache::MODEL_DIR;
/// Where the CA bundle ConfigMap is mounted in init containers.
pub const CA_DIR: &str = "/etc/llmkube/ca";

/// Images the controller uses; each is overridable (flags, Helm values) for air-gapped sites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Images {
    /// llama.cpp `llama-server`.
    pub llamacpp: String,
    /// vLLM OpenAI server.
    pub vllm: String,
    /// Text Generation Inference.
    pub tgi: String,
    /// Ollama.
    pub ollama: String,
    /// The model-downloader init container.
    pub init: String,
}

impl Default for Images {
    fn default() -> Self {
        Images {
            llamacpp: "ghcr.io/ggml-org/llama.cpp:server-cuda13".into(),
            vllm: "docker.io/vllm/vllm-openai:v0.10.2".into(),
            tgi: "ghcr.io/huggingface/text-generation-inference:3.3.5".into(),
            ollama: "docker.io/ollama/ollama:0.12.3".into(),
            init: "docker.io/curlimages/curl:8.18.0".into(),
        }
    }
}

/// Controller-wide settings that shape the objects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// Images.
    pub images: Images,
    /// `--ca-cert-configmap`: a ConfigMap with key `ca.crt` in the InferenceService's namespace.
    pub ca_cert_configmap: Option<String>,
    /// Pull secrets handed to every pod (Helm `imagePullSecrets`).
    pub image_pull_secrets: Vec<String>,
    /// What the admin allows beyond the `restricted` Pod Security profile.
    pub allowance: Allowance,
    /// Where downloaded models are kept across pods (`None`: a per-pod `emptyDir`).
    pub model_cache: Option<ModelCache>,
    /// Remove from the model cache what no Model references (a Job per change of the set).
    pub model_cache_cleanup: bool,
}

/// How a runtime is run and probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Container port.
    pub port: i32,
    /// Health endpoint.
    pub health_path: &'static str,
    /// Image.
    pub image: String,
}

/// The profile of `isvc`'s runtime.
pub fn profile(isvc: &InferenceService, settings: &Settings) -> Result<Profile, String> {
    let spec = &isvc.spec;
    let (port, health_path, image) = match spec.runtime.unwrap_or_default() {
        Runtime::Llamacpp => (8080, "/health", &settings.images.llamacpp),
        Runtime::Vllm => (8000, "/health", &settings.images.vllm),
        Runtime::Tgi => (80, "/health", &settings.images.tgi),
        Runtime::Ollama => (11434, "/", &settings.images.ollama),
        Runtime::Generic => match &spec.image {
            Some(image) => (8080, "/health", image),
            None => return Err("runtime generic needs spec.image".into()),
        },
        Runtime::Personaplex => {
            return Err("runtime personaplex is not supported by this controller".into());
        }
    };
    Ok(Profile {
        port: spec.container_port.unwrap_or(port),
        health_path,
        image: spec.image.clone().unwrap_or_else(|| image.clone()),
    })
}

/// The labels of everything an InferenceService owns.
pub fn labels(isvc: &InferenceService) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".into(), "llmkube".into()),
        ("app.kubernetes.io/component".into(), "inference".into()),
        ("app.kubernetes.io/managed-by".into(), super::MANAGER.into()),
        (
            ISVC_LABEL.into(),
            isvc.metadata.name.clone().unwrap_or_default(),
        ),
    ])
}

/// Label on InferenceService pods naming their Model (the Model controller reads the
/// model-downloader's verdict from these pods).
pub const MODEL_LABEL: &str = "inference.llmkube.dev/model";
/// Label naming the InferenceService a pod serves.
pub const ISVC_LABEL: &str = "inference.llmkube.dev/inference-service";

/// Pod labels: the selector labels plus the Model's name (not in the immutable selector).
fn pod_labels(isvc: &InferenceService) -> BTreeMap<String, String> {
    let mut labels = labels(isvc);
    labels.insert(MODEL_LABEL.into(), isvc.spec.model_ref.clone());
    labels
}

fn owner(isvc: &InferenceService) -> Vec<OwnerReference> {
    vec![OwnerReference {
        api_version: llmkube_router::API_VERSION.into(),
        kind: "InferenceService".into(),
        name: isvc.metadata.name.clone().unwrap_or_default(),
        uid: isvc.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }]
}

fn meta(isvc: &InferenceService) -> ObjectMeta {
    ObjectMeta {
        name: isvc.metadata.name.clone(),
        namespace: isvc.metadata.namespace.clone(),
        labels: Some(labels(isvc)),
        owner_references: Some(owner(isvc)),
        ..ObjectMeta::default()
    }
}

/// The Service: port 8080, targeting the runtime's real container port.
pub fn service(isvc: &InferenceService, settings: &Settings) -> Result<Service, String> {
    let profile = profile(isvc, settings)?;
    let endpoint = isvc.spec.endpoint.clone().unwrap_or_default();
    Ok(Service {
        metadata: meta(isvc),
        spec: Some(ServiceSpec {
            type_: Some(endpoint.type_.unwrap_or_else(|| "ClusterIP".into())),
            selector: Some(labels(isvc)),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: endpoint.port.unwrap_or(SERVICE_PORT),
                target_port: Some(IntOrString::Int(profile.port)),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    })
}

/// The init container script: fetch or copy, verify sha256, report in the termination message.
pub const DOWNLOADER_SCRIPT: &str = include_str!("model-downloader.sh");

/// How the model reaches the runtime container.
struct ModelMount {
    /// What the runtime is told to load (a path, or a repo id).
    model: String,
    volumes: Vec<Volume>,
    mounts: Vec<VolumeMount>,
    init: Option<Container>,
}

fn mount(
    isvc: &InferenceService,
    model: &Model,
    settings: &Settings,
) -> Result<ModelMount, String> {
    let cache_mount = |read_only| VolumeMount {
        name: "model".into(),
        mount_path: MODEL_DIR.into(),
        read_only: Some(read_only),
        ..VolumeMount::default()
    };
    match parse_source(&model.spec)? {
        Source::Pvc { claim, path } => Ok(ModelMount {
            model: format!("{MODEL_DIR}/{path}"),
            volumes: vec![Volume {
                name: "model".into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: claim,
                    read_only: Some(true),
                }),
                ..Volume::default()
            }],
            mounts: vec![cache_mount(true)],
            init: None,
        }),
        Source::HfRepo(id) => Ok(ModelMount {
            model: id,
            volumes: vec![],
            mounts: vec![],
            init: None,
        }),
        source @ (Source::Remote(_) | Source::File(_)) => {
            // On the shared cache, under the Model's key; else in the pod's own emptyDir.
            let (volume, dest) = match &settings.model_cache {
                Some(cache) => (
                    Volume {
                        name: "model".into(),
                        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                            claim_name: cache.claim().to_owned(),
                            read_only: None,
                        }),
                        ..Volume::default()
                    },
                    downloaded_path(&model.spec, &source, true),
                ),
                None => (
                    Volume {
                        name: "model".into(),
                        empty_dir: Some(EmptyDirVolumeSource::default()),
                        ..Volume::default()
                    },
                    downloaded_path(&model.spec, &source, false),
                ),
            };
            let mut volumes = vec![volume];
            let mut init_mounts = vec![cache_mount(false)];
            let mut env = vec![
                env_var("SOURCE", &model.spec.source),
                env_var("DEST", &dest),
                env_var("SHA256", model.spec.sha256.as_deref().unwrap_or("")),
            ];
            if model.spec.allow_plain_http {
                env.push(env_var("ALLOW_HTTP", "1"));
            }
            if settings.model_cache.is_some() {
                env.push(env_var("CACHE", "1"));
            }
            if let Source::File(path) = &source {
                settings.allowance.check_host_path(path)?;
                let dir = path
                    .rsplit_once('/')
                    .map_or("/", |(d, _)| if d.is_empty() { "/" } else { d });
                volumes.push(Volume {
                    name: "source".into(),
                    host_path: Some(HostPathVolumeSource {
                        path: dir.to_owned(),
                        type_: Some("Directory".into()),
                    }),
                    ..Volume::default()
                });
                init_mounts.push(VolumeMount {
                    name: "source".into(),
                    mount_path: "/source".into(),
                    read_only: Some(true),
                    ..VolumeMount::default()
                });
                env.push(env_var("SOURCE_DIR", "/source"));
            }
            if let Some(cm) = &settings.ca_cert_configmap {
                volumes.push(Volume {
                    name: "ca".into(),
                    config_map: Some(ConfigMapVolumeSource {
                        name: cm.clone(),
                        items: Some(vec![KeyToPath {
                            key: "ca.crt".into(),
                            path: "ca.crt".into(),
                            mode: None,
                        }]),
                        ..ConfigMapVolumeSource::default()
                    }),
                    ..Volume::default()
                });
                init_mounts.push(VolumeMount {
                    name: "ca".into(),
                    mount_path: CA_DIR.into(),
                    read_only: Some(true),
                    ..VolumeMount::default()
                });
                env.push(env_var("CA_FILE", &format!("{CA_DIR}/ca.crt")));
            }
            let skip = isvc.spec.skip_model_init == Some(true);
            Ok(ModelMount {
                model: dest,
                volumes,
                mounts: vec![cache_mount(true)],
                init: (!skip).then(|| Container {
                    name: "model-downloader".into(),
                    image: Some(settings.images.init.clone()),
                    command: Some(vec![
                        "/bin/sh".into(),
                        "-c".into(),
                        DOWNLOADER_SCRIPT.into(),
                    ]),
                    env: Some(env),
                    volume_mounts: Some(init_mounts),
                    termination_message_policy: Some("FallbackToLogsOnError".into()),
                    security_context: Some(settings.allowance.container_security(None)),
                    ..Container::default()
                }),
            })
        }
    }
}

fn env_var(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    }
}

fn probe(path: &str, port: i32, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(port),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(5),
        ..Probe::default()
    }
}

/// The namespace's model cache claim the pods serving `model` mount, when the controller
/// creates it (a downloaded model with a managed cache); applied before the first such pod.
pub fn cache_claim(
    model: &Model,
    namespace: &str,
    settings: &Settings,
) -> Option<k8s_openapi::api::core::v1::PersistentVolumeClaim> {
    let downloads = matches!(
        super::model::parse_source(&model.spec),
        Ok(super::model::Source::Remote(_) | super::model::Source::File(_))
    );
    let cache = settings.model_cache.as_ref()?;
    downloads.then(|| cache.pvc(namespace)).flatten()
}

/// The Deployment serving `isvc` with `model`.
pub fn deployment(
    isvc: &InferenceService,
    model: &Model,
    settings: &Settings,
) -> Result<Deployment, String> {
    let spec = &isvc.spec;
    let profile = profile(isvc, settings)?;
    let allowance = &settings.allowance;
    allowance.check_pod_settings(
        spec.pod_security_context.as_ref(),
        spec.security_context.as_ref(),
        &spec.env,
    )?;
    if let Some(image) = &spec.image {
        let i = &settings.images;
        let own = [&*i.llamacpp, &*i.vllm, &*i.tgi, &*i.ollama];
        allowance.check_image("spec.image", image, &own)?;
    }
    let mount = mount(isvc, model, settings)?;
    let gpus = spec.resources.as_ref().and_then(|r| r.gpu).unwrap_or(0);
    let mut requests = BTreeMap::new();
    let mut limits = BTreeMap::new();
    if let Some(r) = &spec.resources {
        if let Some(cpu) = &r.cpu {
            requests.insert("cpu".to_owned(), Quantity(cpu.clone()));
        }
        if let Some(mem) = r.host_memory.as_ref().or(r.memory.as_ref()) {
            requests.insert("memory".to_owned(), Quantity(mem.clone()));
        }
    }
    let mut tolerations = spec.tolerations.clone();
    if gpus > 0 {
        limits.insert("nvidia.com/gpu".to_owned(), Quantity(gpus.to_string()));
        if !tolerations
            .iter()
            .any(|t| t.key.as_deref() == Some("nvidia.com/gpu"))
        {
            tolerations.push(Toleration {
                key: Some("nvidia.com/gpu".into()),
                operator: Some("Exists".into()),
                effect: Some("NoSchedule".into()),
                ..Toleration::default()
            });
        }
    }
    let mut container_env = spec.env.clone();
    if spec.runtime == Some(Runtime::Ollama) {
        container_env.push(env_var("OLLAMA_HOST", &format!("0.0.0.0:{}", profile.port)));
    }
    let container = Container {
        name: "runtime".into(),
        image: Some(profile.image.clone()),
        command: (!spec.command.is_empty()).then(|| spec.command.clone()),
        args: Some(runtime_args(isvc, model, &mount.model, profile.port)?)
            .filter(|a| !a.is_empty()),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: profile.port,
            ..ContainerPort::default()
        }]),
        env: Some(container_env).filter(|e| !e.is_empty()),
        resources: Some(ResourceRequirements {
            requests: Some(requests).filter(|r| !r.is_empty()),
            limits: Some(limits).filter(|l| !l.is_empty()),
            ..ResourceRequirements::default()
        }),
        volume_mounts: Some(mount.mounts).filter(|m| !m.is_empty()),
        // Loading a large model can take many minutes: a generous startup probe, then tight ones.
        startup_probe: Some(probe(profile.health_path, profile.port, 10, 180)),
        readiness_probe: Some(probe(profile.health_path, profile.port, 5, 3)),
        liveness_probe: Some(probe(profile.health_path, profile.port, 15, 4)),
        security_context: Some(allowance.container_security(spec.security_context.as_ref())),
        ..Container::default()
    };
    let mut pull_secrets: Vec<LocalObjectReference> = spec.image_pull_secrets.clone();
    for name in &settings.image_pull_secrets {
        if !pull_secrets.iter().any(|s| &s.name == name) {
            pull_secrets.push(LocalObjectReference { name: name.clone() });
        }
    }
    Ok(Deployment {
        metadata: meta(isvc),
        spec: Some(DeploymentSpec {
            replicas: Some(spec.replicas.unwrap_or(1)),
            selector: LabelSelector {
                match_labels: Some(labels(isvc)),
                match_expressions: None,
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels(isvc)),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    init_containers: mount.init.map(|c| vec![c]),
                    containers: vec![container],
                    volumes: Some(mount.volumes).filter(|v| !v.is_empty()),
                    node_selector: Some(spec.node_selector.clone()).filter(|n| !n.is_empty()),
                    tolerations: Some(tolerations).filter(|t| !t.is_empty()),
                    affinity: spec.affinity.clone(),
                    image_pull_secrets: Some(pull_secrets).filter(|p| !p.is_empty()),
                    priority_class_name: spec.priority_class_name.clone(),
                    security_context: Some(
                        allowance.pod_security(spec.pod_security_context.as_ref()),
                    ),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    })
}

/// What the controller observed about an InferenceService's objects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observation {
    /// Whether the Model is Ready.
    pub model_ready: bool,
    /// `(ready, desired)` replicas of the Deployment, when it exists.
    pub replicas: Option<(i32, i32)>,
    /// A terminated model-downloader: exit code and termination message.
    pub init_failure: Option<(i32, String)>,
    /// Pods unschedulable for lack of GPUs.
    pub waiting_for_gpu: bool,
    /// The objects could not be built from the spec (the message says why).
    pub config_error: Option<String>,
}

/// What the pods of an InferenceService say: a failed model-downloader (exit code and
/// termination message; the newest failure wins) and whether scheduling waits for GPUs.
pub fn observe_pods(pods: &[Pod]) -> (Option<(i32, String)>, bool) {
    let waiting_for_gpu = pods
        .iter()
        .filter_map(|p| p.status.as_ref())
        .flat_map(|s| s.conditions.iter().flatten())
        .any(|c| {
            c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
                && c.message
                    .as_deref()
                    .is_some_and(|m| m.contains("nvidia.com/gpu"))
        });
    let failure = newest_downloader_exit(pods, |code| code != 0);
    (failure, waiting_for_gpu)
}

/// The status an InferenceService should have.
pub fn status(isvc: &InferenceService, obs: &Observation) -> InferenceServiceStatus {
    let name = isvc.metadata.name.clone().unwrap_or_default();
    let namespace = isvc
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| llmkube_router::DEFAULT_NAMESPACE.into());
    let (phase, ready, reason, message) = if let Some(why) = &obs.config_error {
        (Phase::Failed, false, "InvalidSpec", why.clone())
    } else if let Some((code, msg)) = &obs.init_failure {
        (
            Phase::Failed,
            false,
            "ModelDownloadFailed",
            explain_init_failure(*code, msg),
        )
    } else if !obs.model_ready {
        (
            Phase::Pending,
            false,
            "ModelNotReady",
            format!("waiting for Model {:?} to be Ready", isvc.spec.model_ref),
        )
    } else if obs.waiting_for_gpu {
        (
            Phase::WaitingForGpu,
            false,
            "InsufficientGPU",
            "no node has the requested GPUs free".into(),
        )
    } else {
        match obs.replicas {
            None => (
                Phase::Creating,
                false,
                "Creating",
                "creating the Deployment".into(),
            ),
            Some((r, d)) if r < d || d == 0 => (
                Phase::Progressing,
                false,
                "Progressing",
                format!("{r}/{d} replicas ready"),
            ),
            Some((r, d)) => (
                Phase::Ready,
                true,
                "Ready",
                format!("{r}/{d} replicas ready"),
            ),
        }
    };
    InferenceServiceStatus {
        phase: Some(phase),
        endpoint: Some(format!(
            "http://{name}.{namespace}.svc.cluster.local:{SERVICE_PORT}"
        )),
        ready_replicas: obs.replicas.map(|(r, _)| r),
        desired_replicas: obs.replicas.map(|(_, d)| d),
        conditions: vec![Condition {
            type_: "Ready".into(),
            status: if ready { "True" } else { "False" }.into(),
            reason: reason.into(),
            message,
            ..Condition::default()
        }],
        observed_generation: isvc.metadata.generation,
    }
}
