import os
import shutil

import pytest
import torch
import torch.nn.functional as F

from assistant.engine import kernels
from assistant.engine.quant import dequantize, quantize


def _cpu_has_avx2() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return " avx2" in flags and " fma" in flags


# Where the kernels can run they must: a silent fallback would hide a broken build.
pytestmark = pytest.mark.skipif(shutil.which("cc") is None or not _cpu_has_avx2(),
                                reason="needs a C compiler and an AVX2/FMA CPU")


@pytest.fixture(scope="module", autouse=True)
def kernel_cache(tmp_path_factory):
    old = os.environ.get("LINGXI_KERNEL_CACHE")
    os.environ["LINGXI_KERNEL_CACHE"] = str(tmp_path_factory.mktemp("kernels"))
    kernels._lib.cache_clear()
    yield
    if old is None:
        del os.environ["LINGXI_KERNEL_CACHE"]
    else:
        os.environ["LINGXI_KERNEL_CACHE"] = old
    kernels._lib.cache_clear()


def _run(q, x):
    if q.mode == "int8":
        return kernels.int8_gemv(x, q.qweight, q.scales)
    return kernels.int4_gemv(x, q.qweight, q.scales, q.group_size, q.in_features)


def _check(y, ref):
    assert y.dtype == torch.float32 and y.shape == ref.shape
    assert (y - ref).abs().max() <= 1e-4 * ref.abs().max()


def test_available():
    assert kernels.available()


@pytest.mark.parametrize("t", [1, 3, 17])
@pytest.mark.parametrize("mode,g,k", [("int8", 0, 200), ("int8", 0, 256), ("int4", 32, 200), ("int4", 64, 200),
                                      ("int4", 128, 384), ("int4", 6, 100)])
def test_matches_dequantized_linear(mode, g, k, t):
    gen = torch.Generator().manual_seed(t * 1000 + k + g)
    q = quantize(torch.randn(37, k, generator=gen), mode, g or None)
    x = torch.randn(t, k, generator=gen)
    _check(_run(q, x), F.linear(x, dequantize(q)))


@pytest.mark.parametrize("mode", ["int8", "int4"])
def test_expert_slices_and_threads(mode):
    gen = torch.Generator().manual_seed(1)
    q = quantize(torch.randn(4, 130, 264, generator=gen), mode, 64)  # N >= 64: threaded path
    x = torch.randn(2, 264, generator=gen).bfloat16()  # other dtypes are converted
    for e in (0, 3):
        ref = F.linear(x.float(), dequantize(q[e]))
        _check(_run(q[e], x), ref)
        assert not torch.allclose(_run(q[e], x), F.linear(x.float(), dequantize(q[1])))


def test_rejects_bad_shapes():
    q = quantize(torch.randn(8, 64), "int4", 32)
    with pytest.raises(ValueError):
        kernels.int4_gemv(torch.randn(1, 63), q.qweight, q.scales, 32, 64)
    with pytest.raises(ValueError):
        kernels.int8_gemv(torch.randn(1, 64), q.qweight, q.scales)


@pytest.mark.parametrize("mode,g", [("int8", 0), ("int4", 32), ("int4", 64), ("int4", 128)])
@pytest.mark.parametrize("shape", [(37, 200), (130, 264), (5, 37), (3, 129)])
def test_dequant_equals_quant_dequantize(mode, g, shape):
    q = quantize(torch.randn(*shape, generator=torch.Generator().manual_seed(2)), mode, g or None)
    assert torch.equal(kernels.dequant(q.qweight, q.scales, q.group_size, q.in_features), dequantize(q))
    rows = slice(7, 30)  # a row chunk, as the prefill path hands over
    assert torch.equal(kernels.dequant(q.qweight[rows], q.scales[rows], q.group_size, q.in_features),
                       dequantize(q)[rows])


def test_dequant_rejects_bad_shapes():
    q = quantize(torch.randn(8, 64), "int4", 32)
    with pytest.raises(ValueError):
        kernels.dequant(q.qweight, q.scales, 32, 65)  # wider than the stored row
    with pytest.raises(ValueError):
        kernels.dequant(q.qweight, q.scales[:, :1].contiguous(), 32, 64)  # scales for other groups
    with pytest.raises(ValueError):
        kernels.dequant(q.qweight.T, q.scales, 32, 64)


def test_env_off_warns_once(monkeypatch):
    monkeypatch.setenv("LINGXI_ENGINE_KERNELS", "off")
    kernels._lib.cache_clear()
    try:
        with pytest.warns(UserWarning, match="LINGXI_ENGINE_KERNELS"):
            assert not kernels.available()
        assert not kernels.available()  # cached: no second warning or build
    finally:
        monkeypatch.delenv("LINGXI_ENGINE_KERNELS")
        kernels._lib.cache_clear()
    assert kernels.available()


def _mla_ref(q, latent, kv_rank, scale):
    q, latent = q.double(), latent.double()
    return (torch.softmax((q @ latent.T) * scale, dim=-1) @ latent[:, :kv_rank]).float()


def _mla_check(out, ref):
    assert out.dtype == torch.float32 and out.shape == ref.shape
    assert torch.isfinite(out).all()
    assert (out - ref).abs().max() <= 1e-5 * ref.abs().max()


@pytest.mark.parametrize("kv_rank", [32, 512])
@pytest.mark.parametrize("h", [1, 16])
@pytest.mark.parametrize("s", [1, 3, 64, 1000, 4097])
def test_mla_decode_matches_torch(s, h, kv_rank):
    gen = torch.Generator().manual_seed(s * 100 + h + kv_rank)
    width = kv_rank + 64
    buf = torch.randn(s + 37, width, generator=gen)  # the cache: only its first s rows are used
    latent, q = buf[:s], torch.randn(h, width, generator=gen)
    scale = width ** -0.5
    out = kernels.mla_decode(q, latent, kv_rank, scale)
    _mla_check(out, _mla_ref(q, latent, kv_rank, scale))
    # the rows past s are never read
    buf[s:] = float("nan")
    assert torch.equal(kernels.mla_decode(q, buf[:s], kv_rank, scale), out)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_mla_decode_odd_shapes_and_threads(threads):
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        gen = torch.Generator().manual_seed(threads)
        for h, kv_rank, width, s in ((3, 37, 45, 300), (5, 8, 8, 97), (6, 100, 163, 2048)):
            wide = torch.randn(s, width + 11, generator=gen)  # rows spaced wider than they are long
            latent, q = wide[:, :width], torch.randn(h, width, generator=gen)
            _mla_check(kernels.mla_decode(q, latent, kv_rank, 0.3), _mla_ref(q, latent, kv_rank, 0.3))
    finally:
        torch.set_num_threads(old)


def test_mla_decode_extreme_scores():
    gen = torch.Generator().manual_seed(7)
    latent, q = torch.randn(3000, 576, generator=gen), torch.randn(16, 576, generator=gen)
    for scale in (50.0, 1e4):  # scores in the thousands / millions: one-hot-ish softmax
        out = kernels.mla_decode(q, latent, 512, scale)
        _mla_check(out, _mla_ref(q, latent, 512, scale))
    latent[1234] *= 100  # one dominant row late in the sequence: earlier partials rescale to ~0
    out = kernels.mla_decode(q, latent, 512, 1.0)
    _mla_check(out, _mla_ref(q, latent, 512, 1.0))


def test_mla_decode_rejects_bad_inputs():
    q, latent = torch.randn(16, 576), torch.randn(10, 576)
    with pytest.raises(ValueError):
        kernels.mla_decode(q.double(), latent, 512, 1.0)
    with pytest.raises(ValueError):
        kernels.mla_decode(q.T.contiguous().T, latent, 512, 1.0)  # non-contiguous q
    with pytest.raises(ValueError):
        kernels.mla_decode(q, latent[:, :575], 512, 1.0)
    with pytest.raises(ValueError):
        kernels.mla_decode(q, latent[:0], 512, 1.0)
    with pytest.raises(ValueError):
        kernels.mla_decode(q, torch.randn(576, 10).T, 512, 1.0)  # columns strided
    with pytest.raises(ValueError):
        kernels.mla_decode(q, latent, 577, 1.0)
