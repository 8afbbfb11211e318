"""Multi-head Latent Attention (MLA) of DeepSeek-V2/V3.

Does: project q (directly, or through the ``q_lora_rank`` bottleneck with its RMSNorm),
compress kv to the latent ``c_kv`` [kv_lora_rank] plus one shared rope key [qk_rope_head_dim],
write both to the ``LatentCache``, then attend either

- expanded (prefill): ``kv_b_proj`` expands every cached latent into per-head k_nope and v,
  standard attention -- cheapest when many new tokens share the same keys; or
- absorbed (decode): ``kv_b_proj``'s k half is folded into q and its v half into the output,
  so attention runs directly over the cached latents and nothing per head is materialised.

Both paths accept any number of new tokens with a causal mask over the cache.

``decode_batch`` runs one decode token for each of several sequences (each over its own cache).

``forward_train`` runs whole right-padded sequences without a cache, with autograd (training).

Does not: pack prefills of several sequences, page the cache, or use fused kernels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import kernels
from .cache import LatentCache
from .config import EngineConfig
from .layers import linear, rms_norm
from .quant import dequantize
from .rope import Rotary, softmax_scale


def sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **kw) -> torch.Tensor:
    """``F.scaled_dot_product_attention`` over [..., H, T, d] with v zero-padded to q/k's head size.

    Why: PyTorch's CPU flash kernel wants one head size for q, k and v; MLA's v heads are narrower
    (32 against 48 here, 128 against 192 in DeepSeek-V3), which sent every call down the math path
    that materialises the [H, T, S] scores: twice the time of a training step's attention, and the
    memory the flash kernel saves on a long prompt. Zero columns of v add zero columns to the
    output, which are dropped, so the result is the same."""
    if q.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        # Training's bf16 autocast on the CPU: the flash kernel's backward took twice as long in bf16
        # as in fp32 (1.6 s against 0.8 s over six steps), more than bf16 saved on the matmuls.
        with torch.autocast("cpu", enabled=False):
            return sdpa(q.float(), k.float(), v.float(), **kw)
    pad = q.shape[-1] - v.shape[-1]
    if pad <= 0:
        return F.scaled_dot_product_attention(q, k, v, **kw)
    return F.scaled_dot_product_attention(q, k, F.pad(v, (0, pad)), **kw)[..., : v.shape[-1]]


class MLA:
    """One layer's MLA weights and forward.

    Weights (``[out, in]`` like nn.Linear): ``wq`` [n_heads * qk_head_dim, dim] when
    ``q_lora_rank`` is None, else ``wq_a`` [q_lora_rank, dim], ``q_norm`` [q_lora_rank],
    ``wq_b`` [n_heads * qk_head_dim, q_lora_rank]; ``wkv_a`` [kv_lora_rank + rope_dim, dim];
    ``kv_norm`` [kv_lora_rank]; ``wkv_b`` [n_heads * (nope_dim + v_dim), kv_lora_rank];
    ``wo`` [dim, n_heads * v_dim]. Optional biases on ``wq_a``, ``wkv_a`` and ``wo``.

    ``forward(x [T, dim], cos, sin [T, rope_dim // 2], cache, layer, absorb) -> [T, dim]``;
    ``decode_batch(x [B, dim], cos, sin [B, rope_dim // 2], caches, layer) -> [B, dim]``.
    """

    def __init__(self, cfg: EngineConfig, w: dict[str, torch.Tensor], rotary: Rotary):
        self.cfg = cfg
        self.rotary = rotary
        self.n_heads = cfg.num_attention_heads
        self.nope, self.rope_dim, self.v_dim = cfg.qk_nope_head_dim, cfg.qk_rope_head_dim, cfg.v_head_dim
        self.kv_rank = cfg.kv_lora_rank
        self.scale = softmax_scale(cfg)
        self.eps = cfg.rms_norm_eps
        self.w = w
        self.refresh_absorbed()

    def refresh_absorbed(self) -> None:
        """Rebuild the absorbed-decode views ``w_uk`` [H, nope, kv_rank] and ``w_uv`` [H, v_dim, kv_rank]
        from ``wkv_b`` -- its dequantised values if quantised, so prefill and decode see one weight."""
        wkv_b = self.w["wkv_b"]
        if not isinstance(wkv_b, torch.Tensor):
            wkv_b = dequantize(wkv_b.quant_weight(), self.w["kv_norm"].dtype)
        wkv_b = wkv_b.view(self.n_heads, self.nope + self.v_dim, self.kv_rank)
        self.w_uk, self.w_uv = wkv_b[:, : self.nope], wkv_b[:, self.nope :]

    def _q(self, x: torch.Tensor) -> torch.Tensor:
        w = self.w
        if "wq" in w:
            q = linear(x, w["wq"])
        else:
            qa = linear(x, w["wq_a"], w.get("wq_a_bias"))
            q = linear(rms_norm(qa, w["q_norm"], self.eps), w["wq_b"])
        return q.view(x.shape[0], self.n_heads, self.nope + self.rope_dim)

    def project(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x`` [T, dim] -> q_nope [T, H, nope], rotated q_pe [T, H, rope_dim], latent rows
        [T, kv_rank + rope_dim] (normalised ``c_kv`` then the rotated shared ``k_pe``, as cached)."""
        q = self._q(x)
        q_nope, q_pe = q[..., : self.nope], q[..., self.nope :]
        q_pe = self.rotary.apply(q_pe, cos, sin)
        kv = linear(x, self.w["wkv_a"], self.w.get("wkv_a_bias"))
        c_kv = rms_norm(kv[:, : self.kv_rank], self.w["kv_norm"], self.eps)
        k_pe = self.rotary.apply(kv[:, None, self.kv_rank :], cos, sin)[:, 0]
        return q_nope, q_pe, torch.cat([c_kv, k_pe], dim=-1)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                cache: LatentCache, layer: int, absorb: bool) -> torch.Tensor:
        t = x.shape[0]
        start = cache.length
        q_nope, q_pe, rows = self.project(x, cos, sin)
        latent = cache.write(layer, rows)  # [S, kv_rank + rope_dim]
        c_all, pe_all = latent[:, : self.kv_rank], latent[:, self.kv_rank :]
        s = latent.shape[0]
        # allowed[i, j]: query i (at position start + i) may see key j. None when nothing is hidden.
        allowed = None
        if t > 1:
            allowed = torch.arange(s, device=x.device)[None, :] <= (start + torch.arange(t, device=x.device))[:, None]
        if absorb:
            mask = None if allowed is None else torch.zeros(t, s, dtype=x.dtype, device=x.device).masked_fill_(
                ~allowed, float("-inf"))
            out = self._absorbed(q_nope, q_pe, latent, mask)
        else:
            out = self._expanded(q_nope, q_pe, c_all, pe_all, allowed, causal=start == 0)
        return linear(out.reshape(t, self.n_heads * self.v_dim), self.w["wo"], self.w.get("wo_bias"))

    def decode_batch(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                     caches: list[LatentCache], layer: int) -> torch.Tensor:
        """One new token for each of B sequences: ``x`` [B, dim], cos/sin [B, rope_dim // 2] -> [B, dim].

        Projections, the ``W_uk`` / ``W_uv`` absorption and ``wo`` run on all B rows at once (each
        weight read once per step); only the attention over each sequence's own cache loops.
        """
        b = x.shape[0]
        q_nope, q_pe, rows = self.project(x, cos, sin)
        q_lat = torch.einsum("thd,hdc->thc", q_nope, self.w_uk)  # [B, H, kv_rank]
        o_lat = [self._attend_latent(q_lat[j : j + 1], q_pe[j : j + 1], cache.write(layer, rows[j : j + 1]), None)
                 for j, cache in enumerate(caches)]
        out = torch.einsum("thc,hvc->thv", torch.cat(o_lat), self.w_uv)  # [B, H, v]
        return linear(out.reshape(b, self.n_heads * self.v_dim), self.w["wo"], self.w.get("wo_bias"))

    def _softmax(self, scores: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        scores = scores * self.scale
        if mask is not None:
            scores = scores + mask
        return torch.softmax(scores, dim=-1, dtype=torch.float32).to(scores.dtype)

    def _expand(self, c: torch.Tensor, pe: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Latents ``c`` [..., S, kv_rank] and rope keys ``pe`` [..., S, rope] -> per-head
        k [..., S, H, qk] and v [..., S, H, v] through ``kv_b_proj``."""
        kv = linear(c, self.w["wkv_b"]).unflatten(-1, (self.n_heads, self.nope + self.v_dim))
        k_pe = pe.unsqueeze(-2).expand(*pe.shape[:-1], self.n_heads, self.rope_dim)
        return torch.cat([kv[..., : self.nope], k_pe], dim=-1), kv[..., self.nope :]

    def _expanded(self, q_nope, q_pe, c_all, pe_all, allowed, causal: bool) -> torch.Tensor:
        """Expand latents to per-head k [S, H, qk] and v [S, H, v]; returns [T, H, v].

        Runs through ``scaled_dot_product_attention`` (its CPU flash kernel never materialises the
        [H, T, S] scores: 1 GB per layer for a 4k prompt); ``causal`` when the prompt starts an
        empty cache, else the explicit ``allowed`` mask (a continuation over a cached prefix)."""
        k, v = self._expand(c_all, pe_all)
        q = torch.cat([q_nope, q_pe], dim=-1)
        is_causal = causal and allowed is not None
        out = sdpa(
            q.transpose(0, 1)[None], k.transpose(0, 1)[None], v.transpose(0, 1)[None],
            attn_mask=None if is_causal else allowed, is_causal=is_causal, scale=self.scale)
        return out[0].transpose(0, 1)  # [T, H, v]

    def forward_train(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, batch: int) -> torch.Tensor:
        """Full sequences without a cache, differentiable (training): ``x`` [B * T, dim] holds B
        sequences of T tokens each (right-padded), cos/sin [B * T, rope_dim // 2]; causal attention
        inside each sequence, expanded as in prefill. Returns [B * T, dim]."""
        n = x.shape[0]
        q_nope, q_pe, rows = self.project(x, cos, sin)
        rows = rows.view(batch, n // batch, -1)
        k, v = self._expand(rows[..., : self.kv_rank], rows[..., self.kv_rank :])  # [B, T, H, *]
        q = torch.cat([q_nope, q_pe], dim=-1).view(batch, n // batch, self.n_heads, -1)
        out = sdpa(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                   is_causal=True, scale=self.scale)  # [B, H, T, v]
        return linear(out.transpose(1, 2).reshape(n, self.n_heads * self.v_dim), self.w["wo"], self.w.get("wo_bias"))

    def _absorbed(self, q_nope, q_pe, latent, mask) -> torch.Tensor:
        """Attend over latents: q_nope @ W_uk -> [T, H, kv_rank]; output @ W_uv -> [T, H, v]."""
        q_lat = torch.einsum("thd,hdc->thc", q_nope, self.w_uk)
        return torch.einsum("thc,hvc->thv", self._attend_latent(q_lat, q_pe, latent, mask), self.w_uv)

    def _attend_latent(self, q_lat, q_pe, latent, mask) -> torch.Tensor:
        """``q_lat`` [T, H, kv_rank] and ``q_pe`` [T, H, rope] against the cached rows ``latent``
        [S, kv_rank + rope] -> ``o_lat`` [T, H, kv_rank].

        The query is concatenated to the latent's own layout so the scores are one matmul over the
        cache rows as stored, and the output another over their ``c_kv`` columns (a strided view
        BLAS reads in place): per-part einsums copied the 4k-token cache twice per layer per step."""
        t, h = q_lat.shape[:2]
        s = latent.shape[0]
        q = torch.cat([q_lat, q_pe], dim=-1).reshape(t * h, -1)
        if t == 1 and mask is None and q.dtype == latent.dtype == torch.float32 and latent.device.type == "cpu" \
                and kernels.available():
            # One pass over the cache with an online softmax (kernels.mla_decode): at 4k tokens the
            # two matmuls below cost ~2 ms a layer, about 0.9 ms in one pass.
            return kernels.mla_decode(q, latent, self.kv_rank, self.scale).view(1, h, self.kv_rank)
        scores = torch.matmul(q, latent.T).view(t, h, s)
        probs = self._softmax(scores, None if mask is None else mask[:, None, :])
        return torch.matmul(probs.view(t * h, s), latent[:, : self.kv_rank]).view(t, h, self.kv_rank)
