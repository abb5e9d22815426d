"""Drives a running AxonGate ingress with Google's official Gen AI Python SDK (google-genai).

Run by ingress/tests/suite/sdk_clients.rs with AXONGATE_BASE (http://127.0.0.1:PORT),
AXONGATE_TOKEN and three model aliases: GEMINI_MODEL (a Gemini upstream: pass-through),
CLAUDE_MODEL (an Anthropic upstream) and GPT_MODEL (an OpenAI Chat upstream). Warnings are
errors; every check raises on failure; the last line printed is a JSON summary.
"""

import json
import os
import sys
import warnings

warnings.simplefilter("error")

from google import genai  # noqa: E402
from google.genai import errors, types  # noqa: E402

BASE = os.environ["AXONGATE_BASE"]
TOKEN = os.environ["AXONGATE_TOKEN"]
GEMINI = os.environ["GEMINI_MODEL"]
CLAUDE = os.environ["CLAUDE_MODEL"]
GPT = os.environ["GPT_MODEL"]

results = {}


def check(name, condition, detail=""):
    if not condition:
        raise AssertionError(f"{name}: {detail}")
    results[name] = "ok"


def client(api_version=None):
    options = types.HttpOptions(base_url=BASE, api_version=api_version, timeout=30_000)
    return genai.Client(api_key=TOKEN, http_options=options)


sdk = client()  # the SDK's default API version (v1)
beta = client("v1beta")
weather = types.FunctionDeclaration(
    name="get_weather",
    description="Weather for a city",
    parameters=types.Schema(type=types.Type.OBJECT, properties={"city": types.Schema(type=types.Type.STRING)},
                            required=["city"]))
tools = types.GenerateContentConfig(
    tools=[types.Tool(function_declarations=[weather])],
    automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True))
thinking = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(include_thoughts=True, thinking_budget=1024))

for label, sdk_client in (("v1", sdk), ("v1beta", beta)):
    for model in (GEMINI, CLAUDE, GPT):
        # Plain text, with its usage and the alias as the model version.
        answer = sdk_client.models.generate_content(model=model, contents="Say hello to the gateway")
        check(f"{label}_{model}_plain", answer.text and answer.candidates[0].finish_reason == types.FinishReason.STOP
              and answer.model_version == model, answer)
        check(f"{label}_{model}_usage", answer.usage_metadata.prompt_token_count > 0
              and answer.usage_metadata.candidates_token_count > 0, answer.usage_metadata)

        # Streamed: the chunks add up, the last has the finish reason and the usage.
        chunks = list(sdk_client.models.generate_content_stream(model=model, contents="Say hello to the gateway"))
        streamed = "".join(chunk.text or "" for chunk in chunks)
        last = chunks[-1]
        check(f"{label}_{model}_stream", streamed and last.candidates[0].finish_reason == types.FinishReason.STOP
              and last.usage_metadata.candidates_token_count > 0, chunks)

        # A function call, then its result in the next turn.
        question = 'MOCK_TOOL_CALL get_weather {"city": "Paris"}'
        answer = sdk_client.models.generate_content(model=model, contents=question, config=tools)
        calls = answer.function_calls or []
        check(f"{label}_{model}_function_call", calls and calls[0].name == "get_weather"
              and calls[0].args.get("city") == "Paris", answer)
        history = [
            types.Content(role="user", parts=[types.Part(text=question)]),
            answer.candidates[0].content,
            types.Content(role="user", parts=[types.Part.from_function_response(
                name="get_weather", response={"output": "sunny, 21 C"})]),
        ]
        final = sdk_client.models.generate_content(model=model, contents=history, config=tools)
        check(f"{label}_{model}_function_result", "sunny, 21 C" in (final.text or ""), final)

        # The same call, streamed.
        chunks = list(sdk_client.models.generate_content_stream(model=model, contents=question, config=tools))
        calls = [call for chunk in chunks for call in (chunk.function_calls or [])]
        check(f"{label}_{model}_function_call_stream", len(calls) == 1 and calls[0].name == "get_weather", chunks)

# Thoughts pass through from a Gemini upstream, with the signature the next turn must carry.
answer = sdk.models.generate_content(model=GEMINI, contents="Think first", config=thinking)
parts = answer.candidates[0].content.parts
check("gemini_thoughts", parts[0].thought and parts[0].text and any(part.thought_signature for part in parts[1:])
      and answer.usage_metadata.thoughts_token_count > 0, answer)

# Token counting: the Gemini upstream counts; other routes are estimated.
check("count_tokens_upstream", sdk.models.count_tokens(model=GEMINI, contents="one two three").total_tokens > 0)
check("count_tokens_estimate", sdk.models.count_tokens(model=CLAUDE, contents="one two three").total_tokens > 0)

# The model list and one model, in both API versions.
for label, sdk_client in (("v1", sdk), ("v1beta", beta)):
    names = [model.name for model in sdk_client.models.list()]
    check(f"{label}_models", f"models/{GEMINI}" in names and f"models/{CLAUDE}" in names, names)
    check(f"{label}_model_get", sdk_client.models.get(model=GPT).name == f"models/{GPT}")

# Errors map to the SDK's exception classes, with Google's status names.
wrong = genai.Client(api_key="axg-wrong", http_options=types.HttpOptions(base_url=BASE))
try:
    wrong.models.generate_content(model=GEMINI, contents="hello")
    check("auth_error", False, "no exception")
except errors.ClientError as error:
    check("auth_error", error.code == 401 and error.status == "UNAUTHENTICATED", error)
try:
    sdk.models.generate_content(model="no-such-model", contents="hello")
    check("not_found", False, "no exception")
except errors.ClientError as error:
    check("not_found", error.code == 404 and error.status == "NOT_FOUND", error)

wrong.close()
sdk.close()
beta.close()
print(json.dumps(results))
sys.exit(0)
