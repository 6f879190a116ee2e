"""The official openai SDK against a running gateway (started by the Rust test `openai_sdk`).

The router: unclassified requests go to `local-b` (published as "llama-b"); `pii` requests
must stay on `local-a`, which is down, so they fail closed.
"""

import os

import openai
import pytest

BASE = os.environ["LLMKUBE_GATEWAY_URL"]


@pytest.fixture()
def client():
    return openai.OpenAI(base_url=BASE, api_key="client-key-never-forwarded", max_retries=0, timeout=20)


def test_chat(client):
    resp = client.chat.completions.create(model="llama-b", messages=[{"role": "user", "content": "hi"}])
    assert resp.choices[0].message.content == "Hello from local-b"
    assert resp.usage.total_tokens == 21


def test_streaming_chat(client):
    stream = client.chat.completions.create(
        model="llama-b", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text.startswith("Hello from local-b")
    assert "token3" in text


def test_embeddings(client):
    resp = client.embeddings.create(model="llama-b", input="hello")
    assert resp.data[0].embedding == [0.25, -0.5, 0.125, 1.0]


def test_models(client):
    ids = [m.id for m in client.models.list()]
    assert ids == ["local-a", "llama-b", "gpt-x"]


def test_fail_closed_surfaces_as_a_typed_error(client):
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(
            model="llama-b",
            messages=[{"role": "user", "content": "my SSN is 078-05-1120"}],
            extra_headers={"x-llmkube-classification": "pii"},
        )
    assert err.value.status_code == 503
    assert err.value.body["type"] == "fail_closed"
    assert "fail-closed" in err.value.body["message"]
