"""DeepSeekMoE: router gate, sorted expert dispatch, shared experts.

Does: score tokens against ``n_routed_experts`` (softmax or sigmoid, in fp32), select top-k
with greedy, group_limited_greedy (group score = max) or noaux_tc (group score = sum of the
top-2 scores plus ``e_score_correction_bias``; the bias only steers selection, weights come from
the unbiased scores), optionally renormalise, multiply by ``routed_scaling_factor``. Dispatch
sorts the (token, slot) pairs by expert and bincounts them, gathers the rows once, then visits only
the experts that received tokens, so each active expert's fused gate+up and down matrices are read
once per step; the results are un-sorted and each token's k slots weighted in one batched matmul.
After ``quantize_model`` ``w13`` / ``w2`` are ``quant.QuantExperts`` and each active expert runs
through ``.matmul(x_rows, expert)`` (only that expert's quantised bytes are read).

Does not: do expert parallelism, capacity limits, or auxiliary losses. Training (train/) runs this same
forward under autograd and steers ``e_score_correction_bias`` itself from ``last_counts``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import EngineConfig
from .layers import FusedMLP, linear
from .quant import QuantExperts


class Gate:
    """Router. ``weight`` [n_experts, dim], ``bias`` [n_experts] or None.

    ``route(x [T, dim]) -> (weights [T, top_k] fp32, indices [T, top_k] int64)``.
    """

    def __init__(self, cfg: EngineConfig, weight: torch.Tensor, bias: torch.Tensor | None):
        self.weight = weight.float()
        self.bias = None if bias is None else bias.float()
        self.n = cfg.n_routed_experts
        self.top_k = cfg.num_experts_per_tok
        self.method = cfg.topk_method
        self.scoring = cfg.scoring_func
        self.n_group, self.topk_group = cfg.n_group, cfg.topk_group
        self.norm = cfg.norm_topk_prob
        self.scale = cfg.routed_scaling_factor

    def _group_mask(self, group_scores: torch.Tensor) -> torch.Tensor:
        """``group_scores`` [T, n_group] -> bool mask over experts [T, n_experts]."""
        idx = torch.topk(group_scores, k=self.topk_group, dim=-1, sorted=False)[1]
        gmask = torch.zeros_like(group_scores, dtype=torch.bool).scatter_(1, idx, True)
        return gmask[:, :, None].expand(-1, self.n_group, self.n // self.n_group).reshape(-1, self.n)

    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # fp32 even under training's bf16 autocast: near 0.5 a bf16 score moves in steps of 0.004,
        # four times the bias steering's step, and the choice would stop following the bias.
        with torch.autocast(x.device.type, enabled=False):
            logits = F.linear(x.float(), self.weight)
        scores = logits.sigmoid() if self.scoring == "sigmoid" else logits.softmax(dim=-1)
        per_group = self.n // self.n_group
        if self.method == "noaux_tc":
            choice = scores if self.bias is None else scores + self.bias
            gs = choice.view(-1, self.n_group, per_group).topk(2, dim=-1)[0].sum(dim=-1)
            choice = choice.masked_fill(~self._group_mask(gs), float("-inf"))
            idx = torch.topk(choice, k=self.top_k, dim=-1, sorted=False)[1]
            weights = scores.gather(1, idx)
        elif self.method == "group_limited_greedy":
            gs = scores.view(-1, self.n_group, per_group).max(dim=-1).values
            masked = scores.masked_fill(~self._group_mask(gs), 0.0)
            weights, idx = torch.topk(masked, k=self.top_k, dim=-1, sorted=False)
        else:
            weights, idx = torch.topk(scores, k=self.top_k, dim=-1, sorted=False)
        if self.norm:
            weights = weights / (weights.sum(dim=-1, keepdim=True) + 1e-20)
        return weights * self.scale, idx


class MoE:
    """Routed experts + shared experts of one layer.

    ``w13`` [n_experts, 2 * moe_inter, dim] (fused gate+up), ``w2`` [n_experts, dim, moe_inter];
    ``shared`` a ``FusedMLP`` of width ``moe_inter * n_shared_experts`` or None.
    ``forward(x [T, dim]) -> [T, dim]``.
    """

    def __init__(self, gate: Gate, w13: torch.Tensor, w2: torch.Tensor, shared: FusedMLP | None):
        self.gate = gate
        self.w13 = w13
        self.w2 = w2
        self.inter = w2.in_features if isinstance(w2, QuantExperts) else w2.shape[2]
        self.shared = shared
        self.last_counts: list[int] = []

    @staticmethod
    def _expert(w, x: torch.Tensor, expert: int) -> torch.Tensor:
        """``x`` [rows, in] through expert ``expert`` of ``w`` (a ``QuantExperts``, or the stacked
        tensor's per-expert views)."""
        return w.matmul(x, expert) if isinstance(w, QuantExperts) else linear(x, w[expert])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, k = x.shape[0], self.gate.top_k
        weights, idx = self.gate.route(x)
        order = torch.argsort(idx.reshape(-1), stable=True)
        counts = torch.bincount(idx.reshape(-1), minlength=self.gate.n).tolist()
        self.last_counts = counts  # tokens per expert of the last call: training balances the bias on it
        xs = _Sort.apply(x, order, k)  # [T * k, dim]: one gather, rows grouped by expert
        # Split and cat rather than a slice and a write per expert, and in training unbind rather than
        # an index per expert: under autograd the backward of each of those clones or zero-fills the
        # whole [T * k, dim] activation or stacked weight, per expert; these are one op each. (Serving
        # indexes: unbinding 256 experts a layer would cost more than it reads.)
        w13, w2 = self.w13, self.w2
        if torch.is_grad_enabled() and isinstance(w13, torch.Tensor) and w13.requires_grad:
            w13, w2 = w13.unbind(0), w2.unbind(0)
        busy = [(expert, n) for expert, n in enumerate(counts) if n]  # only experts that got tokens
        outs = []
        for (expert, _), rows in zip(busy, torch.split(xs, [n for _, n in busy])):
            h = self._expert(w13, rows, expert)
            outs.append(self._expert(w2, F.silu(h[:, : self.inter]) * h[:, self.inter :], expert))
        ys = torch.cat(outs)
        # Un-sort with a permutation copy, then weight the k slots of each token with one bmm: an
        # index_add_ over (token, slot) rows serialises on CPU and cost 40% of a 1k-token prefill.
        y = _Unsort.apply(ys, order)
        out = torch.bmm(weights.to(x.dtype).unsqueeze(1), y.view(t, k, -1)).squeeze(1)
        if self.shared is not None:
            out = out + self.shared.forward(x)
        return out


class _Sort(torch.autograd.Function):
    """``x[order // k]``: each of ``T`` tokens ``k`` times, in the permutation ``order`` of its
    ``T * k`` slots. Its backward writes the gradient back through the permutation and sums each
    token's ``k`` slots; autograd's own backward of the gather is an accumulating index_put, which
    serialises on CPU (~3% of a training step)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, order: torch.Tensor, k: int) -> torch.Tensor:
        ctx.save_for_backward(order)
        ctx.k = k
        return x[order // k]

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (order,) = ctx.saved_tensors
        return _placed(grad, order).view(-1, ctx.k, grad.shape[-1]).sum(1), None, None


class _Unsort(torch.autograd.Function):
    """``y[order] = ys`` for a permutation ``order``, with a gather for its backward too
    (``grad_ys = grad_y[order]``): autograd's own backward of the index write clones and zero-fills
    the whole gradient first."""

    @staticmethod
    def forward(ctx, ys: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(order)
        return _placed(ys, order)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (order,) = ctx.saved_tensors
        return grad[order], None


def _placed(rows: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """``out[order] = rows`` for a permutation ``order``: a copy, not an accumulation."""
    out = torch.empty_like(rows)
    out[order] = rows
    return out
