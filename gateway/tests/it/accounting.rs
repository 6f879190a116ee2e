//! Usage accounting: tokens read from JSON answers and from streams (the usage chunk added
//! toward the backend when the client did not ask for it, and taken out again so the client's
//! stream is byte for byte what the backend sent minus that chunk), estimated when a backend
//! reports none, priced by `costPerMillionTokens`, on the audit line and in metrics.

use bytes::Bytes;
use http::Method;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use llmkube_mock_upstream::{MockUpstream, UsageStyle};

use crate::support::*;

/// One local backend priced at $1 / $2 per million tokens, all traffic to it.
const PRICED: &str = "  backends:
    - name: local-a
      inferenceServiceRef: {name: a}
      costPerMillionTokens: {promptUSD: '1', completionUSD: '2'}
  defaultRoute: local-a
";

async fn priced() -> (MockUpstream, Gw) {
    let mock = MockUpstream::start("local-a").await.unwrap();
    let gw = gateway(PRICED, &[("local-a", &mock)]).await;
    (mock, gw)
}

fn stream_body(extra: serde_json::Value) -> String {
    let mut body: serde_json::Value = serde_json::from_str(&chat_body("m", true)).unwrap();
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body.to_string()
}

/// The raw bytes the mock streams for `body`, asked directly.
async fn direct(mock: &MockUpstream, body: Bytes) -> Bytes {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let req = http::Request::post(format!("{}/v1/chat/completions", mock.url()))
        .header("content-type", "application/json")
        .body(Full::new(body))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    resp.into_body().collect().await.unwrap().to_bytes()
}

async fn via_gateway(gw: &Gw, body: String) -> Bytes {
    let resp = gw
        .send(Method::POST, "/v1/chat/completions", &[], body)
        .await;
    assert_eq!(resp.status(), 200);
    resp.into_body().collect().await.unwrap().to_bytes()
}

/// `stream` without its event whose data has `"choices":[]`.
fn without_usage_chunk(stream: &[u8]) -> String {
    let text = String::from_utf8(stream.to_vec()).unwrap();
    let kept: Vec<&str> = text
        .split_inclusive("\n\n")
        .filter(|e| !e.contains("\"choices\":[]"))
        .collect();
    assert!(
        kept.len() < text.split_inclusive("\n\n").count(),
        "no usage chunk in {text}"
    );
    kept.concat()
}

#[tokio::test]
async fn json_answers_are_counted_and_priced() {
    let (_mock, gw) = priced().await;
    let r = gw.chat("m", &[("x-llmkube-team", "research")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["usage"]["total_tokens"],
        21,
        "the answer is untouched"
    );
    let line = audit_lines(&gw.dir.path().join("audit.log"), 1)
        .await
        .remove(0);
    assert_eq!(line["promptTokens"], 9);
    assert_eq!(line["completionTokens"], 12);
    assert_eq!(line["totalTokens"], 21);
    assert_eq!(line["usageSource"], "reported");
    // 9 × $1/M + 12 × $2/M.
    assert_eq!(line["costUSD"], "0.000033");
    let m = gw.get("/metrics").await.text();
    assert!(
        m.contains(r#"llmkube_router_tokens_total{router="test-router",rule="",backend="local-a",team="other",kind="completion",source="reported"} 12"#),
        "{m}"
    );
    assert!(m.contains(r#"llmkube_router_cost_usd_total{router="test-router",rule="",backend="local-a",team="other"} 0.000033"#), "{m}");
}

#[tokio::test]
async fn a_stream_gets_usage_added_and_taken_out_again() {
    let (mock, gw) = priced().await;
    let got = via_gateway(&gw, stream_body(serde_json::json!({}))).await;
    let sent = mock.requests().pop().unwrap();
    assert_eq!(
        sent.json()["stream_options"],
        serde_json::json!({"include_usage": true}),
        "the backend was asked for usage"
    );
    // What the backend streams for exactly that request, minus the usage chunk, is what the
    // client received, byte for byte.
    let backend = direct(&mock, sent.body.clone()).await;
    assert_eq!(
        String::from_utf8(got.to_vec()).unwrap(),
        without_usage_chunk(&backend)
    );
    let line = audit_lines(&gw.dir.path().join("audit.log"), 1)
        .await
        .remove(0);
    assert_eq!(line["outcome"], "ok_stream");
    assert_eq!(
        (line["totalTokens"].as_u64(), line["usageSource"].as_str()),
        (Some(21), Some("reported"))
    );
    assert_eq!(line["bytesOut"].as_u64(), Some(got.len() as u64));
}

#[tokio::test]
async fn a_client_that_asks_for_usage_gets_the_backend_stream_unchanged() {
    let (mock, gw) = priced().await;
    let body = stream_body(serde_json::json!({"stream_options": {"include_usage": true}}));
    let got = via_gateway(&gw, body.clone()).await;
    let sent = mock.requests().pop().unwrap();
    assert_eq!(
        sent.body,
        body.as_bytes(),
        "the body went as the client sent it"
    );
    assert_eq!(got, direct(&mock, sent.body).await);
    assert!(String::from_utf8_lossy(&got).contains("\"choices\":[]"));
    let line = audit_lines(&gw.dir.path().join("audit.log"), 1)
        .await
        .remove(0);
    assert_eq!(line["totalTokens"], 21);

    // A client that set stream_options without include_usage: left alone, usage estimated.
    let body = stream_body(serde_json::json!({"stream_options": {"include_usage": false}}));
    let got = via_gateway(&gw, body.clone()).await;
    assert_eq!(mock.requests().pop().unwrap().body, body.as_bytes());
    assert!(!String::from_utf8_lossy(&got).contains("\"choices\":[]"));
    let line = audit_lines(&gw.dir.path().join("audit.log"), 2)
        .await
        .remove(1);
    assert_eq!(line["usageSource"], "estimated");
}

#[tokio::test]
async fn usage_is_estimated_when_the_backend_reports_none_and_read_from_a_finishing_chunk() {
    let (mock, gw) = priced().await;
    mock.update(|b| b.usage = UsageStyle::Never);
    assert_eq!(gw.chat("m", &[]).await.status, 200);
    via_gateway(&gw, stream_body(serde_json::json!({}))).await;
    let lines = audit_lines(&gw.dir.path().join("audit.log"), 2).await;
    for line in &lines {
        assert_eq!(line["usageSource"], "estimated", "{line}");
        // The prompt's strings ("m", "user", "hi") and the answer's text, at 4 bytes a token.
        assert!(line["promptTokens"].as_u64().unwrap() >= 2, "{line}");
        assert!(line["completionTokens"].as_u64().unwrap() >= 4, "{line}");
    }

    mock.update(|b| b.usage = UsageStyle::InFinalChunk);
    let got = via_gateway(&gw, stream_body(serde_json::json!({}))).await;
    assert!(
        String::from_utf8_lossy(&got).contains("\"usage\""),
        "a chunk with text and usage is never taken out"
    );
    let line = audit_lines(&gw.dir.path().join("audit.log"), 3)
        .await
        .remove(2);
    assert_eq!(
        (line["totalTokens"].as_u64(), line["usageSource"].as_str()),
        (Some(21), Some("reported"))
    );
}

#[tokio::test]
async fn errors_and_refusals_cost_nothing() {
    let (mock, gw) = priced().await;
    mock.update(|b| b.status = 400);
    assert_eq!(gw.chat("m", &[]).await.status, 400);
    let line = audit_lines(&gw.dir.path().join("audit.log"), 1)
        .await
        .remove(0);
    assert!(line.get("totalTokens").is_none(), "{line}");
    assert!(line.get("costUSD").is_none(), "{line}");
}
