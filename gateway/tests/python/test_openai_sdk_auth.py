"""The official openai SDK against a gateway with `spec.auth` (started by the Rust test
`auth::the_official_openai_sdk_raises_its_typed_errors`).

Keys: `sk-alice` (team research: everything), `sk-intern` (team interns: local tier only).
`gpt` routes to the cloud backend, `llama-3` to a local one.
"""

import os

import openai
import pytest

BASE = os.environ["LLMKUBE_GATEWAY_URL"]


def client(key):
    return openai.OpenAI(base_url=BASE, api_key=key, max_retries=0, timeout=20)


def ask(key, model):
    return client(key).chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])


def test_a_wrong_key_raises_authentication_error():
    with pytest.raises(openai.AuthenticationError) as e:
        ask("sk-wrong", "llama-3")
    assert e.value.status_code == 401
    assert e.value.code == "invalid_api_key"


def test_a_team_kept_off_the_cloud_raises_permission_denied():
    with pytest.raises(openai.PermissionDeniedError) as e:
        ask("sk-intern", "gpt")
    assert e.value.status_code == 403
    assert "interns" in e.value.message


def test_a_valid_key_is_served():
    assert ask("sk-intern", "llama-3").choices[0].message.content == "Hello from local-a"
    assert ask("sk-alice", "gpt").choices[0].message.content == "Hello from cloud"
