"""Parse a DeepSeek-V2/V3 ``config.json`` into a normalised ``EngineConfig``.

Does: accept ``model_type`` deepseek_v2 / deepseek_v3 (architectures DeepseekV2ForCausalLM /
DeepseekV3ForCausalLM), normalise ``rope_scaling`` (legacy, with top-level ``rope_theta``) and
``rope_parameters`` (transformers 5) into one ``RopeConfig``, and fill per-family defaults for the
MoE gate exactly as transformers 5.23 interprets them:

- deepseek_v2: softmax scores, ``topk_method`` greedy or group_limited_greedy.
- deepseek_v3: sigmoid scores, ``noaux_tc`` (group score = sum of top-2 biased scores).

Does not: load weights, or support other architectures, rope types other than default/yarn,
or activations other than SiLU -- those raise ``UnsupportedModel`` naming what was found.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUPPORTED = {
    "deepseek_v2": "DeepseekV2ForCausalLM",
    "deepseek_v3": "DeepseekV3ForCausalLM",
}


class EngineError(Exception):
    """Base class for engine errors that carry a user-facing message."""


class UnsupportedModel(EngineError):
    """The checkpoint's config describes a model this engine cannot run."""


@dataclass
class RopeConfig:
    """Rotary embedding parameters; ``rope_type`` is "default" or "yarn"."""

    rope_type: str = "default"
    theta: float = 10000.0
    factor: float | None = None
    original_max_position_embeddings: int | None = None
    beta_fast: float = 32.0
    beta_slow: float = 1.0
    mscale: float | None = None
    mscale_all_dim: float | None = None
    attention_factor: float | None = None
    truncate: bool = True


@dataclass
class EngineConfig:
    """Normalised model hyper-parameters (names follow the HF config)."""

    model_type: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    moe_intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    q_lora_rank: int | None
    kv_lora_rank: int
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int
    n_routed_experts: int
    n_shared_experts: int
    num_experts_per_tok: int
    n_group: int
    topk_group: int
    topk_method: str
    scoring_func: str
    norm_topk_prob: bool
    routed_scaling_factor: float
    first_k_dense_replace: int
    moe_layer_freq: int
    rms_norm_eps: float
    tie_word_embeddings: bool
    max_position_embeddings: int
    rope: RopeConfig
    rope_interleave: bool
    attention_bias: bool = False
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None
    num_nextn_predict_layers: int = 0
    weight_block_size: tuple[int, int] = (128, 128)
    quant_mode: str | None = None  # "int8" / "int4" for a checkpoint written by ``engine quantize``
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def qk_head_dim(self) -> int:
        return self.qk_nope_head_dim + self.qk_rope_head_dim

    @property
    def latent_dim(self) -> int:
        """Width of one cached token per layer: ``kv_lora_rank + qk_rope_head_dim``."""
        return self.kv_lora_rank + self.qk_rope_head_dim

    def is_moe_layer(self, layer: int) -> bool:
        return (
            self.n_routed_experts > 0
            and layer >= self.first_k_dense_replace
            and layer % self.moe_layer_freq == 0
        )

    @classmethod
    def from_file(cls, path: str | Path) -> "EngineConfig":
        path = Path(path)
        if path.is_dir():
            path = path / "config.json"
        if not path.is_file():
            raise EngineError(f"config.json not found: {path}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise EngineError(f"cannot read {path}: {exc}") from exc
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "config.json") -> "EngineConfig":
        model_type = d.get("model_type")
        archs = d.get("architectures") or []
        if model_type not in SUPPORTED:
            raise UnsupportedModel(
                f"{source}: unsupported model_type {model_type!r} (architectures {archs}); "
                f"supported: {', '.join(sorted(SUPPORTED))}"
            )
        if archs and SUPPORTED[model_type] not in archs:
            raise UnsupportedModel(
                f"{source}: unsupported architectures {archs} for model_type {model_type!r}; "
                f"expected {SUPPORTED[model_type]}"
            )
        act = d.get("hidden_act", "silu")
        if act != "silu":
            raise UnsupportedModel(f"{source}: unsupported hidden_act {act!r} (only 'silu')")
        v3 = model_type == "deepseek_v3"

        def req(key: str) -> Any:
            if d.get(key) is None:
                raise EngineError(f"{source}: missing required field {key!r}")
            return d[key]

        n_routed = int(d.get("n_routed_experts") or 0)
        topk_method = d.get("topk_method") or ("noaux_tc" if v3 else "greedy")
        scoring = d.get("scoring_func") or ("sigmoid" if v3 else "softmax")
        if v3:
            # transformers' DeepseekV3TopkRouter always runs sigmoid + noaux_tc.
            topk_method, scoring = "noaux_tc", "sigmoid"
        if topk_method not in ("greedy", "group_limited_greedy", "noaux_tc"):
            raise UnsupportedModel(f"{source}: unsupported topk_method {topk_method!r}")
        if scoring not in ("softmax", "sigmoid"):
            raise UnsupportedModel(f"{source}: unsupported scoring_func {scoring!r}")
        n_group = int(d.get("n_group") or 1)
        topk_group = int(d.get("topk_group") or n_group)
        if topk_method == "greedy":
            n_group, topk_group = 1, 1
        if n_routed and n_routed % n_group:
            raise EngineError(f"{source}: n_routed_experts {n_routed} not divisible by n_group {n_group}")
        if topk_method == "noaux_tc" and n_routed and n_routed // n_group < 2:
            raise EngineError(f"{source}: noaux_tc needs at least 2 experts per group "
                              f"(n_routed_experts {n_routed}, n_group {n_group})")

        if (d.get("quant_config") or {}).get("mode") not in (None, "int8", "int4"):
            raise UnsupportedModel(f"{source}: unsupported quant_config mode {d['quant_config'].get('mode')!r}")
        q_lora = d.get("q_lora_rank")
        quant = d.get("quantization_config") or {}
        block = tuple(quant.get("weight_block_size") or (128, 128))
        return cls(
            model_type=model_type,
            vocab_size=int(req("vocab_size")),
            hidden_size=int(req("hidden_size")),
            intermediate_size=int(req("intermediate_size")),
            moe_intermediate_size=int(d.get("moe_intermediate_size") or 0),
            num_hidden_layers=int(req("num_hidden_layers")),
            num_attention_heads=int(req("num_attention_heads")),
            q_lora_rank=None if q_lora is None else int(q_lora),
            kv_lora_rank=int(req("kv_lora_rank")),
            qk_nope_head_dim=int(req("qk_nope_head_dim")),
            qk_rope_head_dim=int(req("qk_rope_head_dim")),
            v_head_dim=int(req("v_head_dim")),
            n_routed_experts=n_routed,
            n_shared_experts=int(d.get("n_shared_experts") or 0),
            num_experts_per_tok=int(d.get("num_experts_per_tok") or 0),
            n_group=n_group,
            topk_group=topk_group,
            topk_method=topk_method,
            scoring_func=scoring,
            # transformers 5.23's V2 router never renormalises (real V2/V2-Lite configs say False).
            norm_topk_prob=bool(d.get("norm_topk_prob", True)) if v3 else False,
            routed_scaling_factor=float(d.get("routed_scaling_factor", 2.5 if v3 else 1.0)),
            first_k_dense_replace=int(d.get("first_k_dense_replace") or 0),
            moe_layer_freq=int(d.get("moe_layer_freq") or 1),
            rms_norm_eps=float(d.get("rms_norm_eps", 1e-6)),
            tie_word_embeddings=bool(d.get("tie_word_embeddings", False)),
            max_position_embeddings=int(d.get("max_position_embeddings", 4096)),
            rope=_parse_rope(d, source),
            # transformers' V2 always rotates interleaved pairs (complex form); V3 follows the flag.
            rope_interleave=bool(d.get("rope_interleave", True)) if v3 else True,
            attention_bias=bool(d.get("attention_bias", False)),
            bos_token_id=d.get("bos_token_id"),
            eos_token_id=d.get("eos_token_id"),
            num_nextn_predict_layers=int(d.get("num_nextn_predict_layers") or 0),
            weight_block_size=(int(block[0]), int(block[1])),
            quant_mode=(d.get("quant_config") or {}).get("mode"),
            raw=d,
        )


def _parse_rope(d: dict[str, Any], source: str) -> RopeConfig:
    """Merge ``rope_parameters`` (v5) or ``rope_scaling`` (legacy) plus ``rope_theta``."""
    params = dict(d.get("rope_parameters") or d.get("rope_scaling") or {})
    rope_type = params.get("rope_type") or params.get("type") or "default"
    theta = params.get("rope_theta", d.get("rope_theta", 10000.0))
    if rope_type not in ("default", "yarn"):
        raise UnsupportedModel(f"{source}: unsupported rope type {rope_type!r} (default or yarn)")
    rc = RopeConfig(rope_type=rope_type, theta=float(theta))
    if rope_type == "yarn":
        rc.factor = None if params.get("factor") is None else float(params["factor"])
        rc.original_max_position_embeddings = int(
            params.get("original_max_position_embeddings")
            or d.get("original_max_position_embeddings")
            or d.get("max_position_embeddings", 4096)
        )
        if rc.factor is None:
            rc.factor = d.get("max_position_embeddings", 4096) / rc.original_max_position_embeddings
        rc.beta_fast = float(params.get("beta_fast") or 32)
        rc.beta_slow = float(params.get("beta_slow") or 1)
        rc.mscale = params.get("mscale")
        rc.mscale_all_dim = params.get("mscale_all_dim")
        rc.attention_factor = params.get("attention_factor")
        rc.truncate = bool(params.get("truncate", True))
    return rc
