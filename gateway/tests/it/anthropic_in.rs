//! `POST /v1/messages`: Anthropic clients routed by the same rules and detector, translated
//! to chat completions for local backends and passed through to `anthropic` ones, with
//! errors in Anthropic's shape.

use http::Method;
use llmkube_mock_upstream::MockUpstream;
use serde_json::json;

use crate::anthropic_out::anthropic_gateway;
use crate::support::*;

fn messages(model: &str, text: &str, stream: bool) -> String {
    json!({"model": model, "max_tokens": 64, "stream": stream,
        "system": "Be brief.", "messages": [{"role": "user", "content": text}]})
    .to_string()
}

/// Asserts Anthropic's error shape with this status and type.
fn assert_anthropic_error(r: &Resp, status: u16, kind: &str) {
    assert_eq!(r.status.as_u16(), status, "{}", r.text());
    let v = r.json();
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], kind, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

#[tokio::test]
async fn messages_to_a_local_backend_are_translated_both_ways() {
    let claude = MockUpstream::start("claude").await.unwrap();
    let local = MockUpstream::start("local").await.unwrap();
    let (gw, audit) = anthropic_gateway(&claude, &local).await;
    let r = gw
        .request(
            Method::POST,
            "/v1/messages?beta=true",
            &[
                ("x-api-key", "client-key"),
                ("anthropic-version", "2023-06-01"),
                ("anthropic-beta", "fine-grained-tool-streaming-2025-05-14"),
            ],
            messages("local-llama", "hi", false),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.backend(), "local");
    let m = r.json();
    assert_eq!(m["type"], "message");
    assert_eq!(m["role"], "assistant");
    assert_eq!(
        m["content"],
        json!([{"type": "text", "text": "Hello from local"}])
    );
    assert_eq!(m["stop_reason"], "end_turn");
    assert_eq!(m["usage"], json!({"input_tokens": 9, "output_tokens": 12}));

    let sent = &local.requests()[0];
    assert_eq!(
        sent.path, "/v1/chat/completions",
        "translated, the query left behind"
    );
    assert!(
        sent.headers.get("x-api-key").is_none(),
        "the client's key is its own"
    );
    assert!(
        sent.headers.get("anthropic-beta").is_none()
            && sent.headers.get("anthropic-version").is_none(),
        "Anthropic's headers do not go with a request translated to chat completions"
    );
    assert_eq!(
        sent.json()["messages"],
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}])
    );

    let r = gw
        .request(
            Method::POST,
            "/v1/messages",
            &[],
            messages("local-llama", "hi", true),
        )
        .await;
    assert_eq!(r.status, 200);
    let text = r.text();
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    assert!(names.contains(&"content_block_delta"));
    assert!(!text.contains("[DONE]"), "{text}");
    assert!(
        local.requests()[1].json()["stream_options"]["include_usage"] == true,
        "the gateway asks for the usage it reports in message_delta"
    );
    let delta = text
        .split("\n\n")
        .find(|e| e.starts_with("event: message_delta"))
        .unwrap();
    assert!(delta.contains(r#""output_tokens":12"#), "{delta}");

    let lines = audit_lines(&audit, 2).await;
    for line in &lines {
        assert_eq!(line["endpoint"], "/v1/messages");
        assert_eq!(line["usageSource"], "reported", "{line}");
        assert_eq!(line["promptTokens"], 9);
    }
}

#[tokio::test]
async fn messages_to_an_anthropic_backend_pass_through_with_its_own_key() {
    let claude = MockUpstream::start("claude").await.unwrap();
    let local = MockUpstream::start("local").await.unwrap();
    let (gw, _) = anthropic_gateway(&claude, &local).await;
    let body = messages("claude-x", "hello there", false);
    let r = gw
        .request(
            Method::POST,
            "/v1/messages",
            &[
                ("x-api-key", "client-key"),
                ("anthropic-beta", "tools-2024-04-04"),
                ("anthropic-version", "2026-10-21"),
            ],
            body.clone(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["content"][0]["text"], "Hello from claude");
    let sent = &claude.requests()[0];
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.headers["x-api-key"], "sk-ant-test");
    assert_eq!(sent.headers["anthropic-beta"], "tools-2024-04-04");
    assert_eq!(
        sent.headers["anthropic-version"], "2026-10-21",
        "the client's version"
    );
    let mut expected: serde_json::Value = serde_json::from_str(&body).unwrap();
    expected["model"] = json!("claude-sonnet-4-5");
    assert_eq!(
        sent.json(),
        expected,
        "untouched but for the backend's model"
    );

    let r = gw
        .request(
            Method::POST,
            "/v1/messages",
            &[],
            messages("claude-x", "hi", true),
        )
        .await;
    assert!(r.text().starts_with("event: message_start"), "{}", r.text());
}

#[tokio::test]
async fn a_pii_message_never_reaches_the_cloud_tier_and_fails_closed_in_anthropic_shape() {
    let claude = MockUpstream::start("claude").await.unwrap();
    let local = MockUpstream::start("local").await.unwrap();
    let (gw, audit) = anthropic_gateway(&claude, &local).await;
    let pii = json!({"model": "claude-x", "max_tokens": 64, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "summarise this"},
        {"type": "tool_result", "tool_use_id": "t", "content": "patient SSN 078-05-1120"}]}]});
    let r = gw
        .request(Method::POST, "/v1/messages", &[], pii.to_string())
        .await;
    assert_eq!(
        (r.status.as_u16(), r.backend()),
        (200, "local"),
        "{}",
        r.text()
    );
    local.stop();
    let r = gw
        .request(Method::POST, "/v1/messages", &[], pii.to_string())
        .await;
    assert_anthropic_error(&r, 503, "overloaded_error");
    assert_eq!(
        claude.request_count(),
        0,
        "nothing sensitive reached the cloud tier"
    );
    let lines = audit_lines(&audit, 2).await;
    assert_eq!(lines[1]["classification"], "pii");
    assert_eq!(lines[1]["outcome"], "fail_closed_runtime");
}

#[tokio::test]
async fn messages_errors_use_the_anthropic_shape() {
    let claude = MockUpstream::start("claude").await.unwrap();
    let local = MockUpstream::start("local").await.unwrap();
    let (gw, _) = anthropic_gateway(&claude, &local).await;
    let r = gw
        .request(Method::POST, "/v1/messages", &[], "{not json")
        .await;
    assert_anthropic_error(&r, 400, "invalid_request_error");
    let r = gw
        .request(
            Method::POST,
            "/v1/messages",
            &[("anthropic-version", "latest")],
            messages("local-x", "hi", false),
        )
        .await;
    assert_anthropic_error(&r, 400, "invalid_request_error");
    let thinking = json!({"model": "local-x", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}],
        "thinking": {"type": "enabled", "budget_tokens": 1024}});
    let r = gw
        .request(Method::POST, "/v1/messages", &[], thinking.to_string())
        .await;
    assert_anthropic_error(&r, 400, "invalid_request_error");
    assert!(r.text().contains("thinking"), "{}", r.text());
    local.update(|b| b.status = 429);
    let r = gw
        .request(
            Method::POST,
            "/v1/messages",
            &[],
            messages("local-x", "hi", false),
        )
        .await;
    assert_anthropic_error(&r, 429, "rate_limit_error");
    assert!(r.text().contains("local answered 429"), "{}", r.text());
}

#[tokio::test]
async fn agent_sdks_the_official_anthropic_sdk_and_openai_responses_client_work_against_the_gateway()
 {
    let claude = MockUpstream::start("claude").await.unwrap();
    let local = MockUpstream::start("local").await.unwrap();
    let (gw, _) = anthropic_gateway(&claude, &local).await;
    if pytest(&gw, "test_anthropic_sdk.py", 7).await {
        assert_eq!(
            claude
                .requests()
                .iter()
                .filter(|r| r.body.windows(11).any(|w| w == b"078-05-1120"))
                .count(),
            0,
            "the PII request stayed local"
        );
    }
    pytest(&gw, "test_openai_responses.py", 7).await;
}
