"""The official openai SDK against a gateway whose router has a 30-token budget (started by
the Rust test `budgets::the_official_openai_sdk_sees_usage_and_a_spent_budget`). Every answer
of the mock backend uses 21 tokens, so two requests start and the third is refused.
"""

import os

import openai
import pytest

BASE = os.environ["LLMKUBE_GATEWAY_URL"]
client = openai.OpenAI(base_url=BASE, api_key="unused", max_retries=0, timeout=20)
MESSAGES = [{"role": "user", "content": "hi"}]


def test_1_a_stream_without_usage_looks_as_the_backend_sent_it():
    chunks = list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True, max_tokens=5))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).startswith("Hello from local-a")
    # The client did not ask for usage: no usage-only chunk reaches it.
    assert all(c.choices for c in chunks)


def test_2_a_stream_that_asks_for_usage_gets_it():
    chunks = list(
        client.chat.completions.create(
            model="m", messages=MESSAGES, stream=True, max_tokens=5, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 21


def test_3_a_spent_budget_raises_rate_limit_error():
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=5)
    assert e.value.status_code == 429
    assert e.value.code == "budget_exceeded"
    assert int(e.value.response.headers["retry-after"]) >= 1
