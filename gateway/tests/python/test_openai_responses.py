"""The official openai SDK's Responses client against a running gateway (started by the Rust
test `agent_sdks`; the same router as test_anthropic_sdk.py). The gateway keeps no responses:
it translates each request to chat completions (and to Messages for the `claude` backend).
"""

import os

import openai
import pytest

BASE = os.environ["LLMKUBE_GATEWAY_URL"]

TOOLS = [
    {
        "type": "function",
        "name": "lookup",
        "description": "Looks something up.",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
    }
]


@pytest.fixture()
def client():
    return openai.OpenAI(base_url=BASE, api_key="client-key-never-forwarded", max_retries=0, timeout=20)


def test_text_response(client):
    resp = client.responses.create(model="local-llama", input="hi", instructions="Be brief.", store=False)
    assert resp.status == "completed"
    assert resp.output_text == "Hello from local"
    assert resp.instructions == "Be brief."
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.total_tokens) == (9, 12, 21)


def test_streamed_events(client):
    events = list(client.responses.create(model="local-llama", input="hi", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "Hello from local token1 token2 token3"
    assert events[-1].response.usage.total_tokens == 21


def test_stream_helper_and_the_final_response(client):
    with client.responses.stream(model="local-llama", input="hi") as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert final.output_text == "Hello from local token1 token2 token3"


def test_function_call_round_trip(client):
    first = client.responses.create(model="local-llama", input="weather?", tools=TOOLS)
    call = first.output[0]
    assert (call.type, call.name, call.arguments) == ("function_call", "lookup", '{"q": "mock"}')
    second = client.responses.create(
        model="local-llama",
        tools=TOOLS,
        input=[
            {"role": "user", "content": "weather?"},
            call,
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
        ],
    )
    assert second.output_text == "Hello from local; the tool said sunny"


def test_a_streamed_function_call(client):
    events = list(client.responses.create(model="local-llama", input="weather?", tools=TOOLS, stream=True))
    args = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert args == '{"q": "mock"}'
    assert events[-1].response.output[0].type == "function_call"


def test_responses_reach_an_anthropic_backend(client):
    resp = client.responses.create(model="claude-x", input="hi")
    assert resp.output_text == "Hello from claude"
    with client.responses.stream(model="claude-x", input="hi") as stream:
        for _ in stream:
            pass
        assert stream.get_final_response().output_text.startswith("Hello from claude")


def test_stateful_requests_are_refused_clearly(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model="local-llama", input="hi", previous_response_id="resp_123")
    assert "response store" in err.value.body["message"]
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="local-llama", input="hi", store=True)
