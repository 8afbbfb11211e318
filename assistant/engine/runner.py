"""ModelRunner: run the model for the scheduler -- one prefill, or one decode step for many sequences.

Does:
- ``prefill(ids, cache) -> logits [vocab]``: one sequence's whole prompt through
  ``DeepseekEngineModel.forward`` (expanded MLA), last position only.
- ``decode(tokens, caches) -> logits [B, vocab]``: one new token for each of B sequences.
  Per layer, the MLA projections run on all B tokens together and each token attends over its
  *own* ``LatentCache`` (absorbed MLA, ``MLA.decode_batch``; only that attention loops, since
  caches have different lengths); then the MLP / DeepSeekMoE runs on all B tokens together, so
  each active expert's weights are read once per step for the whole batch -- the point of
  batching a memory-bound decode. Embedding, norms, the dense layers and ``lm_head`` are
  batched too. Results equal B separate ``forward`` calls row for row (up to
  matmul rounding; tests check greedy tokens are identical).
- ``move_model(model, device)``: put every weight of a loaded model on ``device`` (CUDA).

Does not: pack prefills of several sequences, chunk long prompts, or page the cache.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .cache import LatentCache
from .config import EngineError
from .layers import FusedMLP, rms_norm
from .moe import MoE


def move_model(model, device: torch.device) -> None:
    """Move all tensors of a ``DeepseekEngineModel`` to ``device`` in place (tied head stays tied)."""
    mv = lambda t: None if t is None else t.to(device)
    tied = model.lm_head is model.embed
    model.embed, model.norm = mv(model.embed), mv(model.norm)
    model.lm_head = model.embed if tied else mv(model.lm_head)
    model.rotary.inv_freq = mv(model.rotary.inv_freq)
    for layer in model.layers:
        layer.in_norm, layer.post_norm = mv(layer.in_norm), mv(layer.post_norm)
        attn = layer.attn
        attn.w = {k: mv(v) for k, v in attn.w.items()}
        attn.refresh_absorbed()
        mlps = [layer.mlp]
        if isinstance(layer.mlp, MoE):
            moe = layer.mlp
            moe.gate.weight, moe.gate.bias = mv(moe.gate.weight), mv(moe.gate.bias)
            moe.w13, moe.w2 = mv(moe.w13), mv(moe.w2)
            mlps = [moe.shared] if moe.shared is not None else []
        for m in mlps:
            if isinstance(m, FusedMLP):
                m.w13, m.w2 = mv(m.w13), mv(m.w2)


def resolve_device(device: str | torch.device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise EngineError(f"unknown device {device!r}: use 'cpu' or 'cuda'") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise EngineError(f"device {device!r} requested but CUDA is not available "
                          "(no GPU visible, or a CPU-only torch build); use device='cpu'")
    if dev.type not in ("cpu", "cuda"):
        raise EngineError(f"unsupported device {device!r}: use 'cpu' or 'cuda'")
    return dev


class ModelRunner:
    """Wraps a loaded ``DeepseekEngineModel`` on ``device``; owns no sequence state."""

    def __init__(self, model, device: torch.device | str = "cpu"):
        self.model = model
        self.device = torch.device(device)
        if model.embed.device != self.device:
            move_model(model, self.device)

    def new_cache(self, capacity: int) -> LatentCache:
        return self.model.new_cache(capacity=capacity)

    @torch.inference_mode()
    def prefill(self, ids: list[int], cache: LatentCache) -> torch.Tensor:
        """``ids`` (T prompt tokens) into an empty ``cache``; returns logits [vocab]."""
        x = torch.tensor(ids, dtype=torch.long, device=self.device)
        return self.model.forward(x, None, cache, last_only=True)[-1]

    @torch.inference_mode()
    def decode(self, tokens: list[int], caches: list[LatentCache]) -> torch.Tensor:
        """``tokens`` [B] (one per sequence, at position ``caches[i].length``); returns [B, vocab]."""
        m = self.model
        ids = torch.tensor(tokens, dtype=torch.long, device=self.device)
        if int(ids.max()) >= m.cfg.vocab_size or int(ids.min()) < 0:
            raise ValueError(f"token id out of range for vocab_size {m.cfg.vocab_size}")
        positions = torch.tensor([c.length for c in caches], dtype=torch.long, device=self.device)
        cos, sin = m.rotary.cos_sin(positions, m.dtype)  # [B, rope_dim // 2] each
        x = F.embedding(ids, m.embed)  # [B, dim]
        for i, layer in enumerate(m.layers):
            x = x + layer.attn.decode_batch(rms_norm(x, layer.in_norm, layer.eps), cos, sin, caches, i)
            x = x + layer.mlp.forward(rms_norm(x, layer.post_norm, layer.eps))  # all B tokens at once
        for c in caches:
            c.advance(1)
        return m.logits(x)
