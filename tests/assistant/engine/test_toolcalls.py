"""DeepSeek-V3 tool calls: the tools prompt and rendering (the parser: test_toolcall_parser.py)."""

from __future__ import annotations

import json

import pytest

from assistant.engine.toolcalls import (
    CALL_BEGIN, CALL_END, CALLS_BEGIN, CALLS_END, TOOL_SEP, inject_tools, render_tool_calls, tools_system_prompt,
)

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "查询城市天气 (weather by city)",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
CLOCK = {"name": "now", "description": "Current time"}  # bare (non-OpenAI-wrapped) shape

CALLS = [
    {"id": "x", "type": "function",
     "function": {"name": "get_weather", "arguments": '{"city": "北京"}'}},
    {"id": "y", "type": "function", "function": {"name": "now", "arguments": {"tz": "UTC+8"}}},
]


# ---------------------------------------------------------------- tools prompt

def test_tools_prompt_describes_tools_and_format():
    text = tools_system_prompt([WEATHER, CLOCK])
    assert "### get_weather" in text and "### now" in text
    assert "查询城市天气" in text and '"city"' in text  # Chinese kept, not \\u-escaped
    assert "\\u" not in text
    example = f"{CALLS_BEGIN}{CALL_BEGIN}function{TOOL_SEP}TOOL_NAME\n```json\n"
    assert example in text and f"{CALL_END}{CALLS_END}" in text
    assert "single" in text  # several calls go inside one block


def test_tools_prompt_rejects_nameless_tool():
    with pytest.raises(ValueError):
        tools_system_prompt([{"type": "function", "function": {"description": "x"}}])


def test_inject_tools_merges_into_first_system_message_without_mutating():
    messages = [{"role": "user", "content": "hi"},
                {"role": "system", "content": "Be brief."},
                {"role": "system", "content": "Second."}]
    before = json.loads(json.dumps(messages))
    out = inject_tools(messages, [WEATHER])
    assert messages == before
    assert out[1]["content"].startswith("Be brief.\n\n## Tools")
    assert out[2]["content"] == "Second." and out[0] == messages[0]


def test_inject_tools_adds_a_system_message_or_nothing():
    out = inject_tools([{"role": "user", "content": "hi"}], [CLOCK])
    assert out[0]["role"] == "system" and "### now" in out[0]["content"]
    assert inject_tools([{"role": "user", "content": "hi"}], None) == [
        {"role": "user", "content": "hi"}]


def test_render_tool_calls_format():
    assert render_tool_calls(CALLS[:1]) == (
        "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n"
        '```json\n{"city": "北京"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>')
