"""Weight-only int8 / int4 quantisation for the engine's linear layers and stacked experts.

Does: symmetric round-to-nearest quantisation of ``[*, out, in]`` weights: ``int8`` with one
fp32 scale per output row (amax/127, q in [-127, 127]); ``int4`` with one per output row and
group of ``group_size`` input columns (amax/7, q in [-8, 7], ``in`` zero-padded to a multiple).
``.kernel`` on ``QuantLinear`` / ``QuantExperts`` names the matmul. "auto" takes ``avx2`` -- our
own gemv (``kernels.py``) for up to ``GEMV_ROWS`` rows, dequantise + matmul beyond -- when it
compiled here, else the first fast torch one a one-off probe finds working: ``int8pack_mm``
(``torch._weight_int8pack_mm``), ``int4pack_mm_cpu`` (``aten._weight_int4pack_mm_for_cpu``), both
fed ``compute_dtype`` (bf16: their fp32 paths are 5-10x slower) activations, so ~0.5% off the ``dequant`` fallback (512-row
chunks, ``F.linear``, any dtype/shape); opt-in ``fbgemm_w8a8`` (int8 only) also quantises
activations per tensor (uint8, fbgemm): fastest here but ~2x the error, not weight-only.
The int4 kernel keeps only its packed form (0.5 byte/weight); ``quant_weight()`` rebuilds ours.
Doesn't: choose what to quantise (``quantize_model`` does, for a loaded model; ``quant_checkpoint``
for one on disk), FP8 block-scaled weights (dequantise first), or GPU; quantised modules hold plain
tensors, so use ``to_tensors``, not state_dict.

On-disk format (safetensors, written once by ``engine quantize``): each quantised
``<name>.weight`` ``[*, out, in]`` (``*``: optional expert axis) becomes ``<name>.qweight`` --
int8 ``[*, out, in]``, or for int4 uint8 ``[*, out, in_pad // 2]`` with byte j = (q[2j] + 8) |
(q[2j+1] + 8) << 4, in_pad = ceil(in / group_size) * group_size, padding q = 0 -- and
``<name>.scales``, fp32 ``[*, out]`` (int8) or ``[*, out, in_pad // group_size]`` (int4), with
``w = q * scale`` exactly in fp32. Other tensors (biases included) are stored unchanged.
``config.json`` gains ``"quant_config": {"mode": "int8"|"int4", "group_size": 0|G}`` (0: per row).
"""

import functools
import math
import warnings
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

MODES = ("int8", "int4")
KERNELS = {"int8": ("avx2", "int8pack_mm", "fbgemm_w8a8", "dequant"), "int4": ("avx2", "int4pack_mm_cpu", "dequant")}
GEMV_ROWS = 16  # up to this many activation rows (decode) use our gemv kernel; more use dequant + matmul
_CHUNK_ROWS = 512  # fallback dequantises this many rows at a time


@dataclass
class QuantWeight:
    """Canonical quantised weight; shapes in the module docstring. Index ``q[e]`` for expert e."""
    mode: str
    qweight: torch.Tensor
    scales: torch.Tensor
    in_features: int
    group_size: int = 0

    @property
    def out_features(self) -> int:
        return self.qweight.shape[-2]

    def __getitem__(self, i) -> "QuantWeight":
        return QuantWeight(self.mode, self.qweight[i], self.scales[i], self.in_features, self.group_size)

    def to_tensors(self, prefix: str) -> dict[str, torch.Tensor]:
        return {f"{prefix}.qweight": self.qweight.contiguous(), f"{prefix}.scales": self.scales.contiguous()}

    @classmethod
    def from_tensors(cls, tensors, prefix: str, config: dict, in_features: int | None = None) -> "QuantWeight":
        """Inverse of ``to_tensors``; ``in_features`` defaults to ``in_pad`` (pass it if padded)."""
        mode, g = config["mode"], int(config.get("group_size") or 0)
        qw, sc = tensors[f"{prefix}.qweight"], tensors[f"{prefix}.scales"]
        k = qw.shape[-1] * (1 if mode == "int8" else 2)
        want = (torch.int8, qw.shape[:-1]) if mode == "int8" else (torch.uint8, (*qw.shape[:-1], k // max(g, 1)))
        if mode not in MODES or (qw.dtype, sc.shape) != want or sc.dtype != torch.float32 or g < (mode == "int4"):
            raise ValueError(f"{prefix}: bad {mode} tensors {qw.dtype}{tuple(qw.shape)} / {sc.dtype}{tuple(sc.shape)}")
        return cls(mode, qw, sc, in_features or k, g)

    @classmethod
    def infer(cls, qweight: torch.Tensor, scales: torch.Tensor, in_features: int, name: str) -> "QuantWeight":
        """Tensors read from a checkpoint, mode from the dtype (int8 / uint8 = int4), group size from
        the shapes; ``in_features`` (the true K) comes from the model config. Raises ``ValueError``."""
        if qweight.dtype == torch.int8:
            mode, g, k_store = "int8", 0, in_features
        elif qweight.dtype == torch.uint8 and scales.dim() >= 2 and scales.shape[-1]:
            mode, g = "int4", qweight.shape[-1] * 2 // scales.shape[-1]
            k_store = math.ceil(in_features / max(g, 1)) * g // 2
        else:
            raise ValueError(f"{name}: quantised weight has dtype {qweight.dtype}; expected int8 or uint8 (int4)")
        if qweight.shape[-1] != k_store:
            raise ValueError(f"{name}: qweight {tuple(qweight.shape)} does not fit in_features {in_features} "
                             f"({mode}{f', group {g}' if g else ''})")
        return cls.from_tensors({f"{name}.qweight": qweight, f"{name}.scales": scales}, name,
                                {"mode": mode, "group_size": g}, in_features)

    @classmethod
    def cat_rows(cls, parts: list["QuantWeight"]) -> "QuantWeight":
        """Stack output rows of same-mode, same-``in`` weights (e.g. gate and up into one w13)."""
        q0 = parts[0]
        scale_dim = -1 if q0.mode == "int8" else -2
        return cls(q0.mode, torch.cat([p.qweight for p in parts], -2), torch.cat([p.scales for p in parts], scale_dim),
                   q0.in_features, q0.group_size)

    @classmethod
    def stack(cls, parts: list["QuantWeight"]) -> "QuantWeight":
        """Per-expert weights -> one ``[E, out, in]`` weight."""
        q0 = parts[0]
        return cls(q0.mode, torch.stack([p.qweight for p in parts]), torch.stack([p.scales for p in parts]),
                   q0.in_features, q0.group_size)


def quantize_int8(w: torch.Tensor) -> QuantWeight:
    """``w`` float ``[*, out, in]`` -> per-row int8 ``QuantWeight`` (|error| <= row amax / 254)."""
    wf = w.detach().float()
    s = wf.abs().amax(-1) / 127.0  # all-zero rows keep scale 0 and q 0 (clamp avoids 0/0)
    q = torch.round(wf / s.clamp_min(1e-30)[..., None]).clamp_(-127, 127).to(torch.int8)
    return QuantWeight("int8", q, s, w.shape[-1], 0)


def quantize_int4(w: torch.Tensor, group_size: int = 128) -> QuantWeight:
    """``w`` float ``[*, out, in]`` -> grouped int4 ``QuantWeight`` (|error| <= group amax / 14)."""
    if group_size <= 0 or group_size % 2:
        raise ValueError(f"int4 group_size must be a positive even number, got {group_size}")
    k, kp = w.shape[-1], math.ceil(w.shape[-1] / group_size) * group_size
    wg = F.pad(w.detach().float(), (0, kp - k)).reshape(*w.shape[:-1], kp // group_size, group_size)
    s = wg.abs().amax(-1) / 7.0
    u = (torch.round(wg / s.clamp_min(1e-30)[..., None]).clamp_(-8, 7) + 8).to(torch.uint8).flatten(-2)
    return QuantWeight("int4", u[..., 0::2] | (u[..., 1::2] << 4), s, k, group_size)


def quantize(w: torch.Tensor, mode: str, group_size: int | None = None) -> QuantWeight:
    if mode not in MODES:
        raise ValueError(f"unknown quant mode {mode!r}; expected one of {MODES}")
    return quantize_int8(w) if mode == "int8" else quantize_int4(w, group_size or 128)


def _int4_values(qweight: torch.Tensor) -> torch.Tensor:
    """uint8 ``[*, out, in_pad // 2]`` -> int16 q in [-8, 7], ``[*, out, in_pad]``."""
    return torch.stack([qweight & 15, qweight >> 4], -1).to(torch.int16).reshape(*qweight.shape[:-1], -1) - 8


def dequantize(q: QuantWeight, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``QuantWeight`` -> ``[*, out, in]`` tensor equal to ``q * scale`` (computed in fp32)."""
    if q.mode == "int8":
        return (q.qweight.float() * q.scales[..., None]).to(dtype)
    v = _int4_values(q.qweight).float()
    v = v.reshape(*v.shape[:-1], -1, q.group_size) * q.scales[..., None]
    return v.reshape(*v.shape[:-2], -1)[..., : q.in_features].to(dtype)


def _int4_pack_cpu(q2: QuantWeight, dtype=torch.bfloat16) -> tuple[torch.Tensor, torch.Tensor]:
    """2-D int4 -> (packed uint8 ``[n_pad, in_pad // 2]``, scale+zero ``[G, n_pad, 2]``), n_pad % 32 == 0."""
    n, n_pad = q2.out_features, math.ceil(q2.out_features / 32) * 32
    u = F.pad((_int4_values(q2.qweight) + 8).to(torch.int32), (0, 0, 0, n_pad - n), value=8)
    s = F.pad(q2.scales, (0, 0, 0, n_pad - n)).T
    return torch._convert_weight_to_int4pack_for_cpu(u.contiguous(), 2), torch.stack([s, 0 * s], -1).to(dtype)


def _int4_unpack_cpu(packed: torch.Tensor, n: int) -> torch.Tensor:
    """Packed -> our qweight. CPU layout: 32-row blocks of [in_pad, 16] bytes, row r low, r+16 high."""
    n_pad, k = packed.shape[0], packed.shape[1] * 2
    p = packed.reshape(n_pad // 32, k, 16)
    u = torch.cat([p & 15, p >> 4], -1).permute(0, 2, 1).reshape(n_pad, k)[:n]
    return u[:, 0::2] | (u[:, 1::2] << 4)


@functools.lru_cache(maxsize=None)
def available_kernels() -> tuple[str, ...]:
    """Fast kernels that exist here and match the reference on a probe (checked once)."""
    found, g = [], torch.Generator().manual_seed(0)
    w, x = torch.randn(48, 256, generator=g), torch.randn(3, 256, generator=g).bfloat16()
    for mode, name in (("int8", "int8pack_mm"), ("int4", "int4pack_mm_cpu"), ("int8", "fbgemm_w8a8")):
        try:
            q = quantize(w, mode, 64)
            ref, y = F.linear(x.float(), dequantize(q)), _QuantOp(q, name).mm(x.float())
            exact = mode == "int8" or torch.equal(_int4_unpack_cpu(_int4_pack_cpu(q)[0], 48), q.qweight)
            if exact and (y - ref).abs().max() <= 0.05 * ref.abs().max():
                found.append(name)
        except Exception:  # missing op or unsupported build: use the fallback
            pass
    return tuple(found)


def choose_kernel(mode: str, kernel: str = "auto", group_size: int = 0) -> str:
    if kernel != "auto":
        return kernel
    from . import kernels

    if kernels.available() and (mode == "int8" or group_size % 32 == 0):
        return "avx2"
    fast = "int8pack_mm" if mode == "int8" else "int4pack_mm_cpu"
    return fast if fast in available_kernels() and (mode == "int8" or group_size in (32, 64, 128, 256)) else "dequant"


def _chunked_linear(x: torch.Tensor, q: QuantWeight, expand) -> torch.Tensor:
    """``x`` [M, in] @ ``expand(rows)``.T, ``_CHUNK_ROWS`` output rows of ``q`` at a time (an expanded
    chunk stays in cache for the matmul); ``expand`` maps a 2-D ``QuantWeight`` to a float tensor."""
    return torch.cat([F.linear(x, expand(q[r : r + _CHUNK_ROWS]).to(x.dtype))
                      for r in range(0, q.out_features, _CHUNK_ROWS)], -1)


class _QuantOp(nn.Module):
    """A 2-D ``[out, in]`` or stacked ``[E, out, in]`` weight in the runtime form of one kernel."""

    def __init__(self, q: QuantWeight, kernel: str = "auto", compute_dtype: torch.dtype = torch.bfloat16):
        super().__init__()
        self.kernel, self.cd = choose_kernel(q.mode, kernel, q.group_size), compute_dtype
        self.mode, self.group_size, self.in_features = q.mode, q.group_size, q.in_features
        self.out_features, self.scales, self.q = q.out_features, q.scales, None
        if self.kernel not in KERNELS[q.mode]:
            raise ValueError(f"kernel {self.kernel!r} does not run {q.mode}; choose from {KERNELS[q.mode]}")
        flat = [q] if q.qweight.dim() == 2 else [q[e] for e in range(q.qweight.shape[0])]
        if self.kernel == "int8pack_mm":  # the op misbehaves unless in % 8 == 0: pad to 32
            self.k_pad = math.ceil(q.in_features / 32) * 32
            self.qw = F.pad(q.qweight, (0, self.k_pad - q.in_features)).contiguous()
            self.sc = q.scales.to(compute_dtype).contiguous()
        elif self.kernel == "fbgemm_w8a8":  # opt-in: also quantises activations (uint8, per tensor)
            zeros = torch.zeros(q.scales.shape[-1], dtype=torch.long)
            with warnings.catch_warnings():  # quantized tensors are deprecated in torch
                warnings.simplefilter("ignore")
                self.qw = [torch.ops.quantized.linear_prepack(torch._make_per_channel_quantized_tensor(
                    f.qweight, f.scales.double(), zeros, 0), None) for f in flat]
        elif self.kernel == "int4pack_mm_cpu":
            packed, sz = zip(*(_int4_pack_cpu(x, compute_dtype) for x in flat))
            self.qw, self.sz = torch.stack(packed), torch.stack(sz)  # [E|1, n_pad, in_pad/2], [E|1, G, n_pad, 2]
            self.k_pad = self.qw.shape[-1] * 2
        else:  # "avx2" (decode rows; prefill dequantises) and "dequant" read the canonical form
            self.q = QuantWeight(q.mode, q.qweight.contiguous(), q.scales.contiguous(), q.in_features, q.group_size)

    @property
    def nbytes(self) -> int:
        """Bytes of the runtime form the kernel reads (all experts, if stacked)."""
        size = lambda *ts: sum(t.numel() * t.element_size() for t in ts)  # noqa: E731
        if self.kernel == "int8pack_mm":
            return size(self.qw, self.sc)
        if self.kernel == "int4pack_mm_cpu":
            return size(self.qw, self.sz)
        if self.kernel == "fbgemm_w8a8":
            return self.scales.numel() * (self.in_features + 4)
        return size(self.q.qweight, self.q.scales)

    def quant_weight(self) -> QuantWeight:
        if self.q is not None:
            return self.q
        if self.kernel == "int8pack_mm":
            return QuantWeight("int8", self.qw[..., : self.in_features], self.scales, self.in_features, 0)
        if self.kernel == "fbgemm_w8a8":
            qw = torch.stack([torch.ops.quantized.linear_unpack(p)[0].int_repr() for p in self.qw])
            return QuantWeight("int8", qw.reshape(*self.scales.shape, -1), self.scales, self.in_features, 0)
        qw = torch.stack([_int4_unpack_cpu(p, self.out_features) for p in self.qw]).reshape(*self.scales.shape[:-1], -1)
        return QuantWeight("int4", qw, self.scales, self.in_features, self.group_size)

    def mm(self, x: torch.Tensor, e: int | None = None) -> torch.Tensor:
        """``x`` ``[M, in]`` -> ``[M, out]`` in ``x.dtype``; ``e`` selects the expert if stacked."""
        q = self.q if e is None or self.q is None else self.q[e]
        if self.kernel == "avx2":
            from . import kernels

            if x.shape[0] > GEMV_ROWS:  # prefill: our one-pass expansion, then the BLAS
                return _chunked_linear(x, q, lambda c: kernels.dequant(c.qweight, c.scales, c.group_size, c.in_features))
            if q.mode == "int8":
                return kernels.int8_gemv(x, q.qweight, q.scales).to(x.dtype)
            return kernels.int4_gemv(x, q.qweight, q.scales, q.group_size, q.in_features).to(x.dtype)
        if self.kernel == "fbgemm_w8a8":
            return torch.ops.quantized.linear_dynamic(x.float().contiguous(), self.qw[e or 0], True).to(x.dtype)
        if self.kernel not in ("dequant", "avx2"):
            xp = F.pad(x.to(self.cd), (0, self.k_pad - self.in_features)).contiguous()
        if self.kernel == "int8pack_mm":
            qw, sc = (self.qw, self.sc) if e is None else (self.qw[e], self.sc[e])
            return torch._weight_int8pack_mm(xp, qw, sc).to(x.dtype)
        if self.kernel == "int4pack_mm_cpu":
            y = torch.ops.aten._weight_int4pack_mm_for_cpu(xp, self.qw[e or 0], self.group_size, self.sz[e or 0])
            return y[:, : self.out_features].to(x.dtype)
        return _chunked_linear(x, q, dequantize)


class QuantLinear(_QuantOp):
    """Drop-in ``nn.Linear`` replacement: ``forward(x [..., in]) -> [..., out]`` (x.dtype)."""

    def __init__(self, q: QuantWeight, bias: torch.Tensor | None = None, kernel="auto", compute_dtype=torch.bfloat16):
        if q.qweight.dim() != 2:
            raise ValueError("QuantLinear takes a 2-D weight; use QuantExperts for stacked ones")
        super().__init__(q, kernel, compute_dtype)
        self.bias = None if bias is None else bias.detach().float()

    @classmethod
    def from_linear(cls, linear: nn.Linear, mode: str, group_size: int | None = None, kernel: str = "auto"):
        return cls(quantize(linear.weight, mode, group_size), linear.bias, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.mm(x.reshape(-1, x.shape[-1])).reshape(*x.shape[:-1], self.out_features)
        return y if self.bias is None else y + self.bias.to(y.dtype)

    def to_tensors(self, prefix: str) -> dict[str, torch.Tensor]:
        out = self.quant_weight().to_tensors(prefix)
        return out if self.bias is None else {**out, f"{prefix}.bias": self.bias}


class QuantExperts(_QuantOp):
    """Stacked experts ``[E, out, in]`` (for MoE: ``matmul(x [T, in], e) -> [T, out]`` ~= ``F.linear(x,
    w13[e])``, reading only expert e's bytes). Build from ``quantize(w3d, mode)`` or ``from_tensors`` of
    per-expert ``qweight``/``scales`` ``torch.stack``-ed on dim 0; ``quant_weight().to_tensors`` saves."""

    def __init__(self, q: QuantWeight, kernel: str = "auto", compute_dtype: torch.dtype = torch.bfloat16):
        if q.qweight.dim() != 3:
            raise ValueError("QuantExperts takes a stacked [E, out, in] weight")
        super().__init__(q, kernel, compute_dtype)
        self.n_experts = q.qweight.shape[0]

    def matmul(self, x: torch.Tensor, e: int) -> torch.Tensor:
        return self.mm(x, int(e))
