"""The official anthropic SDK against a running gateway (started by the Rust test `agent_sdks`).

The router: `local-*` models and whatever the PII detector flags go to the local backend
(an OpenAI-compatible mock: the gateway translates Messages to chat completions and back);
everything else goes to `claude`, an `anthropic` backend that receives Messages natively.
"""

import os

import anthropic
import pytest

BASE = os.environ["LLMKUBE_GATEWAY_URL"].removesuffix("/v1")

TOOLS = [
    {
        "name": "lookup",
        "description": "Looks something up.",
        "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
    }
]


@pytest.fixture()
def client():
    return anthropic.Anthropic(base_url=BASE, api_key="client-key-never-forwarded", max_retries=0, timeout=20)


def ask(text):
    return [{"role": "user", "content": text}]


def test_message_to_a_local_model(client):
    msg = client.messages.create(model="local-llama", max_tokens=64, system="Be brief.", messages=ask("hi"))
    assert msg.content[0].type == "text"
    assert msg.content[0].text == "Hello from local"
    assert msg.stop_reason == "end_turn"
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (9, 12)


def test_stream_helpers_on_a_local_model(client):
    with client.messages.stream(model="local-llama", max_tokens=64, messages=ask("hi")) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from local token1 token2 token3"
    assert final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 12


@pytest.mark.parametrize("streamed", [False, True])
def test_tool_use_round_trip_on_a_local_model(client, streamed):
    messages = ask("what is the weather?")
    if streamed:
        with client.messages.stream(model="local-llama", max_tokens=64, messages=messages, tools=TOOLS) as s:
            first = s.get_final_message()
    else:
        first = client.messages.create(model="local-llama", max_tokens=64, messages=messages, tools=TOOLS)
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    assert (call.name, call.input) == ("lookup", {"q": "mock"})
    messages += [
        {"role": "assistant", "content": first.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}]},
    ]
    second = client.messages.create(model="local-llama", max_tokens=64, messages=messages, tools=TOOLS)
    assert second.content[0].text == "Hello from local; the tool said sunny"


def test_messages_pass_through_to_an_anthropic_backend(client):
    msg = client.messages.create(model="claude-x", max_tokens=64, messages=ask("hi"))
    assert msg.content[0].text == "Hello from claude"
    with client.messages.stream(model="claude-x", max_tokens=64, messages=ask("hi")) as stream:
        assert "".join(stream.text_stream).startswith("Hello from claude")


def test_personal_data_stays_local(client):
    msg = client.messages.create(model="claude-x", max_tokens=64, messages=ask("my SSN is 078-05-1120"))
    assert msg.content[0].text == "Hello from local"


def test_errors_are_typed_exceptions(client):
    with pytest.raises(anthropic.BadRequestError) as err:
        client.messages.create(
            model="local-llama",
            max_tokens=64,
            messages=ask("hi"),
            thinking={"type": "enabled", "budget_tokens": 1024},
        )
    assert err.value.status_code == 400
    assert "thinking" in err.value.body["error"]["message"]
