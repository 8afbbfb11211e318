"""Fast CPU matrix-vector products on the engine's quantised weights, for decode.

Does: ``int8_gemv`` / ``int4_gemv`` compute ``x @ dequantize(q).T`` in fp32 straight from the
on-disk ``QuantWeight`` tensors (``quant.py``; slices ``qweight[e]`` of stacked experts too),
reading each weight row once for all activation rows, so T = 1..8 decode steps run near memory
bandwidth. The C source (``csrc/qgemv.c``, AVX2 + FMA, OpenMP over output rows) is compiled on
first use with the system C compiler into ``$LINGXI_KERNEL_CACHE`` (else
``$XDG_CACHE_HOME/lingxi/kernels`` or ``~/.cache/lingxi/kernels``), named by a hash of source and
flags, and loaded with ``ctypes`` (calls release the GIL). ``python -m assistant.engine.kernels``
prints a bandwidth micro-benchmark against memcpy and torch's own int8 / int4 kernels.
Doesn't: handle large batches well (no GEMM blocking: beyond ~16 rows use torch), other CPU
architectures (``available()`` is False without avx2/fma, a compiler, or with
``LINGXI_ENGINE_KERNELS=off``; callers fall back), autograd, or dtypes other than fp32 out.
"""

import ctypes
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

_SRC = Path(__file__).with_name("csrc") / "qgemv.c"
_FLAGS = ("-O3", "-march=x86-64-v3", "-mtune=generic", "-fopenmp", "-shared", "-fPIC", "-std=c11")
_P, _L, _I = ctypes.c_void_p, ctypes.c_long, ctypes.c_int


def _cache_dir() -> Path:
    if os.environ.get("LINGXI_KERNEL_CACHE"):
        return Path(os.environ["LINGXI_KERNEL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lingxi" / "kernels"


def _build() -> Path:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise RuntimeError("no C compiler (cc/gcc) on PATH")
    src = _SRC.read_bytes()
    tag = hashlib.sha256(src + " ".join((cc, *_FLAGS)).encode()).hexdigest()[:16]
    out = _cache_dir() / f"qgemv-{tag}.so"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)  # unique: parallel builds don't clash
    os.close(fd)
    try:
        r = subprocess.run([cc, *_FLAGS, str(_SRC), "-o", tmp], capture_output=True, text=True, timeout=120)
        if r.returncode:
            raise RuntimeError(f"compiling {_SRC.name} failed: {r.stderr.strip()[-2000:]}")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


@functools.lru_cache(maxsize=None)
def _lib() -> ctypes.CDLL | None:
    """The loaded library, or None (warned once) if it cannot be used here."""
    if os.environ.get("LINGXI_ENGINE_KERNELS", "").lower() in ("off", "0", "false", "no"):
        warnings.warn("LINGXI_ENGINE_KERNELS=off: quantised gemv kernels disabled", stacklevel=3)
        return None
    try:
        lib = ctypes.CDLL(str(_build()))
        if not lib.qgemv_cpu_ok():
            warnings.warn("CPU lacks avx2/fma: quantised gemv kernels disabled", stacklevel=3)
            return None
        lib.qgemv_int8.argtypes = [_P, _L, _L, _P, _P, _L, _P, _I]
        lib.qgemv_int4.argtypes = [_P, _L, _L, _P, _P, _L, _L, _P, _P, _I]
        lib.qgemv_int4_prep.argtypes = [_P, _L, _L, _L, _P, _P]
        lib.gemv_f32.argtypes = [_P, _L, _L, _P, _L, _P, _I]
        for f in (lib.qgemv_int8, lib.qgemv_int4, lib.qgemv_int4_prep, lib.gemv_f32):
            f.restype = None
        return lib
    except Exception as e:  # any failure means "use the torch path", never an error
        warnings.warn(f"quantised gemv kernels unavailable: {e}", stacklevel=3)
        return None


def available() -> bool:
    """True if the C kernels compiled and run here (decided once per process; never raises)."""
    return _lib() is not None


def f32_gemv(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``x`` ``[T, K]`` @ fp32 ``weight`` ``[N, K]``.T -> fp32 ``[T, N]`` (``F.linear`` without bias)."""
    x = x.contiguous().float()
    (t, k), n = x.shape, weight.shape[0]
    if weight.shape != (n, k) or weight.dtype != torch.float32 or not weight.is_contiguous():
        raise ValueError(f"f32_gemv: weight {weight.dtype}{tuple(weight.shape)} vs x {tuple(x.shape)}")
    y = torch.empty(t, n)
    _lib().gemv_f32(x.data_ptr(), t, k, weight.data_ptr(), n, y.data_ptr(), torch.get_num_threads())
    return y


def int8_gemv(x: torch.Tensor, qweight: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """``x`` ``[T, K]`` @ (int8 ``qweight`` ``[N, K]`` * ``scales`` ``[N, 1]``).T -> fp32 ``[T, N]``."""
    x = x.contiguous().float()
    (t, k), n = x.shape, qweight.shape[0]
    if qweight.shape != (n, k) or qweight.dtype != torch.int8 or not qweight.is_contiguous():
        raise ValueError(f"int8_gemv: qweight {qweight.dtype}{tuple(qweight.shape)} vs x {tuple(x.shape)}")
    if scales.shape != (n,) or scales.dtype != torch.float32 or not scales.is_contiguous():
        raise ValueError(f"int8_gemv: scales {scales.dtype}{tuple(scales.shape)}, want float32 ({n},)")
    y = torch.empty(t, n)
    _lib().qgemv_int8(x.data_ptr(), t, k, qweight.data_ptr(), scales.data_ptr(), n, y.data_ptr(),
                      torch.get_num_threads())
    return y


def int4_gemv(x: torch.Tensor, qweight: torch.Tensor, scales: torch.Tensor, group_size: int,
              in_features: int) -> torch.Tensor:
    """``x`` ``[T, in_features]`` @ dequantised int4 ``qweight`` ``[N, K_pad // 2]``.T -> fp32 ``[T, N]``."""
    n, kp, g = qweight.shape[0], qweight.shape[-1] * 2, group_size
    if (qweight.dim() != 2 or qweight.dtype != torch.uint8 or not qweight.is_contiguous() or g <= 0
            or g % 2 or kp % g or not 0 < in_features <= kp or x.shape[-1] != in_features):
        raise ValueError(f"int4_gemv: qweight {qweight.dtype}{tuple(qweight.shape)}, G={g}, "
                         f"in_features={in_features}, x {tuple(x.shape)}")
    if scales.shape != (n, kp // g) or scales.dtype != torch.float32 or not scales.is_contiguous():
        raise ValueError(f"int4_gemv: scales {scales.dtype}{tuple(scales.shape)}, want float32 ({n}, {kp // g})")
    x = x.float()
    if in_features < kp:
        x = F.pad(x, (0, kp - in_features))
    x, t, lib = x.contiguous(), x.shape[0], _lib()
    sx = None
    if g % 32 == 0:  # the fast path reads x in nibble order, plus per-group sums (see qgemv.c)
        buf = torch.empty(t * kp + t * (kp // g))
        lib.qgemv_int4_prep(x.data_ptr(), t, kp, g, buf.data_ptr(), buf.data_ptr() + 4 * t * kp)
        x, sx = buf, buf.data_ptr() + 4 * t * kp
    y = torch.empty(t, n)
    lib.qgemv_int4(x.data_ptr(), t, kp, qweight.data_ptr(), scales.data_ptr(), n, g, sx, y.data_ptr(),
                   torch.get_num_threads())
    return y


def _best(fn, reps: int) -> float:
    fn()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench(total_mb: int = 320, reps: int = 5, group_size: int = 128) -> dict:
    """Weight-read GB/s of our kernels vs memcpy and torch's int8/int4 kernels (T = 1 and 4).

    Decode-like: cycles through enough copies of an expert pair ([2816, 2048] + [2048, 1408])
    and of an [8192, 2048] matrix to exceed the L3 (torch: a third as many, still > L3).
    Returns {name: GB/s}; prints a table.
    """
    from assistant.engine.quant import QuantLinear, quantize

    if not available():
        raise RuntimeError("kernels unavailable")
    a, b = torch.ones(1 << 28), torch.empty(1 << 28)  # 1 GiB each
    res = {"memcpy": 2 * a.nbytes / _best(lambda: b.copy_(a), reps) / 1e9}
    g = torch.Generator().manual_seed(0)
    shapes = {"experts": ((2816, 2048), (2048, 1408)), "8192x2048": ((8192, 2048),)}
    for mode in ("int8", "int4"):
        for label, shp in shapes.items():
            base = [torch.randn(*s, generator=g) * 0.02 for s in shp]
            pair_mb = sum(s[0] * s[1] for s in shp) * (1 if mode == "int8" else 0.5) / 1e6
            copies = max(1, int(total_mb / pair_mb))  # always exceed the L3
            qs = [quantize(w, mode, group_size) for w in base]
            qs = [[type(q)(q.mode, q.qweight.clone(), q.scales.clone(), q.in_features, q.group_size)
                   for q in qs] for _ in range(copies)]
            nbytes = sum(q.qweight.nbytes + q.scales.nbytes for c in qs for q in c)
            for t in (1, 4):
                xs = [torch.randn(t, s[1], generator=g) for s in shp]
                if mode == "int8":
                    ours = lambda: [int8_gemv(x, q.qweight, q.scales) for c in qs for x, q in zip(xs, c)]
                else:
                    ours = lambda: [int4_gemv(x, q.qweight, q.scales, q.group_size, q.in_features)
                                    for c in qs for x, q in zip(xs, c)]
                res[f"{mode} {label} T={t}"] = nbytes / _best(ours, reps) / 1e9
                torch_kernel = "int8pack_mm" if mode == "int8" else "int4pack_mm_cpu"
                ref = [[QuantLinear(q, None, torch_kernel) for q in c] for c in qs[: max(1, copies // 3)]]
                tb = sum(q.qweight.nbytes + q.scales.nbytes for c in qs[: len(ref)] for q in c)
                theirs = lambda: [m(x) for c in ref for x, m in zip(xs, c)]
                res[f"{mode} {label} T={t} torch:{ref[0][0].kernel}"] = tb / _best(theirs, reps) / 1e9
    mc = res["memcpy"]
    print(f"{'case':44s} {'GB/s':>7s} {'/memcpy':>8s} {'ours/torch':>10s}")
    for k, v in res.items():
        ratio = "" if "torch" in k or k == "memcpy" else next(
            (f"{v / w:10.2f}" for kk, w in res.items() if kk.startswith(k + " torch")), "")
        print(f"{k:44s} {v:7.1f} {v / mc:8.2f} {ratio}")
    return res


if __name__ == "__main__":
    print(f"threads={torch.get_num_threads()}")
    bench()
