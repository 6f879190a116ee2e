//! Audit lines and metrics.

use crate::support::*;

#[tokio::test]
async fn one_audit_line_per_request_with_the_decision() {
    let cast = Cast::new().await;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let gw = cast
        .gateway(&format!(
            "  rules:
    - {{name: pii, match: {{dataClassification: [pii]}}, route: {{backends: [local-a]}}, failClosed: true, timeout: 8s}}
  defaultRoute: cloud
  policy: {{auditLog: {{sink: file, filePath: '{}'}}}}
",
            audit.display()
        ))
        .await;
    gw.chat(
        "m",
        &[
            ("x-llmkube-classification", "pii"),
            ("x-request-id", "audit-1"),
        ],
    )
    .await;
    gw.request(
        http::Method::POST,
        "/v1/chat/completions",
        &[("x-request-id", "audit-2")],
        chat_body("m", true),
    )
    .await;
    cast.a.stop();
    gw.chat(
        "m",
        &[
            ("x-llmkube-classification", "pii"),
            ("x-request-id", "audit-3"),
        ],
    )
    .await;
    gw.request(
        http::Method::POST,
        "/v1/chat/completions",
        &[("x-request-id", "audit-4")],
        "{",
    )
    .await;
    let lines = audit_lines(&audit, 4).await;
    assert_eq!(lines.len(), 4, "{lines:#?}");
    let line = |id: &str| lines.iter().find(|l| l["requestId"] == id).unwrap().clone();
    let ok = line("audit-1");
    assert_eq!(ok["router"], "test-router");
    assert_eq!(ok["rule"], "pii");
    assert_eq!(ok["backend"], "local-a");
    assert_eq!(ok["backendTier"], "local");
    assert_eq!(ok["classification"], "pii");
    assert_eq!(ok["outcome"], "ok");
    assert_eq!(ok["status"], 200);
    assert_eq!(ok["attempts"], 1);
    assert_eq!(ok["timeoutMs"], 8000);
    assert!(ok["bytesIn"].as_u64().unwrap() > 0 && ok["bytesOut"].as_u64().unwrap() > 0);
    assert!(ok["ttfbMs"].as_f64().is_some() && ok["latencyMs"].as_f64().is_some());
    assert!(ok["time"].as_str().unwrap().ends_with('Z'));
    assert!(
        ok.get("body").is_none(),
        "bodies only with includeRequestBody"
    );
    let stream = line("audit-2");
    assert_eq!(
        (
            stream["outcome"].as_str(),
            stream["backend"].as_str(),
            stream["backendTier"].as_str()
        ),
        (Some("ok_stream"), Some("cloud"), Some("cloud"))
    );
    let closed = line("audit-3");
    assert_eq!(
        (closed["outcome"].as_str(), closed["status"].as_u64()),
        (Some("fail_closed_runtime"), Some(503))
    );
    assert!(closed["error"].as_str().unwrap().contains("local-a"));
    assert_eq!(line("audit-4")["outcome"], "bad_request");
}

#[tokio::test]
async fn metrics_use_the_reference_names_and_bounded_labels() {
    let cast = Cast::new().await;
    let gw = cast.gateway("  rules: [{name: pii, match: {dataClassification: [pii]}, route: {backends: [local-a]}, failClosed: true}]\n  defaultRoute: local-b\n  proxy: {consecutiveFailures: 1}\n").await;
    gw.chat("m", &[("x-llmkube-classification", "pii")]).await;
    gw.chat("m", &[("x-llmkube-classification", "attacker-chosen-1")])
        .await;
    gw.chat("m", &[("x-llmkube-classification", "attacker-chosen-2")])
        .await;
    cast.a.stop();
    gw.chat("m", &[("x-llmkube-classification", "pii")]).await;
    let m = gw.get("/metrics").await.text();
    for want in [
        r#"llmkube_router_requests_total{router="test-router",rule="pii",backend="local-a",classification="pii",team="",outcome="ok"} 1"#,
        r#"llmkube_router_requests_total{router="test-router",rule="",backend="local-b",classification="other",team="",outcome="ok"} 2"#,
        r#"llmkube_router_fail_closed_total{router="test-router",rule="pii"} 1"#,
        r#"llmkube_router_backend_health{router="test-router",backend="local-a"} 0"#,
        r#"llmkube_router_backend_health{router="test-router",backend="local-b"} 1"#,
        r#"llmkube_router_active_backends{router="test-router"} 2"#,
        "llmkube_router_request_duration_seconds_bucket",
        "llmkube_router_time_to_first_byte_seconds_count",
        "llmkube_router_gateway_overhead_seconds_sum",
    ] {
        assert!(m.contains(want), "missing {want} in\n{m}");
    }
    assert!(
        !m.contains("attacker-chosen"),
        "client-chosen values must not become label values"
    );
}

#[tokio::test]
async fn request_bodies_are_audited_only_when_asked() {
    let cast = Cast::new().await;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let gw = cast
        .gateway(&format!(
            "  defaultRoute: local-a\n  policy: {{auditLog: {{sink: file, filePath: '{}', includeRequestBody: true}}}}\n",
            audit.display()
        ))
        .await;
    gw.chat("with-body", &[]).await;
    let line = audit_lines(&audit, 1).await.remove(0);
    let body: serde_json::Value = serde_json::from_str(line["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["model"], "with-body");
    assert_eq!(body["messages"][0]["content"], "hi");
}
