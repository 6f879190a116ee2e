//! The model cache: one volume per namespace that every InferenceService there downloads its
//! `https://` and `file://` models into, once, instead of a per-pod `emptyDir` that a restart,
//! a rollout or a new replica fills again. A file lives at `<cacheKey>/<file name>`, where the
//! key is derived from the source and its sha256, so that a changed source or digest never
//! reuses a file; the downloader fetches it under a lock and records its verified digest beside
//! it (see `model-downloader.sh`), and runtimes mount the volume read-only. With cleanup on, a
//! Job removes the directories no Model references any more (see `model-cache-cleanup.sh`).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Container, EnvVar, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec, SecurityContext, Volume,
    VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sha2::{Digest, Sha256};

use crate::crd::model::ModelSpec;

/// Name of the claim the controller creates in each namespace that uses the cache.
pub const CACHE_CLAIM: &str = "llmkube-model-cache";
/// Where models are mounted in runtime containers: the cache volume's root, or the pod's own
/// volume without a cache.
pub const MODEL_DIR: &str = "/models";

/// The labels of the cache's objects.
fn labels(component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/managed-by".to_owned(),
            super::MANAGER.to_owned(),
        ),
        (
            "app.kubernetes.io/component".to_owned(),
            component.to_owned(),
        ),
    ])
}

/// How the cache volume is provided (`--model-cache-*` flags, Helm `modelCache.persistence`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelCache {
    /// A claim the admin created in every namespace that serves models (`existingClaim`).
    Existing {
        /// Its name.
        claim: String,
    },
    /// A claim the controller creates per namespace.
    Managed {
        /// Requested size, e.g. `200Gi`.
        size: String,
        /// Storage class (`None`: the cluster's default).
        storage_class: Option<String>,
        /// `ReadWriteMany` for pods on several nodes; `ReadWriteOnce` for one node.
        access_mode: String,
    },
}

impl ModelCache {
    /// The claim pods mount.
    pub fn claim(&self) -> &str {
        match self {
            ModelCache::Existing { claim } => claim,
            ModelCache::Managed { .. } => CACHE_CLAIM,
        }
    }

    /// The claim the controller applies in `namespace` (none for an admin's own claim).
    pub fn pvc(&self, namespace: &str) -> Option<PersistentVolumeClaim> {
        let ModelCache::Managed {
            size,
            storage_class,
            access_mode,
        } = self
        else {
            return None;
        };
        Some(PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some(CACHE_CLAIM.into()),
                namespace: Some(namespace.into()),
                labels: Some(labels("model-cache")),
                ..ObjectMeta::default()
            },
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec![access_mode.clone()]),
                storage_class_name: storage_class.clone(),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([(
                        "storage".to_owned(),
                        Quantity(size.clone()),
                    )])),
                    limits: None,
                }),
                ..PersistentVolumeClaimSpec::default()
            }),
            status: None,
        })
    }
}

/// The cleanup script the Job runs.
pub const CLEANUP_SCRIPT: &str = include_str!("model-cache-cleanup.sh");
/// Minutes an unreferenced key directory is kept, so that a Model created after the Job's
/// key list was made does not lose its file.
const CLEANUP_GRACE_MINUTES: &str = "60";
/// Seconds a finished cleanup Job is kept for `kubectl logs`.
const CLEANUP_TTL_SECONDS: i32 = 3600;

/// The Job that removes from `claim` in `namespace` every key directory not in `keep` (the
/// keys the namespace's Models reference). Its name follows the key set, so one Job runs per
/// change of the set (`examples/kind-e2e.sh` derives the name the same way); `image` needs sh,
/// stat and date (the downloader's image).
pub fn cleanup_job(
    namespace: &str,
    claim: &str,
    keep: &BTreeSet<String>,
    image: &str,
    security: SecurityContext,
) -> Job {
    let listed = keep.iter().cloned().collect::<Vec<_>>().join(" ");
    let digest: String = Sha256::digest(listed.as_bytes())[..5]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let env = |name: &str, value: &str| EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    };
    Job {
        metadata: ObjectMeta {
            name: Some(format!("llmkube-model-cache-cleanup-{digest}")),
            namespace: Some(namespace.into()),
            labels: Some(labels("model-cache-cleanup")),
            ..ObjectMeta::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(2),
            ttl_seconds_after_finished: Some(CLEANUP_TTL_SECONDS),
            template: PodTemplateSpec {
                metadata: None,
                spec: Some(PodSpec {
                    restart_policy: Some("Never".into()),
                    containers: vec![Container {
                        name: "cleanup".into(),
                        image: Some(image.into()),
                        command: Some(vec!["/bin/sh".into(), "-c".into(), CLEANUP_SCRIPT.into()]),
                        env: Some(vec![
                            env("KEEP", &listed),
                            env("GRACE_MINUTES", CLEANUP_GRACE_MINUTES),
                        ]),
                        volume_mounts: Some(vec![VolumeMount {
                            name: "cache".into(),
                            mount_path: MODEL_DIR.into(),
                            ..VolumeMount::default()
                        }]),
                        security_context: Some(security),
                        ..Container::default()
                    }],
                    volumes: Some(vec![Volume {
                        name: "cache".into(),
                        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                            claim_name: claim.into(),
                            read_only: None,
                        }),
                        ..Volume::default()
                    }]),
                    ..PodSpec::default()
                }),
            },
            ..JobSpec::default()
        }),
        status: None,
    }
}

/// The cache key of a Model (`status.cacheKey`): 16 hex digits of the sha256 of its source
/// and expected digest, so a new source or digest gets a new directory.
pub fn cache_key(spec: &ModelSpec) -> String {
    let mut h = Sha256::new();
    h.update(spec.source.trim().as_bytes());
    h.update(b"\n");
    h.update(
        spec.sha256
            .as_deref()
            .unwrap_or("")
            .to_ascii_lowercase()
            .as_bytes(),
    );
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_source_and_digest_and_claims_follow_the_settings() {
        let spec = |source: &str, sha: Option<&str>| ModelSpec {
            source: source.into(),
            sha256: sha.map(str::to_owned),
            ..ModelSpec::default()
        };
        let a = cache_key(&spec("https://m/x.gguf", Some("AB")));
        assert_eq!(a.len(), 16);
        assert_eq!(a, cache_key(&spec(" https://m/x.gguf ", Some("ab"))));
        assert_ne!(a, cache_key(&spec("https://m/x.gguf", Some("cd"))));
        assert_ne!(a, cache_key(&spec("https://m/y.gguf", Some("ab"))));

        let managed = ModelCache::Managed {
            size: "200Gi".into(),
            storage_class: Some("nfs".into()),
            access_mode: "ReadWriteMany".into(),
        };
        let pvc = managed.pvc("team-a").unwrap();
        assert_eq!(pvc.metadata.name.as_deref(), Some(CACHE_CLAIM));
        let spec = pvc.spec.unwrap();
        assert_eq!(spec.access_modes.unwrap(), ["ReadWriteMany"]);
        assert_eq!(spec.storage_class_name.as_deref(), Some("nfs"));
        assert_eq!(
            spec.resources.unwrap().requests.unwrap()["storage"].0,
            "200Gi"
        );
        let existing = ModelCache::Existing {
            claim: "models".into(),
        };
        assert_eq!((existing.claim(), existing.pvc("team-a")), ("models", None));
    }

    #[test]
    fn one_cleanup_job_per_key_set_naming_what_to_keep() {
        let keep = |keys: &[&str]| keys.iter().map(|k| k.to_string()).collect::<BTreeSet<_>>();
        let job = |keys: &[&str]| {
            cleanup_job(
                "team-a",
                "models",
                &keep(keys),
                "curl:8",
                SecurityContext::default(),
            )
        };
        let a = job(&["aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"]);
        assert_eq!(
            a.metadata.name,
            job(&["bbbbbbbbbbbbbbbb", "aaaaaaaaaaaaaaaa"]).metadata.name
        );
        assert_ne!(a.metadata.name, job(&["aaaaaaaaaaaaaaaa"]).metadata.name);
        let pod = a.spec.unwrap().template.spec.unwrap();
        let env = pod.containers[0].env.clone().unwrap();
        assert_eq!(
            env[0].value.as_deref(),
            Some("aaaaaaaaaaaaaaaa bbbbbbbbbbbbbbbb")
        );
        let claim = pod.volumes.unwrap()[0]
            .persistent_volume_claim
            .clone()
            .unwrap();
        assert_eq!(claim.claim_name, "models");
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    }
}
