"""Weight bytes one decode step reads, for the bandwidth figures of ``engine bench``.

Does: walk a loaded ``DeepseekEngineModel`` and add up what a batch-1 decode token touches --
one embedding row; per layer the norms, the MLA projections the *absorbed* path uses (``wq`` or
``wq_a``/``wq_b``, ``wkv_a``, the float ``w_uk``/``w_uv`` views instead of ``wkv_b``, ``wo``), the
dense MLP, or the router plus ``num_experts_per_tok`` routed experts plus the shared experts;
then the final norm and ``lm_head`` -- in the bytes of their runtime form (fp32, or the
quantised kernel's packed weights and scales). The latent cache is not counted (it is context,
not weights; the bench reports how decode time moves with context separately).

Does not: measure anything; it is arithmetic over tensor sizes.
"""

from __future__ import annotations

import torch

from .layers import FusedMLP
from .moe import MoE

ATTN_DECODE_KEYS = ("wq", "wq_a", "q_norm", "wq_b", "wkv_a", "wkv_a_bias", "kv_norm", "wo", "wo_bias", "wq_a_bias")


def nbytes(w) -> int:
    """Bytes of a weight: a tensor, or a ``QuantLinear`` / ``QuantExperts`` (its ``nbytes``)."""
    if w is None:
        return 0
    if isinstance(w, torch.Tensor):
        return w.numel() * w.element_size()
    return int(w.nbytes)


def _mlp(m: FusedMLP | None) -> int:
    return 0 if m is None else nbytes(m.w13) + nbytes(m.w2)


def decode_weight_bytes(model) -> int:
    cfg = model.cfg
    total = cfg.hidden_size * model.embed.element_size() + nbytes(model.norm) + nbytes(model.lm_head)
    for layer in model.layers:
        attn = layer.attn
        total += nbytes(layer.in_norm) + nbytes(layer.post_norm)
        total += sum(nbytes(attn.w.get(k)) for k in ATTN_DECODE_KEYS)
        total += nbytes(attn.w_uk) + nbytes(attn.w_uv)
        if isinstance(layer.mlp, MoE):
            moe = layer.mlp
            per_expert = (nbytes(moe.w13) + nbytes(moe.w2)) / cfg.n_routed_experts
            total += nbytes(moe.gate.weight) + nbytes(moe.gate.bias)
            total += int(per_expert * cfg.num_experts_per_tok) + _mlp(moe.shared)
        else:
            total += _mlp(layer.mlp)
    return int(total)


def prefill_flops_per_token(cfg, context: int) -> float:
    """Multiply-adds x 2 per prompt token of a ``context``-token prefill (last-position ``lm_head``
    only, as both implementations run it): every active projection once, plus causal attention
    (scores and values over ``context / 2`` keys on average, expanded heads)."""
    d, h = cfg.hidden_size, cfg.num_attention_heads
    q = d * h * cfg.qk_head_dim if cfg.q_lora_rank is None else cfg.q_lora_rank * (d + h * cfg.qk_head_dim)
    attn = q + d * cfg.latent_dim + cfg.kv_lora_rank * h * (cfg.qk_nope_head_dim + cfg.v_head_dim) + h * cfg.v_head_dim * d
    attn_ctx = h * (cfg.qk_head_dim + cfg.v_head_dim) * context / 2
    moe = (cfg.num_experts_per_tok + cfg.n_shared_experts) * 3 * d * cfg.moe_intermediate_size + cfg.n_routed_experts * d
    dense = 3 * d * cfg.intermediate_size
    params = sum(attn + attn_ctx + (moe if cfg.is_moe_layer(i) else dense) for i in range(cfg.num_hidden_layers))
    return 2.0 * params
