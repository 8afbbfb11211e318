"""Passage-guided answers: once a reply after a knowledge-base search starts quoting a passage
sentence it can only finish the quote and cite that passage; anything else is left alone."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from assistant.engine.answerguide import AnswerGuide, GuideChain, answers, passages_of, sentences
from assistant.engine.copyguide import CopyGuide, guide_for
from tests.assistant.engine.test_copyguide import TOOLS

PASSAGES = {"passages": [
    {"ref": 1, "title": "shipping", "text": "We ship in 2 days. Express costs 4.5 dollars."},
    {"ref": 2, "title": "warranty", "text": "The warranty lasts 7 months from the date of purchase."},
    {"ref": 3, "title": "退换", "text": "商品在4天内可以换货一次。运费由买家承担！"},
], "instruction": "Answer from the passages and cite them as [n]."}
SEARCHED = [
    {"role": "user", "content": "How long is the warranty?"},
    {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function", "function": {
        "name": "search_knowledge_base", "arguments": '{"query": "How long is the warranty?"}'}}]},
    {"role": "tool", "tool_call_id": "c1", "content": json.dumps(PASSAGES, ensure_ascii=False)},
]
STOP = 0  # any id stands for the end of the turn here


def test_sentences_split_at_terminal_punctuation_not_inside_numbers():
    text = PASSAGES["passages"][0]["text"]
    assert [text[a:b] for a, b in sentences(text)] == ["We ship in 2 days.", "Express costs 4.5 dollars."]
    zh = PASSAGES["passages"][2]["text"]
    assert [zh[a:b] for a, b in sentences(zh)] == ["商品在4天内可以换货一次。", "运费由买家承担！"]
    assert [("no end"[a:b]) for a, b in sentences("no end")] == ["no end"]


def test_answers_are_runs_of_whole_sentences_of_one_passage_with_its_ref():
    found = passages_of(SEARCHED)
    assert found == [(1, PASSAGES["passages"][0]["text"]), (2, PASSAGES["passages"][1]["text"]),
                     (3, PASSAGES["passages"][2]["text"])]
    got = {a.decode() for a in answers(found)}
    assert "Express costs 4.5 dollars. [1]" in got and "We ship in 2 days. Express costs 4.5 dollars. [1]" in got
    assert "商品在4天内可以换货一次。 [3]" in got and "The warranty lasts 7 months from the date of purchase. [2]" in got
    assert "We ship in 2 days. [2]" not in got and len(got) == 3 + 1 + 3


@pytest.mark.parametrize("messages", [
    SEARCHED[:1],  # no tool result last
    [*SEARCHED[:2], {"role": "tool", "content": "not json"}],
    [*SEARCHED[:2], {"role": "tool", "content": json.dumps({"ok": True, "events": []})}],
    [*SEARCHED[:2], {"role": "tool", "content": json.dumps({"passages": [{"ref": "1", "text": 5}]})}],
])
def test_only_a_reply_right_after_a_passages_result_is_guided(messages):
    assert passages_of(messages) is None


def _greedy(chat, guide, first: str, seed: int, steps: int = 80) -> tuple[str, list[int]]:
    """Decode from ``first`` with random logits through the guide, greedily, up to the stop id."""
    gen = torch.Generator().manual_seed(seed)
    out = chat.encode(first)
    for _ in range(steps):
        logits = guide.mask(torch.randn(chat.vocab_size, generator=gen), out)
        token = int(torch.argmax(logits))
        out.append(token)
        if token == STOP:
            break
    return b"".join(guide.vocab.token_bytes[t] for t in out if t != STOP).decode(), out


@pytest.mark.parametrize("first,seed", [("The", 1), ("The war", 2), ("We", 3), ("商品", 4), ("Express", 5)])
def test_a_started_quote_is_finished_whole_and_cites_its_passage(chat, vocab, first, seed):
    guide = AnswerGuide(vocab, passages_of(SEARCHED), [STOP])
    text, out = _greedy(chat, guide, first, seed)
    assert out[-1] == STOP and text.encode() in answers(passages_of(SEARCHED)), text


def test_the_models_own_words_and_tool_calls_are_left_alone(chat, vocab):
    guide = AnswerGuide(vocab, passages_of(SEARCHED), [STOP])
    logits = torch.randn(chat.vocab_size, generator=torch.Generator().manual_seed(7))
    assert guide.mask(logits, chat.encode("I don't know")) is logits  # a decline
    fresh = AnswerGuide(vocab, passages_of(SEARCHED), [STOP])
    assert fresh.mask(logits, chat.encode("T")) is logits  # too short to tell yet
    called = AnswerGuide(vocab, passages_of(SEARCHED), [STOP])
    assert called.mask(logits, [vocab.call_begin, *chat.encode("The")]) is logits
    quoting = AnswerGuide(vocab, passages_of(SEARCHED), [STOP])
    kept = torch.isfinite(quoting.mask(logits, chat.encode("The warranty"))).nonzero().flatten().tolist()
    assert kept and all(b" lasts".startswith(vocab.token_bytes[t]) for t in kept)


def test_guide_for_adds_the_answer_guide_after_a_search_when_the_checkpoint_opts_in(vocab):
    engine = SimpleNamespace(config=SimpleNamespace(raw={"lingxi_copy_arguments": True, "lingxi_copy_answers": True}),
                             guide_vocab=vocab, eos_token_ids=frozenset({STOP}))
    both = guide_for(engine, SEARCHED, TOOLS)
    assert isinstance(both, GuideChain) and [type(g) for g in both.guides] == [CopyGuide, AnswerGuide]
    assert isinstance(guide_for(engine, SEARCHED, None), AnswerGuide)
    assert isinstance(guide_for(engine, SEARCHED[:1], TOOLS), CopyGuide)
    assert guide_for(engine, SEARCHED, TOOLS, enabled=False) is None
    engine.config.raw = {"lingxi_copy_arguments": True}
    assert isinstance(guide_for(engine, SEARCHED, TOOLS), CopyGuide)
    assert isinstance(guide_for(engine, SEARCHED, TOOLS, enabled=True), GuideChain)
