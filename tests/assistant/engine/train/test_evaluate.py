"""eval-assistant: scoring on hand-made predictions, prediction on a tiny random checkpoint, CLI errors."""

from __future__ import annotations

import argparse
import json
import sys
import types

import pytest

from assistant.engine.output import Output
from assistant.engine.toolcalls import render_tool_calls
from assistant.engine.train import evaluate as ev
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


# ---------------------------------------------------------------- score()

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


# ---------------------------------------------------------------- predict()

class FakeHandle:
    def __init__(self, chunks, finish="stop"):
        self.chunks, self.finish, self.cancelled = chunks, finish, False

    def __iter__(self):
        for i, c in enumerate(self.chunks):
            last = i == len(self.chunks) - 1
            yield Output(c, [], last, self.finish if last else None, 3, i + 1)

    def cancel(self):
        self.cancelled = True


class FakeEngine:
    """Replies with scripted text; records the prompts and sampling parameters."""

    def __init__(self, replies):
        self.replies, self.seen = list(replies), []
        self.tokenizer = types.SimpleNamespace(encode_chat=lambda messages, tools=None: [len(messages), len(tools or [])])

    def submit(self, ids, params):
        self.seen.append((ids, params))
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return FakeHandle(reply)


def test_predict_parses_tool_calls_and_text():
    from assistant.engine.engine import ContextTooLong

    block = render_tool_calls([{"function": {"name": "set_reminder", "arguments": '{"text": "x"}'}}])
    half = len(block) // 2
    eng = FakeEngine([["Sure. ", block[:half], block[half:]], ["Hello", " there"], ContextTooLong("too long")])
    exs = [example("tool_call", call("set_reminder", {"text": "x"})), example("chitchat", text("hi"))] * 2
    preds = ev.predict_all(eng, exs[:3], max_tokens=7)
    assert preds[0]["tool_calls"] == [{"function": {"name": "set_reminder", "arguments": '{"text": "x"}'}}]
    assert preds[0]["content"] == "Sure."
    assert preds[1] == {"content": "Hello there", "tool_calls": [], "finish_reason": "stop"}
    assert preds[2]["finish_reason"] == "error" and "too long" in preds[2]["error"]
    ids, params = eng.seen[0]
    assert ids == [2, 1]  # the target message is not part of the prompt; the tools are passed
    assert params.temperature == 0 and params.max_tokens == 7
    r = ev.score(exs[:3], preds, MARKERS)
    assert metric(r, "tool_selection") == (1, 2) and metric(r, "no_tool_accuracy") == (1, 1)


def test_predict_and_score_on_tiny_checkpoint(build_ckpt):
    from assistant.engine.engine import LLMEngine

    exs = [example("tool_call", call("set_reminder", {"text": "x"}), user="remind me"),
           example("grounded", text("Parking is free [2]."), lang="zh", passages=PASSAGES),
           example("unanswerable", text("I don't know."), user="why?"),
           example("chitchat", text("你好"), lang="zh", user="你好")]
    exs[3].tools = []
    with LLMEngine(build_ckpt("v3_qlora"), max_batch=4) as eng:
        one = ev.predict(eng, eng.tokenizer, exs[0], max_tokens=3)
        preds = ev.predict_all(eng, exs, max_tokens=3)
    for p in [one, *preds]:
        assert set(p) >= {"content", "tool_calls", "finish_reason"} and isinstance(p["content"], str)
        assert p["finish_reason"] in ("stop", "length"), p
    r = ev.score(exs, preds, MARKERS)
    assert [r[lang]["examples"] for lang in ("zh", "en", "all")] == [2, 2, 4]
    assert metric(r, "tool_selection")[1] == 1 and metric(r, "argument_match")[1] == 1
    assert metric(r, "no_tool_accuracy")[1] == 3 and metric(r, "faithfulness", "zh")[1] == 1
    assert metric(r, "unanswerable_detection", "en")[1] == 1 and metric(r, "false_decline_rate")[1] == 1


# ---------------------------------------------------------------- main()

def parse(argv):
    top = argparse.ArgumentParser()
    ev.add_parser(top.add_subparsers(dest="cmd"))
    return top.parse_args(["eval-assistant", *argv])


def test_defaults():
    args = parse([])
    assert args.model == ev.BUNDLED_MODEL and args.model.parts[-3:] == ("engine", "bundled", "lingxi-mini")
    assert (args.n, args.seed, args.max_tokens, args.split, args.json) == (400, 0, 96, "heldout", False)


def test_main_missing_model(tmp_path, capsys):
    assert ev.main(parse(["--model", str(tmp_path / "nope")])) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not found" in err


@pytest.fixture
def fake_data(monkeypatch):
    """A stand-in ``train.data`` module (the real one may not exist yet)."""
    import assistant.engine.train as train

    mod = types.ModuleType("assistant.engine.train.data")
    mod.UNKNOWN_MARKERS = MARKERS
    mod.calls = []

    def generate(split, n, seed=0):
        mod.calls.append((split, n, seed))
        pool = [example("tool_call", call("set_reminder", {"text": "x"}), lang="zh"), example("chitchat", text("hi"))]
        return [pool[i % 2] for i in range(n)]

    mod.generate = generate
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    monkeypatch.setattr(train, "data", mod, raising=False)
    return mod


def test_main_end_to_end(build_ckpt, fake_data, capsys):
    path = str(build_ckpt("v3_qlora"))
    assert ev.main(parse(["--model", path, "--n", "3", "--seed", "5", "--max-tokens", "2", "--json"])) == 0
    out = json.loads(capsys.readouterr().out)
    assert fake_data.calls == [("heldout", 3, 5)]
    assert out["n"] == 3 and out["metrics"]["zh"]["tool_selection"]["n"] == 2
    assert out["metrics"]["en"]["no_tool_accuracy"]["n"] == 1
    assert ev.main(parse(["--model", path, "--n", "2", "--max-tokens", "2", "--split", "train"])) == 0
    table = capsys.readouterr().out
    assert "tool_selection" in table and "argument_match" in table and fake_data.calls[-1] == ("train", 2, 0)
