//! `Model`: where the weights come from, and what the controller reports about them.

use super::downloader::{explain_init_failure, newest_downloader_exit};
use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Pod;

use crate::crd::model::{ModelFormat, ModelSpec, ModelStatus};
use llmkube_router::condition::{Condition, Phase};

/// A parsed `spec.source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `pvc://<claim>/<path>`: mounted read-only, never copied.
    Pvc {
        /// PersistentVolumeClaim name.
        claim: String,
        /// Path inside the claim.
        path: String,
    },
    /// `https://` or `http://`: fetched by the model-downloader init container.
    Remote(String),
    /// `file:///abs/path` or `/abs/path` on the node: copied by the init container.
    File(String),
    /// A Hugging Face repo id resolved by the runtime image (vLLM, Ollama) via `HF_ENDPOINT`.
    HfRepo(String),
}

/// Parses `spec.source`; the error is the condition message.
pub fn parse_source(spec: &ModelSpec) -> Result<Source, String> {
    let s = spec.source.trim();
    if let Some(rest) = s.strip_prefix("pvc://") {
        let (claim, path) = rest.split_once('/').unwrap_or((rest, ""));
        if claim.is_empty() || path.is_empty() {
            return Err(format!("source {s:?} must be pvc://<claim>/<path>"));
        }
        return Ok(Source::Pvc {
            claim: claim.to_owned(),
            path: path.to_owned(),
        });
    }
    if s.starts_with("https://") || s.starts_with("http://") {
        return Ok(Source::Remote(s.to_owned()));
    }
    if let Some(path) = s.strip_prefix("file://") {
        return match path.starts_with('/') {
            true => Ok(Source::File(path.to_owned())),
            false => Err(format!("source {s:?} must be file:///<absolute path>")),
        };
    }
    if s.starts_with('/') {
        return Ok(Source::File(s.to_owned()));
    }
    if spec.format == Some(ModelFormat::HfRepo) {
        return Ok(Source::HfRepo(s.to_owned()));
    }
    Err(format!(
        "source {s:?} is not a URL, a file path or a pvc:// reference; for a Hugging Face repo id set format: hf-repo"
    ))
}

/// Where a downloaded (`https://`, `file://`) model is, as runtimes see it: `/models/<file>`
/// in the pod's own volume, or `/models/<cacheKey>/<file>` on the model cache.
pub fn downloaded_path(spec: &ModelSpec, source: &Source, cache: bool) -> String {
    let file = match source {
        Source::Remote(url) => url.rsplit('/').next().filter(|f| !f.is_empty()),
        Source::File(path) => path.rsplit('/').next().filter(|f| !f.is_empty()),
        Source::Pvc { .. } | Source::HfRepo(_) => None,
    }
    .unwrap_or("model");
    let dir = super::model_cache::MODEL_DIR;
    match cache {
        true => format!("{dir}/{}/{file}", super::model_cache::cache_key(spec)),
        false => format!("{dir}/{file}"),
    }
}

/// The model cache keys a namespace's cache keeps: those of its Models whose file is downloaded
/// (`https://` and `file://` sources).
pub fn cache_keys<'a>(models: impl IntoIterator<Item = &'a ModelSpec>) -> BTreeSet<String> {
    models
        .into_iter()
        .filter(|spec| matches!(parse_source(spec), Ok(Source::Remote(_) | Source::File(_))))
        .map(super::model_cache::cache_key)
        .collect()
}

/// What the controller observed about a Model's source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observation {
    /// For a `pvc://` source: `None` when the claim does not exist, else its `status.phase`.
    pub pvc_phase: Option<Option<String>>,
    /// What the model-downloader reported in its termination message, if it ran.
    pub download: Option<DownloadReport>,
    /// Why the admin's allowance refuses the source (a `file://` path outside the allowed
    /// host directories), as the condition message.
    pub refused: Option<String>,
    /// The model cache is on, so a downloaded file is under its cache key.
    pub cache: bool,
}

/// The model-downloader's verdict (parsed from its termination message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownloadReport {
    /// The file is in place; its sha256 was computed (and matched `spec.sha256`, if set).
    Done {
        /// Computed sha256.
        sha256: String,
        /// Size in bytes.
        size: u64,
        /// Found verified in the model cache: nothing was downloaded or hashed.
        cached: bool,
    },
    /// The computed sha256 differs from `spec.sha256`; the file was deleted.
    Mismatch {
        /// `spec.sha256`.
        expected: String,
        /// What the file hashed to.
        actual: String,
    },
    /// The fetch failed (the message explains: TLS, 404, unreachable host, ...).
    Failed(String),
}

/// The model-downloader's verdict from the pods that ran it: the newest terminated
/// `model-downloader` init container, parsed from the JSON it wrote as termination message.
pub fn download_report(pods: &[Pod]) -> Option<DownloadReport> {
    let (code, message) = newest_downloader_exit(pods, |_| true)?;
    Some(parse_report(code, &message))
}

/// Parses the downloader's termination message (JSON written by its script).
pub fn parse_report(exit_code: i32, message: &str) -> DownloadReport {
    let json: serde_json::Value = serde_json::from_str(message.trim()).unwrap_or_default();
    if exit_code == 0
        && let (Some(sha256), Some(size)) = (json["sha256"].as_str(), json["size"].as_u64())
    {
        return DownloadReport::Done {
            sha256: sha256.to_owned(),
            size,
            cached: json["cached"] == true,
        };
    }
    if json["error"] == "sha256 mismatch" {
        return DownloadReport::Mismatch {
            expected: json["expected"].as_str().unwrap_or_default().to_owned(),
            actual: json["actual"].as_str().unwrap_or_default().to_owned(),
        };
    }
    DownloadReport::Failed(explain_init_failure(exit_code, message))
}

/// The status a Model should have, given what was observed.
pub fn status(spec: &ModelSpec, namespace: &str, obs: &Observation) -> ModelStatus {
    let (phase, ready, reason, message, path) = match parse_source(spec) {
        Err(message) => (Phase::Failed, false, "InvalidSource", message, None),
        Ok(_) if obs.refused.is_some() => (
            Phase::Failed,
            false,
            "SourceNotAllowed",
            obs.refused.clone().unwrap_or_default(),
            None,
        ),
        Ok(Source::Remote(url)) if url.starts_with("http://") && !spec.allow_plain_http => (
            Phase::Failed,
            false,
            "InsecureSource",
            format!("source {url:?} is plain http://, which anyone on the path can alter; use https:// or set spec.allowPlainHttp: true"),
            None,
        ),
        Ok(Source::Pvc { claim, path }) => match &obs.pvc_phase {
            None | Some(None) => (
                Phase::Failed,
                false,
                "PVCNotFound",
                format!("PVC {claim:?} not found in namespace {namespace:?}"),
                None,
            ),
            Some(Some(phase)) if phase != "Bound" => (
                Phase::Pending,
                false,
                "PVCNotBound",
                format!("PVC {claim:?} is {phase}, waiting for it to be Bound"),
                None,
            ),
            Some(Some(_)) => {
                let mounted = format!("/models/{path}");
                (Phase::Ready, true, "PVCBound", format!("served read-only from PVC {claim:?}"), Some(mounted))
            }
        },
        Ok(Source::HfRepo(id)) => (
            Phase::Ready,
            true,
            "ResolvedAtRuntime",
            format!("{id} is resolved by the runtime image through its HF_ENDPOINT mirror"),
            None,
        ),
        Ok(source @ (Source::Remote(_) | Source::File(_))) => match &obs.download {
            None => (
                Phase::Ready,
                true,
                "AwaitingDownload",
                "fetched and verified by the model-downloader init container of each InferenceService".to_owned(),
                None,
            ),
            Some(DownloadReport::Done { cached: true, .. }) => (Phase::Ready, true, "Cached", "found verified in the model cache; nothing was downloaded".to_owned(), Some(downloaded_path(spec, &source, obs.cache))),
            Some(DownloadReport::Done { .. }) => (Phase::Ready, true, "Verified", "downloaded and hashed".to_owned(), Some(downloaded_path(spec, &source, obs.cache))),
            Some(DownloadReport::Mismatch { expected, actual }) => (
                Phase::Failed,
                false,
                "SHA256Mismatch",
                format!("sha256 mismatch: spec.sha256 is {expected} but the file hashed to {actual}; the file was deleted"),
                None,
            ),
            Some(DownloadReport::Failed(why)) => (Phase::Failed, false, "DownloadFailed", why.clone(), None),
        },
    };
    let (sha256, size) = match &obs.download {
        Some(DownloadReport::Done { sha256, size, .. }) => {
            (Some(sha256.clone()), Some(human_size(*size)))
        }
        _ => (None, None),
    };
    let mut conditions = vec![Condition {
        type_: "Ready".to_owned(),
        status: if ready { "True" } else { "False" }.to_owned(),
        reason: reason.to_owned(),
        message,
        ..Condition::default()
    }];
    let copied = matches!(parse_source(spec), Ok(Source::Remote(_) | Source::File(_)));
    if copied && spec.sha256.is_none() {
        conditions.push(Condition {
            type_: "IntegrityVerified".to_owned(),
            status: "False".to_owned(),
            reason: "IntegrityUnchecked".to_owned(),
            message: "Warning: spec.sha256 is not set, so the file's integrity is unchecked: any file served at the source is accepted. Set spec.sha256 to the expected digest.".to_owned(),
            ..Condition::default()
        });
    }
    ModelStatus {
        phase: Some(phase),
        path,
        sha256,
        size,
        cache_key: copied.then(|| super::model_cache::cache_key(spec)),
        conditions,
        ..ModelStatus::default()
    }
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(source: &str) -> ModelSpec {
        ModelSpec {
            source: source.to_owned(),
            ..ModelSpec::default()
        }
    }

    fn ready(s: &ModelStatus) -> (&str, &str, &str) {
        let c = &s.conditions[0];
        (
            s.phase.unwrap().as_str(),
            c.status.as_str(),
            c.message.as_str(),
        )
    }

    #[test]
    fn plain_http_needs_an_opt_in_and_a_missing_digest_is_flagged() {
        let http = spec("http://model-server.internal.corp/m.gguf");
        let s = status(&http, "ns", &Observation::default());
        assert_eq!(ready(&s).0, "Failed");
        assert!(ready(&s).2.contains("spec.allowPlainHttp"), "{s:?}");
        let allowed = ModelSpec {
            allow_plain_http: true,
            ..http
        };
        let s = status(&allowed, "ns", &Observation::default());
        assert_eq!(ready(&s).0, "Ready");
        let unchecked = s
            .conditions
            .iter()
            .find(|c| c.type_ == "IntegrityVerified")
            .expect("a warning condition");
        assert_eq!(
            (unchecked.status.as_str(), unchecked.reason.as_str()),
            ("False", "IntegrityUnchecked")
        );
        let pinned = ModelSpec {
            sha256: Some("a".repeat(64)),
            ..spec("https://m/x.gguf")
        };
        let s = status(&pinned, "ns", &Observation::default());
        assert!(s.conditions.iter().all(|c| c.type_ != "IntegrityVerified"));
        let refused = status(
            &spec("file:///etc/kubernetes/admin.conf"),
            "ns",
            &Observation {
                refused: Some("outside --allowed-model-host-path".into()),
                ..Observation::default()
            },
        );
        assert_eq!(
            ready(&refused),
            ("Failed", "False", "outside --allowed-model-host-path")
        );
    }

    #[test]
    fn pvc_sources_follow_the_claim() {
        let s = spec("pvc://model-cache/llama-3.1-8b-q4_k_m.gguf");
        let missing = status(
            &s,
            "default",
            &Observation {
                pvc_phase: Some(None),
                download: None,
                refused: None,
                cache: false,
            },
        );
        assert_eq!(
            ready(&missing),
            (
                "Failed",
                "False",
                r#"PVC "model-cache" not found in namespace "default""#
            )
        );
        let pending = status(
            &s,
            "default",
            &Observation {
                pvc_phase: Some(Some("Pending".into())),
                download: None,
                refused: None,
                cache: false,
            },
        );
        assert_eq!(
            ready(&pending),
            (
                "Pending",
                "False",
                r#"PVC "model-cache" is Pending, waiting for it to be Bound"#
            )
        );
        let bound = status(
            &s,
            "default",
            &Observation {
                pvc_phase: Some(Some("Bound".into())),
                download: None,
                refused: None,
                cache: false,
            },
        );
        assert_eq!(ready(&bound).0, "Ready");
        assert_eq!(
            bound.path.as_deref(),
            Some("/models/llama-3.1-8b-q4_k_m.gguf")
        );
        assert_eq!(bound.sha256, None, "pvc sources are never copied or hashed");
    }

    #[test]
    fn remote_sources_report_the_downloader_verdict() {
        let s = ModelSpec {
            sha256: Some("a".repeat(64)),
            ..spec("https://model-server.internal.corp/m.gguf")
        };
        assert_eq!(ready(&status(&s, "ns", &Observation::default())).0, "Ready");
        let done = status(
            &s,
            "ns",
            &Observation {
                pvc_phase: None,
                download: Some(DownloadReport::Done {
                    sha256: "a".repeat(64),
                    size: 4_920_000_000,
                    cached: false,
                }),
                refused: None,
                cache: false,
            },
        );
        assert_eq!(
            (done.sha256.as_deref(), done.size.as_deref()),
            (Some("a".repeat(64).as_str()), Some("4.6GiB"))
        );
        assert_eq!(done.cache_key.as_ref().map(String::len), Some(16));
        assert_eq!(done.path.as_deref(), Some("/models/m.gguf"));
        let cached = parse_report(0, r#"{"sha256":"ab","size":3,"cached":true}"#);
        let from_cache = status(
            &s,
            "ns",
            &Observation {
                download: Some(cached),
                cache: true,
                ..Observation::default()
            },
        );
        let key = from_cache.cache_key.clone().unwrap();
        assert_eq!(from_cache.path, Some(format!("/models/{key}/m.gguf")));
        assert_eq!(from_cache.conditions[0].reason, "Cached");
        let bad = status(
            &s,
            "ns",
            &Observation {
                pvc_phase: None,
                download: Some(DownloadReport::Mismatch {
                    expected: "a".repeat(64),
                    actual: "b".repeat(64),
                }),
                refused: None,
                cache: false,
            },
        );
        let (phase, ok, message) = ready(&bad);
        assert_eq!((phase, ok), ("Failed", "False"));
        assert!(
            message.starts_with("sha256 mismatch: spec.sha256 is aaaa")
                && message.contains("hashed to bbbb"),
            "{message}"
        );
    }

    #[test]
    fn sources_parse_or_explain() {
        assert_eq!(
            parse_source(&spec("file:///mnt/models/m.gguf")),
            Ok(Source::File("/mnt/models/m.gguf".into()))
        );
        assert_eq!(
            parse_source(&spec("/mnt/models/m.gguf")),
            Ok(Source::File("/mnt/models/m.gguf".into()))
        );
        let hf = ModelSpec {
            format: Some(ModelFormat::HfRepo),
            ..spec("meta-llama/Meta-Llama-3.1-8B-Instruct")
        };
        assert_eq!(
            parse_source(&hf),
            Ok(Source::HfRepo(
                "meta-llama/Meta-Llama-3.1-8B-Instruct".into()
            ))
        );
        assert!(
            parse_source(&spec("meta-llama/Meta-Llama-3.1-8B-Instruct"))
                .unwrap_err()
                .contains("format: hf-repo")
        );
        assert!(parse_source(&spec("pvc://only-claim")).is_err());
        assert!(parse_source(&spec("file://relative")).is_err());
    }
}
