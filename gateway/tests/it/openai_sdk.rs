//! The official `openai` Python SDK as a real client (see `gateway/tests/python`).

use std::process::Command;

use crate::support::*;

#[tokio::test]
async fn the_official_openai_python_sdk_works_against_the_gateway() {
    if std::env::var_os("LLMKUBE_SKIP_PYTHON").is_some() {
        eprintln!("LLMKUBE_SKIP_PYTHON is set: skipping the openai SDK test");
        return;
    }
    let cast = Cast::new().await;
    let gw = cast
        .gateway(
            "  rules:
    - {name: pii, match: {dataClassification: [pii]}, route: {backends: [local-a]}, failClosed: true}
  defaultRoute: local-b
  defaultRouteStrategy: BackendNameMatch
",
        )
        .await;
    cast.a.stop();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/test_openai_sdk.py"
    );
    let base = gw.url("/v1");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", script])
            .env("LLMKUBE_GATEWAY_URL", base)
            .output()
    })
    .await
    .unwrap()
    .expect("python3 runs");
    let out = String::from_utf8_lossy(&output.stdout);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "openai SDK tests failed (install them with: pip install -r gateway/tests/python/requirements.txt)\n{out}\n{err}"
    );
    assert!(out.contains("5 passed"), "{out}");
}
