"""The bundled model's shape, its weights as HF-named tensors, and the engine model built from them.

Does: hold the trainable weights as one dict of leaf tensors under the names a real DeepSeek-V3
checkpoint uses (``model.layers.N.self_attn.kv_a_proj_with_mqa.weight``,
``model.layers.N.mlp.experts.E.gate_proj.weight``, ...), initialised as transformers does
(normal, std ``initializer_range``; norms at one). Every training step builds the engine's
``DeepseekEngineModel`` from that dict through the engine's own loader code (``from_reader`` with an
in-memory reader), so the fused and stacked weights it runs on are autograd functions of the leaves
and the network trained is, layer for layer, the one the engine serves. Saving is then just
``safetensors`` of the dict plus ``config.json``.

Does not: train (see ``loop``), or hold MTP layers (the issue makes them optional; the engine skips
them at load anyway).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import save_file

from ..config import EngineConfig
from ..model import DeepseekEngineModel


@dataclass
class Shape:
    """Hyper-parameters of the bundled model (the ``config.json`` fields that vary)."""

    vocab_size: int = 6000
    hidden_size: int = 384
    num_hidden_layers: int = 4
    first_k_dense_replace: int = 1
    intermediate_size: int = 768
    moe_intermediate_size: int = 192
    n_routed_experts: int = 8
    num_experts_per_tok: int = 2
    n_shared_experts: int = 1
    num_attention_heads: int = 6
    q_lora_rank: int | None = None
    kv_lora_rank: int = 96
    qk_nope_head_dim: int = 32
    qk_rope_head_dim: int = 16
    v_head_dim: int = 32
    max_position_embeddings: int = 2048
    extra: dict = field(default_factory=dict)


def hf_config(shape: Shape, *, bos_token_id: int, eos_token_id: int) -> dict:
    """A DeepSeek-V3 ``config.json``: sigmoid gate with ``noaux_tc`` (bias-steered top-k), tied embeddings."""
    cfg = {
        "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3",
        "vocab_size": shape.vocab_size, "hidden_size": shape.hidden_size,
        "intermediate_size": shape.intermediate_size, "moe_intermediate_size": shape.moe_intermediate_size,
        "num_hidden_layers": shape.num_hidden_layers, "num_attention_heads": shape.num_attention_heads,
        "num_key_value_heads": shape.num_attention_heads,
        "n_shared_experts": shape.n_shared_experts, "n_routed_experts": shape.n_routed_experts,
        "num_experts_per_tok": shape.num_experts_per_tok, "routed_scaling_factor": 1.0,
        "n_group": 1, "topk_group": 1, "topk_method": "noaux_tc", "scoring_func": "sigmoid",
        "norm_topk_prob": True, "first_k_dense_replace": shape.first_k_dense_replace, "moe_layer_freq": 1,
        "q_lora_rank": shape.q_lora_rank, "kv_lora_rank": shape.kv_lora_rank,
        "qk_nope_head_dim": shape.qk_nope_head_dim, "qk_rope_head_dim": shape.qk_rope_head_dim,
        "qk_head_dim": shape.qk_nope_head_dim + shape.qk_rope_head_dim, "head_dim": shape.qk_rope_head_dim,
        "v_head_dim": shape.v_head_dim, "hidden_act": "silu",
        "max_position_embeddings": shape.max_position_embeddings, "initializer_range": 0.02,
        "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "rope_scaling": None, "rope_interleave": True,
        "attention_bias": False, "attention_dropout": 0.0, "tie_word_embeddings": True, "use_cache": True,
        "num_nextn_predict_layers": 0, "bos_token_id": bos_token_id, "eos_token_id": eos_token_id,
        "torch_dtype": "float32",
        # Its arguments are verbatim spans of the conversation, and its grounded answers verbatim passage
        # sentences, by construction: serve both guided (copyguide, answerguide).
        "lingxi_copy_arguments": True,
        "lingxi_copy_answers": True,
    }
    cfg.update(shape.extra)
    return cfg


def init_params(cfg: EngineConfig, seed: int = 0, std: float = 0.02) -> dict[str, torch.Tensor]:
    """HF-named fp32 leaf tensors (``requires_grad``), except the router bias, which training steers by hand."""
    gen = torch.Generator().manual_seed(seed)
    params: dict[str, torch.Tensor] = {}

    def mat(name: str, out: int, inp: int) -> None:
        params[name] = torch.randn(out, inp, generator=gen) * std

    def mlp(prefix: str, inter: int) -> None:
        mat(prefix + ".gate_proj.weight", inter, cfg.hidden_size)
        mat(prefix + ".up_proj.weight", inter, cfg.hidden_size)
        mat(prefix + ".down_proj.weight", cfg.hidden_size, inter)

    dim, heads = cfg.hidden_size, cfg.num_attention_heads
    mat("model.embed_tokens.weight", cfg.vocab_size, dim)
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}"
        if cfg.q_lora_rank is None:
            mat(p + ".self_attn.q_proj.weight", heads * cfg.qk_head_dim, dim)
        else:
            mat(p + ".self_attn.q_a_proj.weight", cfg.q_lora_rank, dim)
            params[p + ".self_attn.q_a_layernorm.weight"] = torch.ones(cfg.q_lora_rank)
            mat(p + ".self_attn.q_b_proj.weight", heads * cfg.qk_head_dim, cfg.q_lora_rank)
        mat(p + ".self_attn.kv_a_proj_with_mqa.weight", cfg.latent_dim, dim)
        params[p + ".self_attn.kv_a_layernorm.weight"] = torch.ones(cfg.kv_lora_rank)
        mat(p + ".self_attn.kv_b_proj.weight", heads * (cfg.qk_nope_head_dim + cfg.v_head_dim), cfg.kv_lora_rank)
        mat(p + ".self_attn.o_proj.weight", dim, heads * cfg.v_head_dim)
        params[p + ".input_layernorm.weight"] = torch.ones(dim)
        params[p + ".post_attention_layernorm.weight"] = torch.ones(dim)
        if cfg.is_moe_layer(i):
            mat(p + ".mlp.gate.weight", cfg.n_routed_experts, dim)
            for e in range(cfg.n_routed_experts):
                mlp(f"{p}.mlp.experts.{e}", cfg.moe_intermediate_size)
            if cfg.n_shared_experts:
                mlp(p + ".mlp.shared_experts", cfg.moe_intermediate_size * cfg.n_shared_experts)
        else:
            mlp(p + ".mlp", cfg.intermediate_size)
    params["model.norm.weight"] = torch.ones(dim)
    for t in params.values():
        t.requires_grad_(True)
    for i in range(cfg.num_hidden_layers):
        if cfg.is_moe_layer(i):
            params[f"model.layers.{i}.mlp.gate.e_score_correction_bias"] = torch.zeros(cfg.n_routed_experts)
    return params


class TensorReader:
    """The slice of ``loader.CheckpointReader`` that ``DeepseekEngineModel.from_reader`` uses, over a
    dict of float tensors. ``raw`` hands back the dict's own tensor, so gradients reach it."""

    trains = True  # the loader builds what gradients pass through in fewer, cheaper ops (``read_experts``)

    def __init__(self, cfg: EngineConfig, tensors: dict[str, torch.Tensor]):
        self.cfg, self.tensors, self.skipped = cfg, tensors, []

    def has(self, name: str) -> bool:
        return name in self.tensors

    def raw(self, name: str) -> torch.Tensor:
        return self.tensors[name]

    def weight(self, prefix: str, dtype: torch.dtype) -> torch.Tensor:
        return self.tensors[prefix + ".weight"].to(dtype)

    def linear(self, prefix: str, dtype: torch.dtype, in_features: int) -> torch.Tensor:
        return self.weight(prefix, dtype)

    def optional(self, name: str, dtype: torch.dtype) -> torch.Tensor | None:
        return self.tensors[name].to(dtype) if name in self.tensors else None

    def quant_weight(self, prefix: str, in_features: int) -> None:
        return None


def build(cfg: EngineConfig, params: dict[str, torch.Tensor]) -> DeepseekEngineModel:
    """The engine model over ``params`` (cheap: views and one stack per expert group)."""
    model = DeepseekEngineModel.from_reader(cfg, TensorReader(cfg, params), torch.float32)
    model.rotary.inv_freq = model.rotary.inv_freq.to(model.embed.device)  # the rest are views of ``params``
    return model


def save(out: Path, config: dict, params: dict[str, torch.Tensor], dtype: torch.dtype = torch.bfloat16) -> Path:
    """Write ``config.json`` and ``model.safetensors`` (weights in ``dtype``; the router bias stays fp32,
    as in DeepSeek-V3's own checkpoints)."""
    out.mkdir(parents=True, exist_ok=True)
    tensors = {name: t.detach().to("cpu", torch.float32 if name.endswith("e_score_correction_bias") else dtype).contiguous()
               for name, t in params.items()}
    config = {**config, "torch_dtype": str(dtype).removeprefix("torch.")}
    (out / "config.json").write_text(json.dumps(config, indent=2), "utf-8")
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    return out / "model.safetensors"
