"""``engine quantize``: pre-quantised checkpoints written once and loaded without a float copy.

A checkpoint quantised on disk must load into the very model ``--quant`` builds after load
(same ``QuantWeight`` bytes, so the same logits), from per-expert, padded-int4 and FP8 sources.
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from assistant.engine.config import EngineError
from assistant.engine.loader import CheckpointError, load_model
from assistant.engine.moe import MoE
from assistant.engine.quant import QuantExperts, QuantLinear
from assistant.engine.quant_checkpoint import quantize_checkpoint

from . import checkpoints


def _logits(model, ids):
    cache = model.new_cache(96)
    pre = model.forward(ids, None, cache)
    dec = model.forward(ids[:1], None, cache)
    return torch.cat([pre, dec])


def _names(path):
    index = json.loads((path / "model.safetensors.index.json").read_text())
    return index["weight_map"]


@pytest.mark.parametrize(("variant", "mode"), [("v3_qlora", "int8"), ("v3_no_qlora", "int4"), ("v2_group", "int4")])
def test_quantised_checkpoint_loads_as_load_time_quantisation(build_ckpt, tmp_path, prompt_ids, variant, mode):
    src, dst = build_ckpt(variant), tmp_path / "q"
    report = quantize_checkpoint(src, dst, mode, shard_bytes=2**20)  # small shards: several files
    assert report.quantised > 0 and report.bytes_out < report.bytes_in

    cfg = json.loads((dst / "config.json").read_text())
    assert cfg["quant_config"] == {"mode": mode, "group_size": 128 if mode == "int4" else 0, "lm_head": "int8"}
    assert (dst / "tokenizer.json").is_file() and (dst / "tokenizer_config.json").is_file()
    names = _names(dst)
    assert len(set(names.values())) > 1
    assert not [n for n in names if n.endswith(("_proj.weight", "kv_a_proj_with_mqa.weight", "lm_head.weight"))]
    assert "model.embed_tokens.weight" in names and any(n.endswith("mlp.gate.weight") for n in names)

    pre = load_model(dst)
    ref = load_model(src, quant=mode)
    assert pre.quant == mode and isinstance(pre.lm_head, QuantLinear) and pre.lm_head.mode == "int8"
    moe = next(layer.mlp for layer in pre.layers if isinstance(layer.mlp, MoE))
    assert isinstance(moe.w13, QuantExperts) and moe.w13.mode == mode
    torch.testing.assert_close(_logits(pre, prompt_ids), _logits(ref, prompt_ids), rtol=0, atol=1e-5)
    assert load_model(dst, quant=mode).quant == mode  # naming the checkpoint's own mode is fine


def test_fp8_source_is_dequantised_then_quantised(build_ckpt, tmp_path, prompt_ids):
    fp8, deq = tmp_path / "fp8", tmp_path / "deq"
    checkpoints.make_fp8(build_ckpt("v3_qlora"), fp8, deq)
    quantize_checkpoint(fp8, tmp_path / "q", "int8")
    cfg = json.loads((tmp_path / "q" / "config.json").read_text())
    assert "quantization_config" not in cfg
    assert not [n for n in _names(tmp_path / "q") if n.endswith("_scale_inv")]
    torch.testing.assert_close(_logits(load_model(tmp_path / "q"), prompt_ids),
                               _logits(load_model(deq, quant="int8"), prompt_ids), rtol=0, atol=1e-5)


def test_mtp_layers_are_dropped(build_ckpt, tmp_path):
    src = tmp_path / "mtp"
    mtp = checkpoints.make_with_mtp(build_ckpt("v3_qlora"), src)
    report = quantize_checkpoint(src, tmp_path / "q", "int8")
    assert sorted(report.dropped) == mtp
    assert not set(_names(tmp_path / "q")) & set(mtp)


def test_refusals(build_ckpt, tmp_path):
    src = build_ckpt("v3_qlora")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    with pytest.raises(EngineError, match="not empty"):
        quantize_checkpoint(src, busy, "int8")
    assert (busy / "keep.txt").read_text() == "mine"
    with pytest.raises(EngineError, match="int3"):
        quantize_checkpoint(src, tmp_path / "x", "int3")
    with pytest.raises(EngineError, match="group size"):
        quantize_checkpoint(src, tmp_path / "y", "int4", group_size=7)
    quantize_checkpoint(src, tmp_path / "q8", "int8")
    with pytest.raises(EngineError, match="already quantised"):
        quantize_checkpoint(tmp_path / "q8", tmp_path / "again", "int4")
    with pytest.raises(EngineError, match="already quantised to int8"):
        load_model(tmp_path / "q8", quant="int4")


def _rewrite(path, edit):
    """Apply ``edit(tensors)`` to every shard of ``path`` in place."""
    for shard in sorted(path.glob("*.safetensors")):
        with safe_open(str(shard), framework="pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        edit(tensors)
        save_file(tensors, str(shard), metadata={"format": "pt"})


def test_damaged_quantised_tensors_name_the_tensor(build_ckpt, tmp_path):
    q = tmp_path / "q"
    quantize_checkpoint(build_ckpt("v3_qlora"), q, "int8", shard_bytes=2**40)  # one shard
    name = "model.layers.0.self_attn.o_proj"

    def as_float(t):
        t[name + ".qweight"] = t[name + ".qweight"].float()

    _rewrite(q, as_float)
    with pytest.raises(CheckpointError, match=f"{name}.*dtype torch.float32"):
        load_model(q)

    q2 = tmp_path / "q2"
    quantize_checkpoint(build_ckpt("v3_qlora"), q2, "int4", shard_bytes=2**40)

    def narrow(t):
        t[name + ".qweight"] = t[name + ".qweight"][:, :-1].contiguous()

    _rewrite(q2, narrow)
    with pytest.raises(CheckpointError, match=f"{name}.*does not fit in_features"):
        load_model(q2)

    q3 = tmp_path / "q3"
    quantize_checkpoint(build_ckpt("v3_qlora"), q3, "int8", shard_bytes=2**40)
    up = "model.layers.0.mlp.up_proj"

    def half(t):
        t[up + ".weight"] = torch.zeros(1)
        del t[up + ".qweight"], t[up + ".scales"]

    _rewrite(q3, half)
    index = json.loads((q3 / "model.safetensors.index.json").read_text())
    shard = next(iter(index["weight_map"].values()))
    index["weight_map"] = {k: shard for k in index["weight_map"] if not k.startswith(up + ".")}
    index["weight_map"][up + ".weight"] = shard
    (q3 / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match="partly quantised"):
        load_model(q3)


def test_cli_quantize_then_generate(build_ckpt, tmp_path, capsys):
    from app import main

    src, dst = build_ckpt("v3_qlora"), tmp_path / "q"
    assert main(["engine", "quantize", "--model", str(src), "--out", str(dst), "--quant", "int4"]) == 0
    assert "int4 (group 128)" in capsys.readouterr().out
    gen = ["engine", "generate", "--prompt", "hello", "--max-tokens", "6", "--json"]
    assert main(gen + ["--model", str(dst)]) == 0
    from_disk = json.loads(capsys.readouterr().out)
    from assistant.engine.engine import LLMEngine

    eng = LLMEngine(dst, max_batch=1)
    try:
        assert eng.quant == "int4"  # known from the checkpoint, no --quant needed
    finally:
        eng.close()
    assert main(gen + ["--model", str(src), "--quant", "int4"]) == 0
    at_load = json.loads(capsys.readouterr().out)
    assert from_disk["token_ids"] == at_load["token_ids"] and len(at_load["token_ids"]) == 6

    assert main(["engine", "quantize", "--model", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"),
                 "--quant", "int8"]) == 2
    assert "no config.json" in capsys.readouterr().err
