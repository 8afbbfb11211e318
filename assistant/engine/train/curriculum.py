"""What the training loop learns from, in what order: conversations cut into length-bucketed
batches, copy drills (a random span said twice) in batches of mixed lengths, the phase of drills
alone until copying has formed, and the schedule that interleaves them pass after pass.

Does not: generate or tokenise the data (``data``, ``prepared.encode``) or step the optimiser (``loop``).
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .choosing import Choosing
    from .loop import TrainConfig


@dataclass
class Encoded:
    ids: list[int]
    targets: list[bool]  # targets[i]: token i is an assistant token the model must predict


def copy_drills(n: int, pool: list[int], bos: int, rng: random.Random, lengths: tuple[int, int] = (6, 40),
                distinct: bool = False) -> list[Encoded]:
    """``n`` sequences BOS, A, A, where ``A`` is ``lengths`` tokens drawn at random from ``pool`` (no
    token twice in one span when ``distinct``); the loss is on the repeat but its first token, which
    nothing predicts.

    Copying is what a tool call does with the user's words and a grounded answer with a passage,
    and the chat data alone did not teach it: after 40 minutes the model still wrote a remembered
    title for an unseen one. Drills teach the copying (induction) heads directly. Measured on
    this shape (batches of 32 drills, lr 2e-3): the loss sits at the unigram level (~5 nats)
    for hundreds of steps, then falls to ~1 within a few hundred more -- hence a phase of drills
    alone (``DrillPhase``) before the conversations join. Two things that looked faster were not: drills of one fixed
    length were solved by a head looking a fixed distance back (no copying learned), and ids
    drawn uniformly from the whole vocabulary stayed at chance; ``pool`` is the conversations'
    own tokens, so drills draw them as often as they occur. Batched by ``drill_batches`` (mixed
    lengths), run 10's drill loss left the plateau at step ~600 and reached ~1.1 by 900;
    afterwards, teacher-forced accuracy on copied argument tokens was 75% on held-out tool calls
    (39% for the best run without drills). But the same drills (6-40 tokens, with replacement)
    had not left it after 2,500 steps in run 13: a frequent token (the space piece is 13% of the
    pool) recurs in most such spans and makes "what followed it last time" ambiguous, and long
    sequences spread the untrained attention thin. Spans of 3-12 distinct tokens (the loop's
    defaults) left the plateau by ~600 steps and formed copying at 1,285 in run 14."""
    out = []
    for _ in range(n):
        size, span = rng.randint(*lengths), []
        while len(span) < size:
            token = rng.choice(pool)
            if not (distinct and token in span):
                span.append(token)
        out.append(Encoded([bos, *span, *span], [False] * (len(span) + 2) + [True] * (len(span) - 1)))
    return out


def widened(pool: list[int], vocab: range, share: float) -> list[int]:
    """``pool`` with every id of ``vocab`` added equally often, so that a drawn token is one of the
    added ones at probability ``share``.

    Drills from the conversations' tokens alone never show a token the conversations lack, and
    the BPE has many: pieces it made on the way to longer merges ("warranty" is ``war ra nt y``,
    none of them in the training text). Their embeddings never train, so an unseen word could not
    be copied (9% of run 14's held-out argument tokens). Drawn uniformly at first the drills stayed
    at chance, so the loop widens the pool only after copying has formed (``schedule``)."""
    if not share or not vocab:
        return pool
    copies = max(1, round(share / (1 - share) * len(pool) / len(vocab)))
    return pool + list(vocab) * copies


def batches(data: list[Encoded], budget: int, rng: random.Random) -> list[list[Encoded]]:
    """Shuffle, sort 100-batch windows by length, cut into batches of at most ``budget`` padded tokens."""
    order = data[:]
    rng.shuffle(order)
    out: list[list[Encoded]] = []
    window = max(1, 100 * budget // 512)
    for w in range(0, len(order), window):
        chunk = sorted(order[w : w + window], key=lambda e: len(e.ids))
        batch: list[Encoded] = []
        for e in chunk:
            if batch and (len(batch) + 1) * len(e.ids) > budget:
                out.append(batch)
                batch = []
            batch.append(e)
        if batch:
            out.append(batch)
    rng.shuffle(out)
    return out


def drill_batches(drills: list[Encoded], size: int, rng: random.Random) -> list[list[Encoded]]:
    """Shuffled drills in batches of ``size``, deliberately not sorted by length.

    ``batches`` sorts by length to save padding, which gives each batch drills of one length;
    a head looking that fixed distance back then solves the batch, and the copying heads never
    form (the loss stayed ~4.9 after 740 steps of such batches, where mixed lengths left the
    plateau after ~600)."""
    order = drills[:]
    rng.shuffle(order)
    return [order[i : i + size] for i in range(0, len(order), size)]


@dataclass
class DrillPhase:
    """The phase of drills alone: at most ``limit`` steps, ended sooner once the mean loss of the
    last ``window`` drill steps is below ``target`` -- copying has formed.

    When copying forms varies from run to run: at ~600 drill steps in run 10, not by 1,250 in
    run 12 (same seed, another tokenizer). A fixed phase either wastes steps or hands the
    conversations a model that cannot copy yet, so the loop reports each loss here and
    ``schedule`` asks ``formed`` before every drill batch."""
    limit: int
    target: float | None = None
    window: int = 20
    steps: int = 0
    active: bool = False
    losses: list[float] = field(default_factory=list)

    def record(self, loss: float) -> None:
        if self.active:
            self.losses.append(loss)

    @property
    def recent_loss(self) -> float | None:
        recent = self.losses[-self.window:]
        return sum(recent) / len(recent) if recent else None

    @property
    def formed(self) -> bool:
        return (self.target is not None and len(self.losses) >= self.window
                and self.recent_loss < self.target)


def schedule(kept: list[Encoded], drills: list[Encoded], cfg: TrainConfig, rng: random.Random,
             phase: DrillPhase | None = None, later: list[Encoded] | None = None):
    """The loop's batches: batches of ``drills`` alone (see ``copy_drills``) while ``phase`` lasts
    (``cfg.drill_steps`` of them without one), then conversation batches with the batches of
    ``later`` drills (``drills`` when None; see ``widened``) shuffled in among them, a fresh order
    every pass, for as long as the loop asks."""
    # Copying forms only after hundreds of steps of drills, and conversations mixed in from the
    # start slowed it further (runs 6 and 7): hence a phase of drills alone first.
    phase = phase or DrillPhase(cfg.drill_steps)
    if drills:
        phase.active = True
        for batch in itertools.islice(itertools.cycle(drill_batches(drills, cfg.drill_batch, rng)), phase.limit):
            if phase.formed:
                break
            phase.steps += 1
            yield batch
        phase.active = False
    later = drills if later is None else later
    while True:
        epoch = batches(kept, cfg.batch_tokens, rng) + drill_batches(later, cfg.drill_batch, rng)
        rng.shuffle(epoch)
        yield from epoch


def collate(batch: list[Encoded], pad_id: int,
            choosing: "Choosing | None" = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> inputs [B, T - 1], next-token labels [B * (T - 1)], and each label row's weight in the
    loss (0 where it carries none, 1, or ``choosing``'s weights)."""
    t = max(len(e.ids) for e in batch)
    ids = torch.full((len(batch), t), pad_id, dtype=torch.long)
    weights = torch.zeros(len(batch), t)
    for row, e in enumerate(batch):
        ids[row, : len(e.ids)] = torch.tensor(e.ids)
        weights[row, : len(e.ids)] = torch.tensor(e.targets, dtype=torch.float32)
        chosen = choosing.weights(e) if choosing is not None else []
        if chosen:
            at, w = zip(*chosen)
            weights[row, list(at)] = torch.tensor(w)
    return ids[:, :-1], ids[:, 1:].reshape(-1), weights[:, 1:].reshape(-1)
