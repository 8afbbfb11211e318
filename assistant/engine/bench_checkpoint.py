"""A random checkpoint in the shape of DeepSeek-V2-Lite, for ``engine bench``.

Does: build (once, with ``transformers``' ``DeepseekV2ForCausalLM`` and ``save_pretrained``, all
offline) a checkpoint with V2-Lite's full width -- hidden 2048, 16 heads, MLA with kv_lora_rank
512 and no q bottleneck, 64 routed experts of width 1408 with 6 active plus 2 shared, a first
dense layer of width 10944, vocab 102400, YaRN x40 -- and its depth cut to ``layers`` (default 3:
one dense layer and two MoE layers, about 6.5 GB in fp32) so that it and the reference fit in
memory on a small machine. Weights use std 0.02 (transformers' default init), seed fixed.

Does not: ship a tokenizer (the benchmark feeds token ids) or produce meaningful text.
"""

from __future__ import annotations

import json
from pathlib import Path

V2_LITE = dict(
    vocab_size=102400, hidden_size=2048, intermediate_size=10944, moe_intermediate_size=1408,
    first_k_dense_replace=1, num_attention_heads=16, num_key_value_heads=16,
    n_routed_experts=64, n_shared_experts=2, num_experts_per_tok=6, kv_lora_rank=512,
    q_lora_rank=None, qk_nope_head_dim=128, qk_rope_head_dim=64, v_head_dim=128,
    topk_method="greedy", n_group=1, topk_group=1, routed_scaling_factor=1.0, norm_topk_prob=False,
    max_position_embeddings=163840, rope_theta=10000.0, rms_norm_eps=1e-6,
    rope_scaling={"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096,
                  "beta_fast": 32, "beta_slow": 1, "mscale": 0.707, "mscale_all_dim": 0.707},
    bos_token_id=100000, eos_token_id=100001, tie_word_embeddings=False,
)
DEFAULT_LAYERS = 3


def build_v2_lite(out: Path, layers: int = DEFAULT_LAYERS, seed: int = 0) -> Path:
    """Write the checkpoint to ``out`` unless a complete one with the same depth is there."""
    out = Path(out)
    marker = out / "bench_checkpoint.json"
    want = {"shape": "DeepSeek-V2-Lite", "layers": layers, "seed": seed}
    if marker.is_file() and json.loads(marker.read_text()) == want:
        return out
    import torch
    from transformers import DeepseekV2Config, DeepseekV2ForCausalLM

    torch.manual_seed(seed)
    model = DeepseekV2ForCausalLM(DeepseekV2Config(num_hidden_layers=layers, **V2_LITE)).eval()
    model.save_pretrained(out, safe_serialization=True, max_shard_size="2GB")
    marker.write_text(json.dumps(want))
    return out
