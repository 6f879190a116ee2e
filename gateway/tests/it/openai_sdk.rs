//! The official `openai` Python SDK as a real client (see `gateway/tests/python`).

use crate::support::*;

#[tokio::test]
async fn the_official_openai_python_sdk_works_against_the_gateway() {
    let cast = Cast::new().await;
    let gw = cast
        .gateway(
            "  rules:
    - {name: pii, match: {dataClassification: [pii]}, route: {backends: [local-a]}, failClosed: true}
  defaultRoute: local-b
  defaultRouteStrategy: BackendNameMatch
",
        )
        .await;
    cast.a.stop();
    pytest(&gw, "test_openai_sdk.py", 5).await;
}
