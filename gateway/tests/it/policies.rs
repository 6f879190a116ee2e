//! Policies through the gateway: the built-in PII detector, an SDK-built custom policy,
//! load-time refusals, and misbehaving modules that must deny without hurting the gateway.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use llmkube_gateway::policy::{EngineSettings, PolicyEngine, harness};

use crate::support::*;

/// Where `cargo build --release --target wasm32-unknown-unknown` puts policies.
pub fn wasm_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")));
    target.join("wasm32-unknown-unknown/release")
}

/// A built policy module; panics with the build command when it is missing.
pub fn policy_wasm(file: &str) -> (PathBuf, Vec<u8>) {
    let path = wasm_dir().join(file);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{} is missing ({e}); build the policies first: cargo build --release --target wasm32-unknown-unknown -p llmkube-pii-detector -p llmkube-tenant-allowlist (.ci/run does)",
            path.display()
        )
    });
    (path, bytes)
}

fn sha256(bytes: &[u8]) -> String {
    llmkube_gateway::policy::module::sha256_hex(bytes)
}

pub async fn detector_gateway(cast: &Cast, mode: &str, audit: &std::path::Path) -> Gw {
    detector_gateway_with(cast, mode, audit, "").await
}

/// A detector gateway with extra `policy.classification` fields (`key: value, ...`).
pub async fn detector_gateway_with(
    cast: &Cast,
    mode: &str,
    audit: &std::path::Path,
    classification: &str,
) -> Gw {
    let extra = if classification.is_empty() {
        String::new()
    } else {
        format!(", {classification}")
    };
    let spec = format!(
        "{}  rules:
    - {{name: pii-stays-local, match: {{dataClassification: [pii]}}, route: {{backends: [local-a]}}, failClosed: true}}
  defaultRoute: cloud
  policy: {{classification: {{mode: {mode}{extra}}}, auditLog: {{sink: file, filePath: '{}'}}}}
",
        cast.backends(),
        audit.display()
    );
    gateway_with(&spec, &[("local-a", &cast.a)], |c| {
        c.policy_dir = Some(wasm_dir())
    })
    .await
}

fn chat_with(prompt: &str) -> String {
    serde_json::json!({"model": "m", "messages": [{"role": "user", "content": prompt}]}).to_string()
}

#[tokio::test]
async fn detector_mode_keeps_prompts_with_personal_data_local() {
    let cast = Cast::new().await;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let gw = detector_gateway(&cast, "detector", &audit).await;
    let post = |body: String| gw.request(http::Method::POST, "/v1/chat/completions", &[], body);
    let r = post(chat_with("my SSN is 078-05-1120, call (415) 555-2671")).await;
    assert_eq!(
        (r.status.as_u16(), r.backend()),
        (200, "local-a"),
        "{}",
        r.text()
    );
    assert_eq!(post(chat_with("write a haiku")).await.backend(), "cloud");
    cast.a.stop();
    let r = post(chat_with("card 4111 1111 1111 1111")).await;
    assert_error(&r, 503, "fail_closed");
    assert_eq!(
        cast.cloud.request_count(),
        1,
        "only the clean prompt reached the cloud"
    );

    let lines = audit_lines(&audit, 3).await;
    let detected = &lines[0];
    assert_eq!(detected["classification"], "pii");
    assert_eq!(detected["annotations"]["pii.kinds"], "phone,ssn");
    let traced = &detected["policies"][0];
    assert_eq!(traced["name"], "pii-detector");
    assert_eq!(traced["result"], "continue");
    assert_eq!(
        traced["digest"],
        sha256(&policy_wasm("llmkube_pii_detector.wasm").1)
    );
    assert_eq!(detected["rulesDigest"].as_str().unwrap().len(), 64);
    assert!(
        !lines.iter().any(|l| l.to_string().contains("078-05-1120")),
        "values are never logged"
    );
}

#[tokio::test]
async fn hybrid_mode_trusts_a_present_header_and_detects_otherwise() {
    let cast = Cast::new().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = detector_gateway(&cast, "hybrid", &dir.path().join("audit.log")).await;
    let ssn = chat_with("my SSN is 078-05-1120");
    let r = gw
        .request(http::Method::POST, "/v1/chat/completions", &[], ssn.clone())
        .await;
    assert_eq!(r.backend(), "local-a", "no header: the detector decides");
    let r = gw
        .request(
            http::Method::POST,
            "/v1/chat/completions",
            &[("x-llmkube-classification", "public")],
            ssn,
        )
        .await;
    assert_eq!(
        r.backend(),
        "cloud",
        "a present header is trusted in hybrid mode"
    );
}

fn tenant_policy(path: &std::path::Path, sha: &str, extra: &str) -> String {
    format!(
        "  policies:
    - name: tenants
      module: {{file: '{}'}}
      sha256: {sha}
      config: {{tenants: {{acme: [llama-b], globex: ['*']}}}}
{extra}",
        path.display()
    )
}

#[tokio::test]
async fn a_custom_sdk_policy_gates_tenants_and_is_audited_with_its_digest() {
    let cast = Cast::new().await;
    let (path, bytes) = policy_wasm("llmkube_tenant_allowlist.wasm");
    let digest = sha256(&bytes);
    let gw = cast
        .gateway(&format!(
            "  defaultRouteStrategy: BackendNameMatch\n{}",
            tenant_policy(&path, &digest, "")
        ))
        .await;
    let r = gw.chat("llama-b", &[("x-tenant", "acme")]).await;
    assert_eq!((r.status.as_u16(), r.backend()), (200, "local-b"));
    let r = gw.chat("gpt-x", &[("x-tenant", "acme")]).await;
    assert_error(&r, 403, "policy_rejected");
    // The policy's own code is the error's code (`.with_code`), as the SDK documents.
    assert_eq!(
        r.json()["error"]["code"],
        "model_not_allowed",
        "{}",
        r.text()
    );
    let missing = gw.chat("llama-b", &[]).await;
    assert_error(&missing, 401, "policy_rejected");
    assert_eq!(missing.json()["error"]["code"], "tenant_missing");
    // A second x-tenant with another value could let the policy and the backend disagree
    // about the tenant: refused; the same value twice is no ambiguity.
    let twice = gw
        .chat("llama-b", &[("x-tenant", "acme"), ("x-tenant", "globex")])
        .await;
    assert_error(&twice, 400, "invalid_request_error");
    assert!(twice.text().contains("x-tenant"), "{}", twice.text());
    let same = gw
        .chat("llama-b", &[("x-tenant", "acme"), ("x-tenant", "acme")])
        .await;
    assert_eq!(same.status, 200, "{}", same.text());
    assert_eq!(
        gw.chat("gpt-x", &[("x-tenant", "globex")]).await.backend(),
        "cloud"
    );
    assert_eq!(cast.cloud.request_count(), 1);

    let lines = audit_lines(&gw.dir.path().join("audit.log"), 6).await;
    let rejected = lines
        .iter()
        .find(|l| l["outcome"] == "policy_rejected")
        .unwrap();
    assert_eq!(rejected["policies"][0]["digest"], digest);
    assert_eq!(rejected["policies"][0]["result"], "reject");
    // Module and configuration together say which policy served the request.
    let config = serde_json::json!({"tenants": {"acme": ["llama-b"], "globex": ["*"]}});
    assert_eq!(
        rejected["policies"][0]["configDigest"],
        sha256(&serde_json::to_vec(&config).unwrap())
    );
    let m = gw.get("/metrics").await.text();
    assert!(m.contains(r#"llmkube_policy_results_total{router="test-router",policy="tenants",result="reject"} 2"#), "{m}");
}

#[tokio::test]
async fn a_wrong_digest_or_a_refused_config_keeps_the_router_from_loading() {
    let cast = Cast::new().await;
    let (path, bytes) = policy_wasm("llmkube_tenant_allowlist.wasm");
    let wrong = "0".repeat(64);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("router.yaml");
    let spec = format!(
        "{}{}    - name: picky
      module: {{file: '{}'}}
      sha256: {}
      config: {{tenants: {{}}}}
    - name: typo
      module: {{file: '{}'}}
      sha256: {}
      config: {{tenants: {{acme: [llama, 7]}}}}
",
        cast.backends(),
        tenant_policy(&path, &wrong, ""),
        path.display(),
        sha256(&bytes),
        path.display(),
        sha256(&bytes)
    );
    std::fs::write(&file, router_yaml("r", &spec)).unwrap();
    let err = llmkube_gateway::start(llmkube_gateway::GatewayConfig::new(&file))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("spec.policies[0]: sha256 mismatch"), "{err}");
    assert!(
        err.contains(
            "spec.policies[1].config: the policy refused its config: at least one tenant is required"
        ),
        "{err}"
    );
    // The file, the config's path and the field: not a position in re-serialised JSON.
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert!(
        err.contains("spec.policies[2].config: the policy refused its config: invalid config at `tenants.acme[1]`: invalid type: integer `7`, expected a string"),
        "{err}"
    );
    assert!(!err.contains("column"), "{err}");
}

/// A hand-written policy module: `body` is the evaluate function's body (returning i64).
fn wat_policy(body: &str, abi_major: u8, meta_major: u32) -> Vec<u8> {
    // A valid "continue" output: version 1, action 0, four empty lists.
    let wat = format!(
        r#"(module
  (memory (export "memory") 1)
  (global (export "llmkube_abi_major") i32 (i32.const 16))
  (global (export "llmkube_abi_minor") i32 (i32.const 20))
  (data (i32.const 16) "\{abi_major:02x}\00\00\00\00\00\00\00")
  (data (i32.const 64) "\01\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00")
  (data (i32.const 128) "garbage")
  (func (export "llmkube_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "llmkube_configure") (param i32 i32) (result i64) (i64.const 0))
  (func (export "llmkube_evaluate") (param i32 i32) (result i64) {body}))"#
    );
    let mut wasm = wat::parse_str(&wat).unwrap();
    let meta = format!(
        r#"{{"abi":{{"major":{meta_major},"minor":0}},"policy":{{"name":"hand-written","version":"0"}}}}"#
    );
    let name = llmkube_policy_sdk::abi::METADATA_SECTION;
    let mut payload = vec![name.len() as u8];
    payload.extend_from_slice(name.as_bytes());
    payload.extend_from_slice(meta.as_bytes());
    wasm.push(0); // custom section id
    let mut n = payload.len();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        wasm.push(if n > 0 { byte | 0x80 } else { byte });
        if n == 0 {
            break;
        }
    }
    wasm.extend_from_slice(&payload);
    wasm
}

const CONTINUE: &str = "(i64.const 274877906962)"; // (64 << 32) | 18

#[tokio::test]
async fn misbehaving_policies_deny_while_the_gateway_keeps_serving() {
    let cast = Cast::new().await;
    let dir = tempfile::tempdir().unwrap();
    let outside = format!("(i64.const {})", (0x7fff_0000_i64 << 32) | 64);
    let cases = [
        ("trap", "(unreachable)".to_owned()),
        ("endless-loop", "(loop $l (br $l)) (i64.const 0)".to_owned()),
        (
            "unbounded-memory",
            "(loop $l (drop (memory.grow (i32.const 1))) (br $l)) (i64.const 0)".to_owned(),
        ),
        (
            "garbage-output",
            format!("(i64.const {})", (128_i64 << 32) | 7),
        ),
        ("output-outside-memory", outside),
    ];
    for (name, body) in &cases {
        let wasm = wat_policy(body, 1, 1);
        let module = dir.path().join(format!("{name}.wasm"));
        std::fs::write(&module, &wasm).unwrap();
        let policy = |mode: &str| {
            format!(
                "  defaultRoute: local-a\n  policies:\n    - {{name: {name}, module: {{file: '{}'}}, sha256: {}, failureMode: {mode}}}\n",
                module.display(),
                sha256(&wasm)
            )
        };
        let gw = cast.gateway(&policy("closed")).await;
        for _ in 0..2 {
            let r = gw.chat("m", &[]).await;
            assert_error(&r, 503, "policy_error");
            assert!(r.text().contains(name), "{name}: {}", r.text());
        }
        assert_eq!(
            gw.get("/healthz").await.status,
            200,
            "{name}: the gateway keeps serving"
        );
        assert_eq!(
            gw.rewrite(&format!("{}{}", cast.backends(), policy("open"))),
            Ok(true)
        );
        let r = gw.chat("m", &[]).await;
        assert_eq!(
            (r.status.as_u16(), r.backend()),
            (200, "local-a"),
            "{name} with failureMode open is skipped"
        );
        let lines = audit_lines(&gw.dir.path().join("audit.log"), 3).await;
        assert_eq!(lines[2]["policies"][0]["result"], "failed-open", "{name}");
        assert_eq!(lines[0]["outcome"], "policy_error", "{name}");
    }
    assert_eq!(
        cast.a.request_count(),
        cases.len(),
        "only the fail-open requests were served"
    );
}

#[tokio::test]
async fn a_module_for_another_abi_major_is_refused_at_load() {
    let engine = PolicyEngine::new(EngineSettings::default()).unwrap();
    let load = |wasm: Vec<u8>| {
        llmkube_gateway::policy::PolicyModule::load(
            &engine,
            "p",
            &wasm,
            None,
            &serde_json::json!({}),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
    };
    assert!(load(wat_policy(CONTINUE, 2, 1)).contains("exports policy ABI major version 2"));
    assert!(load(wat_policy(CONTINUE, 1, 2)).contains("built for policy ABI 2.0"));
    assert!(load(wat::parse_str("(module)").unwrap()).contains("metadata section"));
    assert!(
        llmkube_gateway::policy::PolicyModule::load(
            &engine,
            "p",
            &wat_policy(CONTINUE, 1, 1),
            None,
            &serde_json::json!({})
        )
        .is_ok()
    );
}

#[tokio::test]
async fn policies_hot_swap_under_load_without_a_failed_request() {
    let cast = Cast::new().await;
    let (path, bytes) = policy_wasm("llmkube_tenant_allowlist.wasm");
    let digest = sha256(&bytes);
    let with_policy = format!(
        "{}  defaultRoute: local-b\n{}",
        cast.backends(),
        tenant_policy(&path, &digest, "")
    );
    let without = format!("{}  defaultRoute: local-a\n", cast.backends());
    let gw = Arc::new(cast.gateway("  defaultRoute: local-a\n").await);
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (gw, stop, ok, failed) = (gw.clone(), stop.clone(), ok.clone(), failed.clone());
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let r = gw.chat("llama-b", &[("x-tenant", "acme")]).await;
                if r.status == 200 { &ok } else { &failed }.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for i in 0..16 {
        tokio::time::sleep(Duration::from_millis(40)).await;
        let spec = if i % 2 == 0 { &with_policy } else { &without };
        assert_eq!(gw.rewrite(spec), Ok(true));
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0);
    assert!(ok.load(Ordering::Relaxed) > 16);
    assert!(
        cast.a.request_count() > 0 && cast.b.request_count() > 0,
        "both versions served"
    );
}

#[test]
fn the_harness_runs_fixture_files_on_built_modules() {
    let engine = PolicyEngine::new(EngineSettings::default()).unwrap();
    for (wasm, fixtures, cases) in [
        (
            "llmkube_tenant_allowlist.wasm",
            include_str!("../../../examples/custom-policy/fixtures/tenants.json"),
            6,
        ),
        (
            "llmkube_pii_detector.wasm",
            include_str!("../../../policies/pii-detector/fixtures/decisions.json"),
            5,
        ),
    ] {
        let report = harness::run_fixtures(&engine, &policy_wasm(wasm).1, fixtures).unwrap();
        assert_eq!(
            (report.cases, report.failures.len()),
            (cases, 0),
            "{wasm}: {:?}",
            report.failures
        );
    }
    let wrong = include_str!("../../../examples/custom-policy/fixtures/tenants.json")
        .replace("\"status\": 401", "\"status\": 418");
    let report = harness::run_fixtures(
        &engine,
        &policy_wasm("llmkube_tenant_allowlist.wasm").1,
        &wrong,
    )
    .unwrap();
    assert_eq!(
        report.failures.len(),
        1,
        "a wrong expectation fails: {:?}",
        report.failures
    );
    assert!(report.failures[0].contains("status is 401, expected 418"));

    // The harness shows each case as the gateway would, from the module's own metadata: a
    // header it does not declare is not seen, a route is not given to a pre-phase policy.
    let undeclared = r#"{"config": {"tenants": {"acme": ["*"]}}, "cases": [
        {"name": "tenant in an undeclared header", "request": {"headers": {"x-team": "acme"}},
         "expect": {"action": "continue"}},
        {"name": "route for a pre-phase policy", "request": {"headers": {"x-tenant": "acme"}, "routeBackends": ["cloud"]},
         "expect": {"action": "continue"}}]}"#;
    let report = harness::run_fixtures(
        &engine,
        &policy_wasm("llmkube_tenant_allowlist.wasm").1,
        undeclared,
    )
    .unwrap();
    assert_eq!(report.failures.len(), 2, "{:?}", report.failures);
    assert!(
        report.failures[0].contains("header x-team (not in its metadata's needs.headers)"),
        "{:?}",
        report.failures
    );
    assert!(
        report.failures[1].contains("phase is pre"),
        "{:?}",
        report.failures
    );
    assert!(
        report.metadata.contains("\"headers\":[\"x-tenant\"]"),
        "{}",
        report.metadata
    );
}

#[tokio::test]
async fn the_custom_policy_example_router_runs_with_its_pinned_module() {
    // Policy builds are reproducible, so the committed pin must match a fresh build; if this
    // fails after changing the policy or the SDK, run examples/custom-policy/pin.sh.
    let local = llmkube_mock_upstream::MockUpstream::start("local-llama")
        .await
        .unwrap();
    // The example names the module under ./target; follow CARGO_TARGET_DIR if it is set.
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/custom-policy/router.yaml"
    ))
    .unwrap();
    let module = wasm_dir().join("llmkube_tenant_allowlist.wasm");
    let dir = tempfile::tempdir().unwrap();
    let router = dir.path().join("router.yaml");
    std::fs::write(
        &router,
        example.replace(
            "../../target/wasm32-unknown-unknown/release/llmkube_tenant_allowlist.wasm",
            &module.display().to_string(),
        ),
    )
    .unwrap();
    let mut config = llmkube_gateway::GatewayConfig::new(router);
    config.watch = false;
    config
        .resolve
        .addresses
        .insert("local-llama".into(), local.url());
    let gw = llmkube_gateway::start(config)
        .await
        .unwrap_or_else(|e| panic!("{e}\n(run examples/custom-policy/pin.sh)"));
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let send = |tenant: &'static str| {
        let req = http::Request::post(format!("{}/v1/chat/completions", gw.url()))
            .header("x-tenant", tenant)
            .body(http_body_util::Full::new(bytes::Bytes::from(chat_body(
                "llama-3-8b",
                false,
            ))))
            .unwrap();
        client.request(req)
    };
    assert_eq!(send("acme").await.unwrap().status(), 200);
    assert_eq!(send("initech").await.unwrap().status(), 403);
    gw.shutdown().await;
}

/// The detector as it ships (WebAssembly, its SIMD skip) decides like the scanner compiled
/// natively, on every prompt of the Faker corpus and on personal data placed at every offset
/// of a 16-byte chunk after filler.
#[test]
fn the_shipped_detector_decides_like_the_native_scanner() {
    use llmkube_gateway::policy::PolicyModule;
    use llmkube_pii_detector::scan::{Kinds, scan};
    use llmkube_policy_sdk::view::RequestView;

    #[derive(serde::Deserialize)]
    struct Corpus {
        positives: Vec<Case>,
        negatives: Vec<Case>,
    }
    #[derive(serde::Deserialize)]
    struct Case {
        text: String,
    }
    let corpus: Corpus = serde_json::from_str(include_str!(
        "../../../policies/pii-detector/fixtures/faker-corpus.json"
    ))
    .unwrap();
    let engine = PolicyEngine::new(EngineSettings::default()).unwrap();
    let detector = PolicyModule::load(
        &engine,
        "pii-detector",
        &policy_wasm("llmkube_pii_detector.wasm").1,
        None,
        &serde_json::json!({}),
    )
    .unwrap();
    let shipped = |text: &str| {
        let view = RequestView {
            method: "POST",
            path: "/v1/chat/completions",
            model: "m",
            prompt: Some(text),
            ..Default::default()
        };
        // Encoded as the gateway does, at the ABI minor the module was built for.
        let mut w = llmkube_policy_sdk::wire::Writer::with_capacity(text.len() + 64);
        view.encode_for(detector.abi_minor, &mut w);
        detector
            .evaluate(&w.buf, |out| Ok(out.add_classifications().count()))
            .unwrap()
            > 0
    };
    let mut texts: Vec<String> = corpus
        .positives
        .into_iter()
        .chain(corpus.negatives)
        .map(|c| c.text)
        .collect();
    for at in 0..40 {
        for pii in [
            "078-05-1120",
            "a@example.com",
            "GB82 WEST 1234 5698 7654 32",
            "+44 20 7946 0958",
        ] {
            texts.push(format!(
                "{}{pii} and more prose after it",
                &"lorem ipsum ".repeat(4)[..at]
            ));
        }
    }
    let mut flagged = 0;
    for text in &texts {
        let native = !scan(text, Kinds::all(), &[]).is_empty();
        assert_eq!(shipped(text), native, "{text}");
        flagged += usize::from(native);
    }
    assert!(flagged > texts.len() / 2, "{flagged} of {}", texts.len());
}
