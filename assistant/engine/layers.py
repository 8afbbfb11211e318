"""Small building blocks: RMSNorm and the fused gate+up SwiGLU MLP.

Does: RMSNorm computed in fp32 (as transformers does) and a SwiGLU MLP whose gate and up
projections are one fused matrix, used for dense layers and shared experts.

``linear(x, w, bias)`` is ``F.linear`` for a float weight tensor and ``w(x) + bias`` for a module
weight (``quant.QuantLinear`` after ``quantize_model``), so callers work with either. In bf16
training on the CPU it pads the rows to one of a few sizes (``row_bucket``; see ``_pads_rows``).

Does not: hold routed experts (see ``moe``) or implement quantised matmuls (see ``quant``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import kernels
from .quant import GEMV_ROWS


def linear(x: torch.Tensor, w, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(x, w, bias)`` for a tensor ``w``; for a module (``QuantLinear``) ``w(x) + bias``.

    Decode-sized fp32 products on the CPU (``x`` of at most ``GEMV_ROWS`` rows) go to our gemv
    kernel when it built here: batch-1 decode is nothing but these, and it streams the weight
    closer to copy bandwidth than the BLAS gemv does."""
    if isinstance(w, torch.Tensor):
        if (x.dim() == 2 and x.shape[0] <= GEMV_ROWS and w.dtype == x.dtype == torch.float32
                and w.device.type == "cpu" and w.is_contiguous() and not (x.requires_grad or w.requires_grad)
                and kernels.available()):  # the C kernel has no backward
            y = kernels.f32_gemv(x, w)
            return y if bias is None else y + bias
        if _pads_rows(x, w):
            m = x.shape[0]
            return F.linear(F.pad(x, (0, 0, 0, row_bucket(m) - m)), w, bias)[:m]
        return F.linear(x, w, bias)
    y = w(x)
    return y if bias is None else y + bias.to(y.dtype)


def row_bucket(m: int) -> int:
    """``m`` rounded up to a multiple of 2^(bits(m - 1) - 4), at least 8: eight sizes an octave, each
    at most 1/8 above ``m`` (1,000 -> 1,024; 1,025 -> 1,152)."""
    unit = 1 << max(3, (m - 1).bit_length() - 4)
    return -(-m // unit) * unit


def _pads_rows(x: torch.Tensor, w: torch.Tensor) -> bool:
    """A bf16 product under autograd on the CPU. Why pad: oneDNN builds (JIT-compiles) a kernel for
    every new matmul shape and caches it by shape, ~7 ms at training's sizes against ~1.6 ms for the
    product itself, and training's row counts change every step (a batch's padded length, the tokens
    each expert got, the assistant positions that reach the ``lm_head``). Bucketed, the shapes repeat
    and the cache hits: a CPU training step took ~0.55 s instead of 0.92 s (bf16 autocast, 2 threads).
    Serving is left alone: its default fp32 products go to MKL, and decode's few rows would be padded many times over."""
    return (x.dim() == 2 and x.device.type == "cpu" and torch.is_grad_enabled()
            and (x.requires_grad or w.requires_grad)
            and (torch.is_autocast_enabled("cpu") or x.dtype == torch.bfloat16))


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """``x`` [..., dim] -> [..., dim]; normalises in fp32, multiplies by ``weight`` [dim]."""
    dtype = x.dtype
    h = x.float()
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return weight * h.to(dtype)


class FusedMLP:
    """SwiGLU MLP: ``down(silu(gate(x)) * up(x))``.

    Shapes: ``w13`` [2 * inter, dim] (gate rows then up rows), ``w2`` [dim, inter];
    ``forward(x [T, dim]) -> [T, dim]``.
    """

    def __init__(self, w13: torch.Tensor, w2: torch.Tensor):
        self.w13 = w13
        self.w2 = w2
        self.inter = w2.shape[1] if isinstance(w2, torch.Tensor) else w2.in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = linear(x, self.w13)
        gate, up = h[:, : self.inter], h[:, self.inter :]
        return linear(F.silu(gate) * up, self.w2)
