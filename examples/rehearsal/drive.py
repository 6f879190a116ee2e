"""Drives the rehearsal's gateway with the official openai SDK, as an application would.

Env: GATEWAY (base URL ending in /v1). Prints one JSON line of timings and facts; exits
non-zero on the first broken promise. `--after-stop` checks only that a request fails closed
once llama.cpp is gone.
"""

import json
import os
import sys
import time

import openai

client = openai.OpenAI(base_url=os.environ["GATEWAY"], api_key="app-key", max_retries=0, timeout=60)
ask = [{"role": "user", "content": "hello local model"}]

if "--after-stop" in sys.argv:
    try:
        client.chat.completions.create(
            model="llama-3-8b", messages=[{"role": "user", "content": "my SSN is 078-05-1120"}],
            extra_headers={"x-llmkube-classification": "pii"},
        )
    except openai.InternalServerError as e:
        assert e.status_code == 503, e
        assert e.body["type"] == "fail_closed", e.body
        print(json.dumps({"fail_closed": 503}))
        sys.exit(0)
    sys.exit("a pii request was answered with llama.cpp stopped")

facts = {}
start = time.monotonic()
stream = client.chat.completions.create(
    model="llama-3-8b", messages=ask, stream=True, max_tokens=16,
    stream_options={"include_usage": True},
)
first, pieces, usage = None, [], None
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        first = first or time.monotonic()
        pieces.append(chunk.choices[0].delta.content)
    if chunk.usage:
        usage = chunk.usage
assert pieces, "llama.cpp streamed no tokens"
assert usage and usage.completion_tokens > 0, f"no usage reported: {usage}"
facts["first_token_ms"] = round((first - start) * 1000, 1)
facts["streamed_pieces"] = len(pieces)
facts["usage"] = {"prompt": usage.prompt_tokens, "completion": usage.completion_tokens}

raw = client.chat.completions.with_raw_response.create(
    model="llama-3-8b", max_tokens=8,
    messages=[{"role": "user", "content": "my SSN is 078-05-1120"}],
    extra_headers={"x-llmkube-classification": "pii"},
)
assert raw.headers["x-llmkube-backend"] == "local-llama", raw.headers
assert raw.headers["x-llmkube-rule"] == "pii-stays-local", raw.headers
facts["pii_backend"] = raw.headers["x-llmkube-backend"]

raw = client.chat.completions.with_raw_response.create(
    model="llama-3-8b", messages=[{"role": "user", "content": "plan the migration"}],
    extra_headers={"x-llmkube-task-complexity": "complex"},
)
answer = raw.parse()
assert raw.headers["x-llmkube-backend"] == "internal-litellm", raw.headers
assert answer.choices[0].message.content == "Hello from the internal LiteLLM", answer
facts["complex_backend"] = raw.headers["x-llmkube-backend"]
print(json.dumps(facts))
