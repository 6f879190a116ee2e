//! Dispatch: strategies, fallback, quarantine, fail-closed, and what reaches each backend.

use std::time::Duration;

use llmkube_mock_upstream::MockUpstream;

use crate::support::*;

#[tokio::test]
async fn falls_back_on_5xx_and_quarantines_the_failed_backend() {
    let cast = Cast::new().await;
    let gw = cast
        .gateway("  rules: [{name: r, route: {backends: [local-a, local-b]}}]\n  proxy: {consecutiveFailures: 1}\n")
        .await;
    cast.a.update(|b| b.status = 500);
    let r = gw.chat("m", &[]).await;
    assert_eq!((r.status.as_u16(), r.backend()), (200, "local-b"));
    assert_eq!(cast.a.request_count(), 1);
    // Quarantined for the default 15s: the next request goes straight to local-b.
    cast.a.update(|b| b.status = 200);
    assert_eq!(gw.chat("m", &[]).await.backend(), "local-b");
    assert_eq!(
        cast.a.request_count(),
        1,
        "a quarantined backend receives nothing"
    );
}

#[tokio::test]
async fn falls_back_on_connect_error_and_on_header_timeout() {
    let cast = Cast::new().await;
    let dead = MockUpstream::start("dead").await.unwrap();
    dead.stop();
    let spec = format!(
        "{}    - {{name: dead, inferenceServiceRef: {{name: dead}}}}
  rules:
    - {{name: r, route: {{backends: [dead, local-a, local-b]}}, timeout: 300ms}}
",
        cast.backends()
    );
    let gw = gateway(
        &spec,
        &[("local-a", &cast.a), ("local-b", &cast.b), ("dead", &dead)],
    )
    .await;
    cast.a.update(|b| b.header_delay = Duration::from_secs(3));
    let r = gw.chat("m", &[]).await;
    assert_eq!(
        (r.status.as_u16(), r.backend()),
        (200, "local-b"),
        "{}",
        r.text()
    );
    assert_eq!(cast.a.request_count(), 1, "local-a was tried and timed out");
}

#[tokio::test]
async fn client_errors_pass_through_without_fallback() {
    let cast = Cast::new().await;
    let gw = cast
        .gateway("  rules: [{name: r, route: {backends: [local-a, local-b]}}]\n")
        .await;
    cast.a.update(|b| b.status = 429);
    let r = gw.chat("m", &[]).await;
    assert_eq!(r.status.as_u16(), 429);
    assert_eq!(
        r.json()["error"]["type"],
        "mock_error",
        "the backend's own body reaches the client"
    );
    assert_eq!(cast.b.request_count(), 0);
    assert_eq!(
        gw.chat("m", &[]).await.backend(),
        "local-a",
        "a 4xx does not quarantine"
    );
}

#[tokio::test]
async fn after_quarantine_exactly_one_request_probes() {
    let cast = Cast::new().await;
    let gw = cast
        .gateway("  rules: [{name: r, route: {backends: [local-a, local-b]}}]\n  proxy: {quarantineDuration: 1s, consecutiveFailures: 1}\n")
        .await;
    cast.a.update(|b| b.status = 503);
    assert_eq!(gw.chat("m", &[]).await.backend(), "local-b");
    cast.a.update(|b| {
        b.status = 200;
        b.header_delay = Duration::from_millis(600);
    });
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let before = cast.a.request_count();
    let answers = futures_join(&gw, 6).await;
    assert_eq!(
        cast.a.request_count() - before,
        1,
        "one probe, not a stampede"
    );
    assert_eq!(answers.iter().filter(|b| *b == "local-a").count(), 1);
    assert_eq!(answers.iter().filter(|b| *b == "local-b").count(), 5);
    // The probe succeeded: local-a is back in service.
    cast.a.update(|b| b.header_delay = Duration::ZERO);
    assert_eq!(gw.chat("m", &[]).await.backend(), "local-a");
}

async fn futures_join(gw: &Gw, n: usize) -> Vec<String> {
    let mut set = Vec::new();
    for i in 0..n {
        // Stagger slightly so the probe is surely in flight when the others arrive.
        tokio::time::sleep(Duration::from_millis(if i == 0 { 0 } else { 20 })).await;
        let client = gw.client.clone();
        let url = gw.url("/v1/chat/completions");
        set.push(tokio::spawn(async move {
            let req = http::Request::post(url)
                .body(http_body_util::Full::new(bytes::Bytes::from(chat_body(
                    "m", false,
                ))))
                .unwrap();
            let resp = client.request(req).await.unwrap();
            resp.headers()["x-llmkube-backend"]
                .to_str()
                .unwrap()
                .to_owned()
        }));
    }
    let mut out = Vec::new();
    for h in set {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn fail_closed_with_local_down_and_cloud_up_sends_nothing_to_the_cloud() {
    let cast = Cast::new().await;
    let gw = cast
        .gateway(
            "  rules:
    - {name: pii-stays-local, match: {dataClassification: [pii]}, route: {backends: [local-a, local-b]}, failClosed: true}
  defaultRoute: cloud
",
        )
        .await;
    let pii = [("x-llmkube-classification", "pii")];
    assert_eq!(gw.chat("m", &pii).await.backend(), "local-a");
    cast.a.stop();
    cast.b.stop();
    let r = gw.chat("m", &pii).await;
    assert_error(&r, 503, "fail_closed");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("fail-closed")
    );
    // While quarantined, still closed.
    assert_error(&gw.chat("m", &pii).await, 503, "fail_closed");
    assert_eq!(
        cast.cloud.request_count(),
        0,
        "the cloud must receive nothing"
    );
    // Unclassified traffic still flows to the default route.
    assert_eq!(gw.chat("m", &[]).await.backend(), "cloud");
}

#[tokio::test]
async fn weighted_spreads_by_weight() {
    let a = MockUpstream::start("a").await.unwrap();
    let b = MockUpstream::start("b").await.unwrap();
    let gw = gateway(
        "  backends:
    - {name: a, inferenceServiceRef: {name: a}, weight: 3}
    - {name: b, inferenceServiceRef: {name: b}, weight: 1}
  rules: [{name: w, route: {backends: [a, b], strategy: weighted}}]
",
        &[("a", &a), ("b", &b)],
    )
    .await;
    for _ in 0..200 {
        assert_eq!(gw.chat("m", &[]).await.status, 200);
    }
    let (na, nb) = (a.request_count() as f64, b.request_count() as f64);
    assert_eq!(na + nb, 200.0);
    // Binomial(200, 3/4): mean 150, sd 6.1. Five sd either way: a false alarm is a 1-in-a-million
    // event, while a broken weighting (1:1 gives 100, ignoring b gives 200) still fails.
    let sd = (200.0_f64 * 0.75 * 0.25).sqrt();
    assert!((na - 150.0).abs() <= 5.0 * sd, "3:1 weights gave {na}:{nb}");
}

#[tokio::test]
async fn shadow_copies_go_to_the_others_but_never_to_a_forbidden_cloud() {
    let cast = Cast::new().await;
    let gw = cast.gateway("  rules: [{name: s, route: {backends: [local-a, local-b, cloud], strategy: shadow}}]\n").await;
    let r = gw.chat("m", &[]).await;
    assert_eq!(r.backend(), "local-a");
    wait_for("the shadow copy arrives", || {
        cast.b.request_count() == 1 && cast.cloud.request_count() == 1
    })
    .await;
    // A sensitive request matching the same rule: the copy to local-b only.
    let r = gw.chat("m", &[("x-llmkube-classification", "pii")]).await;
    assert_eq!(r.backend(), "local-a");
    wait_for("the shadow copy arrives", || cast.b.request_count() == 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        cast.cloud.request_count(),
        1,
        "no shadow copy of a sensitive request reaches the cloud"
    );
}

#[tokio::test]
async fn header_hygiene_and_credentials_toward_cloud_and_local() {
    let cast = Cast::new().await;
    let secrets = tempfile::tempdir().unwrap();
    std::fs::create_dir(secrets.path().join("openai")).unwrap();
    std::fs::write(
        secrets.path().join("openai/OPENAI_API_KEY"),
        "sk-from-secret\n",
    )
    .unwrap();
    let spec = format!(
        "{}  rules:
    - {{name: internal, match: {{dataClassification: [internal]}}, route: {{backends: [local-a]}}}}
  defaultRoute: cloud
",
        cast.backends()
    );
    let dir = secrets.path().to_path_buf();
    let gw = gateway_with(&spec, &[("local-a", &cast.a)], move |c| {
        c.resolve.credentials_dir = Some(dir)
    })
    .await;
    let headers = [
        ("authorization", "Bearer client-key"),
        ("x-llmkube-team", "red"),
        ("cookie", "session=1"),
        ("x-forwarded-for", "10.1.2.3"),
        ("connection", "keep-alive, x-hop"),
        ("x-hop", "1"),
        ("x-custom", "internal only"),
        ("x-request-id", "req-123"),
        ("api-key", "client-azure-key"),
        ("openai-organization", "org-someone-else"),
        ("openai-project", "proj-someone-else"),
        ("via", "1.1 internal-proxy"),
        ("x-forwarded-proto", "http"),
        ("x-forwarded-port", "8080"),
        ("true-client-ip", "10.9.9.9"),
        ("x-client-ip", "10.9.9.9"),
        ("x-original-forwarded-for", "10.9.9.9"),
        ("user-agent", "internal-tool/1.0"),
        ("openai-beta", "assistants=v2"),
        ("accept", "application/json"),
    ];
    let r = gw
        .request(
            http::Method::POST,
            "/v1/chat/completions?api-version=1&tenant=acme",
            &headers,
            chat_body("whatever", false),
        )
        .await;
    assert_eq!(
        (r.backend(), r.header("x-request-id")),
        ("cloud", "req-123")
    );
    let sent = cast.cloud.requests().pop().unwrap();
    let h = &sent.headers;
    assert_eq!(
        h["authorization"], "Bearer sk-from-secret",
        "the provider key replaces the client's"
    );
    let mut names: Vec<&str> = h.keys().map(|n| n.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "accept",
            "authorization",
            "content-length",
            "content-type",
            "host",
            "openai-beta",
            "x-request-id"
        ],
        "only the allowlist, the credential and the request id reach a cloud backend"
    );
    assert_eq!(h["x-request-id"], "req-123");
    assert_eq!(
        sent.path, "/v1/chat/completions",
        "no query string to the cloud"
    );
    assert_eq!(
        sent.json()["model"],
        "gpt-4o-mini",
        "external.model replaces the request's model"
    );
    assert_eq!(sent.json()["messages"][0]["content"], "hi");

    let mut to_local = headers.to_vec();
    to_local.push(("x-llmkube-classification", "internal"));
    assert_eq!(gw.chat("whatever", &to_local).await.backend(), "local-a");
    let sent = cast.a.requests().pop().unwrap();
    assert!(
        !sent.headers.contains_key("authorization"),
        "the client's credentials are never forwarded"
    );
    assert_eq!(
        sent.headers["x-llmkube-classification"], "internal",
        "local backends may see internal headers"
    );
    assert_eq!(sent.headers["x-custom"], "internal only");
    assert_eq!(sent.json()["model"], "whatever");
}

#[tokio::test]
async fn a_credential_goes_only_to_the_backend_it_belongs_to() {
    let cast = Cast::new().await;
    let other = MockUpstream::start("other").await.unwrap();
    let secrets = tempfile::tempdir().unwrap();
    // The `openai` Secret exists; `missing` is named by a backend but was never mounted.
    std::fs::create_dir(secrets.path().join("openai")).unwrap();
    std::fs::write(secrets.path().join("openai/OPENAI_API_KEY"), "sk-mine").unwrap();
    let spec = format!(
        "{}    - {{name: other, external: {{provider: openai, url: '{}', credentialsSecretRef: {{name: missing}}}}}}
  rules:
    - {{name: to-other, match: {{models: [other]}}, route: {{backends: [other]}}}}
  defaultRoute: cloud
",
        cast.backends(),
        other.url()
    );
    let dir = secrets.path().to_path_buf();
    // SAFETY: tests in this binary that read OPENAI_API_KEY do not exist; the value is
    // only the bait the gateway must not take.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("OPENAI_API_KEY", "sk-from-environment")
    };
    let gw = gateway_with(&spec, &[("local-a", &cast.a)], move |c| {
        c.resolve.credentials_dir = Some(dir)
    })
    .await;
    assert_eq!(gw.chat("gpt", &[]).await.backend(), "cloud");
    assert_eq!(
        cast.cloud.requests()[0].headers["authorization"],
        "Bearer sk-mine"
    );
    let r = gw.chat("other", &[]).await;
    assert_eq!(r.backend(), "other");
    let sent = other.requests().pop().unwrap();
    assert!(
        !sent.headers.contains_key("authorization"),
        "a backend whose Secret is missing gets no key, not the environment's: {:?}",
        sent.headers
    );
    let lines = audit_lines(&gw.dir.path().join("audit.log"), 2).await;
    let error = lines[1]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("\"other\" has no credential") && error.contains("\"missing\""),
        "{}",
        lines[1]
    );
    assert!(lines[0].get("error").is_none());
}
