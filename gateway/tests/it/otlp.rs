//! OpenTelemetry export, received by a collector inside the test that decodes the OTLP
//! protobuf (OTLP/HTTP and OTLP/gRPC): span names, attributes and parent links of a request's
//! span tree, `traceparent` toward backends by tier, and audit records as OTLP logs.

use std::time::Duration;

use llmkube_gateway::{OtlpConfig, OtlpProtocol, QueueSettings};
use llmkube_mock_upstream::otlp::{Collector, Span, SpanKind, StatusCode, any_value, attr, hex};

use crate::support::*;

fn otlp(collector: &Collector, protocol: OtlpProtocol) -> OtlpConfig {
    OtlpConfig {
        traces: true,
        endpoint: Some(collector.url()),
        protocol: Some(protocol),
        service_name: "gateway-under-test".into(),
        span_queue: QueueSettings {
            delay: Duration::from_millis(50),
            ..QueueSettings::default()
        },
        extra_ca: None,
    }
}

const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

/// The cast's backends with the PII detector: personal data stays on `local-a`, everything
/// else goes to `cloud`, whose trace context setting is `cloud_trace`. Audit lines go to a
/// file unless `audit` sets a sink.
async fn traced_gateway(cast: &Cast, config: OtlpConfig, cloud_trace: bool, audit: &str) -> Gw {
    let dir = tempfile::tempdir().unwrap();
    let file = format!(
        ", auditLog: {{sink: file, filePath: '{}'}}",
        dir.path().join("audit.log").display()
    );
    let audit = if audit.is_empty() { &file } else { audit };
    let spec = format!(
        "  backends:
    - {{name: local-a, inferenceServiceRef: {{name: a}}, capabilities: [chat]}}
    - {{name: cloud, external: {{provider: openai, url: '{}', propagateTraceContext: {cloud_trace}}}, capabilities: [chat]}}
  rules:
    - {{name: pii-stays-local, match: {{dataClassification: [pii]}}, route: {{backends: [local-a]}}, failClosed: true}}
  defaultRoute: cloud
  policy: {{classification: {{mode: detector}}{audit}}}
",
        cast.cloud.url()
    );
    let mut gw = gateway_with(&spec, &[("local-a", &cast.a)], move |c| {
        c.policy_dir = Some(crate::policies::wasm_dir());
        c.otlp = config;
    })
    .await;
    gw.dirs.push(dir);
    gw
}

/// A collector, the cast and a gateway exporting to the collector over `protocol`.
async fn scene(protocol: OtlpProtocol, cloud_trace: bool, audit: &str) -> (Collector, Cast, Gw) {
    let collector = Collector::start().await.unwrap();
    let cast = Cast::new().await;
    let gw = traced_gateway(&cast, otlp(&collector, protocol), cloud_trace, audit).await;
    (collector, cast, gw)
}

/// A chat request for `gpt-4o` saying `prompt`, with `headers`.
async fn chat(gw: &Gw, headers: &[(&str, &str)], prompt: &str) -> Resp {
    let body =
        serde_json::json!({"model": "gpt-4o", "messages": [{"role": "user", "content": prompt}]});
    gw.request(
        http::Method::POST,
        "/v1/chat/completions",
        headers,
        body.to_string(),
    )
    .await
}

#[tokio::test]
async fn a_request_is_one_genai_span_with_policy_and_attempt_children_over_http() {
    let (collector, cast, gw) = scene(OtlpProtocol::HttpProtobuf, false, "").await;
    let traceparent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let resp = chat(
        &gw,
        &[("traceparent", &traceparent), ("tracestate", "vendor=1")],
        "my SSN is 078-05-1120",
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.backend(), "local-a");
    collector
        .wait("the request's spans", |r| {
            r.spans.iter().any(|s| s.kind == SpanKind::Server as i32)
        })
        .await;
    let spans = collector.trace(CLIENT_TRACE);
    let root = spans
        .iter()
        .find(|s| s.kind == SpanKind::Server as i32)
        .unwrap();
    assert_eq!(root.name, "chat gpt-4o");
    assert_eq!(
        hex(&root.parent_span_id),
        CLIENT_SPAN,
        "continues the client's trace"
    );
    let a = |k| attr(&root.attributes, k);
    assert_eq!(a("gen_ai.operation.name").as_deref(), Some("chat"));
    assert_eq!(a("gen_ai.request.model").as_deref(), Some("gpt-4o"));
    assert_eq!(
        a("gen_ai.response.model").as_deref(),
        Some("gpt-4o"),
        "the mock echoes it"
    );
    assert_eq!(
        a("gen_ai.response.finish_reasons").as_deref(),
        Some("[stop]")
    );
    let input: u64 = a("gen_ai.usage.input_tokens").unwrap().parse().unwrap();
    let output: u64 = a("gen_ai.usage.output_tokens").unwrap().parse().unwrap();
    assert!(input > 0 && output > 0, "usage {input}/{output}");
    assert_eq!(a("llmkube.rule").as_deref(), Some("pii-stays-local"));
    assert_eq!(a("llmkube.backend").as_deref(), Some("local-a"));
    assert_eq!(a("llmkube.backend.tier").as_deref(), Some("local"));
    assert_eq!(a("llmkube.classification").as_deref(), Some("pii"));
    assert_eq!(
        a("llmkube.classification.source").as_deref(),
        Some("detector")
    );
    assert_eq!(a("llmkube.outcome").as_deref(), Some("ok"));
    assert_eq!(a("http.response.status_code").as_deref(), Some("200"));
    assert_eq!(
        collector
            .got
            .lock()
            .unwrap()
            .service_names
            .first()
            .map(String::as_str),
        Some("gateway-under-test")
    );

    let children: Vec<&Span> = spans
        .iter()
        .filter(|s| s.parent_span_id == root.span_id)
        .collect();
    let detector = (children.iter())
        .find(|s| attr(&s.attributes, "llmkube.policy.name").as_deref() == Some("pii-detector"))
        .expect("a span for the detector");
    assert_eq!(detector.name, "policy pii-detector");
    assert_eq!(
        attr(&detector.attributes, "llmkube.policy.result").as_deref(),
        Some("continue")
    );
    assert_eq!(
        attr(&detector.attributes, "llmkube.policy.digest")
            .unwrap()
            .len(),
        64
    );
    let rules = (children.iter())
        .find(|s| s.name == "policy llmkube-rules")
        .expect("a span for the compiled rules");
    assert_eq!(
        attr(&rules.attributes, "llmkube.policy.digest")
            .unwrap()
            .len(),
        64
    );
    assert!(
        detector.start_time_unix_nano <= rules.start_time_unix_nano,
        "detector first"
    );
    let attempt = (children.iter())
        .find(|s| s.kind == SpanKind::Client as i32)
        .expect("a span for the backend attempt");
    assert_eq!(attempt.name, "chat local-a");
    assert_eq!(
        attr(&attempt.attributes, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert!(root.start_time_unix_nano <= attempt.start_time_unix_nano);
    assert!(attempt.end_time_unix_nano <= root.end_time_unix_nano);

    // The local backend got the attempt span as its parent, and the client's tracestate.
    let got = cast.a.requests();
    let sent = got.last().unwrap();
    assert_eq!(
        sent.headers["traceparent"].to_str().unwrap(),
        format!("00-{CLIENT_TRACE}-{}-01", hex(&attempt.span_id))
    );
    assert_eq!(sent.headers["tracestate"], "vendor=1");
}

#[tokio::test]
async fn trace_context_reaches_the_cloud_only_when_the_router_says_so() {
    let traceparent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let headers = [
        ("traceparent", traceparent.as_str()),
        ("tracestate", "vendor=1"),
    ];
    for propagate in [false, true] {
        let (_collector, cast, gw) = scene(OtlpProtocol::HttpProtobuf, propagate, "").await;
        let resp = chat(&gw, &headers, "hi").await;
        assert_eq!(resp.backend(), "cloud");
        let got = cast.cloud.requests();
        let sent = &got.last().unwrap().headers;
        assert!(
            sent.get("tracestate").is_none(),
            "the client's tracestate stays inside"
        );
        match propagate {
            false => assert!(sent.get("traceparent").is_none(), "{sent:?}"),
            true => {
                let value = sent["traceparent"].to_str().unwrap();
                assert!(value.starts_with(&format!("00-{CLIENT_TRACE}-")), "{value}");
                assert!(
                    !value.contains(CLIENT_SPAN),
                    "the gateway's span, not the client's"
                );
            }
        }
    }
}

#[tokio::test]
async fn an_unsampled_trace_exports_nothing_and_still_propagates() {
    let (collector, cast, gw) = scene(OtlpProtocol::HttpProtobuf, false, "").await;
    let unsampled = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-00");
    let resp = chat(&gw, &[("traceparent", &unsampled)], "my SSN is 078-05-1120").await;
    assert_eq!(resp.backend(), "local-a");
    let got = cast.a.requests();
    let sent = got.last().unwrap().headers["traceparent"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        sent.starts_with(&format!("00-{CLIENT_TRACE}-")) && sent.ends_with("-00"),
        "{sent}"
    );
    // A sampled request after it is exported; the unsampled one never is.
    let resp = gw.chat("gpt-4o", &[]).await;
    assert_eq!(resp.status, 200);
    collector
        .wait("the sampled request", |r| !r.spans.is_empty())
        .await;
    assert!(collector.trace(CLIENT_TRACE).is_empty());
}

#[tokio::test]
async fn audit_records_and_spans_go_over_grpc() {
    let (collector, _cast, gw) = scene(OtlpProtocol::Grpc, false, ", auditLog: {sink: otlp}").await;
    let resp = chat(&gw, &[("x-request-id", "req-otlp-1")], "hello").await;
    assert_eq!(resp.status, 200);
    collector
        .wait("the audit record and the spans", |r| {
            !r.logs.is_empty() && r.spans.iter().any(|s| s.kind == SpanKind::Server as i32)
        })
        .await;
    let got = collector.got.lock().unwrap();
    assert!(
        got.calls
            .iter()
            .all(|(ct, _)| ct.starts_with("application/grpc")),
        "{:?}",
        got.calls
    );
    let log = &got.logs[0];
    assert_eq!(log.event_name, "llmkube.audit");
    let a = |k| attr(&log.attributes, k);
    assert_eq!(a("requestId").as_deref(), Some("req-otlp-1"));
    assert_eq!(a("outcome").as_deref(), Some("ok"));
    assert_eq!(a("model").as_deref(), Some("gpt-4o"));
    assert_eq!(a("backend").as_deref(), Some("cloud"));
    assert_eq!(a("backendTier").as_deref(), Some("cloud"));
    assert_eq!(a("status").as_deref(), Some("200"));
    assert_eq!(a("router").as_deref(), Some("test-router"));
    assert_eq!(a("endpoint").as_deref(), Some("/v1/chat/completions"));
    assert!(a("latencyMs").is_some() && a("rulesDigest").is_some());
    let policies = (log.attributes.iter())
        .find(|kv| kv.key == "policies")
        .and_then(|kv| kv.value.as_ref()?.value.as_ref());
    let Some(any_value::Value::ArrayValue(list)) = policies else {
        panic!("policies as an OTLP list: {policies:?}");
    };
    let Some(any_value::Value::KvlistValue(first)) = list.values[0].value.as_ref() else {
        panic!("each policy as an OTLP map");
    };
    assert_eq!(attr(&first.values, "name").as_deref(), Some("pii-detector"));
    assert!(log.time_unix_nano > 0 && log.observed_time_unix_nano >= log.time_unix_nano);
    let root = got
        .spans
        .iter()
        .find(|s| s.kind == SpanKind::Server as i32)
        .unwrap();
    assert_eq!(
        attr(&root.attributes, "llmkube.request_id").as_deref(),
        Some("req-otlp-1")
    );
    assert_ne!(
        root.status.as_ref().map(|s| s.code),
        Some(StatusCode::Error as i32)
    );
}

#[tokio::test]
async fn a_failed_request_is_an_error_span() {
    let (collector, cast, gw) = scene(OtlpProtocol::HttpProtobuf, false, "").await;
    cast.a.stop();
    let resp = chat(&gw, &[], "my SSN is 078-05-1120").await;
    assert_eq!(resp.status, 503, "fail-closed: {}", resp.text());
    collector
        .wait("the failed request", |r| {
            r.spans.iter().any(|s| s.kind == SpanKind::Server as i32)
        })
        .await;
    let got = collector.got.lock().unwrap();
    let root = got
        .spans
        .iter()
        .find(|s| s.kind == SpanKind::Server as i32)
        .unwrap();
    assert_eq!(root.status.as_ref().unwrap().code, StatusCode::Error as i32);
    assert_eq!(
        attr(&root.attributes, "llmkube.outcome").as_deref(),
        Some("fail_closed_runtime")
    );
    let attempt = got
        .spans
        .iter()
        .find(|s| s.kind == SpanKind::Client as i32)
        .unwrap();
    assert_eq!(
        attempt.status.as_ref().unwrap().code,
        StatusCode::Error as i32
    );
    assert!(
        attempt
            .status
            .as_ref()
            .unwrap()
            .message
            .contains("connection failed")
    );
}
