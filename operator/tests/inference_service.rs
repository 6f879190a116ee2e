//! InferenceService desired objects and status, and the real model-downloader script.
#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is what it is for

use k8s_openapi::api::core::v1::{SecurityContext, Toleration};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use llmkube_operator::crd::inference_service::{
    InferenceResources, InferenceService, InferenceServiceSpec, Runtime,
};
use llmkube_operator::crd::model::{Model, ModelSpec};
use llmkube_operator::reconcile::admission::Allowance;
use llmkube_operator::reconcile::downloader::explain_init_failure;
use llmkube_operator::reconcile::inference_service::*;

fn isvc(runtime: Runtime) -> InferenceService {
    let mut i = InferenceService::new(
        "llama-3-8b",
        InferenceServiceSpec {
            model_ref: "llama-3-8b".into(),
            runtime: Some(runtime),
            ..Default::default()
        },
    );
    i.metadata.namespace = Some("team-a".into());
    i.metadata.uid = Some("uid-1".into());
    i
}

fn model(source: &str) -> Model {
    Model::new(
        "llama-3-8b",
        ModelSpec {
            source: source.into(),
            sha256: Some("a".repeat(64)),
            ..Default::default()
        },
    )
}

#[test]
fn the_service_targets_each_runtimes_real_port() {
    for (runtime, port) in [
        (Runtime::Llamacpp, 8080),
        (Runtime::Vllm, 8000),
        (Runtime::Tgi, 80),
        (Runtime::Ollama, 11434),
    ] {
        let svc = service(&isvc(runtime), &Settings::default()).unwrap();
        let p = &svc.spec.unwrap().ports.unwrap()[0];
        assert_eq!(
            (p.port, p.target_port.clone()),
            (8080, Some(IntOrString::Int(port))),
            "{runtime:?}"
        );
    }
}

#[test]
fn a_pvc_model_is_mounted_read_only_without_a_downloader() {
    let d = deployment(
        &isvc(Runtime::Llamacpp),
        &model("pvc://model-cache/llama.gguf"),
        &Settings::default(),
    )
    .unwrap();
    let pod = d.spec.unwrap().template.spec.unwrap();
    assert!(pod.init_containers.is_none());
    let vol = &pod.volumes.unwrap()[0];
    let pvc = vol.persistent_volume_claim.as_ref().unwrap();
    assert_eq!(
        (pvc.claim_name.as_str(), pvc.read_only),
        ("model-cache", Some(true))
    );
    let c = &pod.containers[0];
    assert_eq!(
        c.image.as_deref(),
        Some("ghcr.io/ggml-org/llama.cpp:server-cuda13")
    );
    let args = c.args.clone().unwrap();
    assert!(
        args.windows(2)
            .any(|w| w == ["--model", "/models/llama.gguf"]),
        "{args:?}"
    );
    assert_eq!(c.volume_mounts.as_ref().unwrap()[0].read_only, Some(true));
}

#[test]
fn a_remote_model_gets_the_downloader_with_the_site_ca_and_overridden_images() {
    let settings = Settings {
        images: Images {
            init: "registry.internal.corp/curlimages/curl:8.18.0".into(),
            vllm: "registry.internal.corp/vllm:1".into(),
            ..Images::default()
        },
        ca_cert_configmap: Some("corporate-ca".into()),
        image_pull_secrets: vec!["internal-registry-creds".into()],
        allowance: Default::default(),
        model_cache: None,
        model_cache_cleanup: false,
    };
    let d = deployment(
        &isvc(Runtime::Vllm),
        &model("https://model-server.internal.corp/llama.gguf"),
        &settings,
    )
    .unwrap();
    let pod = d.spec.unwrap().template.spec.unwrap();
    let init = &pod.init_containers.unwrap()[0];
    assert_eq!(init.name, "model-downloader");
    assert_eq!(
        init.image.as_deref(),
        Some("registry.internal.corp/curlimages/curl:8.18.0")
    );
    let env: Vec<(String, String)> = init
        .env
        .clone()
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.value.unwrap()))
        .collect();
    assert!(env.contains(&("DEST".into(), "/models/llama.gguf".into())));
    assert!(env.contains(&("SHA256".into(), "a".repeat(64))));
    assert!(env.contains(&("CA_FILE".into(), "/etc/llmkube/ca/ca.crt".into())));
    let ca = pod
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.name == "ca")
        .unwrap();
    assert_eq!(ca.config_map.as_ref().unwrap().name, "corporate-ca");
    assert_eq!(
        pod.containers[0].image.as_deref(),
        Some("registry.internal.corp/vllm:1")
    );
    assert_eq!(
        pod.image_pull_secrets.unwrap()[0].name,
        "internal-registry-creds"
    );
}

#[test]
fn gpus_node_selection_and_overrides_pass_through() {
    let mut i = isvc(Runtime::Llamacpp);
    i.spec.resources = Some(InferenceResources {
        gpu: Some(2),
        memory: Some("16Gi".into()),
        ..Default::default()
    });
    i.spec
        .node_selector
        .insert("llmkube.dev/has-model".into(), "true".into());
    i.spec.tolerations.push(Toleration {
        key: Some("spot".into()),
        operator: Some("Exists".into()),
        ..Default::default()
    });
    i.spec.image = Some("registry.internal.corp/llama.cpp:server".into());
    let settings = Settings {
        allowance: Allowance {
            model_host_paths: vec!["/mnt/models".into()],
            image_prefixes: vec!["registry.internal.corp/".into()],
            ..Allowance::default()
        },
        ..Settings::default()
    };
    let d = deployment(&i, &model("file:///mnt/models/llama.gguf"), &settings).unwrap();
    let pod = d.spec.unwrap().template.spec.unwrap();
    let c = &pod.containers[0];
    let limits = c.resources.as_ref().unwrap().limits.clone().unwrap();
    assert_eq!(limits["nvidia.com/gpu"].0, "2");
    let tolerations = pod.tolerations.unwrap();
    assert!(
        tolerations
            .iter()
            .any(|t| t.key.as_deref() == Some("nvidia.com/gpu"))
    );
    assert!(tolerations.iter().any(|t| t.key.as_deref() == Some("spot")));
    assert_eq!(pod.node_selector.unwrap()["llmkube.dev/has-model"], "true");
    assert_eq!(
        c.image.as_deref(),
        Some("registry.internal.corp/llama.cpp:server")
    );
    assert!(
        c.args
            .clone()
            .unwrap()
            .contains(&"--n-gpu-layers".to_owned())
    );
    let source = pod
        .volumes
        .unwrap()
        .into_iter()
        .find(|v| v.name == "source")
        .unwrap();
    assert_eq!(source.host_path.unwrap().path, "/mnt/models");
}

#[test]
fn init_failures_are_explained() {
    assert!(
        explain_init_failure(
            65,
            r#"{"error":"sha256 mismatch","expected":"aa","actual":"bb"}"#
        )
        .starts_with("sha256 mismatch: spec.sha256 is aa")
    );
    assert!(
        explain_init_failure(23, r#"{"error":"curl failed","exitCode":23}"#)
            .contains("--ca-cert-configmap")
    );
    assert!(explain_init_failure(60, "").contains("TLS failure"));
    assert!(explain_init_failure(22, "").contains("404"));
    assert!(explain_init_failure(7, "").contains("NetworkPolicy"));
}

#[test]
fn status_follows_the_model_the_downloader_and_the_replicas() {
    let i = isvc(Runtime::Llamacpp);
    let phase = |obs: Observation| status(&i, &obs).phase.unwrap().as_str();
    assert_eq!(phase(Observation::default()), "Pending");
    assert_eq!(
        phase(Observation {
            model_ready: true,
            ..Default::default()
        }),
        "Creating"
    );
    assert_eq!(
        phase(Observation {
            model_ready: true,
            replicas: Some((0, 1)),
            ..Default::default()
        }),
        "Progressing"
    );
    assert_eq!(
        phase(Observation {
            model_ready: true,
            replicas: Some((1, 1)),
            ..Default::default()
        }),
        "Ready"
    );
    assert_eq!(
        phase(Observation {
            model_ready: true,
            waiting_for_gpu: true,
            ..Default::default()
        }),
        "WaitingForGPU"
    );
    let failed = status(
        &i,
        &Observation {
            model_ready: true,
            init_failure: Some((60, String::new())),
            ..Default::default()
        },
    );
    assert_eq!(failed.phase.map(|p| p.as_str()), Some("Failed"));
    assert!(failed.conditions[0].message.contains("TLS failure"));
    assert_eq!(
        failed.endpoint.as_deref(),
        Some("http://llama-3-8b.team-a.svc.cluster.local:8080")
    );
}

/// Runs the real script with sh, curl and sha256sum against a loopback HTTP server.
#[test]
fn the_downloader_script_fetches_verifies_and_reports() {
    use std::process::{Command, Stdio};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    std::fs::write(dir.join("model.gguf"), b"weights").unwrap();
    let server = Command::new("python3")
        .args([
            "-m",
            "http.server",
            "0",
            "--bind",
            "127.0.0.1",
            "--directory",
        ])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs");
    let mut server = KillOnDrop(server);
    let port = read_port(server.0.stdout.take().unwrap());
    let run_with = |sha: &str, file: &str, allow_http: &str| {
        let out = dir.join("out");
        let _ = std::fs::remove_dir_all(&out);
        let log = dir.join("termination.log");
        let _ = std::fs::remove_file(&log);
        let status = Command::new("sh")
            .args(["-c", DOWNLOADER_SCRIPT])
            .env("SOURCE", format!("http://127.0.0.1:{port}/{file}"))
            .env("DEST", out.join(file))
            .env("SHA256", sha)
            .env("ALLOW_HTTP", allow_http)
            .env("TERMINATION_LOG", &log)
            .output()
            .unwrap();
        (
            status.status.code().unwrap_or(-1),
            std::fs::read_to_string(&log).unwrap_or_default(),
            out.join(file).exists(),
        )
    };
    let run = |sha: &str, file: &str| run_with(sha, file, "1");
    let real = sha256_hex(b"weights");
    let (code, report, exists) = run_with(&real, "model.gguf", "");
    assert_eq!(
        (code, exists),
        (1, false),
        "plain http is refused without the opt-in"
    );
    assert_eq!(report, r#"{"error":"plain http refused","exitCode":1}"#);
    let (code, report, exists) = run(&real, "model.gguf");
    assert_eq!((code, exists), (0, true), "{report}");
    let v: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(
        (v["sha256"].as_str(), v["size"].as_u64()),
        (Some(real.as_str()), Some(7))
    );
    let (code, report, exists) = run(&"b".repeat(64), "model.gguf");
    assert_eq!((code, exists), (65, false), "a mismatching file is deleted");
    assert!(
        explain_init_failure(code, &report).starts_with("sha256 mismatch"),
        "{report}"
    );
    assert!(
        !dir.join("out/model.gguf.part").exists(),
        "nothing is left under the temporary name"
    );
    let (code, report, _) = run("", "missing.gguf");
    assert_eq!(code, 22, "curl --fail on 404: {report}");
    assert!(explain_init_failure(code, &report).contains("404"));
}

#[test]
fn the_downloader_reports_valid_json_whatever_the_file_name() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("termination.log");
    let status = std::process::Command::new("sh")
        .args(["-c", DOWNLOADER_SCRIPT])
        .env("SOURCE", "file:///mnt/models/we\"ird\\name.gguf")
        .env("SOURCE_DIR", tmp.path().join("absent"))
        .env("DEST", tmp.path().join("out/m.gguf"))
        .env("SHA256", "")
        .env("TERMINATION_LOG", &log)
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(23));
    let report = std::fs::read_to_string(&log).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&report).unwrap_or_else(|e| panic!("{e}: {report}"));
    assert!(
        v["error"].as_str().unwrap().contains("we\"ird\\name.gguf"),
        "{v}"
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn read_port(stdout: std::process::ChildStdout) -> u16 {
    use std::io::{BufRead, BufReader};
    // "Serving HTTP on 127.0.0.1 port 40123 (http://127.0.0.1:40123/) ..."
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    line.split_whitespace()
        .skip_while(|w| *w != "port")
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"))
}

#[test]
fn the_air_gapped_troubleshooting_table_quotes_the_real_messages() {
    let doc = include_str!("../../docs/air-gapped.md");
    for code in [23, 60, 7, 6, 22] {
        let message = explain_init_failure(code, "");
        assert!(
            doc.contains(&message),
            "docs/air-gapped.md lacks: {message}"
        );
    }
}

#[test]
fn pods_pass_the_restricted_profile_and_a_namespace_user_gets_no_more() {
    let d = deployment(
        &isvc(Runtime::Llamacpp),
        &model("https://model-server.internal.corp/llama.gguf"),
        &Settings::default(),
    )
    .unwrap();
    let pod = d.spec.unwrap().template.spec.unwrap();
    let ctx = pod.security_context.as_ref().unwrap();
    assert_eq!(ctx.run_as_non_root, Some(true));
    assert_eq!(
        ctx.seccomp_profile.as_ref().unwrap().type_,
        "RuntimeDefault"
    );
    for c in pod
        .containers
        .iter()
        .chain(pod.init_containers.iter().flatten())
    {
        let sc = c.security_context.as_ref().unwrap();
        assert_eq!(sc.allow_privilege_escalation, Some(false), "{}", c.name);
        assert_eq!(
            sc.capabilities.as_ref().unwrap().drop,
            Some(vec!["ALL".into()])
        );
    }

    // The admin kubeconfig through a file:// source with a control-plane toleration.
    let mut steal = isvc(Runtime::Llamacpp);
    steal.spec.tolerations.push(Toleration {
        key: Some("node-role.kubernetes.io/control-plane".into()),
        operator: Some("Exists".into()),
        ..Default::default()
    });
    let e = deployment(
        &steal,
        &model("file:///etc/kubernetes/admin.conf"),
        &Settings::default(),
    )
    .unwrap_err();
    assert!(e.contains("--allowed-model-host-path"), "{e}");

    let mut root = isvc(Runtime::Llamacpp);
    root.spec.security_context = Some(SecurityContext {
        privileged: Some(true),
        ..Default::default()
    });
    let e = deployment(&root, &model("https://m/x.gguf"), &Settings::default()).unwrap_err();
    assert!(e.contains("spec.securityContext.privileged"), "{e}");

    let mut foreign = isvc(Runtime::Llamacpp);
    foreign.spec.image = Some("docker.io/attacker/miner:latest".into());
    let e = deployment(&foreign, &model("https://m/x.gguf"), &Settings::default()).unwrap_err();
    assert!(e.contains("--allowed-image-prefix"), "{e}");

    let allowed = Settings {
        allowance: Allowance {
            privileged: true,
            ..Allowance::default()
        },
        ..Settings::default()
    };
    let d = deployment(&root, &model("https://m/x.gguf"), &allowed).unwrap();
    let c = &d.spec.unwrap().template.spec.unwrap().containers[0];
    assert_eq!(
        c.security_context.as_ref().unwrap().privileged,
        Some(true),
        "allowed by the admin"
    );
}
