"""Quantise a loaded ``DeepseekEngineModel`` in place: weight-only int8 / int4 (``quant.py``).

Does: ``quantize_model(model, "int8"|"int4")`` replaces, in every layer, the MLA projections
(``wq`` or ``wq_a``/``wq_b``, ``wkv_a``, ``wkv_b``, ``wo``; biases stay float) and the dense /
shared-expert ``FusedMLP`` ``w13``/``w2`` by ``QuantLinear``, and the routed experts' stacked
``MoE.w13``/``w2`` by ``QuantExperts`` (dispatch then calls ``.matmul(rows, expert)`` for active
experts only). The absorbed-decode ``w_uk``/``w_uv`` are rebuilt from the *dequantised* ``wkv_b``
so prefill (expanded) and decode (absorbed) see the same weights. ``lm_head`` becomes int8 per row
in both modes. Embeddings (a row gather), norms and the router gate stay float. ``QUANT_MODES`` lists accepted modes.

Does not: run on CUDA (the kernels are CPU ones), avoid the transient float copy (weights load in
float, then quantise layer by layer), or read/write pre-quantised checkpoints (``engine quantize``).
"""

from __future__ import annotations

import torch

from .layers import FusedMLP
from .moe import MoE
from .quant import MODES, QuantExperts, QuantLinear, quantize

QUANT_MODES = MODES
ATTN_KEYS = ("wq", "wq_a", "wq_b", "wkv_a", "wkv_b", "wo")


def _ql(w: torch.Tensor, mode: str, group_size: int | None, kernel: str) -> QuantLinear:
    return QuantLinear(quantize(w, mode, group_size), None, kernel)


def quantize_model(model, mode: str, *, group_size: int | None = None, kernel: str = "auto") -> list[str]:
    """Quantise ``model``'s linear weights in place; returns the names of what was swapped."""
    if mode not in MODES:
        raise ValueError(f"unknown quant mode {mode!r}; expected one of {MODES}")
    done: list[str] = []
    for i, layer in enumerate(model.layers):
        attn, p = layer.attn, f"layers.{i}"
        for key in ATTN_KEYS:
            w = attn.w.get(key)
            if isinstance(w, torch.Tensor):
                attn.w[key] = _ql(w, mode, group_size, kernel)
                done.append(f"{p}.attn.{key}")
        attn.refresh_absorbed()
        mlps = [(f"{p}.mlp", layer.mlp)]
        if isinstance(layer.mlp, MoE):
            moe = layer.mlp
            for name in ("w13", "w2"):
                w = getattr(moe, name)
                if isinstance(w, torch.Tensor):
                    setattr(moe, name, QuantExperts(quantize(w, mode, group_size), kernel))
                    done.append(f"{p}.mlp.experts.{name}")
            mlps = [(f"{p}.mlp.shared", moe.shared)] if moe.shared is not None else []
        for name, m in mlps:
            if isinstance(m, FusedMLP):
                for attr in ("w13", "w2"):
                    w = getattr(m, attr)
                    if isinstance(w, torch.Tensor):
                        setattr(m, attr, _ql(w, mode, group_size, kernel))
                        done.append(f"{name}.{attr}")
    if isinstance(model.lm_head, torch.Tensor):
        # int8 per row in both modes: the head is a large share of decode bytes at small depth,
        # and the logits are what sampling sees, so it gets the finer of the two formats.
        model.lm_head = _ql(model.lm_head, "int8", None, kernel)
        done.append("lm_head")
    model.quant = mode
    return done
