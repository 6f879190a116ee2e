//! Chat completions served by an `anthropic` backend: the request goes out as Anthropic
//! Messages with the backend's own credential, and the answer comes back as chat completions.

use http::Method;
use llmkube_mock_upstream::MockUpstream;
use serde_json::json;

use crate::support::*;

/// A gateway whose default route is an `anthropic` backend at `claude` (key `sk-ant-test`).
pub async fn anthropic_gateway(claude: &MockUpstream, local: &MockUpstream) -> Gw {
    let secrets = tempfile::tempdir().unwrap();
    std::fs::create_dir(secrets.path().join("anthropic")).unwrap();
    std::fs::write(
        secrets.path().join("anthropic/ANTHROPIC_API_KEY"),
        "sk-ant-test\n",
    )
    .unwrap();
    let spec = format!(
        "  backends:
    - {{name: local, inferenceServiceRef: {{name: local}}, capabilities: [chat]}}
    - {{name: claude, external: {{provider: anthropic, url: '{}', model: claude-sonnet-4-5, credentialsSecretRef: {{name: anthropic}}}}}}
  rules:
    - {{name: pii-local, match: {{dataClassification: [pii]}}, route: {{backends: [local]}}, failClosed: true}}
    - {{name: local-model, match: {{models: [local-*]}}, route: {{backends: [local]}}}}
  defaultRoute: claude
",
        claude.url()
    );
    let dir = secrets.keep();
    gateway_with(&spec, &[("local", local)], move |c| {
        c.resolve.credentials_dir = Some(dir)
    })
    .await
}

#[tokio::test]
async fn a_chat_request_reaches_an_anthropic_backend_as_messages_and_returns_as_chat() {
    let claude = MockUpstream::start("claude").await.unwrap();
    let local = MockUpstream::start("local").await.unwrap();
    let gw = anthropic_gateway(&claude, &local).await;
    let body = json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
        ],
        "stop": "END",
        "temperature": 0.5,
        "user": "u-42",
    });
    let r = gw
        .request(
            Method::POST,
            "/v1/chat/completions",
            &[("authorization", "Bearer client-key")],
            body.to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let answer = r.json();
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "Hello from claude"
    );
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    assert_eq!(answer["usage"]["prompt_tokens"], 9);
    assert_eq!(answer["usage"]["completion_tokens"], 12);
    assert_eq!(answer["usage"]["total_tokens"], 21);

    let sent = &claude.requests()[0];
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.headers["x-api-key"], "sk-ant-test");
    assert_eq!(sent.headers["anthropic-version"], "2023-06-01");
    assert!(sent.headers.get("authorization").is_none());
    let m = sent.json();
    assert_eq!(m["model"], "claude-sonnet-4-5");
    assert_eq!(m["system"], "Be brief.");
    assert_eq!(m["messages"], json!([{"role": "user", "content": "hi"}]));
    assert_eq!(m["max_tokens"], 4096, "Anthropic requires max_tokens");
    assert_eq!(m["stop_sequences"], json!(["END"]));
    assert_eq!(m["temperature"], 0.5);
    assert_eq!(m["metadata"]["user_id"], "u-42");
}
