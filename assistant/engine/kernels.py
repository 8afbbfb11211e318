"""Fast CPU matrix-vector products on the engine's quantised weights, for decode.

Does: ``int8_gemv`` / ``int4_gemv`` compute ``x @ dequantize(q).T`` in fp32 straight from the
on-disk ``QuantWeight`` tensors (``quant.py``; slices ``qweight[e]`` of stacked experts too),
reading each weight row once for all activation rows, so T = 1..8 decode steps run near memory
bandwidth. ``mla_decode`` is absorbed MLA attention for one decode token over the cached latent rows
(``csrc/mla_decode.c``: one pass, online softmax per thread chunk). The C sources (``csrc/qgemv.c``
and ``csrc/mla_decode.c``, AVX2 + FMA, OpenMP) are compiled on first use into one library with the
system C compiler into ``$LINGXI_KERNEL_CACHE`` (else
``$XDG_CACHE_HOME/lingxi/kernels`` or ``~/.cache/lingxi/kernels``), named by a hash of sources and
flags, and loaded with ``ctypes`` (calls release the GIL). ``python -m assistant.engine.kernels``
prints a bandwidth micro-benchmark against memcpy and torch's own int8 / int4 kernels, then
``bench_mla`` (``... kernels mla``: that one only).
``dequant`` expands int8 / int4 rows to fp32 in one streaming pass, so prefill (many rows) can hand
them to the BLAS GEMM a chunk at a time.
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

_SRCS = tuple(Path(__file__).with_name("csrc") / n for n in ("qgemv.c", "mla_decode.c"))
_FLAGS = ("-O3", "-march=x86-64-v3", "-mtune=generic", "-fopenmp", "-shared", "-fPIC", "-std=c11")
_LIBS = ("-lm",)  # after the sources, so the linker keeps them
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
    src = b"".join(p.name.encode() + b"\0" + p.read_bytes() for p in _SRCS)
    tag = hashlib.sha256(src + " ".join((cc, *_FLAGS, *_LIBS)).encode()).hexdigest()[:16]
    out = _cache_dir() / f"qgemv-{tag}.so"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)  # unique: parallel builds don't clash
    os.close(fd)
    try:
        r = subprocess.run([cc, *_FLAGS, *map(str, _SRCS), "-o", tmp, *_LIBS], capture_output=True, text=True,
                           timeout=120)
        if r.returncode:
            names = " + ".join(p.name for p in _SRCS)
            raise RuntimeError(f"compiling {names} failed: {r.stderr.strip()[-2000:]}")
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
        lib.dequant_int8.argtypes = [_P, _P, _L, _L, _P, _I]
        lib.dequant_int4.argtypes = [_P, _P, _L, _L, _L, _L, _P, _I]
        lib.mla_decode_f32.argtypes = [_P, _L, _L, _P, _L, _L, _L, ctypes.c_float, _P, _I]
        for f in (lib.qgemv_int8, lib.qgemv_int4, lib.qgemv_int4_prep, lib.gemv_f32, lib.dequant_int8, lib.dequant_int4, lib.mla_decode_f32):
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


def dequant(qweight: torch.Tensor, scales: torch.Tensor, group_size: int, in_features: int) -> torch.Tensor:
    """int8 ``[N, K]`` or int4 ``[N, K_pad // 2]`` rows (contiguous, as in ``quant.py``) -> fp32
    ``[N, in_features]``, equal to ``quant.dequantize``; for handing prefill products to the BLAS."""
    n, lib = qweight.shape[0], _lib()
    if qweight.dim() != 2 or not qweight.is_contiguous() or not scales.is_contiguous() or scales.dtype != torch.float32:
        raise ValueError(f"dequant: qweight {qweight.dtype}{tuple(qweight.shape)}, scales {tuple(scales.shape)}")
    out = torch.empty(n, in_features)
    if qweight.dtype == torch.int8 and qweight.shape[1] == in_features and scales.shape == (n,):
        lib.dequant_int8(qweight.data_ptr(), scales.data_ptr(), n, in_features, out.data_ptr(), torch.get_num_threads())
        return out
    kp = qweight.shape[1] * 2
    if qweight.dtype != torch.uint8 or group_size <= 0 or kp % group_size or scales.shape != (n, kp // group_size) \
            or not 0 < in_features <= kp:
        raise ValueError(f"dequant: int4 qweight {tuple(qweight.shape)}, scales {tuple(scales.shape)}, "
                         f"G={group_size}, in_features={in_features}")
    lib.dequant_int4(qweight.data_ptr(), scales.data_ptr(), n, kp, group_size, in_features, out.data_ptr(),
                     torch.get_num_threads())
    return out


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


def mla_decode(q: torch.Tensor, latent: torch.Tensor, kv_rank: int, scale: float) -> torch.Tensor:
    """Absorbed MLA decode attention for one token: fp32 ``q`` ``[H, L]`` against the cached rows
    ``latent`` ``[S, L]`` -> fp32 ``[H, kv_rank]`` = ``softmax(scale * q @ latent.T) @ latent[:, :kv_rank]``.

    ``latent`` needs contiguous rows but may be a row slice (``buf[:S]``) or a column slice of a
    wider buffer: it is read in place, each row once (``csrc/mla_decode.c``)."""
    if q.dim() != 2 or q.dtype != torch.float32 or not q.is_contiguous():
        raise ValueError(f"mla_decode: q {q.dtype}{tuple(q.shape)}, want contiguous float32 [H, L]")
    h, l = q.shape
    if (latent.dim() != 2 or latent.dtype != torch.float32 or latent.shape[1] != l or latent.shape[0] < 1
            or (l > 1 and latent.stride(1) != 1) or latent.stride(0) < l):
        raise ValueError(f"mla_decode: latent {latent.dtype}{tuple(latent.shape)} stride {latent.stride()}, "
                         f"want float32 [S >= 1, {l}] with contiguous rows")
    if not 0 < kv_rank <= l or h < 1:
        raise ValueError(f"mla_decode: kv_rank={kv_rank}, H={h}, L={l}")
    out = torch.empty(h, kv_rank)
    _lib().mla_decode_f32(q.data_ptr(), h, l, latent.data_ptr(), latent.stride(0), latent.shape[0], kv_rank,
                          float(scale), out.data_ptr(), torch.get_num_threads())
    return out


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


def bench_mla(seqs=(128, 1024, 4096), heads: int = 16, kv_rank: int = 512, rope: int = 64,
              total_mb: int = 96, reps: int = 5) -> dict:
    """ms per call of ``mla_decode`` vs the torch code it replaces, decode-like: cycles through
    enough separate latent buffers (``[S + 64, L]``, read as ``buf[:S]``) to exceed the L3.
    Returns {f"S={s} ours" / f"S={s} torch": ms}; prints a table."""
    if not available():
        raise RuntimeError("kernels unavailable")
    g = torch.Generator().manual_seed(0)
    width, scale, res = kv_rank + rope, (kv_rank + rope) ** -0.5, {}
    for s in seqs:
        n = max(2, int(total_mb * 1e6 / (s * width * 4)))
        bufs = [torch.randn(s + 64, width, generator=g) for _ in range(n)]
        qs = [torch.randn(heads, width, generator=g) for _ in range(n)]

        def ours():
            for q, b in zip(qs, bufs):
                mla_decode(q, b[:s], kv_rank, scale)

        def theirs():
            for q, b in zip(qs, bufs):
                lat = b[:s]
                torch.matmul(torch.softmax((q @ lat.T) * scale, dim=-1), lat[:, :kv_rank])

        for _ in range(2):  # interleaved, best of both rounds: contention hits both alike
            for name, fn in (("ours", ours), ("torch", theirs)):
                ms = _best(fn, reps) / n * 1e3
                res[f"S={s} {name}"] = min(ms, res.get(f"S={s} {name}", ms))
    print(f"{'S':>6s} {'ours ms':>9s} {'torch ms':>9s} {'speedup':>8s}")
    for s in seqs:
        a, b = res[f"S={s} ours"], res[f"S={s} torch"]
        print(f"{s:6d} {a:9.3f} {b:9.3f} {b / a:8.2f}")
    return res


if __name__ == "__main__":
    import sys

    print(f"threads={torch.get_num_threads()}")
    if sys.argv[1:] != ["mla"]:
        bench()
    bench_mla()
