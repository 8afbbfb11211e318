"""Sampling parameters and logits processing for one sequence's next token.

Does: validate ``SamplingParams``; apply, in this order (as vLLM does),

1. ``repetition_penalty`` (CTRL / HF / vLLM): for every token seen in the prompt or the output,
   a positive logit is divided by the penalty and a negative one multiplied by it;
2. ``frequency_penalty`` and ``presence_penalty`` (OpenAI): over the *generated* tokens,
   ``logit[t] -= frequency * count[t] + presence * (count[t] > 0)``;
3. greedy argmax when ``temperature == 0``; otherwise divide by the temperature, keep the
   ``top_k`` largest logits, keep the smallest set of tokens whose probability reaches ``top_p``
   (the most likely token always survives), and draw with the sequence's own
   ``torch.Generator`` -- seeded from ``seed`` so a seed reproduces its tokens whatever else
   runs in the same batch.

Shapes: ``logits`` [vocab] (one sequence); the processors also accept [B, vocab] rows.

Does not: batch the sampling of different sequences (per-row work is negligible next to the
model on CPU), compute logprobs, or apply logit_bias; guided decoding is the request's ``guide``
(``copyguide``), applied after the penalties.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import torch

from .config import EngineError


class BadRequest(EngineError):
    """Request parameters the engine cannot honour (message names the parameter)."""


@dataclass
class SamplingParams:
    temperature: float = 1.0      # 0 -> greedy
    top_p: float = 1.0
    top_k: int = 0                # 0 -> off
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int | None = None
    max_tokens: int = 256
    stop: list[str] = field(default_factory=list)            # output is cut before them
    stop_token_ids: list[int] = field(default_factory=list)  # plus the tokenizer's EOS/stop ids
    ignore_eos: bool = False
    guide: Any = field(default=None, compare=False, repr=False)  # per-request: .mask(logits, output_ids) (copyguide)

    def validate(self) -> None:
        """Raise ``BadRequest`` naming the first parameter out of range."""
        if isinstance(self.stop, str):
            self.stop = [self.stop]
        checks = [
            ("temperature", self.temperature >= 0, "must be >= 0"),
            ("top_p", 0 < self.top_p <= 1, "must be in (0, 1]"),
            ("top_k", self.top_k >= 0, "must be >= 0 (0 disables it)"),
            ("repetition_penalty", self.repetition_penalty > 0, "must be > 0"),
            ("presence_penalty", -2 <= self.presence_penalty <= 2, "must be in [-2, 2]"),
            ("frequency_penalty", -2 <= self.frequency_penalty <= 2, "must be in [-2, 2]"),
            ("max_tokens", self.max_tokens >= 1, "must be >= 1"),
            ("stop", all(isinstance(s, str) and s for s in self.stop), "must be non-empty strings"),
        ]
        for name, ok, why in checks:
            if not ok:
                raise BadRequest(f"{name}={getattr(self, name)!r} {why}")

    def make_generator(self) -> torch.Generator:
        """A CPU generator of this request: seeded from ``seed``, else from fresh entropy."""
        seed = self.seed if self.seed is not None else random.SystemRandom().randrange(2**63)
        return torch.Generator().manual_seed(int(seed) % 2**64)


def apply_penalties(logits: torch.Tensor, prompt_ids: list[int], output_ids: list[int],
                    p: SamplingParams) -> torch.Tensor:
    """Return penalised fp32 ``logits`` [vocab] (a new tensor; the input is not modified)."""
    logits = logits.float().clone()
    vocab = logits.shape[-1]
    if p.repetition_penalty != 1.0 and (prompt_ids or output_ids):
        seen = torch.tensor(sorted(set(prompt_ids) | set(output_ids)), dtype=torch.long, device=logits.device)
        seen = seen[seen < vocab]
        vals = logits[seen]
        logits[seen] = torch.where(vals > 0, vals / p.repetition_penalty, vals * p.repetition_penalty)
    if (p.frequency_penalty or p.presence_penalty) and output_ids:
        ids = torch.tensor(output_ids, dtype=torch.long, device=logits.device)
        counts = torch.bincount(ids, minlength=vocab)[:vocab].to(logits.dtype)
        logits -= p.frequency_penalty * counts + p.presence_penalty * (counts > 0).to(logits.dtype)
    return logits


def top_k_mask(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Set all but the ``k`` largest logits (ties at the k-th kept) to -inf; ``k <= 0`` is off."""
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_mask(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the smallest most-likely set whose probability mass reaches ``p``; -inf elsewhere."""
    if p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits, dim=-1)
    mass_before = torch.cumsum(probs, dim=-1) - probs  # mass of strictly more likely tokens
    drop_sorted = mass_before >= p                      # the first token always has 0 before it
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def sample(logits: torch.Tensor, prompt_ids: list[int], output_ids: list[int], p: SamplingParams,
           generator: torch.Generator | None) -> int:
    """Pick the next token id from ``logits`` [vocab] of one sequence."""
    logits = apply_penalties(logits, prompt_ids, output_ids, p)
    if p.guide is not None:
        logits = p.guide.mask(logits, output_ids)
    if p.temperature == 0:
        return int(torch.argmax(logits))
    logits = logits.cpu() / p.temperature  # CPU: the per-request generator lives there
    logits = top_p_mask(top_k_mask(logits, p.top_k), p.top_p)
    probs = torch.softmax(logits, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))
