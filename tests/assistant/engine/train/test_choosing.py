"""The tokens the training loss weights more: a reply's first, the tool's name, a call's choices."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from assistant.engine.train import loop, prepared
from assistant.engine.train import tokenizer as ttok
from assistant.engine.train.choosing import _choice_chars
from assistant.engine.train.curriculum import Encoded, collate

from .test_train import CONVO, TOOLS, small_chat


@pytest.fixture(scope="module")
def chat():
    return small_chat()


def test_choosing_marks_each_reply_opener_and_the_tool_name(chat):
    enc = prepared.encode(chat, SimpleNamespace(messages=CONVO, tools=TOOLS))
    choose = loop.choosing(chat.tokenizer, 4.0)
    said = [chat.tokenizer.decode([enc.ids[i]], skip_special_tokens=False) for i in choose.positions(enc)]
    reply = chat.tokenizer.decode([enc.ids[i] for i in range(len(enc.ids))
                                   if enc.targets[i] and enc.ids[i - 1] == chat.token_to_id(ttok.OUTPUTS_END)])
    # The call-or-words choice, the tool's name through its newline, then the follow-up's first token.
    assert said[0] == ttok.CALLS_BEGIN and "".join(said[1:-1]) == "create_reminder\n"
    assert said[-1] == reply and "好的".startswith(reply)
    assert all(enc.targets[i] for i in choose.positions(enc))
    assert choose.positions(Encoded(enc.ids, [False] * len(enc.ids))) == []  # no loss, no weight
    assert loop.choosing(chat.tokenizer, 1.0) is None


def test_the_choices_inside_a_calls_arguments(chat):
    call = json.loads(CONVO[2]["tool_calls"][0]["function"]["arguments"])
    text = json.dumps(call, ensure_ascii=False)  # {"text": "给王总回电话", "when": "明天下午三点"}
    fenced = "\n```json\n" + text + "\n```"  # as the call renders it
    marked = [fenced[c] for c in _choice_chars(fenced)]
    # The object's opening, each key's first letter, the value's first character, then , or }.
    assert marked == ["{", "t", "给", ",", "w", "明", "}"]
    enc = prepared.encode(chat, SimpleNamespace(messages=CONVO, tools=TOOLS))
    plain, full = loop.choosing(chat.tokenizer, 4.0), loop.choosing(chat.tokenizer, 4.0, arguments=2.0)
    extra = sorted(set(full.positions(enc)) - set(plain.positions(enc)))
    said = "".join(chat.tokenizer.decode([enc.ids[i]], skip_special_tokens=False) for i in extra)
    for piece in ('{"', "给", "明", "when", "}"):
        assert piece in said
    assert set(plain.positions(enc)) <= set(full.positions(enc)) and all(enc.targets[i] for i in extra)
    assert len(extra) <= 7  # a token holding two of them counts once
    weights = dict(full.weights(enc))
    assert {weights[i] for i in extra} == {2.0} and {weights[i] for i in plain.positions(enc)} == {4.0}
    # The arguments alone: the replies and the name keep weight 1.
    alone = dict(loop.choosing(chat.tokenizer, 1.0, arguments=2.0).weights(enc))
    assert {i for i, w in alone.items() if w == 2.0} == set(extra)
    _, _, rows = collate([enc], 0, full)  # label row j is position j + 1
    assert rows[extra[0] - 1] == 2.0 and rows[plain.positions(enc)[0] - 1] == 4.0


def test_with_values_every_token_of_a_string_value_is_weighted(chat):
    fenced = "\n```json\n" + json.dumps({"text": "给王总", "k": 12}, ensure_ascii=False) + "\n```"
    marked = [fenced[c] for c in _choice_chars(fenced, values=True)]
    assert marked == ["{", "t", "给", "王", "总", '"', ",", "k", "1", "}"]  # a number keeps its first character only
    enc = prepared.encode(chat, SimpleNamespace(messages=CONVO, tools=TOOLS))
    starts = loop.choosing(chat.tokenizer, 4.0, arguments=2.0)
    whole = loop.choosing(chat.tokenizer, 4.0, arguments=2.0, values=True)
    added = sorted(set(whole.positions(enc)) - set(starts.positions(enc)))
    said = "".join(chat.tokenizer.decode([enc.ids[i]]) for i in added)
    for piece in ("王总回电话", "天下午三点"):  # each value after its first character
        assert piece in said
    assert {w for i, w in whole.weights(enc) if i in added} == {2.0} and all(enc.targets[i] for i in added)


def test_arguments_that_are_not_an_object_weight_nothing_inside():
    assert _choice_chars('{"k": 1, "v": ["a", "b"], "x": true}') == [0, 2, 6, 7, 10, 14, 24, 27, 31, 35]
    choose = loop.Choosing(frozenset(), 0, frozenset(), 2.0, call_end=9, pieces=tuple(bytes([c]) for c in range(256)))
    assert choose.in_arguments(list(b"not json"), 0, 8) == []
    assert choose.in_arguments(list(b'{"a": "b"'), 0, 9) == []
    assert choose.positions(Encoded([1, 2, 3], [False, True, True])) == []


def test_an_empty_call_weights_its_opening():
    """``{}`` or ``{"``: the token where a call with no argument is chosen (run 26 wrote ``{}`` for
    "time in Australia/Sydney?")."""
    assert _choice_chars("\n```json\n{}\n```") == [9]
    choose = loop.Choosing(frozenset(), 0, frozenset(), 2.0, call_end=9, pieces=tuple(bytes([c]) for c in range(256)))
    assert choose.in_arguments(list(b"x{}"), 0, 3) == [1]
