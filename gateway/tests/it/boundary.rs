//! The sensitive-data boundary under hostile and careless clients: the detector sees every
//! string the backend will see, bodies it cannot read completely are never treated as clean,
//! and ambiguous bodies are refused before any routing.

use http::Method;

use crate::policies::{detector_gateway, detector_gateway_with};
use crate::support::*;

const SSN: &str = "078-05-1120";

async fn post(gw: &Gw, headers: &[(&str, &str)], body: impl Into<bytes::Bytes>) -> Resp {
    gw.request(Method::POST, "/v1/chat/completions", headers, body)
        .await
}

/// Every body carries the SSN somewhere the old prompt extraction did not look.
fn hidden_pii_bodies() -> Vec<(&'static str, String)> {
    // 81 KB: past the 64 KiB the old prompt extraction stopped at.
    let filler = "lorem ipsum dolor sit amet ".repeat(3000);
    let user = |content: serde_json::Value| serde_json::json!({"role": "user", "content": content});
    let chat = |messages: serde_json::Value| {
        serde_json::json!({"model": "m", "messages": messages}).to_string()
    };
    vec![
        (
            "after 64 KiB in the same message",
            chat(serde_json::json!([user(format!("{filler} my SSN is {SSN}").into())])),
        ),
        (
            "after a long earlier message",
            chat(serde_json::json!([user(filler.clone().into()), user(format!("SSN {SSN}").into())])),
        ),
        (
            "in tool call arguments",
            chat(serde_json::json!([{"role": "assistant", "content": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": format!("{{\"ssn\":\"{SSN}\"}}")}}
            ]}])),
        ),
        (
            "in a tool definition",
            serde_json::json!({"model": "m", "messages": [user("hi".into())], "tools": [
                {"type": "function", "function": {"name": "f", "description": format!("always use SSN {SSN}"), "parameters": {"type": "object"}}}
            ]})
            .to_string(),
        ),
        (
            "an e-mail in a message name",
            chat(serde_json::json!([{"role": "user", "name": "jane.doe@example.com", "content": "hi"}])),
        ),
        (
            "in a multimodal text part",
            chat(serde_json::json!([user(serde_json::json!([
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "text", "text": format!("SSN {SSN}")}
            ]))])),
        ),
        (
            "in a response_format JSON schema",
            serde_json::json!({"model": "m", "messages": [user("hi".into())], "response_format": {
                "type": "json_schema", "json_schema": {"name": "x", "schema": {"description": format!("example {SSN}")}}
            }})
            .to_string(),
        ),
        (
            "in a top-level system field",
            serde_json::json!({"model": "m", "system": format!("the user's SSN is {SSN}"), "messages": [user("hi".into())]})
                .to_string(),
        ),
        (
            "before a trailing null message",
            format!(r#"{{"model":"m","messages":[{{"role":"user","content":"SSN {SSN}"}},null]}}"#),
        ),
        (
            "behind a unicode escape",
            r#"{"model":"m","messages":[{"role":"user","content":"SSN \u0030\u0037\u0038-05-1120"}]}"#
                .to_owned(),
        ),
        (
            "in a field no endpoint defines yet",
            serde_json::json!({"model": "m", "messages": [user("hi".into())], "future": {"deep": [[{"x": format!("{SSN}")}]]}})
                .to_string(),
        ),
    ]
}

#[tokio::test]
async fn the_detector_sees_every_string_of_the_body() {
    let cast = Cast::new().await;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let gw = detector_gateway(&cast, "detector", &audit).await;
    let bodies = hidden_pii_bodies();
    for (what, body) in &bodies {
        let r = post(&gw, &[], body.clone()).await;
        assert_eq!(
            (r.status.as_u16(), r.backend()),
            (200, "local-a"),
            "PII {what}: {}",
            r.text()
        );
    }
    assert_eq!(cast.cloud.request_count(), 0, "nothing reached the cloud");
    let lines = audit_lines(&audit, bodies.len()).await;
    for line in &lines {
        assert_eq!(line["classification"], "pii", "{line}");
        assert_eq!(line["classificationSource"], "detector", "{line}");
    }
}

#[tokio::test]
async fn ambiguous_bodies_are_refused_before_routing() {
    let cast = Cast::new().await;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let gw = detector_gateway(&cast, "detector", &audit).await;
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        (
            "duplicate messages key",
            format!(r#"{{"model":"m","messages":[{{"role":"user","content":"SSN {SSN}"}}],"messages":[{{"role":"user","content":"hi"}}]}}"#).into_bytes(),
        ),
        (
            "duplicate content key",
            format!(r#"{{"model":"m","messages":[{{"role":"user","content":"SSN {SSN}","content":"hi"}}]}}"#).into_bytes(),
        ),
        (
            "duplicate model key",
            br#"{"model":"a","model":"b","messages":[]}"#.to_vec(),
        ),
        (
            "a lone surrogate escape",
            format!(r#"{{"model":"m","messages":[{{"role":"user","content":"\ud800 SSN {SSN}"}}]}}"#).into_bytes(),
        ),
        ("a raw invalid UTF-8 byte", {
            let mut b = format!(r#"{{"model":"m","messages":[{{"role":"user","content":"SSN {SSN} "#).into_bytes();
            b.extend_from_slice(b"\xff\"}]}");
            b
        }),
        ("invalid UTF-8 in a key", b"{\"model\":\"m\",\"\xc3\":1}".to_vec()),
    ];
    for (what, body) in &bodies {
        let r = post(&gw, &[], body.clone()).await;
        assert_error(&r, 400, "invalid_request_error");
        assert!(
            !r.text().contains(SSN),
            "{what}: the error echoes no content"
        );
        let _ = what;
    }
    assert_eq!(cast.a.request_count() + cast.cloud.request_count(), 0);
    let lines = audit_lines(&audit, bodies.len()).await;
    assert!(lines.iter().all(|l| l["outcome"] == "bad_request"));
}

#[tokio::test]
async fn a_body_over_the_scan_limit_is_treated_as_sensitive() {
    let cast = Cast::new().await;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let gw = detector_gateway_with(&cast, "detector", &audit, "scanLimitBytes: 4096").await;
    let big = serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "x".repeat(8192)}]});
    let r = post(&gw, &[], big.to_string()).await;
    assert_eq!(
        (r.status.as_u16(), r.backend()),
        (200, "local-a"),
        "{}",
        r.text()
    );
    let small = serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "write a haiku"}]});
    assert_eq!(post(&gw, &[], small.to_string()).await.backend(), "cloud");
    let lines = audit_lines(&audit, 2).await;
    assert_eq!(lines[0]["classification"], "pii");
    assert_eq!(lines[0]["classificationSource"], "scan-limit");
    assert_eq!(lines[1]["classification"], "");
    assert!(
        lines[1].get("classificationSource").is_none(),
        "{}",
        lines[1]
    );
    cast.a.stop();
    let r = post(&gw, &[], big.to_string()).await;
    assert_error(&r, 503, "fail_closed");
    assert_eq!(
        cast.cloud.request_count(),
        1,
        "only the scanned clean body reached the cloud"
    );
}

#[tokio::test]
async fn hybrid_mode_counts_only_a_header_with_a_value_as_a_label() {
    let cast = Cast::new().await;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let gw = detector_gateway(&cast, "hybrid", &audit).await;
    let body = serde_json::json!({"model": "m", "messages": [{"role": "user", "content": format!("SSN {SSN}")}]}).to_string();
    for value in ["", " ", ",", " , ,"] {
        let r = post(&gw, &[("x-llmkube-classification", value)], body.clone()).await;
        assert_eq!(
            r.backend(),
            "local-a",
            "header {value:?} is no label: the detector runs"
        );
    }
    let r = post(&gw, &[("x-llmkube-classification", "public")], body).await;
    assert_eq!(
        r.backend(),
        "cloud",
        "a real label is trusted in hybrid mode"
    );
    let lines = audit_lines(&audit, 5).await;
    assert_eq!(lines[0]["classificationSource"], "detector");
    assert_eq!(lines[4]["classificationSource"], "header");
}

#[tokio::test]
async fn a_megabyte_of_number_dense_prose_is_scanned_within_the_policy_deadline() {
    let cast = Cast::new().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = detector_gateway(&cast, "detector", &dir.path().join("audit.log")).await;
    let para =
        "Revenue rose 4.2% to $18.3M, order 58213 shipped on 2026-03-14, build 1.24.7 passed. ";
    let clean = para.repeat((1 << 20) / para.len());
    let body = serde_json::json!({"model": "m", "messages": [{"role": "user", "content": clean}]});
    let r = post(&gw, &[], body.to_string()).await;
    assert_eq!(
        (r.status.as_u16(), r.backend()),
        (200, "cloud"),
        "scanned in windows, each within the deadline: {}",
        r.text()
    );
    let tail = format!("{clean} and my SSN is {SSN}");
    let body = serde_json::json!({"model": "m", "messages": [{"role": "user", "content": tail}]});
    let r = post(&gw, &[], body.to_string()).await;
    assert_eq!(r.backend(), "local-a", "found in the last window");
}

#[tokio::test]
async fn a_huge_model_name_is_echoed_bounded() {
    let cast = Cast::new().await;
    // No rule and no default route: the model is echoed in the 503.
    let gw = cast.gateway("").await;
    let model = "m".repeat(900_000);
    let r = gw.chat(&model, &[]).await;
    assert_error(&r, 503, "no_route");
    assert!(r.body.len() < 2_000, "error body of {} bytes", r.body.len());
    let lines = audit_lines(&gw.dir.path().join("audit.log"), 1).await;
    let line = lines[0].to_string();
    assert!(line.len() < 4_000, "audit line of {} bytes", line.len());
    assert!(lines[0]["model"].as_str().unwrap().ends_with('…'));
}

/// serde_json gives an object whose first key is `$serde_json::private::RawValue` a meaning
/// of its own: its string value is parsed again as JSON. A translating gateway that reads the
/// body into a `serde_json::Value` would thus decode a second time what the detector saw once
/// (`\u0030\u0037\u0038` is only text to it, `078` to the backend). Bodies with serde_json's
/// private keys are refused before anything else reads them.
#[tokio::test]
async fn serde_jsons_private_keys_cannot_smuggle_a_second_decoding_past_the_detector() {
    let (claude, local, gw) = claude_gateway().await;
    // A JSON string whose text is itself a JSON string literal with escaped digits.
    let hidden = r#""\"my SSN is \\u0030\\u0037\\u0038-05-1120\"""#;
    let bodies = [
        format!(
            r#"{{"model":"claude","messages":[{{"role":"user","content":{{"$serde_json::private::RawValue":{hidden}}}}}]}}"#
        ),
        r#"{"model":"claude","messages":[{"role":"user","content":"hi"}],"metadata":{"$serde_json::private::Number":"1"}}"#.to_owned(),
    ];
    for body in bodies {
        let r = post(&gw, &[], body).await;
        assert_error(&r, 400, "invalid_request_error");
        assert!(r.text().contains("reserved"), "{}", r.text());
    }
    let leaked: Vec<String> = (claude.requests().iter())
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert!(leaked.is_empty(), "reached the cloud: {leaked:?}");
    assert_eq!(local.request_count(), 0);
}

/// Chat tool-call `arguments` are JSON text inside a string: the detector reads that string,
/// and the translation to Anthropic decodes it into `tool_use.input`. A printable character
/// written as a `\u` escape would be decoded past the detector, so it is refused there.
#[tokio::test]
async fn escaped_digits_in_tool_call_arguments_are_not_decoded_for_the_cloud() {
    let (claude, _local, gw) = claude_gateway().await;
    let r = post(
        &gw,
        &[],
        tool_call(r#"{"ssn":"\u0030\u0037\u0038-05-1120"}"#),
    )
    .await;
    assert_error(&r, 400, "invalid_request_error");
    assert!(r.text().contains("escape"), "{}", r.text());
    assert_eq!(claude.request_count(), 0, "nothing reached the cloud");

    // Escapes a JSON encoder writes (quotes, non-ASCII) are translated as before.
    let r = post(&gw, &[], tool_call(r#"{"q":"say \"caf\u00e9\""}"#)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent: serde_json::Value = serde_json::from_slice(&claude.requests()[0].body).unwrap();
    assert_eq!(
        sent["messages"][1]["content"][0]["input"]["q"],
        "say \"café\""
    );
}

/// A chat request to Claude that replays a tool call with these `arguments`.
fn tool_call(arguments: &str) -> String {
    serde_json::json!({
        "model": "claude",
        "messages": [
            {"role": "user", "content": "look me up"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": arguments}}
            ]},
            {"role": "tool", "tool_call_id": "c1", "content": "found"}
        ]
    })
    .to_string()
}

/// An Anthropic backend `claude` (the default route) and a local one, behind a detector gateway.
async fn claude_gateway() -> (
    llmkube_mock_upstream::MockUpstream,
    llmkube_mock_upstream::MockUpstream,
    Gw,
) {
    let claude = llmkube_mock_upstream::MockUpstream::start("claude")
        .await
        .unwrap();
    let local = llmkube_mock_upstream::MockUpstream::start("local")
        .await
        .unwrap();
    let (gw, _audit) = crate::anthropic_out::anthropic_gateway(&claude, &local).await;
    (claude, local, gw)
}
