//! The model cache: one volume per namespace that every InferenceService there downloads its
//! `https://` and `file://` models into, once, instead of a per-pod `emptyDir` that a restart,
//! a rollout or a new replica fills again. A file lives at `<cacheKey>/<file name>`, where the
//! key is derived from the source and its sha256, so that a changed source or digest never
//! reuses a file; the downloader fetches it under a lock and records its verified digest beside
//! it (see `model-downloader.sh`), and runtimes mount the volume read-only.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sha2::{Digest, Sha256};

use crate::crd::model::ModelSpec;

/// Name of the claim the controller creates in each namespace that uses the cache.
pub const CACHE_CLAIM: &str = "llmkube-model-cache";

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
                labels: Some(BTreeMap::from([
                    (
                        "app.kubernetes.io/managed-by".to_owned(),
                        super::MANAGER.to_owned(),
                    ),
                    (
                        "app.kubernetes.io/component".to_owned(),
                        "model-cache".to_owned(),
                    ),
                ])),
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
}
