//! `llmkube-gateway explain`, run as an operator would: the seed's router and made-up ones,
//! requests given by header, model and body, JSON and text output, exit codes, and a probe of
//! each candidate backend.

use std::path::Path;
use std::process::{Command, Output};

use crate::policies::wasm_dir;
use crate::support::router_yaml;

/// Runs `llmkube-gateway explain --router ROUTER ARGS...`.
fn explain(router: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_llmkube-gateway"))
        .arg("explain")
        .arg("--router")
        .arg(router)
        .arg("--policy-dir")
        .arg(wasm_dir())
        .args(args)
        .env("LLMKUBE_LOG", "error")
        .output()
        .unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn seed() -> std::path::PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/seed/secure-router.yaml"
    ))
    .into()
}

#[test]
fn a_labelled_pii_request_is_explained_as_kept_local_by_the_seed_rule() {
    let out = explain(
        &seed(),
        &[
            "-H",
            "x-llmkube-classification: pii",
            "--no-probe",
            "-o",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "routed");
    let e = json(&out);
    assert_eq!(e["router"], "secure-router");
    assert_eq!(e["classifications"], serde_json::json!(["pii"]));
    assert_eq!(e["classificationSource"], "header");
    assert_eq!(e["rules"][0]["name"], "pii-stays-local");
    assert_eq!(e["rules"][0]["outcome"], "decided");
    let route = &e["route"];
    assert_eq!(route["via"], "rule");
    assert_eq!(route["by"], "pii-stays-local");
    assert_eq!(route["failClosed"], true);
    assert_eq!(route["sensitive"], true);
    let candidates = route["candidates"].as_array().unwrap();
    assert_eq!(
        candidates.len(),
        1,
        "only the local backend: {candidates:?}"
    );
    assert_eq!(candidates[0]["name"], "local-llama");
    assert_eq!(candidates[0]["tier"], "local");
    assert_eq!(candidates[0]["health"], "not probed");
    assert_eq!(e["answer"]["status"], 200);
}

#[test]
fn a_card_number_in_the_body_is_found_by_the_detector_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    // The seed's router with the detector on for requests without a label.
    let router = dir.path().join("router.yaml");
    let seed_text = std::fs::read_to_string(seed()).unwrap();
    std::fs::write(
        &router,
        seed_text + "  policy: {classification: {mode: hybrid}}\n",
    )
    .unwrap();
    let body = dir.path().join("body.json");
    let prompt = "my card is 4111 1111 1111 1111, please summarise my statement";
    let chat = serde_json::json!({"messages": [{"role": "user", "content": prompt}]});
    std::fs::write(&body, chat.to_string()).unwrap();
    let out = explain(
        &router,
        &[
            "--body",
            body.to_str().unwrap(),
            "--model",
            "gpt-4o",
            "--no-probe",
            "-o",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let e = json(&out);
    assert_eq!(e["classificationSource"], "detector");
    assert!(e["classifications"].to_string().contains("pii"), "{e}");
    let detector = &e["policies"][0];
    assert_eq!(detector["result"], "continue", "{e}");
    assert_eq!(
        detector["digest"].as_str().unwrap().len(),
        64,
        "the module's sha256"
    );
    assert_eq!(e["route"]["by"], "pii-stays-local");

    // Without the card number: the rule does not match, and says why; the default route serves.
    let out = explain(&router, &["--model", "gpt-4o", "--no-probe", "-o", "json"]);
    let e = json(&out);
    assert_eq!(e["policies"][0]["result"], "continue");
    assert_eq!(e["rules"][0]["outcome"], "no-match");
    assert_eq!(e["rules"][0]["reason"], "classification is none of pii");
    assert_eq!(e["route"]["via"], "default-route");
    assert_eq!(e["route"]["candidates"][0]["name"], "local-llama");
}

/// A sensitive request whose only route is the cloud is refused as the server refuses it:
/// the same status, code and message, exit code 1; earlier rules say why they did not match.
#[test]
fn a_sensitive_request_with_no_local_route_is_refused_with_the_servers_answer() {
    let dir = tempfile::tempdir().unwrap();
    let router = dir.path().join("router.yaml");
    let spec = "  backends:
    - {name: cloud, external: {provider: openai, url: 'http://127.0.0.1:9'}, tier: cloud}
    - {name: local, inferenceServiceRef: {name: llama}, tier: local}
  rules:
    - {name: code, match: {taskComplexity: code}, route: {backends: [local]}}
    - {name: by-team, match: {headers: {x-team: search}}, route: {backends: [cloud]}}
  defaultRoute: cloud
  policy: {classification: {mode: header-only}}
";
    std::fs::write(&router, router_yaml("r", spec)).unwrap();
    let out = explain(
        &router,
        &[
            "-H",
            "x-llmkube-classification: phi",
            "-H",
            "x-team: search",
            "-o",
            "json",
            "--no-probe",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "refused");
    let e = json(&out);
    assert_eq!(e["answer"]["status"], 503);
    assert_eq!(e["answer"]["outcome"], "fail_closed");
    assert!(e["route"].is_null());
    assert_eq!(e["rules"][0]["outcome"], "no-match");
    assert_eq!(e["rules"][0]["reason"], "task complexity is not code");
    assert_eq!(e["rules"][1]["outcome"], "passed-on");
    let reason = e["rules"][1]["reason"].as_str().unwrap();
    assert!(reason.contains("cloud-tier"), "{reason}");

    // The text form tells the same story.
    let out = explain(
        &router,
        &["-H", "x-llmkube-classification: phi", "--no-probe"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("classification  phi (from the classification header)"),
        "{text}"
    );
    assert!(
        text.contains("no match: task complexity is not code"),
        "{text}"
    );
    assert!(text.contains("answer          503"), "{text}");
}

#[test]
fn candidates_are_probed_in_the_order_they_would_be_tried() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let router = dir.path().join("router.yaml");
    let spec = "  backends:
    - {name: down, inferenceServiceRef: {name: a}, tier: local}
    - {name: up, inferenceServiceRef: {name: b}, tier: local}
  rules:
    - {name: all, route: {backends: [down, up], strategy: primary-fallback}}
  defaultRoute: up
";
    std::fs::write(&router, router_yaml("r", spec)).unwrap();
    let down = format!("--backend-address=down=http://{closed}");
    let up = format!("--backend-address=up=http://{open}");
    let out = explain(&router, &[&down, &up, "-o", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let e = json(&out);
    let c = &e["route"]["candidates"];
    assert_eq!(c[0]["name"], "down");
    assert!(
        c[0]["health"].as_str().unwrap().starts_with("unreachable"),
        "{c}"
    );
    assert_eq!(c[0]["address"], format!("http://{closed}"));
    assert_eq!(c[1]["name"], "up");
    assert_eq!(c[1]["health"], "reachable");
}

#[test]
fn a_router_or_request_that_cannot_be_read_exits_2_and_a_bad_request_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let router = dir.path().join("router.yaml");
    std::fs::write(&router, "kind: ModelRouter\nspec: {}\n").unwrap();
    let out = explain(&router, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!out.stderr.is_empty());

    // A body the server refuses is explained with the server's 400.
    let body = dir.path().join("body.json");
    std::fs::write(&body, "[1, 2]").unwrap();
    let out = explain(
        &seed(),
        &["--body", body.to_str().unwrap(), "-o", "json", "--no-probe"],
    );
    assert_eq!(out.status.code(), Some(1));
    let e = json(&out);
    assert_eq!(e["answer"]["status"], 400);
    assert_eq!(e["answer"]["outcome"], "bad_request");
    assert_eq!(e["rules"][0]["outcome"], "not-reached");
}
