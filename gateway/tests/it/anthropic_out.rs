//! Chat completions served by an `anthropic` backend: the request goes out as Anthropic
//! Messages with the backend's own credential, and the answer comes back as chat completions.

use http::Method;
use llmkube_mock_upstream::MockUpstream;
use serde_json::json;

use crate::support::*;

/// A gateway whose default route is an `anthropic` backend at `claude` (key `sk-ant-test`);
/// `local-*` models and whatever the PII detector flags go to `local` (fail-closed). Audit
/// lines go to `audit.log` in the returned directory.
pub async fn anthropic_gateway(
    claude: &MockUpstream,
    local: &MockUpstream,
) -> (Gw, std::path::PathBuf) {
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
  policy: {{classification: {{mode: detector}}, auditLog: {{sink: file, filePath: '{}'}}}}
",
        claude.url(),
        secrets.path().join("audit.log").display()
    );
    let dir = secrets.path().to_path_buf();
    let audit = dir.join("audit.log");
    let mut gw = gateway_with(&spec, &[("local", local)], move |c| {
        c.resolve.credentials_dir = Some(dir);
        c.policy_dir = Some(crate::policies::wasm_dir());
    })
    .await;
    gw.dirs.push(secrets);
    (gw, audit)
}

#[tokio::test]
async fn a_chat_request_reaches_an_anthropic_backend_as_messages_and_returns_as_chat() {
    let claude = MockUpstream::start("claude").await.unwrap();
    let local = MockUpstream::start("local").await.unwrap();
    let (gw, _) = anthropic_gateway(&claude, &local).await;
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

#[tokio::test]
async fn a_streamed_anthropic_answer_reaches_a_chat_client_as_chunks_with_usage_when_asked() {
    let claude = MockUpstream::start("claude").await.unwrap();
    let local = MockUpstream::start("local").await.unwrap();
    let (gw, audit) = anthropic_gateway(&claude, &local).await;
    for (options, usage_chunk) in [(json!(null), false), (json!({"include_usage": true}), true)] {
        let mut body =
            json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
        if !options.is_null() {
            body["stream_options"] = options;
        }
        let r = gw
            .request(Method::POST, "/v1/chat/completions", &[], body.to_string())
            .await;
        assert_eq!(r.status, 200);
        assert!(r.header("content-type").starts_with("text/event-stream"));
        let text = r.text();
        let chunks: Vec<serde_json::Value> = text
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        let content: String = chunks
            .iter()
            .filter_map(|c| c.pointer("/choices/0/delta/content")?.as_str())
            .collect();
        assert_eq!(content, "Hello from claude token1 token2 token3");
        assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
        let usage: Vec<&serde_json::Value> =
            chunks.iter().filter(|c| c["usage"].is_object()).collect();
        assert_eq!(usage.len(), usize::from(usage_chunk), "{text}");
        if usage_chunk {
            assert_eq!(usage[0]["usage"]["total_tokens"], 21);
        }
    }
    let lines = audit_lines(&audit, 2).await;
    for line in &lines {
        assert_eq!(line["outcome"], "ok_stream", "{line}");
        assert_eq!(line["endpoint"], "/v1/chat/completions");
        assert_eq!(line["usageSource"], "reported", "{line}");
        assert_eq!(
            (
                line["promptTokens"].as_u64(),
                line["completionTokens"].as_u64()
            ),
            (Some(9), Some(12)),
            "{line}"
        );
    }
}

#[tokio::test]
async fn anthropic_errors_reach_a_chat_client_in_the_openai_shape() {
    let claude = MockUpstream::start("claude").await.unwrap();
    let local = MockUpstream::start("local").await.unwrap();
    let (gw, _) = anthropic_gateway(&claude, &local).await;
    claude.update(|b| b.status = 400);
    let r = gw.chat("m", &[]).await;
    assert_error(&r, 400, "invalid_request_error");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("claude answered 400")
    );

    claude.update(|b| b.status = 200);
    // A chat field Anthropic has no place for: refused by name, nothing sent.
    let before = claude.request_count();
    let body = json!({"model": "m", "n": 3, "messages": [{"role": "user", "content": "hi"}]});
    let r = gw
        .request(Method::POST, "/v1/chat/completions", &[], body.to_string())
        .await;
    assert_error(&r, 400, "invalid_request_error");
    assert!(r.text().contains("\\\"n\\\""), "{}", r.text());
    let r = gw
        .request(
            Method::POST,
            "/v1/embeddings",
            &[],
            json!({"model": "m", "input": "x"}).to_string(),
        )
        .await;
    assert_error(&r, 400, "invalid_request_error");
    assert_eq!(
        claude.request_count(),
        before,
        "nothing untranslatable was sent"
    );
}
