"""``layers.linear``: decode-sized fp32 products go through our gemv kernel and equal ``F.linear``."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from assistant.engine import kernels
from assistant.engine.layers import FusedMLP, linear
from assistant.engine.quant import GEMV_ROWS


def _rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def gemv_calls(monkeypatch):
    if not kernels.available():
        pytest.skip("our gemv kernel did not build here (test_kernels.py says why)")
    calls = []
    real = kernels.f32_gemv
    monkeypatch.setattr(kernels, "f32_gemv", lambda x, w: calls.append(tuple(x.shape)) or real(x, w))
    return calls


@pytest.mark.parametrize("rows", [1, 3, GEMV_ROWS])
@pytest.mark.parametrize("shape", [(37, 200), (300, 64), (8, 1000)])
def test_decode_rows_use_our_kernel_and_match_f_linear(gemv_calls, rows, shape):
    w, b, x = _rand(*shape, seed=1), _rand(shape[0], seed=2), _rand(rows, shape[1], seed=3)
    ref = F.linear(x, w, b)
    y = linear(x, w, b)
    assert gemv_calls == [(rows, shape[1])]
    assert ((y - ref).abs().max() / ref.abs().max()).item() < 1e-5


def test_other_products_stay_with_torch(gemv_calls):
    w = _rand(64, 48)
    linear(_rand(GEMV_ROWS + 1, 48), w)  # prefill-sized
    linear(_rand(2, 48), w.T.contiguous().T)  # a transposed (non-contiguous) weight
    linear(_rand(2, 48).bfloat16(), w.bfloat16())  # not fp32
    linear(_rand(2, 3, 48), w)  # not 2-D
    assert gemv_calls == []
    y = linear(_rand(2, 48), w.T.contiguous().T)
    assert torch.allclose(y, F.linear(_rand(2, 48), w), atol=1e-5)


def test_fused_mlp_through_the_kernel(gemv_calls):
    w13, w2, x = _rand(2 * 96, 64, seed=4), _rand(64, 96, seed=5), _rand(2, 64, seed=6)
    h = F.linear(x, w13)
    ref = F.linear(F.silu(h[:, :96]) * h[:, 96:], w2)
    y = FusedMLP(w13, w2).forward(x)
    assert len(gemv_calls) == 2 and ((y - ref).abs().max() / ref.abs().max()).item() < 1e-5
