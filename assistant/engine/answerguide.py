"""Passage-guided answers: a grounded answer quotes whole passage sentences and cites the passage.

Does: ``AnswerGuide`` is a per-request logits guide (``SamplingParams.guide``, as ``copyguide``)
for a reply that follows a knowledge-base search, i.e. the last message is a tool result with
``passages`` (each a ``ref`` and a ``text``). The reply's first characters are the model's own: it
may decline, offer a hand-off or call a tool. Once what it has written is at least ``MIN_CHARS``
characters and the beginning of one of the passages' sentences, only tokens that go on quoting
are kept: a sentence, or several in a row, of one passage, then `` [ref]`` of that passage, then
the end of the turn. ``answers`` lists every such reply; ``GuideChain`` applies this guide after
the argument guide, and each leaves logits it has no say over untouched.

Why: the bundled model (issue 7) is trained to answer with one passage sentence, verbatim, and
its number (``train/data.py``), and the evaluation's faithfulness counts exactly that. Run 20
began the right sentence and drifted out of it ("The neverranty training of purchase. [1]" for
"The warranty lasts 7 months from the date of purchase."): once an answer has started to quote,
anything but the quote is wrong, and a citation that names another passage misleads the customer.

Does not: decide whether to answer or decline (the model does, in its first characters), guide a
reply after any other tool, or touch a checkpoint that has not opted in (``"lingxi_copy_answers":
true`` in ``config.json``, which ``engine train`` writes; a real DeepSeek model paraphrases).
"""

from __future__ import annotations

import json
import re

import torch

NEG_INF = float("-inf")
# Characters the reply has of its own before the guide takes a match for a quote: enough that a
# decline (不好意思…, "I don't…") is told from a passage sentence that starts with the same character.
MIN_CHARS = 2
# Where a sentence ends: CJK terminal punctuation anywhere, an ASCII one before a space or the end
# (not the point in "4.5" or "e.g.x").
_SENTENCE_END = re.compile(r"[。！？]|[.!?](?=\s|$)")


def passages_of(messages: list[dict]) -> list[tuple[int, str]] | None:
    """(ref, text) of each passage when the last message is a tool result listing passages, else None."""
    if not messages or messages[-1].get("role") != "tool":
        return None
    try:
        result = json.loads(messages[-1].get("content") or "")
    except (TypeError, ValueError):
        return None
    items = result.get("passages") if isinstance(result, dict) else None
    if not isinstance(items, list):
        return None
    found = [(p["ref"], p["text"]) for p in items
             if isinstance(p, dict) and isinstance(p.get("ref"), int) and isinstance(p.get("text"), str)]
    return found or None


def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of ``text``, without the whitespace between them."""
    out, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        out.append((start, m.end()))
        start = m.end()
    out.append((start, len(text)))
    spans = []
    for a, b in out:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if a < b:
            spans.append((a, b))
    return spans


def answers(found: list[tuple[int, str]]) -> list[bytes]:
    """Every reply the guide lets a quote become: consecutive sentences of one passage, then `` [ref]``."""
    out = []
    for ref, text in found:
        spans = sentences(text)
        for i, (start, _) in enumerate(spans):
            for _, end in spans[i:]:
                out.append(f"{text[start:end]} [{ref}]".encode())
    return out


class AnswerGuide:
    """See the module docstring. ``mask(logits, output_ids)`` -> logits with every token that would
    leave the quote at -inf, once the reply has begun one."""

    def __init__(self, vocab, found: list[tuple[int, str]], stop_ids):
        self.vocab, self.answers = vocab, answers(found)
        self.stops = sorted(stop_ids)
        self.written, self.fed, self.off = b"", 0, False

    def _feed(self, output_ids: list[int]) -> None:
        for token in output_ids[self.fed:]:
            if token in self.vocab.added:  # a tool call (or another marker): not an answer to guide
                self.off = True
            elif token < len(self.vocab.token_bytes):
                self.written += self.vocab.token_bytes[token]
        self.fed = len(output_ids)

    def allowed(self) -> set[int] | None:
        """The tokens that keep the reply a quote, or None where the guide has no say."""
        text = self.written
        if self.off or len(text.decode("utf-8", errors="ignore")) < MIN_CHARS:
            return None
        live = [a for a in self.answers if a.startswith(text)]
        if not live:
            return None  # the model's own words (a decline, a question): left alone
        ids: set[int] = set()
        for answer in live:
            rest = answer[len(text):]
            if not rest:
                ids.update(self.stops)
            for n in range(1, min(len(rest), self.vocab.longest) + 1):
                token = self.vocab.by_bytes.get(rest[:n])
                if token is not None:
                    ids.add(token)
        return ids or None

    def mask(self, logits: torch.Tensor, output_ids: list[int]) -> torch.Tensor:
        self._feed(output_ids)
        ids = self.allowed()
        if not ids:
            return logits
        keep = torch.tensor(sorted(i for i in ids if i < logits.shape[-1]), dtype=torch.long, device=logits.device)
        out = torch.full_like(logits, NEG_INF)
        out[keep] = logits[keep]
        return out


class GuideChain:
    """Several guides on one request, applied in turn; each leaves alone what it has no say over."""

    def __init__(self, guides: list):
        self.guides = guides

    def mask(self, logits: torch.Tensor, output_ids: list[int]) -> torch.Tensor:
        for guide in self.guides:
            logits = guide.mask(logits, output_ids)
        return logits


def answer_guide_for(engine, messages: list[dict], enabled: bool | None = None) -> AnswerGuide | None:
    """An ``AnswerGuide`` when the reply follows a passages result and the checkpoint opted in
    (``enabled`` None) or the caller forces it (True); else None."""
    on = bool(engine.config.raw.get("lingxi_copy_answers")) if enabled is None else enabled
    found = passages_of(messages) if on else None
    return AnswerGuide(engine.guide_vocab, found, engine.eos_token_ids) if found else None
