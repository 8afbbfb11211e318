"""Teacher-forced copying: of the assistant tokens that continue a pair of tokens seen earlier in
the user's or a tool's words, the share the model predicts (greedy top-1, the true prefix given).

Why: a tool call's arguments copy the user's words (or an id from a tool result) and a grounded
answer copies a passage; exact argument match moves only once whole spans come out right, while
copying forms early and abruptly (``curriculum.copy_drills``). This says whether it has formed,
on a snapshot mid-run as well as at the end, per language.

A position counts when the pair (previous token, token) occurs among the conversation's earlier
non-assistant tokens: the token is what an induction head would copy. Pairs of JSON punctuation
from tool results count too, so the figure is a little above the share of content copied.

Does not: decode (``evaluate`` does), or judge whether the copy was the right span to take.
"""

from __future__ import annotations

import torch

from .curriculum import Encoded


def copy_positions(e: Encoded) -> list[int]:
    """Indices ``i`` of assistant tokens whose pair ``(ids[i-1], ids[i])`` occurred earlier in a
    non-assistant stretch of the conversation."""
    seen: set[tuple[int, int]] = set()
    out = []
    for i in range(1, len(e.ids)):
        pair = (e.ids[i - 1], e.ids[i])
        if e.targets[i]:
            if pair in seen:
                out.append(i)
        elif not e.targets[i - 1]:
            seen.add(pair)
    return out


@torch.no_grad()
def copied_hits(model, e: Encoded) -> tuple[int, int]:
    """(predicted, counted) copy positions of one conversation; ``model`` is a ``DeepseekEngineModel``."""
    where = copy_positions(e)
    if not where:
        return 0, 0
    ids = torch.tensor(e.ids, device=model.embed.device)
    logits = model.forward(ids, None, model.new_cache(capacity=len(e.ids)))  # [T, vocab]
    rows = torch.tensor(where, device=ids.device)
    return int((logits[rows - 1].argmax(-1) == ids[rows]).sum()), len(where)


def copy_accuracy(model, encoded: list[Encoded], langs: list[str]) -> dict:
    """``{lang: {"hits", "n", "value"}}`` for each language in ``langs`` (one per conversation) and "all"."""
    counts: dict[str, list[int]] = {}
    for e, lang in zip(encoded, langs):
        hits, n = copied_hits(model, e)
        for key in (lang, "all"):
            row = counts.setdefault(key, [0, 0])
            row[0] += hits
            row[1] += n
    return {k: {"hits": h, "n": n, "value": h / n if n else None} for k, (h, n) in counts.items()}
