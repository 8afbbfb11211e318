"""eval-assistant: prediction on a tiny random checkpoint, the CLI and its errors (scoring: test_scoring.py)."""

from __future__ import annotations

import argparse
import json
import sys
import types

import pytest

from assistant.engine.output import Output
from assistant.engine.toolcalls import render_tool_calls
from assistant.engine.train import evaluate as ev
from assistant.engine.train import scoring
from tests.assistant.engine.train.test_scoring import MARKERS, PASSAGES, call, example, metric, text


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
        self.config = types.SimpleNamespace(raw={})  # a checkpoint that has not opted in to copy-guided arguments

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
    assert params.temperature == 0 and params.max_tokens == 7 and params.guide is None
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
        guided = ev.predict_all(eng, exs, max_tokens=3, guide=True)
    assert guided == preds  # no tool call was written, so the guide changed nothing
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


def test_the_dump_says_what_was_asked_due_said_and_wrong(tmp_path):
    exs = [example("tool_call", call("set_reminder", {"text": "buy milk", "when": "at 5pm"}),
                   user="remind me to buy milk at 5pm"),
           example("chitchat", text("Hello!"), lang="zh", user="你好")]
    preds = [{"content": "", "tool_calls": call("set_reminder", {"text": "milk", "when": "at 5pm", "x": 1})["tool_calls"],
              "finish_reason": "stop"},
             {"content": "你好！", "tool_calls": [], "finish_reason": "stop"}]
    ev.write_dump(tmp_path / "d.jsonl", exs, preds)
    rows = [json.loads(line) for line in (tmp_path / "d.jsonl").read_text("utf-8").splitlines()]
    assert [r["asked"] for r in rows] == ["remind me to buy milk at 5pm", "你好"]
    assert rows[0]["expected"] == exs[0].messages[-1] and rows[0]["got"]["tool_calls"] == preds[0]["tool_calls"]
    assert rows[0]["wrong"] == {"text": "span: cut short", "x": "extra key"}
    assert rows[1] == {"lang": "zh", "kind": "chitchat", "asked": "你好", "expected": text("Hello!"),
                       "got": {"content": "你好！", "finish_reason": "stop"}, "wrong": {}}


def test_defaults():
    args = parse([])
    assert args.model == ev.BUNDLED_MODEL and args.model.parts[-3:] == ("engine", "bundled", "lingxi-mini")
    assert (args.n, args.seed, args.max_tokens, args.split, args.json) == (400, 0, 96, "heldout", False)
    assert args.guide == "auto" and parse(["--guide", "off"]).guide == "off"


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
    assert out["by_tool"]["set_reminder"]["zh"]["n"] == 2
    assert isinstance(out["argument_errors"], dict) and set(out["argument_errors"]) <= set(scoring.ERROR_KINDS)
    copied = out["copied_tokens"]
    assert set(copied) == {"zh", "en", "all"} and copied["all"]["n"] == copied["zh"]["n"] + copied["en"]["n"]
    assert 0 <= copied["all"]["hits"] <= copied["all"]["n"]
    dump = build_ckpt("v3_qlora").parent / "dump.jsonl"
    assert ev.main(parse(["--model", path, "--n", "2", "--max-tokens", "2", "--split", "train", "--dump", str(dump)])) == 0
    assert len(dump.read_text("utf-8").splitlines()) == 2
    table = capsys.readouterr().out
    assert "tool_selection" in table and "argument_match" in table and fake_data.calls[-1] == ("train", 2, 0)
    assert "set_reminder            zh" in table  # the by-tool table follows
    assert "copied tokens (teacher-forced): zh " in table and " all " in table
