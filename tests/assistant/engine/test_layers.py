"""``layers.linear``: decode-sized fp32 products go through our gemv kernel and equal ``F.linear``;
bf16 training products on the CPU are padded to a row bucket and equal ``F.linear``, gradients too."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from assistant.engine import kernels
from assistant.engine.layers import FusedMLP, linear, row_bucket
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


def test_row_buckets_are_few_and_close_above():
    sizes = {row_bucket(m) for m in range(1, 8193)}
    assert len(sizes) <= 8 * 13 + 8  # eight an octave (and multiples of 8 below 128)
    for m in range(1, 8193):
        b = row_bucket(m)
        assert m <= b <= m + max(7, m // 8) and row_bucket(b) == b


@pytest.fixture
def linear_rows(monkeypatch):
    """The row counts ``F.linear`` is called with."""
    rows, real = [], F.linear
    monkeypatch.setattr(F, "linear", lambda x, w, b=None: rows.append(x.shape[0]) or real(x, w, b))
    return rows


def test_bf16_training_rows_are_padded_to_a_bucket_with_the_same_values_and_gradients(linear_rows):
    m = 1003  # not a bucket: row_bucket gives 1024
    x, w, b = _rand(m, 48, seed=7).requires_grad_(), _rand(40, 48, seed=8).requires_grad_(), _rand(40, seed=9)
    up = _rand(m, 40, seed=10)

    def run(fn):
        x.grad = w.grad = None
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = fn(x, w, b)
        (y.float() * up).sum().backward()
        return y.detach(), x.grad.clone(), w.grad.clone()

    y, gx, gw = run(linear)
    assert linear_rows == [row_bucket(m)] and row_bucket(m) != m and y.shape == (m, 40)
    ry, rgx, rgw = run(F.linear)  # the patched F.linear records m, unpadded
    assert linear_rows[-1] == m
    torch.testing.assert_close(y, ry)
    torch.testing.assert_close(gx, rgx, rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(gw, rgw, rtol=2e-2, atol=2e-2)


def test_serving_and_fp32_training_rows_are_not_padded(linear_rows):
    x, w = _rand(1003, 48), _rand(40, 48).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        linear(x, w)  # bf16 serving
    linear(x, w)  # fp32 training
    assert linear_rows == [1003, 1003]
