"""Weight-only int8/int4 quantisation: error bounds, kernels vs fallback, experts, serialisation."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from assistant.engine import quant as Q
from assistant.engine.quant import QuantExperts, QuantLinear, QuantWeight

FAST = {"int8": "int8pack_mm", "int4": "int4pack_mm_cpu"}


def _rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


def _need_fast(mode):
    if FAST[mode] not in Q.available_kernels():
        pytest.skip(f"{FAST[mode]} not available in this torch build")


@pytest.mark.parametrize("shape", [(64, 256), (3, 200), (5, 37), (2, 7, 300)])
def test_int8_error_within_half_step_of_row_max(shape):
    w = _rand(*shape) * torch.logspace(-3, 2, shape[-2])[:, None]  # rows of very different scale
    q = Q.quantize_int8(w)
    assert q.qweight.dtype == torch.int8 and q.qweight.shape == w.shape and q.scales.shape == w.shape[:-1]
    err = (Q.dequantize(q) - w).abs().amax(-1)
    assert (err <= w.abs().amax(-1) / 254 * (1 + 1e-5)).all()  # well inside the 1/127 bound


@pytest.mark.parametrize("shape,g", [((64, 256), 128), ((3, 200), 128), ((5, 37), 32), ((2, 7, 300), 64)])
def test_int4_error_within_half_step_of_group_max(shape, g):
    w = _rand(*shape)
    q = Q.quantize_int4(w, g)
    k_pad = -(-shape[-1] // g) * g
    assert q.qweight.dtype == torch.uint8 and q.qweight.shape == (*shape[:-1], k_pad // 2)
    assert q.scales.shape == (*shape[:-1], k_pad // g) and q.in_features == shape[-1]
    deq = Q.dequantize(q)
    assert deq.shape == w.shape
    pad = F.pad(w, (0, k_pad - shape[-1]))
    gmax = pad.reshape(*shape[:-1], -1, g).abs().amax(-1)
    err = F.pad(deq - w, (0, k_pad - shape[-1])).reshape(*shape[:-1], -1, g).abs().amax(-1)
    assert (err <= gmax / 14 * (1 + 1e-5)).all()  # well inside the 1/7 bound


def test_zero_rows_and_exact_dequantize():
    w = _rand(8, 128)
    w[2] = 0
    for mode in Q.MODES:
        q = Q.quantize(w, mode)
        d = Q.dequantize(q)
        assert torch.isfinite(d).all() and (d[2] == 0).all()
        assert torch.equal(Q.dequantize(Q.quantize(d, mode)), d)  # re-quantising is a fixed point
    w = torch.tensor([[7.0, -7.0, 3.0, 1.0]])
    assert torch.equal(Q.dequantize(Q.quantize_int4(w, 4)), w)  # representable values round-trip exactly


@pytest.mark.parametrize("mode", Q.MODES)
@pytest.mark.parametrize("kernel", ["auto", "dequant"])
@pytest.mark.parametrize("out_f,in_f", [(256, 512), (3, 200), (40, 100)])
def test_quant_linear_close_to_fp32(mode, kernel, out_f, in_f):
    w, b = _rand(out_f, in_f, seed=1), _rand(out_f, seed=2)
    lin = nn.Linear(in_f, out_f)
    with torch.no_grad():
        lin.weight.copy_(w)
        lin.bias.copy_(b)
    ql = QuantLinear.from_linear(lin, mode, kernel=kernel)
    assert ql.kernel in ("avx2", "int8pack_mm", "int4pack_mm_cpu", "dequant")
    for batch in [(1,), (8,), (2, 3), (40,)]:  # 40 rows: past the gemv, the prefill path
        x = _rand(*batch, in_f, seed=3)
        y, ref = ql(x), lin(x)
        assert y.shape == ref.shape and y.dtype == torch.float32
        # exact reference for the quantised weight, and the error against the fp32 layer
        exact = F.linear(x, Q.dequantize(ql.quant_weight()), b)
        assert _rel(y, exact) < (2e-2 if ql.kernel != "dequant" else 1e-5)
        assert _rel(y, ref) < (0.03 if mode == "int8" else 0.25)


@pytest.mark.parametrize("mode", Q.MODES)
def test_fast_kernel_agrees_with_fallback(mode):
    _need_fast(mode)
    q = Q.quantize(_rand(96, 320, seed=4), mode, 64)
    fast, slow = QuantLinear(q, kernel=FAST[mode]), QuantLinear(q, kernel="dequant")
    assert fast.kernel == FAST[mode] and slow.kernel == "dequant"
    for m in (1, 5, 8):
        x = _rand(m, 320, seed=m)
        assert _rel(fast(x), slow(x)) < 1e-2  # bf16 activations vs fp32
    assert torch.equal(fast.quant_weight().qweight, q.qweight)  # packed form round-trips exactly


@pytest.mark.parametrize("mode", Q.MODES)
def test_auto_takes_our_gemv_and_it_matches_the_fallback(mode):
    from assistant.engine import kernels

    if not kernels.available():
        pytest.skip("our gemv kernel did not build here (test_kernels.py says why)")
    q = Q.quantize(_rand(96, 320, seed=4), mode, 64)
    fast, slow = QuantLinear(q), QuantLinear(q, kernel="dequant")
    assert fast.kernel == "avx2" and fast.nbytes == q.qweight.numel() + 4 * q.scales.numel()
    for m in (1, 5, Q.GEMV_ROWS, Q.GEMV_ROWS + 1, 64):  # gemv rows, then dequantise + matmul
        x = _rand(m, 320, seed=m)
        assert _rel(fast(x), slow(x)) < 1e-5  # both fp32 on the same weight


def test_int4_odd_group_size_falls_back():
    ql = QuantLinear(Q.quantize_int4(_rand(4, 40), 10))
    assert ql.kernel == "dequant"
    assert ql(_rand(2, 40)).shape == (2, 4)


@pytest.mark.parametrize("mode", Q.MODES)
@pytest.mark.parametrize("kernel", ["auto", "dequant"])
def test_stacked_experts(mode, kernel):
    w = _rand(6, 48, 200, seed=5)
    qe = QuantExperts(Q.quantize(w, mode), kernel=kernel)
    assert qe.n_experts == 6 and (qe.out_features, qe.in_features) == (48, 200)
    deq = Q.dequantize(qe.quant_weight())
    for e in (0, 3, 5):
        x = _rand(4, 200, seed=e)
        y = qe.matmul(x, e)
        assert y.shape == (4, 48)
        assert _rel(y, F.linear(x, deq[e])) < (2e-2 if qe.kernel != "dequant" else 1e-5)
        per_expert = QuantLinear(Q.quantize(w[e], mode), kernel=kernel)  # same as quantising alone
        assert torch.equal(per_expert.quant_weight().qweight, qe.quant_weight()[e].qweight)
    with pytest.raises(ValueError):
        QuantExperts(Q.quantize(w[0], mode))


@pytest.mark.parametrize("mode", Q.MODES)
def test_serialisation_round_trip_bit_exact(mode, tmp_path):
    from safetensors.torch import load_file, save_file

    lin = nn.Linear(200, 3)
    ql = QuantLinear.from_linear(lin, mode)
    t = ql.to_tensors("model.layers.0.mlp.down_proj")
    assert set(t) == {f"model.layers.0.mlp.down_proj.{k}" for k in ("qweight", "scales", "bias")}
    save_file(t, tmp_path / "q.safetensors")
    back = load_file(tmp_path / "q.safetensors")
    cfg = {"mode": mode, "group_size": ql.group_size}
    q2 = QuantWeight.from_tensors(back, "model.layers.0.mlp.down_proj", cfg, in_features=200)
    ql2 = QuantLinear(q2, back["model.layers.0.mlp.down_proj.bias"])
    orig = ql.quant_weight()
    assert torch.equal(q2.qweight, orig.qweight) and torch.equal(q2.scales, orig.scales)
    x = _rand(2, 200)
    assert torch.equal(ql2(x), ql(x))
    with pytest.raises(ValueError):
        QuantWeight.from_tensors(back, "model.layers.0.mlp.down_proj", {"mode": "int8" if mode == "int4" else "int4",
                                                                        "group_size": 128})


def test_fbgemm_w8a8_opt_in():
    if "fbgemm_w8a8" not in Q.available_kernels():
        pytest.skip("fbgemm quantized engine not available")
    q = Q.quantize_int8(_rand(4, 40, 100, seed=6))
    assert QuantLinear(q[0]).kernel != "fbgemm_w8a8"  # never chosen by "auto": it is not weight-only
    qe, ql = QuantExperts(q, kernel="fbgemm_w8a8"), QuantLinear(q[1], _rand(40), kernel="fbgemm_w8a8")
    assert torch.equal(qe.quant_weight().qweight, q.qweight) and torch.equal(ql.quant_weight().qweight, q[1].qweight)
    x = _rand(3, 100, seed=7)
    assert _rel(qe.matmul(x, 1), F.linear(x, Q.dequantize(q[1]))) < 0.05
    assert _rel(ql(x), qe.matmul(x, 1) + ql.bias) < 1e-5
    assert qe.matmul(x[:0], 2).shape == (0, 40)


def test_bad_inputs():
    with pytest.raises(ValueError):
        Q.quantize(_rand(4, 4), "int3")
    with pytest.raises(ValueError):
        QuantLinear(Q.quantize_int8(_rand(2, 4, 4)))
    with pytest.raises(ValueError):
        Q.quantize_int4(_rand(4, 4), 3)
    with pytest.raises(ValueError, match="does not run int4"):
        QuantLinear(Q.quantize_int4(_rand(4, 128)), kernel="int8pack_mm")
