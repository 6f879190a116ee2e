//! Streaming: pass-through per chunk, idle and total caps, no fallback after the first byte.

use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::support::*;

/// Reads frames until the body ends (Ok) or breaks (Err), with a deadline.
async fn read_all(mut body: Incoming) -> Result<String, String> {
    let mut text = String::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), body.frame()).await {
            Err(_) => return Err(format!("hung; got so far: {text:?}")),
            Ok(None) => return Ok(text),
            Ok(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    text.push_str(&String::from_utf8_lossy(d));
                }
            }
            Ok(Some(Err(e))) => return Err(format!("{e}; got so far: {text:?}")),
        }
    }
}

async fn single(idle: &str) -> (Cast, Gw) {
    let cast = Cast::new().await;
    let gw = cast
        .gateway(&format!(
            "  rules: [{{name: r, route: {{backends: [local-a, local-b]}}}}]\n  proxy: {{{idle}}}\n"
        ))
        .await;
    (cast, gw)
}

#[tokio::test]
async fn sse_passes_through_intact() {
    let (cast, gw) = single("streamIdleTimeout: 5s").await;
    cast.a.update(|b| b.chunks = 6);
    let resp = gw.stream_chat("m").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let text = read_all(resp.into_body()).await.unwrap();
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(
        events.len(),
        8,
        "6 chunks, the final one and [DONE]: {text}"
    );
    assert!(text.ends_with("data: [DONE]\n\n"));
    assert!(!text.contains("event: error"));
}

#[tokio::test]
async fn the_first_chunk_reaches_the_client_before_the_backend_finishes() {
    let (cast, gw) = single("streamIdleTimeout: 30s").await;
    // The backend sends one chunk and then never finishes: only a pass-through proxy can
    // deliver that chunk.
    cast.a.update(|b| b.stall_after_first_chunk = true);
    let resp = gw.stream_chat("m").await;
    let mut body = resp.into_body();
    let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("first chunk delivered while the backend is still streaming")
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(frame.data_ref().unwrap()).into_owned();
    assert!(
        text.starts_with("data: ") && text.contains("Hello from local-a"),
        "{text}"
    );
}

#[tokio::test]
async fn an_idle_stream_is_cut_with_an_sse_error_event_and_a_clean_close() {
    let (cast, gw) = single("streamIdleTimeout: 1s").await;
    cast.a.update(|b| b.stall_after_first_chunk = true);
    let resp = gw.stream_chat("m").await;
    let text = read_all(resp.into_body())
        .await
        .expect("clean close, not a hang or reset");
    assert!(text.contains("Hello from local-a"));
    let event = text
        .split("\n\n")
        .find(|e| e.starts_with("event: error"))
        .expect(&text);
    let data: serde_json::Value =
        serde_json::from_str(event.split_once("data: ").unwrap().1).unwrap();
    assert_eq!(data["error"]["code"], "stream_idle_timeout");
    assert_eq!(data["error"]["type"], "stream_error");
}

#[tokio::test]
async fn no_fallback_once_the_first_byte_was_sent() {
    let (cast, gw) = single("streamIdleTimeout: 5s").await;
    cast.a.update(|b| {
        b.chunks = 5;
        b.break_after_chunks = Some(2);
    });
    let resp = gw.stream_chat("m").await;
    assert_eq!(resp.headers()["x-llmkube-backend"], "local-a");
    let text = read_all(resp.into_body()).await.unwrap();
    assert_eq!(text.matches("chat.completion.chunk").count(), 2, "{text}");
    assert!(
        text.contains("\"code\":\"upstream_stream_error\""),
        "{text}"
    );
    assert_eq!(
        cast.b.request_count(),
        0,
        "nothing may be retried after bytes reached the client"
    );
}

#[tokio::test]
async fn the_total_stream_duration_is_capped() {
    let (cast, gw) = single("streamIdleTimeout: 5s, maxStreamDuration: 1s").await;
    cast.a.update(|b| {
        b.chunks = 100;
        b.chunk_gap = Duration::from_millis(100);
    });
    let resp = gw.stream_chat("m").await;
    let text = read_all(resp.into_body()).await.unwrap();
    assert!(text.contains("\"code\":\"stream_max_duration\""), "{text}");
    assert!(!text.contains("[DONE]"));
}
