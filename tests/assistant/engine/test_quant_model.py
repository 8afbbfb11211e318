"""Whole-model weight-only int8 / int4 (``quantize_model``, ``load_model(quant=)``, ``--quant``).

Drift is measured against the fp32 model on the tiny ``v3_qlora`` checkpoint over the 64-token
prompt (prefill, expanded MLA) and 8 decode steps (absorbed MLA); numbers are printed (``-s``).
"""

from __future__ import annotations

import json

import pytest
import torch

from assistant.engine.layers import FusedMLP
from assistant.engine.loader import load_model
from assistant.engine.moe import MoE
from assistant.engine.quant import QuantExperts, QuantLinear
from assistant.engine.quantize_model import quantize_model

DECODE = 8


def _run(model, ids):
    """Prefill logits [T, vocab] for ``ids`` then ``DECODE`` greedy-from-fp32 decode logits."""
    cache = model.new_cache(128)
    pre = model.forward(ids, None, cache)
    dec = [model.forward(torch.tensor([int(t)]), None, cache)[0] for t in ids[:DECODE]]
    return pre, torch.stack(dec)


@pytest.fixture(scope="module")
def fp32_logits(build_ckpt, prompt_ids):
    return _run(load_model(build_ckpt("v3_qlora")), prompt_ids)


def test_quantize_model_swaps_linears_and_keeps_float_parts(build_ckpt):
    model = load_model(build_ckpt("v3_qlora"))
    embed, head, gate = model.embed, model.lm_head, None
    done = quantize_model(model, "int8")
    assert done and model.quant == "int8" and model.embed is embed
    assert isinstance(model.lm_head, QuantLinear) and model.lm_head.mode == "int8" and head is not None
    n_moe = 0
    for layer in model.layers:
        assert all(isinstance(layer.attn.w[k], QuantLinear) for k in ("wq_a", "wq_b", "wkv_a", "wkv_b", "wo"))
        assert isinstance(layer.attn.w["q_norm"], torch.Tensor) and isinstance(layer.in_norm, torch.Tensor)
        if isinstance(layer.mlp, MoE):
            n_moe += 1
            gate = layer.mlp.gate
            assert isinstance(layer.mlp.w13, QuantExperts) and isinstance(layer.mlp.w2, QuantExperts)
            assert isinstance(layer.mlp.shared.w13, QuantLinear)
        else:
            assert isinstance(layer.mlp, FusedMLP) and isinstance(layer.mlp.w2, QuantLinear)
    assert n_moe and isinstance(gate.weight, torch.Tensor)
    assert quantize_model(model, "int8") == []  # idempotent
    with pytest.raises(ValueError, match="int3"):
        quantize_model(load_model(build_ckpt("v3_qlora")), "int3")


def test_moe_dispatch_calls_matmul_only_for_active_experts(build_ckpt, prompt_ids, monkeypatch):
    model = load_model(build_ckpt("v3_qlora"), quant="int8")
    calls = []
    orig = QuantExperts.matmul
    monkeypatch.setattr(QuantExperts, "matmul", lambda self, x, e: calls.append(int(e)) or orig(self, x, e))
    model.forward(prompt_ids[:1], None, model.new_cache(8))
    n_moe = sum(isinstance(layer.mlp, MoE) for layer in model.layers)
    k = model.cfg.num_experts_per_tok
    assert 0 < len(calls) <= 2 * k * n_moe  # one token: at most top_k experts per MoE layer, w13 + w2


@pytest.mark.parametrize("mode", ["int8", "int4"])
def test_quantised_logit_drift_vs_fp32(build_ckpt, prompt_ids, fp32_logits, mode):
    model = load_model(build_ckpt("v3_qlora"), quant=mode)
    pre, dec = _run(model, prompt_ids)
    ref_pre, ref_dec = fp32_logits
    assert torch.isfinite(pre).all() and torch.isfinite(dec).all()
    d = (pre - ref_pre).abs()
    agree = (pre.argmax(-1) == ref_pre.argmax(-1)).float().mean().item()
    dec_agree = (dec.argmax(-1) == ref_dec.argmax(-1)).float().mean().item()
    scale = ref_pre.abs().max().item()
    print(f"\n[{mode}] prefill logits: max|d| {d.max():.4g} mean|d| {d.mean():.4g} (fp32 max|logit| {scale:.4g}); "
          f"top-1 agreement prefill {agree:.1%} decode {dec_agree:.1%}; "
          f"decode max|d| {(dec - ref_dec).abs().max():.4g}")
    if mode == "int8":
        # One position is 1.6%; which borderline tokens flip depends on the kernel's rounding
        # (fp32 gemv 89%, bf16 int8pack 94-97%), so the bound leaves room for that, not for a bug.
        assert agree >= 0.85 and dec_agree >= 0.75
        assert d.mean() <= 0.02 * scale
    else:  # ~10% rms weight noise: top-1 of a random tiny model's flat logits flips often (reported)
        assert d.mean() <= 0.15 * scale


def test_dequant_kernel_equals_float_model_with_dequantised_weights(build_ckpt, prompt_ids):
    """Plumbing check: with the exact fallback kernel, the quantised model is the float model whose
    weights are ``dequantize(quantize(w))`` (so any drift is the quantisation itself)."""
    from assistant.engine.quant import dequantize, quantize

    path, mode = build_ckpt("v3_qlora"), "int4"
    qm = load_model(path)
    quantize_model(qm, mode, kernel="dequant")
    fm = load_model(path)
    fq = lambda w: dequantize(quantize(w, mode))  # noqa: E731
    fm.lm_head = dequantize(quantize(fm.lm_head, "int8"))  # the head is int8 in both modes
    for layer in fm.layers:
        a = layer.attn
        a.w.update({k: fq(a.w[k]) for k in ("wq_a", "wq_b", "wkv_a", "wkv_b", "wo")})
        wkv = a.w["wkv_b"].view(a.n_heads, a.nope + a.v_dim, a.kv_rank)
        a.w_uk, a.w_uv = wkv[:, : a.nope], wkv[:, a.nope :]
        mlps = [layer.mlp]
        if isinstance(layer.mlp, MoE):
            layer.mlp.w13, layer.mlp.w2 = fq(layer.mlp.w13), fq(layer.mlp.w2)
            mlps = [layer.mlp.shared]
        for m in mlps:
            m.w13, m.w2 = fq(m.w13), fq(m.w2)
    q_pre, q_dec = _run(qm, prompt_ids)
    f_pre, f_dec = _run(fm, prompt_ids)
    assert (q_pre - f_pre).abs().max() < 1e-4 and (q_dec - f_dec).abs().max() < 1e-4


@pytest.mark.parametrize("mode", ["int8", "int4"])
def test_engine_greedy_generation_with_quant(build_ckpt, mode):
    from assistant.engine.engine import LLMEngine
    from assistant.engine.sampler import SamplingParams

    eng = LLMEngine(build_ckpt("v3_qlora"), quant=mode, max_batch=2)
    try:
        assert eng.quant == mode
        params = SamplingParams(temperature=0, max_tokens=6, ignore_eos=True)
        ids = eng.tokenizer.encode("hello there")
        outs = [eng.submit(ids, params), eng.submit(ids[:1], params)]  # batched decode path too
        res = [[t for out in h for t in out.token_ids] for h in outs]  # deltas -> whole sequences
        assert all(len(r) == 6 for r in res)
        again = eng.generate(ids, params)
        assert again.finish_reason == "length" and list(again.token_ids) == res[0]
    finally:
        eng.close()


def test_cli_generate_with_quant_json(build_ckpt, capsys):
    from app import main

    argv = ["engine", "generate", "--model", str(build_ckpt("v3_qlora")), "--prompt", "hi",
            "--max-tokens", "5", "--quant", "int8", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"text", "token_ids"} and len(out["token_ids"]) == 5
