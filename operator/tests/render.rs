//! `llmkube-controller render`, run as a reviewer would: the seed's manifests render with the
//! controller's flags into objects that validate strictly against the upstream Kubernetes
//! schemas (1.30 and the newest kubernetes-validate knows), and what the controller would refuse
//! is refused with its message and exit code 1.
#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is what it is for

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn seed(files: &[&str]) -> String {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/seed"));
    let texts: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(dir.join(f)).unwrap())
        .collect();
    texts.join("\n---\n")
}

/// Runs `llmkube-controller <flags> render -f - <args>` on `input`.
fn render(flags: &[&str], args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_llmkube-controller"))
        .args(flags)
        .args(["render", "-f", "-"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn documents(yaml: &[u8]) -> Vec<serde_json::Value> {
    use serde::Deserialize;
    serde_yaml_ng::Deserializer::from_slice(yaml)
        .map(|d| serde_json::Value::deserialize(d).unwrap())
        .collect()
}

fn find<'a>(docs: &'a [serde_json::Value], kind: &str, name: &str) -> &'a serde_json::Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind}/{name} rendered"))
}

/// Validates `yaml` with kubernetes-validate (`tests/validate_k8s.py`) for each version.
fn validate(yaml: &[u8], versions: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/validate_k8s.py");
    let mut child = Command::new("python3")
        .arg(script)
        .args(versions)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(yaml).unwrap();
    let out = child.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kubernetes-validate refused rendered objects:\n{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprint!("{report}");
}

const FLAGS: &[&str] = &[
    "--ca-cert-configmap=site-ca",
    "--image-pull-secret=regcred",
    "--router-proxy-image=registry.internal.corp/llmkube/llmkube-gateway:1.2.3",
    "--model-cache-size=200Gi",
    "--model-cache-cleanup",
    "--allowed-model-host-path=/mnt/models",
];

#[test]
fn the_seed_install_renders_objects_that_validate_against_kubernetes_schemas() {
    let input = seed(&[
        "model-https.yaml",
        "inference-service.yaml",
        "model-hf-repo.yaml",
        "inference-service-vllm.yaml",
        "inference-service-tgi.yaml",
        "inference-service-ollama.yaml",
        "model-file.yaml",
        "inference-service-file.yaml",
        "secure-router.yaml",
    ]);
    let out = render(FLAGS, &[], &input);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "render failed: {stderr}");
    let docs = documents(&out.stdout);
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    // Every object the controller applies: the cache claim and its cleanup Job, a Service and
    // Deployment per InferenceService, and the router's six gateway objects.
    for (kind, count) in [
        ("PersistentVolumeClaim", 1),
        ("Job", 1),
        ("Service", 6),
        ("Deployment", 6),
        ("ConfigMap", 1),
        ("ServiceAccount", 1),
        ("Role", 1),
        ("RoleBinding", 1),
    ] {
        let n = kinds.iter().filter(|k| **k == kind).count();
        assert_eq!(n, count, "{kind}s rendered: {kinds:?}");
    }
    // The controller's flags shaped them.
    let llama = find(&docs, "Deployment", "llama-3-8b");
    let pod = &llama["spec"]["template"]["spec"];
    assert_eq!(pod["imagePullSecrets"][0]["name"], "regcred");
    let volumes = pod["volumes"].to_string();
    assert!(volumes.contains("site-ca"), "{volumes}");
    assert!(volumes.contains("llmkube-model-cache"), "{volumes}");
    let gateway = find(&docs, "Deployment", "secure-router-router-proxy");
    assert_eq!(
        gateway["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.internal.corp/llmkube/llmkube-gateway:1.2.3"
    );
    let rules = find(&docs, "ConfigMap", "secure-router-router-proxy");
    assert!(rules["binaryData"]["rules.wasm"].is_string());
    assert!(rules["data"]["router.yaml"].is_string());
    // Objects without a namespace land in the default one.
    assert!(docs.iter().all(|d| d["metadata"]["namespace"] == "default"));

    validate(&out.stdout, &["1.30", "latest"]);
}

#[test]
fn namespace_flag_places_objects_that_name_none() {
    let input = seed(&["model-https.yaml", "inference-service-vllm.yaml"])
        .replace("modelRef: llama-3-8b-instruct", "modelRef: llama-3-8b");
    let out = render(&[], &["--namespace", "inference"], &input);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs = documents(&out.stdout);
    assert_eq!(
        docs.len(),
        2,
        "a Service and a Deployment, no cache without its flags"
    );
    assert!(
        docs.iter()
            .all(|d| d["metadata"]["namespace"] == "inference")
    );
}

#[test]
fn what_the_controller_refuses_is_refused_with_its_message() {
    // A file:// Model outside the allowed host paths (none by default), a router whose
    // sensitive rule may fall through to the cloud, and an InferenceService of a Model the file
    // does not hold. The rest still renders.
    let router = seed(&["secure-router.yaml"]).replace("failClosed: true", "failClosed: false");
    let orphan = "apiVersion: inference.llmkube.dev/v1alpha1\nkind: InferenceService\nmetadata: { name: orphan }\nspec: { modelRef: nowhere }\n";
    let input = [
        seed(&["model-file.yaml", "inference-service-file.yaml"]),
        router,
        orphan.into(),
        seed(&["model-https.yaml", "inference-service.yaml"]),
    ]
    .join("\n---\n");
    let out = render(&[], &[], &input);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "Model/default/llama-3-8b-local: refused:",
        "InferenceService/default/llama-3-8b-local: refused: waits for Model \"llama-3-8b-local\"",
        "ModelRouter/default/secure-router: refused: spec.rules",
        "InferenceService/default/orphan: refused: Model \"nowhere\" is not in the file",
    ] {
        assert!(stderr.contains(expected), "{expected:?} not in:\n{stderr}");
    }
    let docs = documents(&out.stdout);
    let names: Vec<&str> = docs
        .iter()
        .map(|d| d["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["llama-3-8b", "llama-3-8b"],
        "the valid pair's Service and Deployment"
    );
}

#[test]
fn unknown_fields_and_unreadable_files_exit_2() {
    let typo = seed(&["model-https.yaml"]).replace("format:", "formt:");
    let out = render(&[], &[], &typo);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown field(s) spec.formt"), "{stderr}");

    let out = render(&[], &[], "kind: [unclosed");
    assert_eq!(out.status.code(), Some(2));
}
