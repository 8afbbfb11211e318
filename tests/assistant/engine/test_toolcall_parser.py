"""The incremental tool-call parser: content never carries a marker, calls parse whatever the
chunking, and arguments stream in pieces that join to the final arguments."""

from __future__ import annotations

import json
import random

from assistant.engine.toolcall_parser import ArgsDelta, CallStart, ContentDelta, ToolCall, ToolCallParser, parse_tool_calls
from assistant.engine.toolcalls import CALL_BEGIN, CALL_END, CALLS_BEGIN, CALLS_END, TOOL_SEP, render_tool_calls
from tests.assistant.engine.test_toolcalls import CALLS

MARKERS = (CALLS_BEGIN, CALLS_END, CALL_BEGIN, CALL_END, TOOL_SEP)

CONTENT = "让我查一下 <b>天气</b> 😀 "
TWO_CALLS = CONTENT + render_tool_calls(CALLS) + "<｜end▁of▁sentence｜>"
EXPECTED = [("get_weather", '{"city": "北京"}'), ("now", '{"tz": "UTC+8"}')]


def stream(chunks, make_id=None):
    parser = ToolCallParser(make_id)
    events = []
    for chunk in chunks:
        events += parser.feed(chunk)
    events += parser.finish()
    content = [e.text for e in events if isinstance(e, ContentDelta)]
    calls = [e for e in events if isinstance(e, ToolCall)]
    return content, calls, parser


def summary(calls):
    return [(c.name, c.arguments) for c in calls]


def test_parse_two_calls():
    content, calls = parse_tool_calls(TWO_CALLS, make_id=lambda i: f"call_{i}")
    assert content == CONTENT
    assert summary(calls) == EXPECTED
    assert [c.id for c in calls] == ["call_0", "call_1"]
    assert all(c.valid and c.error is None for c in calls)
    assert calls[1].to_openai() == {"id": "call_1", "type": "function", "function": {
        "name": "now", "arguments": '{"tz": "UTC+8"}'}}


def test_every_split_point_gives_the_same_result():
    for cut in range(len(TWO_CALLS) + 1):
        content, calls, _ = stream([TWO_CALLS[:cut], TWO_CALLS[cut:]])
        assert "".join(content) == CONTENT, cut
        assert summary(calls) == EXPECTED, cut


def test_every_pair_of_split_points_gives_the_same_result():
    text = TWO_CALLS
    for a in range(0, len(text) + 1, 3):
        for b in range(a, len(text) + 1, 2):
            content, calls, _ = stream([text[:a], text[a:b], text[b:]])
            assert "".join(content) == CONTENT and summary(calls) == EXPECTED, (a, b)


def test_partial_marker_is_held_back_then_dropped():
    parser = ToolCallParser()
    assert [e.text for e in parser.feed("Hello <｜tool")] == ["Hello "]
    assert parser.feed("▁calls▁beg") == []
    events = parser.feed("in｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>now\n```json\n{}\n```")
    assert [type(e) for e in events] == [CallStart, ArgsDelta]  # the name and "{}"; the fence is held
    events = parser.feed("<｜tool▁call▁end｜><｜tool▁calls▁end｜>")
    assert summary(events) == [("now", "{}")] and parser.done


def test_marker_lookalike_is_released_as_content():
    content, calls, _ = stream(["a <｜tool", "▁x and <", "｜User｜> b ", "<｜tool▁"])
    assert "".join(content) == "a <｜tool▁x and <｜User｜> b <｜tool▁" and calls == []
    parser = ToolCallParser()
    assert [e.text for e in parser.feed("x <｜tool")] == ["x "]
    assert [e.text for e in parser.finish()] == ["<｜tool"]  # finish flushes the hold


def test_no_marker_fragment_ever_reaches_content():
    for cut in range(len(TWO_CALLS) + 1):
        content, _, _ = stream([TWO_CALLS[:cut], TWO_CALLS[cut:]])
        for delta in content:
            assert "｜" not in delta and "▁" not in delta, (cut, delta)


def test_no_tool_call_is_all_content():
    text = "你好！Here is code: `a < b` and <tag>, emoji 🎉\n"
    content, calls = parse_tool_calls(text)
    assert content == text and calls == []
    chunks, _, parser = stream(list(text))
    assert "".join(chunks) == text and not parser.done


def test_malformed_arguments_are_kept_raw_and_flagged():
    text = (f"{CALLS_BEGIN}{CALL_BEGIN}function{TOOL_SEP}get_weather\n```json\n"
            f'{{"city": 北京\n```{CALL_END}\n'
            f"{CALL_BEGIN}function{TOOL_SEP}now\n```json\n[1, 2]\n```{CALL_END}\n"
            f"{CALL_BEGIN}garbage without separator{CALL_END}{CALLS_END}")
    content, calls = parse_tool_calls(text)
    assert content == ""
    assert [c.valid for c in calls] == [False, False, False]
    assert calls[0].arguments == '{"city": 北京' and "JSON" in calls[0].error
    assert calls[1].name == "now" and "object" in calls[1].error
    assert calls[2].error == "missing tool separator"


def test_missing_name_and_empty_arguments():
    _, calls = parse_tool_calls(f"{CALLS_BEGIN}{CALL_BEGIN}function{TOOL_SEP}\n```json\n```"
                                f"{CALL_END}{CALL_BEGIN}function{TOOL_SEP}now\n{CALL_END}{CALLS_END}")
    assert calls[0].error == "missing function name"
    assert (calls[1].name, calls[1].arguments, calls[1].valid) == ("now", "{}", True)


def test_text_after_the_block_is_ignored_and_kept_for_logs():
    text = TWO_CALLS.replace("<｜end▁of▁sentence｜>", "") + "<｜tool▁outputs▁begin｜>fake"
    content, calls, parser = stream([text[:-10], text[-10:]])
    assert "".join(content) == CONTENT and len(calls) == 2
    assert parser.done and parser.ignored == "<｜tool▁outputs▁begin｜>fake"
    assert parser.feed("more") == [] and parser.ignored.endswith("more")


def test_call_cut_off_by_max_tokens_is_flagged():
    text = f"ok{CALLS_BEGIN}{CALL_BEGIN}function{TOOL_SEP}now\n```json\n{{\"tz\": \"U"
    content, calls = parse_tool_calls(text)
    assert content == "ok" and len(calls) == 1
    assert not calls[0].valid and "cut off" in calls[0].error


def test_missing_call_end_before_next_call():
    text = (f"{CALLS_BEGIN}{CALL_BEGIN}function{TOOL_SEP}a\n```json\n{{}}\n```"
            f"{CALL_BEGIN}function{TOOL_SEP}b\n```json\n{{}}\n```{CALL_END}{CALLS_END}")
    _, calls = parse_tool_calls(text)
    assert [c.name for c in calls] == ["a", "b"]
    assert not calls[0].valid and calls[1].valid


def test_bare_call_without_outer_block_and_v31_style():
    _, calls = parse_tool_calls(f"{CALL_BEGIN}function{TOOL_SEP}now\n```json\n{{}}\n```{CALL_END}")
    assert summary(calls) == [("now", "{}")]
    _, calls = parse_tool_calls(f'{CALLS_BEGIN}{CALL_BEGIN}now{TOOL_SEP}{{"a": 1}}{CALL_END}{CALLS_END}')
    assert summary(calls) == [("now", '{"a": 1}')] and calls[0].valid
    _, calls = parse_tool_calls(f'{CALL_BEGIN}now{TOOL_SEP}{{\n  "a": 1\n}}{CALL_END}')
    assert calls[0].name == "now" and json.loads(calls[0].arguments) == {"a": 1}


def test_default_ids_are_unique_call_ids():
    _, calls = parse_tool_calls(TWO_CALLS)
    assert all(c.id.startswith("call_") for c in calls)
    assert len({c.id for c in calls}) == 2
    assert [c.index for c in calls] == [0, 1]


def test_fuzz_random_chunkings():
    rng = random.Random(1234)
    texts = [TWO_CALLS, CONTENT + "< ｜ <｜tool▁call" + render_tool_calls(CALLS[1:]),
             "no calls at all <｜tool▁calls▁begi", render_tool_calls(CALLS) + "tail"]
    for text in texts:
        want_content, want_calls = parse_tool_calls(text)
        for _ in range(300):
            cuts = sorted(rng.sample(range(len(text) + 1), rng.randint(0, 12)))
            chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
            content, calls, _ = stream(chunks)
            assert "".join(content) == want_content, chunks
            assert summary(calls) == summary(want_calls), chunks
            check_joined(chunks)
            for delta in content:
                assert not any(m in delta for m in MARKERS)


# ---------------------------------------------------------------- arguments streamed in pieces

def streamed_calls(chunks):
    """Per call index: (CallStart or None, joined ArgsDelta text, ToolCall), checking event order."""
    parser, events = ToolCallParser(lambda i: f"call_{i}"), []
    for chunk in chunks:
        events += parser.feed(chunk)
    events += parser.finish()
    out = {}
    for ev in events:
        if isinstance(ev, CallStart):
            assert ev.index not in out
            out[ev.index] = [ev, "", None]
        elif isinstance(ev, ArgsDelta):
            assert out[ev.index][2] is None and ev.text  # only between start and end, never empty
            out[ev.index][1] += ev.text
        elif isinstance(ev, ToolCall):
            entry = out.setdefault(ev.index, [None, "", None])
            entry[2] = ev
    return out


def check_joined(chunks):
    for start, joined, call in streamed_calls(chunks).values():
        assert call is not None
        if start is not None:
            assert (start.id, start.name) == (call.id, call.name)
            assert joined == call.arguments, (chunks, joined, call.arguments)
        else:
            assert joined == ""


def test_arguments_stream_in_pieces_that_join_to_the_final_arguments():
    for cut in range(len(TWO_CALLS) + 1):
        check_joined([TWO_CALLS[:cut], TWO_CALLS[cut:]])
    calls = streamed_calls(list(TWO_CALLS))  # one character at a time
    assert [c[0].name for c in calls.values()] == ["get_weather", "now"]
    assert [c[1] for c in calls.values()] == ['{"city": "北京"}', '{"tz": "UTC+8"}']


def test_arguments_arrive_before_the_call_ends():
    text = TWO_CALLS[:TWO_CALLS.index(CALL_END)]  # the first call, its closing fence written, no end marker yet
    parser, events = ToolCallParser(), []
    for ch in text:
        events += parser.feed(ch)
    assert [e.name for e in events if isinstance(e, CallStart)] == ["get_weather"]
    assert "".join(e.text for e in events if isinstance(e, ArgsDelta)) == '{"city": "北京"}'  # the fence held back
    assert not [e for e in events if isinstance(e, ToolCall)]
    head = TWO_CALLS[:TWO_CALLS.index("get_weather") + len("get_weather\n```json\n{")]
    assert [type(e) for e in ToolCallParser().feed(head)] == [ContentDelta, CallStart, ArgsDelta]  # with its first "{"


def test_fences_left_open_or_closed_alone_are_dropped():
    for body in ('now\n```json\n{"a": 1}', 'now\n{"a": 1}\n```', 'now\n  ```\n{"a": 1}\n```  '):
        text = f"{CALLS_BEGIN}{CALL_BEGIN}function{TOOL_SEP}{body}{CALL_END}{CALLS_END}"
        _, calls = parse_tool_calls(text)
        assert (calls[0].arguments, calls[0].valid) == ('{"a": 1}', True), body
        for cut in range(len(text) + 1):
            check_joined([text[:cut], text[cut:]])


def test_backticks_and_spaces_inside_arguments_stream_too():
    args = json.dumps({"code": "```py\nx = 1  \n```", "note": "a  "})
    text = render_tool_calls([{"function": {"name": "run", "arguments": args}}])
    calls = streamed_calls(list(text))
    assert calls[0][1] == args == calls[0][2].arguments
    for cut in range(0, len(text) + 1, 3):
        check_joined([text[:cut], text[cut:]])


def test_a_call_whose_head_is_not_a_call_arrives_whole():
    for body in (f"function{TOOL_SEP}now\nplease {{\"a\": 1}}", "no separator at all {}",
                 f"function{TOOL_SEP}\n```json\n{{}}\n```"):
        text = f"{CALLS_BEGIN}{CALL_BEGIN}{body}{CALL_END}{CALLS_END}"
        calls = streamed_calls(list(text))
        assert [c[0] for c in calls.values()] == [None] and calls[0][2] is not None, body
    # DeepSeek-V3.1's NAME<sep>ARGS streams like the V3 form.
    calls = streamed_calls(list(f'{CALL_BEGIN}now{TOOL_SEP}{{"a": 1}}{CALL_END}'))
    assert calls[0][0].name == "now" and calls[0][1] == '{"a": 1}'


def test_a_streamed_call_cut_off_keeps_its_id_and_pieces():
    text = f'ok{CALLS_BEGIN}{CALL_BEGIN}function{TOOL_SEP}now\n```json\n{{"tz": "U'
    calls = streamed_calls([text[:40], text[40:]])
    start, joined, call = calls[0]
    assert start.id == call.id and joined == call.arguments == '{"tz": "U' and "cut off" in call.error
