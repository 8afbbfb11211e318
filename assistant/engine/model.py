"""The DeepSeek-V2/V3 decoder: embeddings, MLA + MLP/MoE layers, final norm and lm_head.

Does: run one sequence's new tokens through the stack against its ``LatentCache``:
``forward(input_ids [T], positions [T], cache) -> logits [T, vocab]``. The first
``first_k_dense_replace`` layers (and layers off ``moe_layer_freq``) use a dense SwiGLU MLP,
the rest DeepSeekMoE. By default multi-token calls (prefill) use expanded attention and
single-token calls (decode) the absorbed path; ``absorb=`` forces either.

``forward_train`` runs padded batches of whole sequences with autograd, for training (train/).

Does not: batch several sequences (``runner.ModelRunner.decode`` does, layer by layer), run MTP heads,
or sample (see generate.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .attention import MLA
from .cache import LatentCache
from .config import EngineConfig
from .layers import FusedMLP, linear, rms_norm
from .moe import Gate, MoE
from .rope import Rotary


class DecoderLayer:
    """Pre-norm block: ``h = x + attn(norm(x)); out = h + mlp(norm(h))`` on [T, dim]."""

    def __init__(self, attn: MLA, mlp: FusedMLP | MoE, in_norm: torch.Tensor, post_norm: torch.Tensor,
                 eps: float):
        self.attn, self.mlp = attn, mlp
        self.in_norm, self.post_norm, self.eps = in_norm, post_norm, eps

    def forward(self, x, cos, sin, cache: LatentCache, layer: int, absorb: bool) -> torch.Tensor:
        return self._block(x, lambda h: self.attn.forward(h, cos, sin, cache, layer, absorb))

    def forward_train(self, x, cos, sin, batch: int) -> torch.Tensor:
        """``x`` [B * T, dim] of B whole sequences, no cache (see ``MLA.forward_train``)."""
        return self._block(x, lambda h: self.attn.forward_train(h, cos, sin, batch))

    def _block(self, x: torch.Tensor, attend) -> torch.Tensor:
        x = x + attend(rms_norm(x, self.in_norm, self.eps))
        return x + self.mlp.forward(rms_norm(x, self.post_norm, self.eps))


class DeepseekEngineModel:
    """Whole model. ``embed`` [vocab, dim], ``norm`` [dim], ``lm_head`` [vocab, dim] (a tensor, or a
    ``QuantLinear`` once quantised), ``layers``."""

    def __init__(self, cfg: EngineConfig, embed: torch.Tensor, layers: list[DecoderLayer],
                 norm: torch.Tensor, lm_head: torch.Tensor, rotary: Rotary, dtype: torch.dtype,
                 skipped: list[str] | None = None):
        self.cfg, self.embed, self.layers = cfg, embed, layers
        self.norm, self.lm_head, self.rotary, self.dtype = norm, lm_head, rotary, dtype
        self.skipped_tensors = skipped or []
        self.quant: str | None = None  # set by load_model / quantize_model

    @classmethod
    def from_reader(cls, cfg: EngineConfig, reader, dtype: torch.dtype) -> "DeepseekEngineModel":
        from .loader import _fused, read_attention, read_experts

        rotary = Rotary(cfg)
        layers = []
        for i in range(cfg.num_hidden_layers):
            p = f"model.layers.{i}"
            attn = MLA(cfg, read_attention(reader, p + ".self_attn", dtype), rotary)
            if cfg.is_moe_layer(i):
                gate = Gate(cfg, reader.raw(p + ".mlp.gate.weight"),
                            reader.optional(p + ".mlp.gate.e_score_correction_bias", torch.float32))
                w13, w2 = read_experts(reader, p + ".mlp.experts", dtype)
                shared = None
                if cfg.n_shared_experts:
                    width = cfg.moe_intermediate_size * cfg.n_shared_experts
                    shared = FusedMLP(*_fused(reader, p + ".mlp.shared_experts", dtype, width))
                mlp = MoE(gate, w13, w2, shared)
            else:
                mlp = FusedMLP(*_fused(reader, p + ".mlp", dtype, cfg.intermediate_size))
            layers.append(DecoderLayer(
                attn, mlp,
                reader.raw(p + ".input_layernorm.weight").to(dtype),
                reader.raw(p + ".post_attention_layernorm.weight").to(dtype),
                cfg.rms_norm_eps,
            ))
        embed = reader.raw("model.embed_tokens.weight").to(dtype)
        if cfg.tie_word_embeddings or not (reader.has("lm_head.weight") or reader.has("lm_head.qweight")):
            if not cfg.tie_word_embeddings:
                reader.raw("lm_head.weight")  # raises a clear missing-tensor error
            lm_head = embed
        else:
            lm_head = reader.linear("lm_head", dtype, cfg.hidden_size)
        norm = reader.raw("model.norm.weight").to(dtype)
        return cls(cfg, embed, layers, norm, lm_head, rotary, dtype, list(reader.skipped))

    def new_cache(self, capacity: int = 256) -> LatentCache:
        return LatentCache(self.cfg.num_hidden_layers, self.cfg.latent_dim, self.dtype, capacity,
                           device=self.embed.device)

    @torch.inference_mode()
    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor | None, cache: LatentCache,
                absorb: bool | None = None, last_only: bool = False) -> torch.Tensor:
        """``input_ids`` [T] (new tokens), ``positions`` [T] (default: continue the cache).

        Returns logits [T, vocab] (or [1, vocab] with ``last_only``) in the model dtype.
        """
        input_ids = input_ids.reshape(-1)
        t = input_ids.shape[0]
        if positions is None:
            positions = torch.arange(cache.length, cache.length + t, device=input_ids.device)
        if absorb is None:
            absorb = t == 1
        if int(input_ids.max()) >= self.cfg.vocab_size or int(input_ids.min()) < 0:
            raise ValueError(f"token id out of range for vocab_size {self.cfg.vocab_size}")
        x = F.embedding(input_ids, self.embed)
        cos, sin = self.rotary.cos_sin(positions.reshape(-1), self.dtype)
        for i, layer in enumerate(self.layers):
            x = layer.forward(x, cos, sin, cache, i, absorb)
        cache.advance(t)
        if last_only:
            x = x[-1:]
        return self.logits(x)

    def forward_train(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Training forward with autograd: ``input_ids`` [B, T] (right-padded) -> final hidden
        states [B * T, dim] before the norm; ``logits`` turns the rows that carry a loss into scores."""
        b, t = input_ids.shape
        x = F.embedding(input_ids.reshape(-1), self.embed)
        cos, sin = self.rotary.cos_sin(torch.arange(t, device=input_ids.device).repeat(b), self.dtype)
        for layer in self.layers:
            x = layer.forward_train(x, cos, sin, b)
        return x

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Final norm and ``lm_head``: hidden [T, dim] -> logits [T, vocab]."""
        return linear(rms_norm(x, self.norm, self.cfg.rms_norm_eps), self.lm_head)
