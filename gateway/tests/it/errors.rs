//! Errors in the OpenAI shape, with the right status for each failure.

use std::time::Duration;

use http::Method;

use crate::support::*;

#[tokio::test]
async fn malformed_requests_get_400_and_large_ones_413() {
    let cast = Cast::new().await;
    let gw = cast
        .gateway("  defaultRoute: local-a\n  proxy: {maxRequestBodyBytes: 1024}\n")
        .await;
    for body in ["{not json", "[1,2]", r#"{"model": 7}"#] {
        let r = gw
            .request(Method::POST, "/v1/chat/completions", &[], body)
            .await;
        assert_error(&r, 400, "invalid_request_error");
    }
    let big = format!(r#"{{"model":"m","pad":"{}"}}"#, "x".repeat(2000));
    assert_error(
        &gw.request(Method::POST, "/v1/chat/completions", &[], big.clone())
            .await,
        413,
        "invalid_request_error",
    );
    // Without a Content-Length (chunked), the limit still holds.
    let req = http::Request::post(gw.url("/v1/embeddings"))
        .body(Chunked(Some(bytes::Bytes::from(big))))
        .unwrap();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.status(), 413);
    assert_eq!(cast.a.request_count(), 0);
    let many: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
    let r = gw
        .chat("m", &[("x-llmkube-classification", &many.join(","))])
        .await;
    assert_error(&r, 400, "invalid_request_error");
}

/// A body of unknown length, so hyper sends it chunked, without a Content-Length.
struct Chunked(Option<bytes::Bytes>);

impl http_body::Body for Chunked {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.0.take().map(|b| Ok(http_body::Frame::data(b))))
    }
}

#[tokio::test]
async fn unknown_paths_and_methods_and_probes() {
    let cast = Cast::new().await;
    let gw = cast.gateway("  defaultRoute: local-a\n").await;
    assert_error(&gw.get("/v2/nope").await, 404, "invalid_request_error");
    assert_error(
        &gw.get("/v1/chat/completions").await,
        405,
        "invalid_request_error",
    );
    assert_eq!(gw.get("/healthz").await.status, 200);
    assert_eq!(gw.get("/readyz").await.status, 200);
    let a = gw.get("/v1/models").await;
    let b = gw.get("/v1/models").await;
    assert_ne!(
        a.header("x-request-id"),
        b.header("x-request-id"),
        "fresh ids per request"
    );
    assert_eq!(a.header("x-request-id").len(), 32);
}

#[tokio::test]
async fn no_route_503_all_failed_502_timeout_504() {
    let cast = Cast::new().await;
    let gw = cast
        .gateway(
            "  rules:
    - {name: slow, match: {headers: {x-case: slow}}, route: {backends: [local-b]}, timeout: 200ms}
    - {name: broken, match: {headers: {x-case: broken}}, route: {backends: [local-a]}}
",
        )
        .await;
    assert_error(&gw.chat("m", &[]).await, 503, "no_route");
    cast.a.update(|b| b.status = 500);
    let r = gw.chat("m", &[("x-case", "broken")]).await;
    assert_error(&r, 502, "upstream_error");
    assert!(r.text().contains("500"), "{}", r.text());
    cast.b.update(|b| b.header_delay = Duration::from_secs(2));
    let r = gw.chat("m", &[("x-case", "slow")]).await;
    assert_error(&r, 504, "timeout");
    assert!(r.text().contains("200ms"), "{}", r.text());
}

#[tokio::test]
async fn an_invalid_router_refuses_to_start_with_every_problem_listed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("router.yaml");
    std::fs::write(
        &path,
        router_yaml(
            "bad",
            "  backends: [{name: a, inferenceServiceRef: {name: a}}, {name: c, external: {provider: openai}}]
  rules: [{name: pii, match: {dataClassification: [pii]}, route: {backends: [c, x]}}]
",
        ),
    )
    .unwrap();
    let err = llmkube_gateway::start(llmkube_gateway::GatewayConfig::new(&path))
        .await
        .err()
        .expect("refused")
        .to_string();
    for want in [
        "spec.rules[0].route.backends[1]: unknown backend \"x\"",
        "spec.rules[0].failClosed: must be true",
        "spec.rules[0].route.backends[0]: backend \"c\" is tier cloud",
    ] {
        assert!(err.contains(want), "missing {want:?} in {err}");
    }

    std::fs::write(
        &path,
        router_yaml(
            "ok",
            "  backends: [{name: a, inferenceServiceRef: {name: a}}]\n",
        ),
    )
    .unwrap();
    let mut config = llmkube_gateway::GatewayConfig::new(&path);
    config
        .resolve
        .addresses
        .insert("a".into(), "localhost:8080".into());
    let err = llmkube_gateway::start(config)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("spec.backends[0]: --backend-address a=localhost:8080 must be an http:// or https:// URL with a host"), "{err}");
}
