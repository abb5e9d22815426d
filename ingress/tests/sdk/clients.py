"""Drives a running AxonGate ingress with the official OpenAI and Anthropic Python SDKs.

Run by ingress/tests/sdk_clients.rs with AXONGATE_BASE (http://127.0.0.1:PORT), AXONGATE_TOKEN,
and three model aliases: CLAUDE_MODEL (served by an Anthropic-protocol upstream), GPT_MODEL
(served by an OpenAI Chat upstream) and RESPONSES_MODEL (served by an OpenAI Responses upstream). Every check raises on failure; the last line printed
is a JSON summary.
"""

import json
import os
import sys

import anthropic
import openai

BASE = os.environ["AXONGATE_BASE"]
TOKEN = os.environ["AXONGATE_TOKEN"]
CLAUDE = os.environ["CLAUDE_MODEL"]
GPT = os.environ["GPT_MODEL"]
RESPONSES = os.environ["RESPONSES_MODEL"]

results = {}


def check(name, condition, detail=""):
    if not condition:
        raise AssertionError(f"{name}: {detail}")
    results[name] = "ok"


oai = openai.OpenAI(base_url=f"{BASE}/v1", api_key=TOKEN, max_retries=0, timeout=30)
ant = anthropic.Anthropic(base_url=BASE, api_key=TOKEN, max_retries=0, timeout=30)
messages = [{"role": "user", "content": "Say hello to the gateway"}]

# OpenAI SDK → Anthropic upstream (translation), plain.
completion = oai.chat.completions.create(model=CLAUDE, messages=messages)
check("openai_sdk_to_anthropic_plain", completion.choices[0].message.content and completion.choices[0].finish_reason == "stop",
      completion)
check("openai_sdk_usage", completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0, completion.usage)

# OpenAI SDK → Anthropic upstream, streaming with usage.
text, finish, usage = "", None, None
for chunk in oai.chat.completions.create(model=CLAUDE, messages=messages, stream=True, stream_options={"include_usage": True}):
    if chunk.choices:
        text += chunk.choices[0].delta.content or ""
        finish = chunk.choices[0].finish_reason or finish
    if chunk.usage:
        usage = chunk.usage
check("openai_sdk_to_anthropic_stream", text and finish == "stop", (text, finish))
check("openai_sdk_stream_usage", usage is not None and usage.completion_tokens > 0, usage)

# OpenAI SDK, tool call through an Anthropic upstream.
tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
completion = oai.chat.completions.create(model=CLAUDE, messages=messages, tools=tools)
call = completion.choices[0].message.tool_calls[0]
check("openai_sdk_tool_call", completion.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather"
      and json.loads(call.function.arguments).get("city"), completion)

# Anthropic SDK → OpenAI upstream (translation), plain and streaming.
message = ant.messages.create(model=GPT, max_tokens=256, messages=messages)
check("anthropic_sdk_to_openai_plain", message.content[0].text and message.stop_reason == "end_turn", message)
check("anthropic_sdk_usage", message.usage.input_tokens > 0 and message.usage.output_tokens > 0, message.usage)
with ant.messages.stream(model=GPT, max_tokens=256, messages=messages) as stream:
    streamed = "".join(stream.text_stream)
    final = stream.get_final_message()
check("anthropic_sdk_to_openai_stream", streamed and final.stop_reason == "end_turn" and final.usage.output_tokens > 0, final)

# Anthropic SDK, tool use through an OpenAI upstream, streamed.
ant_tools = [{"name": "get_weather", "description": "Weather in a city",
              "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
with ant.messages.stream(model=GPT, max_tokens=256, messages=messages, tools=ant_tools) as stream:
    final = stream.get_final_message()
tool_use = [block for block in final.content if block.type == "tool_use"]
check("anthropic_sdk_tool_use_stream", final.stop_reason == "tool_use" and tool_use and tool_use[0].input.get("city"), final)

# Same-dialect traffic both ways.
check("openai_sdk_passthrough", oai.chat.completions.create(model=GPT, messages=messages).choices[0].message.content)
check("anthropic_sdk_passthrough", ant.messages.create(model=CLAUDE, max_tokens=64, messages=messages).content[0].text)

# Errors map to the SDKs' exception classes.
try:
    openai.OpenAI(base_url=f"{BASE}/v1", api_key="axg-wrong", max_retries=0).chat.completions.create(model=GPT, messages=messages)
    check("openai_sdk_auth_error", False, "no exception")
except openai.AuthenticationError:
    check("openai_sdk_auth_error", True)
try:
    ant.messages.create(model="no-such-model", max_tokens=16, messages=messages)
    check("anthropic_sdk_not_found", False, "no exception")
except anthropic.NotFoundError:
    check("anthropic_sdk_not_found", True)
try:
    oai.chat.completions.create(model="no-such-model", messages=messages)
    check("openai_sdk_not_found", False, "no exception")
except openai.NotFoundError:
    check("openai_sdk_not_found", True)

# OpenAI SDK's Responses API → Responses upstream (pass-through), plain, streamed and with a tool.
response = oai.responses.create(model=RESPONSES, input="Say hello to the gateway", store=False,
                                include=["reasoning.encrypted_content"])
check("responses_sdk_passthrough_plain", response.output_text and response.status == "completed"
      and response.model == RESPONSES and response.usage.output_tokens > 0, response)
with oai.responses.stream(model=RESPONSES, input="Say hello to the gateway") as stream:
    streamed = "".join(event.delta for event in stream if event.type == "response.output_text.delta")
    final = stream.get_final_response()
check("responses_sdk_passthrough_stream", streamed and final.output_text == streamed and final.model == RESPONSES, final)
resp_tools = [{"type": "function", "name": "get_weather", "description": "Weather in a city", "strict": False,
               "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
response = oai.responses.create(model=RESPONSES, input="Weather in Paris?", tools=resp_tools)
calls = [item for item in response.output if item.type == "function_call"]
check("responses_sdk_tool_call", calls and calls[0].name == "get_weather" and json.loads(calls[0].arguments).get("city"), response)

# Chat and Anthropic SDKs → Responses upstream (translation).
completion = oai.chat.completions.create(model=RESPONSES, messages=messages)
check("openai_sdk_to_responses_plain", completion.choices[0].message.content and completion.choices[0].finish_reason == "stop",
      completion)
with ant.messages.stream(model=RESPONSES, max_tokens=256, messages=messages, tools=ant_tools) as stream:
    final = stream.get_final_message()
tool_use = [block for block in final.content if block.type == "tool_use"]
check("anthropic_sdk_to_responses_tool_use_stream", final.stop_reason == "tool_use" and tool_use
      and tool_use[0].input.get("city"), final)

models = [model.id for model in oai.models.list()]
check("openai_sdk_models", CLAUDE in models and GPT in models, models)

print(json.dumps(results))
sys.exit(0)
