//! Routing decisions as a client sees them: which backend answered.

use crate::support::*;

#[tokio::test]
async fn every_match_field_routes_end_to_end() {
    let cast = Cast::new().await;
    let gw = cast
        .gateway(
            "  rules:
    - {name: pii, match: {dataClassification: [pii]}, route: {backends: [local-a]}, failClosed: true}
    - {name: team, match: {headers: {X-Team: blue}}, route: {backends: [local-b]}}
    - {name: hard, match: {taskComplexity: high}, route: {backends: [cloud]}}
    - {name: llamas, match: {models: ['llama-*']}, route: {backends: [local-b]}}
    - {name: vision, match: {requiredCapabilities: [vision]}, route: {backends: [local-a, cloud]}}
  defaultRoute: local-a
",
        )
        .await;
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: [Case<'_>; 6] = [
        (
            "m",
            &[("x-llmkube-classification", "Public, PII")],
            "local-a",
            "pii",
        ),
        ("m", &[("x-team", "blue")], "local-b", "team"),
        (
            "m",
            &[("x-llmkube-task-complexity", "HIGH")],
            "cloud",
            "hard",
        ),
        ("llama-3", &[], "local-b", "llamas"),
        // `vision` has no match condition besides capabilities: local-a lacks vision, so cloud.
        ("m", &[], "cloud", "vision"),
        (
            "m",
            &[("x-team", "blue"), ("x-llmkube-classification", "pii")],
            "local-a",
            "pii",
        ),
    ];
    for (model, headers, backend, rule) in cases {
        let r = gw.chat(model, headers).await;
        assert_eq!(r.status, 200, "{model} {headers:?}: {}", r.text());
        assert_eq!(
            (r.backend(), r.header("x-llmkube-rule")),
            (backend, rule),
            "{model} {headers:?}"
        );
        assert!(
            r.json()["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .ends_with(backend)
        );
    }
}

#[tokio::test]
async fn backend_name_match_accepts_exactly_the_published_ids() {
    let cast = Cast::new().await;
    let gw = cast
        .gateway("  defaultRouteStrategy: BackendNameMatch\n")
        .await;
    let models = gw.get("/v1/models").await.json();
    assert_eq!(models["object"], "list");
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["local-a", "llama-b", "gpt-x"]);
    for m in models["data"].as_array().unwrap() {
        assert_eq!(m["object"], "model");
        assert!(m["created"].as_u64().is_some() && m["owned_by"].is_string());
    }
    for (id, backend) in [
        ("local-a", "local-a"),
        ("llama-b", "local-b"),
        ("gpt-x", "cloud"),
    ] {
        assert_eq!(
            gw.chat(id, &[]).await.backend(),
            backend,
            "every published id routes"
        );
    }
    assert_error(&gw.chat("local-b", &[]).await, 503, "no_route");
    // The cloud backend got its own model name, not the published id.
    let sent = cast.cloud.requests();
    assert_eq!(sent.last().unwrap().json()["model"], "gpt-4o-mini");
}

#[tokio::test]
async fn sensitive_requests_never_reach_the_cloud_by_name_or_default() {
    let cast = Cast::new().await;
    let gw = cast
        .gateway("  defaultRoute: cloud\n  defaultRouteStrategy: BackendNameMatch\n")
        .await;
    for model in ["gpt-x", "anything"] {
        let r = gw.chat(model, &[("x-llmkube-classification", "phi")]).await;
        assert_error(&r, 503, "fail_closed");
    }
    assert_eq!(
        gw.chat("llama-b", &[("x-llmkube-classification", "phi")])
            .await
            .backend(),
        "local-b"
    );
    assert_eq!(cast.cloud.request_count(), 0);
    assert_eq!(gw.chat("anything", &[]).await.backend(), "cloud");
}
