"""eval-assistant's scoring: metrics and the by-tool table on hand-made predictions."""

from __future__ import annotations

import json

import pytest

from assistant.engine.train import scoring as ev
from assistant.engine.train.data import Example

MARKERS = {"zh": ("不知道", "没有找到"), "en": ("I don't know", "not in the knowledge base")}
PASSAGES = ["The clinic opens at 9 am on weekdays.", "Parking is free for visitors.", "周末休息。"]
TOOL = {"type": "function", "function": {"name": "set_reminder", "description": "Set a reminder",
                                         "parameters": {"type": "object", "properties": {
                                             "text": {"type": "string"}, "time": {"type": "string"}}}}}


def call(name: str, args) -> dict:
    args = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)
    return {"role": "assistant", "content": "",
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": name, "arguments": args}}]}


def text(content: str) -> dict:
    return {"role": "assistant", "content": content}


def example(kind: str, target: dict, lang: str = "en", passages=None, user: str = "hi") -> Example:
    return Example(lang, "owner", kind, [{"role": "system", "content": "You are Lingxi."},
                                         {"role": "user", "content": user}, target],
                   [TOOL], list(passages or []))


def pred(message: dict) -> dict:
    return {"content": message.get("content") or "", "tool_calls": message.get("tool_calls") or []}


def metric(report, name, lang="all"):
    row = report[lang][name]
    return row["hits"], row["n"]


def test_tool_selection_and_arguments():
    want = {"text": "call mum", "time": "18:00"}
    exs = [example("tool_call", call("set_reminder", want))] * 5
    preds = [pred(call("set_reminder", {"time": "18:00", "text": "call mum"})),  # key order is irrelevant
             pred(call("set_reminder", {"text": "call mum", "time": "19:00"})),  # right tool, wrong args
             pred(call("set_reminder", "{not json")),                            # unparseable: a miss
             pred(call("create_event", want)),                                   # wrong tool
             pred(text("Sure, done."))]                                          # no call at all
    r = ev.score(exs, preds, MARKERS)
    assert metric(r, "tool_selection") == (3, 5)
    assert metric(r, "argument_match") == (1, 5)
    assert metric(r, "argument_match_given_selection") == (1, 3)
    assert r["all"]["tool_selection"]["pass"] is False and r["all"]["tool_selection"]["target"] == 0.9
    assert r["en"]["examples"] == 5 and r["zh"]["examples"] == 0
    assert r["zh"]["tool_selection"] == {"hits": 0, "n": 0, "value": None, "target": 0.9, "pass": None}
    assert metric(r, "no_tool_accuracy") == (0, 0)


def test_targets_pass_and_per_language_split():
    exs = [example("tool_call", call("set_reminder", {"text": "a"}), lang=lang) for lang in ("zh", "en")]
    preds = [pred(call("set_reminder", {"text": "a"})), pred(call("set_reminder", {"text": "b"}))]
    r = ev.score(exs, preds, MARKERS)
    assert r["zh"]["argument_match"]["pass"] is True and r["en"]["argument_match"]["pass"] is False
    assert r["zh"]["tool_selection"]["value"] == 1.0 and r["all"]["argument_match"]["value"] == 0.5
    assert list(r) == ["zh", "en", "all"]


def test_no_tool_accuracy():
    exs = [example("chitchat", text("Hello!")), example("refusal", text("I can't help with that."))]
    r = ev.score(exs, [pred(text("Hi")), pred(call("set_reminder", {}))], MARKERS)
    assert metric(r, "no_tool_accuracy") == (1, 2)
    assert metric(r, "tool_selection") == (0, 0)


@pytest.mark.parametrize("reply, faithful, cited", [
    ("The clinic opens at 9 am on weekdays [1].", True, True),
    ("The clinic   opens at 9 am\non weekdays.", True, False),          # whitespace normalised, no citation
    ("The clinic opens at 9 am [1]. Parking is free [2].", True, True),  # each cited piece is in a passage
    ("The clinic opens at 10 am [1].", False, True),                     # not in the passages
    ("The clinic opens at 9 am [4].", True, False),                      # cites a passage that does not exist
    ("[1]", False, True),                                                # nothing but a citation
    ("", False, False),
])
def test_faithfulness_and_citations(reply, faithful, cited):
    ex = example("grounded", text("The clinic opens at 9 am on weekdays [1]."), passages=PASSAGES)
    r = ev.score([ex], [pred(text(reply))], MARKERS)
    assert metric(r, "faithfulness") == (int(faithful), 1)
    assert metric(r, "citation_ok") == (int(cited), 1)


def test_faithfulness_chinese_and_tool_call_miss():
    ex = example("grounded", text("周末休息[3]"), lang="zh", passages=PASSAGES)
    r = ev.score([ex, ex], [pred(text("周末休息。[3]")), pred(call("set_reminder", {}))], MARKERS)
    assert metric(r, "faithfulness", "zh") == (1, 2)
    assert metric(r, "citation_ok", "zh") == (1, 2)


def test_unanswerable_and_false_decline():
    unans = example("unanswerable", text("I don't know."), passages=PASSAGES)
    unans_zh = example("unanswerable", text("我不知道。"), lang="zh")
    grounded = example("grounded", text("Parking is free for visitors [2]."), passages=PASSAGES)
    exs = [unans, unans, unans, unans_zh, grounded, grounded]
    preds = [pred(text("Sorry, i don\u2019t know that.")),   # case and apostrophe insensitive
             pred(text("The clinic opens at 9 am.")),         # answered anyway
             pred(call("search_knowledge_base", {"q": "x"})),  # a call is not a decline
             pred(text("抱歉，我不知道。")),
             pred(text("I don't know.")),                     # a false decline
             pred(text("Parking is free for visitors [2]."))]
    r = ev.score(exs, preds, MARKERS)
    assert metric(r, "unanswerable_detection", "en") == (1, 3)
    assert metric(r, "unanswerable_detection", "zh") == (1, 1)
    assert metric(r, "false_decline_rate") == (1, 2)
    assert metric(r, "faithfulness") == (1, 2)
    # An unanswerable example whose target searches first counts for tools, not detection.
    r = ev.score([example("unanswerable", call("search_knowledge_base", {}))], [pred(text("I don't know"))], MARKERS)
    assert metric(r, "unanswerable_detection") == (0, 0) and metric(r, "tool_selection") == (0, 1)


def test_score_checks_lengths_and_formats_table():
    with pytest.raises(ValueError):
        ev.score([example("chitchat", text("hi"))], [], MARKERS)
    r = ev.score([example("tool_call", call("set_reminder", {}))], [pred(call("set_reminder", {}))], MARKERS)
    table = ev.format_table(r)
    assert "tool_selection" in table and "PASS" in table and ">= 90%" in table
    json.dumps(r)  # plain data




def test_by_tool_counts_selection_arguments_and_what_was_called_instead():
    remind, zh = call("set_reminder", {"text": "a"}), example("tool_call", call("set_reminder", {"text": "a"}), lang="zh")
    exs = [example("tool_call", remind)] * 4 + [zh, example("tool_call", call("list_events", {})),
                                                example("chitchat", text("hi"))]
    preds = [pred(remind), pred(call("set_reminder", {"text": "b"})), pred(call("list_events", {})), pred(text("ok")),
             pred(call("create_event", {})), pred(call("list_events", {})), pred(text("hello"))]
    rows = ev.by_tool(exs, preds)
    assert list(rows) == ["list_events", "set_reminder"]  # text targets are not counted
    assert rows["set_reminder"]["en"] == {"n": 4, "selected": 2, "args": 1, "instead": {"list_events": 1, "(no call)": 1}}
    assert rows["set_reminder"]["zh"] == {"n": 1, "selected": 0, "args": 0, "instead": {"create_event": 1}}
    assert rows["list_events"]["en"] == {"n": 1, "selected": 1, "args": 1, "instead": {}}
    table = ev.format_by_tool(rows)
    assert table.splitlines()[2].split()[:5] == ["set_reminder", "zh", "1", "0", "0"]
    assert "list_events 1, (no call) 1" in table
    json.dumps(rows)


def test_argument_errors_sort_wrong_arguments_into_kinds():
    listing = {"role": "tool", "tool_call_id": "c0",
               "content": json.dumps({"events": [{"title": "sync", "id": "aaa"}, {"title": "gym", "id": "bbb"}]})}
    want = {"text": "call mum", "time": "at 6pm"}

    def ex(args, lang="en", before=()):
        e = example("tool_call", call("set_reminder", args), lang=lang)
        e.messages[-1:-1] = list(before)
        return e

    cases = [  # (target arguments, predicted arguments, language, the kinds expected)
        (want, {"text": "call", "time": "at 6pm"}, "en", ["span: cut short"]),
        (want, {"text": "call mum at", "time": "at 6pm", "channels": ["email"]}, "zh", ["span: runs on", "extra key"]),
        (want, {"text": "at 6pm"}, "en", ["another argument's value", "missing key"]),
        (want, {"text": "mum please", "time": "6"}, "en", ["span: shifted", "span: cut short"]),
        (want, {"text": "xyz", "time": "at 6pm"}, "en", ["other value"]),
        ({**want, "channels": ["webhook"]}, {**want, "channels": ["email", "webhook"]}, "en", ["other value"]),
        ({"event_id": "aaa"}, {"event_id": ["aaa"]}, "en", ["id: not listed"]),
        ({"event_id": "aaa"}, {"event_id": "bbb"}, "en", ["id: another row"]),
        ({"event_id": "aaa"}, {"event_id": "sync"}, "en", ["id: not listed"]),
        (want, "{not json", "en", ["unparseable"]),
        (want, want, "en", []),  # right: not counted
    ]
    exs = [ex(w, lang, [listing]) for w, _, lang, _ in cases]
    preds = [pred(call("set_reminder", g)) for _, g, _, _ in cases]
    exs.append(ex(want))
    preds.append(pred(call("list_events", {"text": "x"})))  # wrong tool: counted by tool_selection, not here
    errors = ev.argument_errors(exs, preds)
    expected: dict = {}
    for _, _, lang, kinds in cases:
        for kind in kinds:
            expected.setdefault(kind, {}).setdefault(lang, 0)
            expected[kind][lang] += 1
            expected[kind]["all"] = expected[kind].get("all", 0) + 1
    assert errors == expected
    assert list(errors) == [k for k in ev.ERROR_KINDS if k in errors]  # the documented order
    table = ev.format_errors(errors)
    assert table.splitlines()[0].split() == ["wrong", "argument", "zh", "en", "all"]
    assert any(line.startswith("span: cut short") and line.split()[-3:] == ["0", "2", "2"] for line in table.splitlines())
