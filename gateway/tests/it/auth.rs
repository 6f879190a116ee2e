//! `spec.auth`: API keys name a principal and a team; a request without a valid one gets 401
//! and goes nowhere; a team gets only its models, backends and tiers (403 otherwise), and the
//! audit line and metrics say who sent what.

use http::Method;
use sha2::{Digest, Sha256};

use crate::support::*;

/// A credentials directory whose `api-keys` Secret lists `(key, principal, team)`, beside the
/// cloud backend's provider key.
fn key_secret(keys: &[(&str, &str, Option<&str>)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("api-keys")).unwrap();
    let mut yaml = String::from("# sha256 of each key; the keys themselves are never stored\n");
    for (key, principal, team) in keys {
        let digest: String = Sha256::digest(key.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        yaml += &format!("- principal: {principal}\n  sha256: {digest}\n");
        if let Some(team) = team {
            yaml += &format!("  team: {team}\n");
        }
    }
    std::fs::write(dir.path().join("api-keys/keys.yaml"), yaml).unwrap();
    // The cloud backend's own key (Secret `openai`), which is what it must receive.
    std::fs::create_dir(dir.path().join("openai")).unwrap();
    std::fs::write(dir.path().join("openai/OPENAI_API_KEY"), "sk-mine").unwrap();
    dir
}

const AUTH: &str = "  auth:
    apiKeys: {secretRef: {name: api-keys}}
    teams:
      - {name: research}
      - {name: interns, tiers: [local], models: ['llama-*', 'gpt*']}
    actForTeams: [ci-bot]
";

async fn gateway_with_keys(cast: &Cast) -> (Gw, tempfile::TempDir) {
    let secrets = key_secret(&[
        ("sk-alice", "alice@example.org", Some("research")),
        ("sk-intern", "ivan", Some("interns")),
        ("sk-ci", "ci-bot", Some("research")),
        ("sk-nobody", "nobody", None),
    ]);
    let spec = format!(
        "{}  rules:\n    - {{name: llama, match: {{models: ['llama-*']}}, route: {{backends: [local-a]}}}}\n  defaultRoute: cloud\n{AUTH}",
        cast.backends()
    );
    let dir = secrets.path().to_path_buf();
    let gw = gateway_with(
        &spec,
        &[("local-a", &cast.a), ("local-b", &cast.b)],
        move |c| c.resolve.credentials_dir = Some(dir),
    )
    .await;
    (gw, secrets)
}

#[tokio::test]
async fn requests_without_a_valid_key_get_401_and_reach_nothing() {
    let cast = Cast::new().await;
    let (gw, _secrets) = gateway_with_keys(&cast).await;

    let none = gw.chat("llama-3", &[]).await;
    assert_error(&none, 401, "invalid_request_error");
    assert_eq!(none.json()["error"]["code"], "invalid_api_key");
    assert_eq!(none.header("www-authenticate"), "Bearer");
    for wrong in [
        ("authorization", "Bearer sk-alicE"),
        ("authorization", "Basic c2stYWxpY2U="),
        ("x-api-key", "sk-alic"),
        ("authorization", "Bearer"),
    ] {
        let r = gw.chat("llama-3", &[wrong]).await;
        assert_eq!(r.status, 401, "{wrong:?}: {}", r.text());
    }
    assert_eq!(gw.get("/v1/models").await.status, 401);
    assert!(cast.a.requests().is_empty() && cast.cloud.requests().is_empty());

    // Both ways the SDKs send a key are accepted; neither is forwarded.
    let bearer = gw
        .chat("llama-3", &[("authorization", "Bearer sk-alice")])
        .await;
    assert_eq!((bearer.status.as_u16(), bearer.backend()), (200, "local-a"));
    let x_api_key = gw.chat("gpt", &[("x-api-key", "sk-alice")]).await;
    assert_eq!(
        (x_api_key.status.as_u16(), x_api_key.backend()),
        (200, "cloud")
    );
    let sent = cast.cloud.requests().pop().unwrap();
    assert!(!sent.headers.contains_key("x-api-key"));
    assert_eq!(
        sent.headers["authorization"], "Bearer sk-mine",
        "the backend's own key"
    );
    let models = gw
        .request(Method::GET, "/v1/models", &[("x-api-key", "sk-alice")], "")
        .await;
    assert_eq!(models.status, 200);

    let lines = audit_lines(&gw.dir.path().join("audit.log"), 7).await;
    assert_eq!(lines[0]["outcome"], "unauthenticated");
    assert!(lines[0].get("principal").is_none());
    assert_eq!(lines[5]["principal"], "alice@example.org");
    assert_eq!(lines[5]["team"], "research");
    assert_eq!(lines[6]["backend"], "cloud");
}

#[tokio::test]
async fn a_team_gets_only_its_models_backends_and_tiers() {
    let cast = Cast::new().await;
    let (gw, _secrets) = gateway_with_keys(&cast).await;
    let intern = [("authorization", "Bearer sk-intern")];

    // `gpt` is one of the interns' models, but it routes to the cloud, which they may not use.
    let cloud = gw.chat("gpt", &intern).await;
    assert_error(&cloud, 403, "permission_error");
    assert!(cloud.text().contains("interns"), "{}", cloud.text());
    assert!(
        cast.cloud.requests().is_empty(),
        "the cloud receives nothing"
    );
    // Naming another team does not help a principal who may not act for one.
    let claimed = gw
        .chat("gpt", &[intern[0], ("x-llmkube-team", "research")])
        .await;
    assert_eq!(claimed.status, 403);
    // A model outside the team's list is refused before anything is routed.
    assert_eq!(gw.chat("mistral", &intern).await.status, 403);
    // Local models are fine.
    let local = gw.chat("llama-3", &intern).await;
    assert_eq!((local.status.as_u16(), local.backend()), (200, "local-a"));

    // A principal allowed to act for teams is served as the team it names.
    let ci = [
        ("authorization", "Bearer sk-ci"),
        ("x-llmkube-team", "interns"),
    ];
    assert_eq!(gw.chat("gpt", &ci).await.status, 403);
    // A key without a team may not use a router that serves only its teams.
    let nobody = gw.chat("llama-3", &[("x-api-key", "sk-nobody")]).await;
    assert_error(&nobody, 403, "permission_error");
    assert!(cast.cloud.requests().is_empty());

    let lines = audit_lines(&gw.dir.path().join("audit.log"), 6).await;
    let outcomes: Vec<&str> = lines
        .iter()
        .map(|l| l["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        [
            "forbidden",
            "forbidden",
            "forbidden",
            "ok",
            "forbidden",
            "forbidden"
        ]
    );
    assert_eq!(
        (lines[1]["principal"].as_str(), lines[1]["team"].as_str()),
        (Some("ivan"), Some("interns"))
    );
    assert_eq!(lines[4]["team"], "interns", "ci-bot acted for interns");
    let metrics = gw.get("/metrics").await.text();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("llmkube_router_requests_total")
                && l.contains("team=\"interns\"")
                && l.contains("outcome=\"forbidden\"")),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_router_whose_keys_cannot_be_read_does_not_load() {
    let cast = Cast::new().await;
    let spec = format!("{}  defaultRoute: local-a\n{AUTH}", cast.backends());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("router.yaml"), router_yaml("r", &spec)).unwrap();
    let mut config = llmkube_gateway::GatewayConfig::new(dir.path().join("router.yaml"));
    config.resolve.credentials_dir = Some(dir.path().to_path_buf());
    let err = llmkube_gateway::start(config)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("spec.auth.apiKeys") && err.contains("api-keys"),
        "{err}"
    );
}

#[tokio::test]
async fn the_official_openai_sdk_raises_its_typed_errors() {
    let cast = Cast::new().await;
    let (gw, _secrets) = gateway_with_keys(&cast).await;
    if !pytest(&gw, "test_openai_sdk_auth.py", 3).await {
        return;
    }
    assert!(
        cast.cloud.requests().len() == 1,
        "only alice's request reached the cloud"
    );
}

#[tokio::test]
async fn keys_rotated_in_the_mounted_secret_take_effect_without_a_restart() {
    let cast = Cast::new().await;
    let (gw, secrets) = gateway_with_keys(&cast).await;
    assert_eq!(
        gw.chat("llama-3", &[("x-api-key", "sk-new")]).await.status,
        401
    );
    // Like the kubelet: the new file is written beside and swapped in.
    let digest: String = Sha256::digest(b"sk-new")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let dir = secrets.path().join("api-keys");
    std::fs::write(
        dir.join("keys.yaml.new"),
        format!("- {{principal: bob, team: research, sha256: {digest}}}\n"),
    )
    .unwrap();
    std::fs::rename(dir.join("keys.yaml.new"), dir.join("keys.yaml")).unwrap();
    let mut status = 0;
    for _ in 0..50 {
        status = gw
            .chat("llama-3", &[("x-api-key", "sk-new")])
            .await
            .status
            .as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "the new key works");
    let old = gw
        .chat("llama-3", &[("authorization", "Bearer sk-alice")])
        .await;
    assert_eq!(old.status, 401, "the rotated-out key no longer does");
}
