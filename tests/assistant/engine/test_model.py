"""The engine against transformers' DeepSeek-V2/V3 on tiny random checkpoints (fp32, CPU)."""

from __future__ import annotations

import pytest
import torch

from assistant.engine import load_model
from assistant.engine.generate import generate

from . import checkpoints

TOL = 1e-4
VARIANTS = list(checkpoints.VARIANTS)


def reference_logits(path, ids: torch.Tensor) -> torch.Tensor:
    ref = checkpoints.load_reference(path)
    with torch.no_grad():
        return ref(ids[None]).logits[0]


@pytest.mark.parametrize("name", VARIANTS)
def test_prefill_and_decode_match_transformers(name, build_ckpt, prompt_ids):
    path = build_ckpt(name)
    ref = reference_logits(path, prompt_ids)
    assert ref.abs().max() > 0.5  # logits are O(1): the tolerance below is meaningful
    model = load_model(path)

    prefill = model.forward(prompt_ids, None, model.new_cache())
    assert prefill.shape == (64, checkpoints.VOCAB)
    diff = (prefill - ref).abs().max().item()
    print(f"{name}: prefill max|diff| = {diff:.3e}")
    assert diff < TOL

    # Absorbed decode, one token at a time over the latent cache (capacity 8 forces regrowth).
    cache = model.new_cache(capacity=8)
    steps = torch.cat([model.forward(prompt_ids[i : i + 1], None, cache) for i in range(64)])
    assert cache.length == 64
    cfg = model.cfg
    assert cache.view(0).shape == (64, cfg.kv_lora_rank + cfg.qk_rope_head_dim)  # latent only
    diff = (steps - ref).abs().max().item()
    print(f"{name}: absorbed decode max|diff| = {diff:.3e}")
    assert diff < TOL

    # Chunked: expanded prefill of 40 tokens, then an absorbed multi-token chunk of 24.
    cache = model.new_cache()
    a = model.forward(prompt_ids[:40], None, cache)
    b = model.forward(prompt_ids[40:], None, cache, absorb=True)
    assert (torch.cat([a, b]) - ref).abs().max().item() < TOL
    # ... and an expanded chunk over a cached prefix (the explicit-mask path, not is_causal).
    cache = model.new_cache()
    a = model.forward(prompt_ids[:40], None, cache)
    b = model.forward(prompt_ids[40:], None, cache, absorb=False)
    assert (torch.cat([a, b]) - ref).abs().max().item() < TOL


@pytest.mark.parametrize("name", ["v3_qlora", "v2_group"])
def test_greedy_continuation_matches_transformers(name, build_ckpt, prompt_ids):
    path = build_ckpt(name)
    ref = checkpoints.load_reference(path)
    prompt = prompt_ids
    with torch.no_grad():
        out = ref.generate(prompt[None], max_new_tokens=32, do_sample=False, eos_token_id=1, pad_token_id=1)
    expected = out[0, prompt.numel():].tolist()
    model = load_model(path)
    got = generate(model, prompt.tolist(), max_new_tokens=32, eos_token_id=1)
    assert got == expected
    assert len(got) == 32  # no early end-of-sequence: the full continuation is compared


def test_temperature_sampling_is_seeded_and_in_vocab(build_ckpt, prompt_ids):
    model = load_model(build_ckpt("v3_qlora"))
    run = lambda: generate(model, prompt_ids[:8].tolist(), 6, temperature=0.8, top_k=50,
                           generator=torch.Generator().manual_seed(3))
    first = run()
    assert first == run() and len(first) == 6
    assert all(0 <= t < checkpoints.VOCAB for t in first)


def test_moe_dispatch_reads_only_active_experts(build_ckpt, prompt_ids, monkeypatch):
    """One decode token touches exactly top_k experts' weights, each once."""
    model = load_model(build_ckpt("v3_qlora"))
    moe = model.layers[1].mlp
    touched = []

    class Spy:
        def __init__(self, t):
            self.t = t

        def __getitem__(self, e):
            touched.append(e)
            return self.t[e]

    monkeypatch.setattr(moe, "w13", Spy(moe.w13))
    model.forward(prompt_ids[:1], None, model.new_cache())
    assert len(touched) == len(set(touched)) == model.cfg.num_experts_per_tok


def test_fp8_block_checkpoint_matches_dequantised_reference(build_ckpt, ckpt_root, prompt_ids):
    src = build_ckpt("v3_qlora")
    fp8_dir, deq_dir = ckpt_root / "v3_fp8", ckpt_root / "v3_fp8_deq"
    checkpoints.make_fp8(src, fp8_dir, deq_dir)
    raw = checkpoints.read_all(fp8_dir)
    w = raw["model.layers.0.mlp.gate_proj.weight"]
    assert w.dtype == torch.float8_e4m3fn and w.shape == (192, 64)
    assert raw["model.layers.0.mlp.gate_proj.weight_scale_inv"].shape == (2, 1)  # ragged 2nd block

    model = load_model(fp8_dir)
    deq = checkpoints.read_all(deq_dir)
    assert torch.equal(model.layers[0].mlp.w13[:192], deq["model.layers.0.mlp.gate_proj.weight"])
    ref = reference_logits(deq_dir, prompt_ids)
    diff = (model.forward(prompt_ids, None, model.new_cache()) - ref).abs().max().item()
    print(f"fp8: max|diff| vs dequantised transformers = {diff:.3e}")
    assert diff < TOL


def test_mtp_layers_are_skipped(build_ckpt, ckpt_root, prompt_ids):
    src = build_ckpt("v3_qlora")
    dst = ckpt_root / "v3_mtp"
    mtp_names = checkpoints.make_with_mtp(src, dst)
    model = load_model(dst)
    assert sorted(model.skipped_tensors) == mtp_names
    assert len(model.layers) == 3
    ref = reference_logits(src, prompt_ids)
    assert (model.forward(prompt_ids, None, model.new_cache()) - ref).abs().max().item() < TOL


def test_packed_expert_layout_loads_identically(build_ckpt, ckpt_root, prompt_ids):
    """transformers' in-memory packed experts (gate_up_proj [E, 2I, D], down_proj [E, D, I])."""
    from safetensors.torch import save_file

    src = build_ckpt("v3_no_qlora")
    dst = ckpt_root / "v3_packed"
    checkpoints._copy_meta(src, dst)
    tensors = checkpoints.read_all(src)
    for layer in (1, 2):
        p = f"model.layers.{layer}.mlp.experts"
        gate = [tensors.pop(f"{p}.{e}.gate_proj.weight") for e in range(8)]
        up = [tensors.pop(f"{p}.{e}.up_proj.weight") for e in range(8)]
        down = [tensors.pop(f"{p}.{e}.down_proj.weight") for e in range(8)]
        tensors[f"{p}.gate_up_proj"] = torch.stack([torch.cat([g, u]) for g, u in zip(gate, up)])
        tensors[f"{p}.down_proj"] = torch.stack(down)
    save_file(tensors, str(dst / "model.safetensors"))
    base = load_model(src)
    a = base.forward(prompt_ids[:16], None, base.new_cache())
    model = load_model(dst)
    b = model.forward(prompt_ids[:16], None, model.new_cache())
    assert torch.equal(a, b)


def test_bf16_weights_stay_close(build_ckpt, prompt_ids):
    """bf16 error vs fp32 is of the same size as transformers' own bf16 error.

    Compared per token (median) because a bf16 rounding can flip a near-tied expert choice on
    a random model, which moves one token's logits a lot in both implementations.
    """
    path = build_ckpt("v3_qlora")
    ids = prompt_ids[:32]
    ref = reference_logits(path, ids)
    with torch.no_grad():
        hf16 = checkpoints.load_reference(path).to(torch.bfloat16)(ids[None]).logits[0].float()
    model = load_model(path, dtype=torch.bfloat16)
    assert model.layers[1].mlp.w13.dtype == torch.bfloat16
    got = model.forward(ids, None, model.new_cache()).float()
    scale = ref.abs().max()
    ours = ((got - ref).abs().amax(-1) / scale).median().item()
    theirs = ((hf16 - ref).abs().amax(-1) / scale).median().item()
    print(f"bf16: median per-token max|diff|/max|ref| ours {ours:.3e}, transformers {theirs:.3e}")
    assert ours < 0.05 and ours <= 2 * theirs + 1e-3
