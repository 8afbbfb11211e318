"""``engine bench``: the arithmetic behind its figures, and one real run on a tiny checkpoint.

The real run goes through ``python app.py engine bench --json`` exactly as a user types it
(workers are separate processes), on the tiny V3 test checkpoint instead of the V2-Lite shape.
"""

from __future__ import annotations

import json

import pytest

from assistant.engine import bench, bench_checkpoint
from assistant.engine.config import EngineConfig
from assistant.engine.bench_bytes import decode_weight_bytes, prefill_flops_per_token
from assistant.engine.loader import load_model


def _res(decode: dict[int, float], prefill: dict[int, float], **extra) -> dict:
    runs = [{"context": c, "decode_ms": decode[c], "prefill_tok_s": prefill[c]} for c in decode]
    return {"runs": runs, "peak_rss_gib": 1.0, **extra}


def test_analyse_speedups_roofline_and_targets():
    copy = {"copy_gb_s": 20.0, "gemm_gflops": 100.0}
    hf = {"eager": _res({128: 100.0, 4096: 400.0}, {128: 50.0, 4096: 200.0}),
          "grouped_mm": _res({128: 120.0, 4096: 300.0}, {128: 100.0, 4096: 100.0})}
    ours = {"fp32": _res({128: 80.0, 4096: 90.0}, {128: 150.0, 4096: 500.0}, decode_weight_bytes=1.6e9),
            "int8": _res({128: 25.0, 4096: 40.0}, {128: 100.0, 4096: 100.0}, decode_weight_bytes=4e8),
            "int4": _res({128: 15.0, 4096: 16.0}, {128: 100.0, 4096: 100.0}, decode_weight_bytes=2e8)}
    cfg = EngineConfig.from_dict(
        dict(bench_checkpoint.V2_LITE, num_hidden_layers=2, model_type="deepseek_v2"), "test")
    a = bench.analyse(copy, hf, ours, {}, cfg)
    # the reference is the better implementation per figure
    assert a["reference_decode_ms"] == {128: 100.0, 4096: 300.0}
    assert a["reference_prefill_tok_s"] == {128: 100.0, 4096: 200.0}
    fp32 = a["modes"]["fp32"]
    assert fp32["decode_x"] == {128: 1.25, 4096: pytest.approx(300 / 90)}
    assert fp32["prefill_x"] == {128: 1.5, 4096: 2.5}
    assert fp32["weight_gb_s"][128] == pytest.approx(1.6e9 / 0.08 / 1e9)  # 20 GB/s
    assert fp32["roofline"][128] == pytest.approx(1.0) and fp32["flat"] == pytest.approx(0.125)
    assert a["checks"]["fp32_decode_x"] == {128: False, 4096: True}
    assert a["checks"]["fp32_prefill_x"] == {128: False, 4096: True}
    assert a["checks"]["int8_decode_x"] == {128: False, 4096: True}  # 4.0x, 7.5x
    assert a["checks"]["int4_roofline"] == {128: True}  # 200 MB / 15 ms = 13.3 GB/s of 20
    assert a["checks"]["flat"] == {"fp32 128->4096": True, "int8 128->4096": False, "int4 128->4096": True}
    text = bench.render(a, hf, ours)
    assert "1.25x" in text and "int8_decode_x (>= 5.0): 128: miss  4096: PASS" in text


def test_decode_weight_bytes_counts_what_one_token_reads(build_ckpt):
    from .checkpoints import read_all

    path = build_ckpt("v3_qlora")
    model = load_model(path)
    cfg = model.cfg
    # From the checkpoint itself: every tensor once, except one embedding row and top_k of the
    # routed experts (kv_b_proj counts in full: the absorbed path reads all of it as W_uk / W_uv).
    expected = 0.0
    for name, t in read_all(path).items():
        size = t.numel() * t.element_size()
        if "embed_tokens" in name:
            size = cfg.hidden_size * t.element_size()
        elif ".mlp.experts." in name:
            size = size * cfg.num_experts_per_tok / cfg.n_routed_experts
        expected += size
    assert decode_weight_bytes(model) == int(expected) or abs(decode_weight_bytes(model) - expected) <= 1
    n = decode_weight_bytes(model)
    q8 = load_model(build_ckpt("v3_qlora"), quant="int8")
    q4 = load_model(build_ckpt("v3_qlora"), quant="int4")
    # int8 / int4 runtime forms (the tiny model's 32-64 wide rows pad int4 to whole 128-groups)
    assert decode_weight_bytes(q8) < 0.4 * n and decode_weight_bytes(q4) < 0.4 * n
    # prefill FLOPs grow with context only through attention
    f1, f2 = prefill_flops_per_token(cfg, 16), prefill_flops_per_token(cfg, 32)
    h = cfg.num_attention_heads
    assert f2 - f1 == pytest.approx(2 * cfg.num_hidden_layers * h * (cfg.qk_head_dim + cfg.v_head_dim) * 8)


def test_bench_checkpoint_is_built_once(tmp_path, monkeypatch):
    small = dict(vocab_size=512, hidden_size=64, intermediate_size=96, moe_intermediate_size=32,
                 n_routed_experts=8, kv_lora_rank=32, qk_nope_head_dim=16, qk_rope_head_dim=16, v_head_dim=16,
                 num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256)
    monkeypatch.setattr(bench_checkpoint, "V2_LITE", dict(bench_checkpoint.V2_LITE, **small))
    out = bench_checkpoint.build_v2_lite(tmp_path / "ck", layers=2)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["num_hidden_layers"] == 2 and cfg["n_routed_experts"] == 8 and cfg["q_lora_rank"] is None
    stamp = {p.name: p.stat().st_mtime_ns for p in out.glob("*.safetensors")}
    assert bench_checkpoint.build_v2_lite(tmp_path / "ck", layers=2) == out
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.safetensors")} == stamp  # not rebuilt
    assert load_model(out).cfg.num_hidden_layers == 2


def test_engine_bench_cli_json_on_a_tiny_checkpoint(build_ckpt, capsys):
    from app import main

    argv = ["engine", "bench", "--model", str(build_ckpt("v3_qlora")), "--contexts", "16,48",
            "--decode", "3", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    a = out["analysis"]
    assert a["copy_gb_s"] > 0 and a["gemm_gflops"] > 0
    assert set(out["transformers"]) == {"eager", "grouped_mm"} and set(out["lingxi"]) == {"fp32", "int8", "int4"}
    for res in [*out["transformers"].values(), *out["lingxi"].values()]:
        assert [r["context"] for r in res["runs"]] == [16, 48] and res["peak_rss_gib"] > 0
        assert all(r["decode_ms"] > 0 and r["prefill_tok_s"] > 0 and len(r["decode_ms_all"]) == 3 for r in res["runs"])
    assert set(a["drift"]) == {"int8", "int4"} and 0 <= a["drift"]["int8"]["top1_agreement"] <= 1
    # fp32 is the reference model's own arithmetic: the same greedy tokens as transformers
    assert a["fp32_greedy_agreement_with_transformers"] == 1.0
    assert set(a["checks"]) == {"fp32_decode_x", "fp32_prefill_x", "int8_decode_x", "int4_roofline", "flat"}
