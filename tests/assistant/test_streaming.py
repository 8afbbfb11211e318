"""Reassembling streamed completions: <think> tags, tool-call fragments, usage."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest
from openai.types.chat import ChatCompletionChunk

from assistant.conversations import Usage
from assistant.streaming import Event, StepReader, ThinkTagSplitter, ToolCallAccumulator, extra_field


def split_run(chunks: list[str]) -> tuple[str, str]:
    """Feed chunks through a fresh splitter; (reasoning, content) after flush."""
    splitter = ThinkTagSplitter()
    reasoning = content = ""
    for chunk in chunks:
        r, c = splitter.feed(chunk)
        reasoning += r
        content += c
    r, c = splitter.flush()
    return reasoning + r, content + c


def splits(text: str, cuts: int):
    """Every way of cutting ``text`` at ``cuts`` positions (empty pieces included)."""
    for points in itertools.combinations_with_replacement(range(len(text) + 1), cuts):
        bounds = [0, *points, len(text)]
        yield [text[a:b] for a, b in zip(bounds, bounds[1:])]


# --------------------------------------------------------------------------- ThinkTagSplitter


def test_think_tag_in_one_chunk():
    assert split_run(["<think>I should greet.</think>Hello!"]) == ("I should greet.", "Hello!")


def test_open_tag_split_across_chunks():
    assert split_run(["<th", "ink>plan</think>Answer"]) == ("plan", "Answer")
    assert split_run(["<", "t", "h", "i", "n", "k", ">", "plan", "</", "think", ">", "Answer"]) == ("plan", "Answer")


@pytest.mark.parametrize("cuts", [1, 2])
def test_think_tags_split_at_every_position(cuts):
    text = "<think>先想一想 a<b</think>\n\n答案是 42。"
    for chunks in splits(text, cuts):
        assert split_run(chunks) == ("先想一想 a<b", "答案是 42。"), chunks


def test_every_character_its_own_chunk():
    text = "<think>step 1; step 2</think>\nDone."
    assert split_run(list(text)) == ("step 1; step 2", "Done.")


def test_reasoning_released_before_close_tag():
    splitter = ThinkTagSplitter()
    assert splitter.feed("<think>abc") == ("abc", "")
    assert splitter.feed("de</thi") == ("de", "")  # "</thi" is held back
    assert splitter.feed("nk>") == ("", "")
    assert splitter.feed("\n\n") == ("", "")  # newlines after the tag are dropped
    assert splitter.feed("Answer\n\nmore") == ("", "Answer\n\nmore")
    assert splitter.flush() == ("", "")


@pytest.mark.parametrize("cuts", [1, 2])
def test_text_without_tags_unchanged(cuts):
    text = "  Hello 世界!\nNo tags here."
    for chunks in splits(text, cuts):
        assert split_run(chunks) == ("", text), chunks


@pytest.mark.parametrize("text", ["<b>bold</b> text", "<thinking>not the tag", "<", "<thin", "<think", "< think>x"])
def test_text_starting_with_lt_but_not_think_passes_through(text):
    assert split_run([text]) == ("", text)
    assert split_run(list(text)) == ("", text)


def test_think_tag_later_in_text_is_content():
    text = "Answer first <think>not reasoning</think> tail"
    assert split_run([text]) == ("", text)
    assert split_run(list(text)) == ("", text)


def test_unterminated_think_is_reasoning():
    assert split_run(["<think>still thinking", " when the stream ended"]) == (
        "still thinking when the stream ended",
        "",
    )


def test_leading_whitespace_before_think():
    assert split_run(["\n  <think>x</think>y"]) == ("x", "y")


# --------------------------------------------------------------------------- ToolCallAccumulator


def tc(index, id=None, name=None, arguments=None):
    """A tool-call delta shaped like the SDK's ChoiceDeltaToolCall."""
    return SimpleNamespace(index=index, id=id, function=SimpleNamespace(name=name, arguments=arguments))


def test_interleaved_calls_reassembled():
    acc = ToolCallAccumulator()
    assert acc.add([tc(0, "call_a", "current_time", "")]) == [0]
    assert acc.add([tc(1, "call_b", "search_conversations", '{"qu')]) == [1]
    assert acc.add([tc(0, None, None, '{"timezone": ')]) == [0]
    assert acc.add([tc(1, None, None, 'ery": "北京')]) == [1]
    assert acc.add([tc(0, None, None, '"UTC"}'), tc(1, None, None, '烤鸭"}')]) == [0, 1]
    assert acc.add(None) == []
    assert acc.calls() == [
        {"id": "call_a", "type": "function", "function": {"name": "current_time", "arguments": '{"timezone": "UTC"}'}},
        {
            "id": "call_b",
            "type": "function",
            "function": {"name": "search_conversations", "arguments": '{"query": "北京烤鸭"}'},
        },
    ]
    assert acc.get(1)["function"]["arguments"] == '{"query": "北京烤鸭"}'


def test_calls_ordered_by_index():
    acc = ToolCallAccumulator()
    acc.add([tc(2, "c2", "b", "{}")])
    acc.add([tc(0, "c0", "a", "{}")])
    assert [c["id"] for c in acc.calls()] == ["c0", "c2"]


def test_missing_ids_generated():
    acc = ToolCallAccumulator()
    acc.add([tc(0, None, "current_time", "{}"), tc(1, "", "search_conversations", '{"query": "x"}')])
    calls = acc.calls()
    assert [c["id"] for c in calls] == ["call_0", "call_1"]
    assert len({c["id"] for c in calls}) == 2
    assert [c["function"]["name"] for c in calls] == ["current_time", "search_conversations"]


def test_name_split_across_fragments_and_null_function():
    acc = ToolCallAccumulator()
    acc.add([tc(0, "x", "search_", "")])
    acc.add([tc(0, None, "conversations", '{"query":"a"}')])
    acc.add([SimpleNamespace(index=0, id=None, function=None)])
    assert acc.calls()[0]["function"] == {"name": "search_conversations", "arguments": '{"query":"a"}'}


# --------------------------------------------------------------------------- StepReader


def chunk(*, delta=None, usage=None, choices=True):
    data = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "deepseek-chat",
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": None}] if choices else [],
    }
    if usage is not None:
        data["usage"] = usage
    return ChatCompletionChunk.model_validate(data)


def test_usage_deepseek_cache_fields():
    reader = StepReader()
    usage = {
        "prompt_tokens": 100,
        "completion_tokens": 20,
        "total_tokens": 120,
        "prompt_cache_hit_tokens": 64,
        "prompt_cache_miss_tokens": 36,
    }
    c = chunk(usage=usage, choices=False)
    assert c.usage.model_extra["prompt_cache_hit_tokens"] == 64  # really an untyped extra
    assert reader.consume(c) == []
    assert reader.usage == Usage(prompt_tokens=100, completion_tokens=20, cache_hit_tokens=64, cache_miss_tokens=36)


def test_usage_deepseek_hit_only():
    reader = StepReader()
    reader.consume(chunk(usage={"prompt_tokens": 50, "completion_tokens": 5, "total_tokens": 55,
                                "prompt_cache_hit_tokens": 30}, choices=False))
    assert reader.usage == Usage(prompt_tokens=50, completion_tokens=5, cache_hit_tokens=30, cache_miss_tokens=20)


def test_usage_openai_cached_tokens():
    reader = StepReader()
    reader.consume(chunk(usage={"prompt_tokens": 200, "completion_tokens": 40, "total_tokens": 240,
                                "prompt_tokens_details": {"cached_tokens": 128}}, choices=False))
    assert reader.usage == Usage(prompt_tokens=200, completion_tokens=40, cache_hit_tokens=128, cache_miss_tokens=72)


def test_usage_without_cache_information():
    reader = StepReader()
    reader.consume(chunk(usage={"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}, choices=False))
    assert reader.usage == Usage(prompt_tokens=10, completion_tokens=3, cache_hit_tokens=0, cache_miss_tokens=10)


def test_consume_text_reasoning_and_tool_calls():
    reader = StepReader()
    events = reader.consume(chunk(delta={"role": "assistant", "reasoning_content": "Let me think. "}))
    assert events == [Event("reasoning", {"text": "Let me think. "})]
    events = reader.consume(chunk(delta={"content": "你好"}))
    assert events == [Event("delta", {"text": "你好"})]
    events = reader.consume(chunk(delta={"tool_calls": [
        {"index": 0, "id": "call_x", "type": "function", "function": {"name": "current_time", "arguments": "{\"ti"}}
    ]}))
    assert events == [Event("tool_call", {"phase": "delta", "index": 0, "id": "call_x", "name": "current_time",
                                          "arguments": "{\"ti"})]
    events = reader.consume(chunk(delta={"tool_calls": [{"index": 0, "function": {"arguments": "mezone\": \"UTC\"}"}}]}))
    assert events[0].data["arguments"] == '{"timezone": "UTC"}'
    assert reader.finish() == []
    assert reader.content == "你好"
    assert reader.reasoning == "Let me think. "
    assert reader.calls.calls()[0]["function"]["arguments"] == '{"timezone": "UTC"}'


def test_consume_think_tags_in_content():
    reader = StepReader()
    events = []
    for piece in ["<thi", "nk>推理", "过程</th", "ink>\n\n结论", "！"]:
        events += reader.consume(chunk(delta={"content": piece}))
    events += reader.finish()
    assert reader.reasoning == "推理过程"
    assert reader.content == "结论！"
    assert "".join(e.data["text"] for e in events if e.type == "delta") == "结论！"
    assert "".join(e.data["text"] for e in events if e.type == "reasoning") == "推理过程"


def test_finish_flushes_held_back_text():
    reader = StepReader()
    assert reader.consume(chunk(delta={"content": "<"})) == []
    assert reader.finish() == [Event("delta", {"text": "<"})]
    assert reader.content == "<"


def test_extra_field():
    c = chunk(delta={"content": "x", "reasoning_content": "why"})
    assert extra_field(c.choices[0].delta, "reasoning_content") == "why"
    assert extra_field(c.choices[0].delta, "nothing_here") is None
    assert extra_field(SimpleNamespace(reasoning_content="typed"), "reasoning_content") == "typed"
