"""Read DeepSeek-V2/V3 weights from HF-layout safetensors into engine tensors.

Does: find shards through ``model.safetensors.index.json`` (or every ``*.safetensors`` when
there is no index), open each lazily with ``safetensors.safe_open`` (mmap, header only until a
tensor is read), map HF names to engine weights, fuse gate+up, stack routed experts (both the
original per-expert layout ``mlp.experts.E.{gate,up,down}_proj.weight`` that ``save_pretrained``
writes, and transformers' packed ``mlp.experts.gate_up_proj`` / ``down_proj``), dequantise FP8
e4m3 weights with block ``weight_scale_inv`` (128x128 by default, ragged edge blocks allowed) once
at load, cast everything else to the requested dtype, and never read MTP layers
(``model.layers.N`` with N >= num_hidden_layers).

Checkpoints written by ``engine quantize`` (``quant_checkpoint.py``) store ``<name>.qweight`` +
``<name>.scales`` instead of ``<name>.weight``; those load straight into ``QuantLinear`` /
``QuantExperts`` (the true input width of each weight comes from the config, since int4 rows are
padded to whole groups), with no float copy.

Does not: keep FP8 weights in FP8 (``load_model(quant=)`` re-quantises to int8/int4 after load),
or write checkpoints (``quant_checkpoint.py`` does).
Errors are ``CheckpointError`` naming the file or tensor at fault.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from safetensors import safe_open

from .config import EngineConfig, EngineError
from .quant import QuantExperts, QuantLinear, QuantWeight

INDEX = "model.safetensors.index.json"
_LAYER = re.compile(r"^model\.layers\.(\d+)\.")
FP8_DTYPES = tuple(
    getattr(torch, n) for n in ("float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2") if hasattr(torch, n)
)


class CheckpointError(EngineError):
    """A shard is missing, unreadable or corrupt, or a required tensor is absent."""


def dequant_fp8_block(weight: torch.Tensor, scale_inv: torch.Tensor,
                      block: tuple[int, int] = (128, 128)) -> torch.Tensor:
    """``weight`` [M, N] fp8 times per-block ``scale_inv`` [ceil(M/bm), ceil(N/bn)] -> fp32 [M, N]."""
    m, n = weight.shape
    bm, bn = block
    if scale_inv.shape != ((m + bm - 1) // bm, (n + bn - 1) // bn):
        raise CheckpointError(
            f"weight_scale_inv shape {tuple(scale_inv.shape)} does not match weight {m}x{n} "
            f"with {bm}x{bn} blocks"
        )
    s = scale_inv.float().repeat_interleave(bm, 0).repeat_interleave(bn, 1)[:m, :n]
    return weight.float() * s


class CheckpointReader:
    """Name -> shard map over a checkpoint directory, with lazily opened mmap handles."""

    trains = False  # its tensors are read from files for serving (``train.model.TensorReader``'s are trained)

    def __init__(self, path: str | Path, cfg: EngineConfig, block: tuple[int, int] = (128, 128)):
        self.dir = Path(path)
        self.cfg = cfg
        self.block = block
        self._handles: dict[Path, object] = {}
        self.weight_map: dict[str, Path] = {}
        self.skipped: list[str] = []  # MTP tensors that will never be read
        index = self.dir / INDEX
        if index.is_file():
            try:
                wm = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            except (OSError, ValueError, KeyError) as exc:
                raise CheckpointError(f"corrupt shard index {index}: {exc}") from exc
            for name, fname in wm.items():
                self.weight_map[name] = self.dir / fname
            for shard in sorted(set(self.weight_map.values())):
                if not shard.is_file():
                    raise CheckpointError(f"missing shard file {shard.name} (listed in {index})")
        else:
            shards = sorted(self.dir.glob("*.safetensors"))
            if not shards:
                raise CheckpointError(f"no *.safetensors files in {self.dir}")
            for shard in shards:
                for name in self._open(shard).keys():
                    self.weight_map[name] = shard
        for name in list(self.weight_map):
            m = _LAYER.match(name)
            if m and int(m.group(1)) >= cfg.num_hidden_layers:
                self.skipped.append(name)
                del self.weight_map[name]

    def _open(self, shard: Path):
        h = self._handles.get(shard)
        if h is None:
            if not shard.is_file():
                raise CheckpointError(f"missing shard file {shard}")
            try:
                h = safe_open(str(shard), framework="pt", device="cpu")
            except Exception as exc:  # safetensors raises SafetensorError / OSError
                raise CheckpointError(f"corrupt or unreadable shard {shard.name}: {exc}") from exc
            self._handles[shard] = h
        return h

    def has(self, name: str) -> bool:
        return name in self.weight_map

    def raw(self, name: str) -> torch.Tensor:
        shard = self.weight_map.get(name)
        if shard is None:
            raise CheckpointError(f"tensor {name} is missing from the checkpoint in {self.dir}")
        try:
            return self._open(shard).get_tensor(name)
        except CheckpointError:
            raise
        except Exception as exc:
            raise CheckpointError(f"cannot read tensor {name} from shard {shard.name}: {exc}") from exc

    def weight(self, prefix: str, dtype: torch.dtype) -> torch.Tensor:
        """``prefix.weight`` in ``dtype``; FP8 weights are dequantised with ``prefix.weight_scale_inv``."""
        w = self.raw(prefix + ".weight")
        if w.dtype in FP8_DTYPES:
            scale_name = prefix + ".weight_scale_inv"
            if not self.has(scale_name):
                raise CheckpointError(f"FP8 tensor {prefix}.weight has no {scale_name}")
            w = dequant_fp8_block(w, self.raw(scale_name), self.block)
        return w.to(dtype)

    def quant_weight(self, prefix: str, in_features: int) -> QuantWeight | None:
        """``prefix.qweight`` + ``prefix.scales`` as a ``QuantWeight``, or None if not stored quantised."""
        if not self.has(prefix + ".qweight"):
            return None
        try:
            q = QuantWeight.infer(self.raw(prefix + ".qweight"), self.raw(prefix + ".scales"), in_features, prefix)
        except ValueError as exc:
            raise CheckpointError(str(exc)) from exc
        group = (self.cfg.raw.get("quant_config") or {}).get("group_size")
        if q.mode == "int4" and group and q.group_size != group:
            raise CheckpointError(f"{prefix}: qweight {tuple(q.qweight.shape)} and scales {tuple(q.scales.shape)} "
                                  f"give int4 groups of {q.group_size}, but quant_config says {group} "
                                  f"(does not fit in_features {in_features})")
        return q

    def need_quant(self, prefix: str, in_features: int) -> QuantWeight:
        q = self.quant_weight(prefix, in_features)
        if q is None:
            raise CheckpointError(f"tensor {prefix}.qweight is missing: the checkpoint is only partly quantised")
        return q

    def linear(self, prefix: str, dtype: torch.dtype, in_features: int) -> torch.Tensor | QuantLinear:
        """A projection weight ``[out, in]``: float (``weight``) or ``QuantLinear`` if stored quantised."""
        q = self.quant_weight(prefix, in_features)
        return self.weight(prefix, dtype) if q is None else QuantLinear(q)

    def optional(self, name: str, dtype: torch.dtype) -> torch.Tensor | None:
        return self.raw(name).to(dtype) if self.has(name) else None


def _fused(reader: CheckpointReader, prefix: str, dtype: torch.dtype, inter: int):
    """Dense SwiGLU at ``prefix`` -> (w13 [2I, D], w2 [D, I]), float tensors or ``QuantLinear``s."""
    dim = reader.cfg.hidden_size
    w2 = reader.linear(prefix + ".down_proj", dtype, inter)
    if reader.has(prefix + ".gate_proj.qweight"):
        parts = [reader.need_quant(f"{prefix}.{n}", dim) for n in ("gate_proj", "up_proj")]
        return QuantLinear(QuantWeight.cat_rows(parts)), w2
    gate = reader.weight(prefix + ".gate_proj", dtype)
    up = reader.weight(prefix + ".up_proj", dtype)
    return torch.cat([gate, up], dim=0), w2


def read_experts(reader: CheckpointReader, prefix: str, dtype: torch.dtype):
    """Routed experts at ``prefix`` (``model.layers.N.mlp.experts``) -> w13 [E, 2I, D], w2 [E, D, I]
    (float tensors, or ``QuantExperts`` for a quantised checkpoint)."""
    cfg = reader.cfg
    e_n, inter, dim = cfg.n_routed_experts, cfg.moe_intermediate_size, cfg.hidden_size
    if reader.has(prefix + ".gate_up_proj.qweight"):
        return (QuantExperts(reader.need_quant(prefix + ".gate_up_proj", dim)),
                QuantExperts(reader.need_quant(prefix + ".down_proj", inter)))
    if reader.has(prefix + ".0.gate_proj.qweight"):
        w13 = [QuantWeight.cat_rows([reader.need_quant(f"{prefix}.{e}.{n}", dim) for n in ("gate_proj", "up_proj")])
               for e in range(e_n)]
        w2 = [reader.need_quant(f"{prefix}.{e}.down_proj", inter) for e in range(e_n)]
        return QuantExperts(QuantWeight.stack(w13)), QuantExperts(QuantWeight.stack(w2))
    if reader.has(prefix + ".gate_up_proj"):  # transformers' packed in-memory layout
        return reader.raw(prefix + ".gate_up_proj").to(dtype), reader.raw(prefix + ".down_proj").to(dtype)
    if reader.trains:
        # Training (``train/model.py``): one stack each, whose backward is one unbind; a write per
        # expert into a buffer has a backward that clones the whole stacked gradient, per expert.
        # Serving keeps the writes: a stack holds every expert twice while it runs.
        w13 = [torch.cat([reader.weight(f"{prefix}.{e}.{n}", dtype) for n in ("gate_proj", "up_proj")]) for e in range(e_n)]
        return torch.stack(w13), torch.stack([reader.weight(f"{prefix}.{e}.down_proj", dtype) for e in range(e_n)])
    w13 = torch.empty(e_n, 2 * inter, dim, dtype=dtype)
    w2 = torch.empty(e_n, dim, inter, dtype=dtype)
    for e in range(e_n):
        p = f"{prefix}.{e}"
        w13[e, :inter] = reader.weight(p + ".gate_proj", dtype)
        w13[e, inter:] = reader.weight(p + ".up_proj", dtype)
        w2[e] = reader.weight(p + ".down_proj", dtype)
    return w13, w2


def read_attention(reader: CheckpointReader, prefix: str, dtype: torch.dtype) -> dict:
    """MLA weights at ``prefix`` (``model.layers.N.self_attn``) keyed as ``attention.MLA`` expects;
    projections are float tensors or ``QuantLinear``s."""
    cfg = reader.cfg
    dim = cfg.hidden_size
    w: dict = {}
    if cfg.q_lora_rank is None:
        w["wq"] = reader.linear(prefix + ".q_proj", dtype, dim)
    else:
        w["wq_a"] = reader.linear(prefix + ".q_a_proj", dtype, dim)
        w["q_norm"] = reader.raw(prefix + ".q_a_layernorm.weight").to(dtype)
        w["wq_b"] = reader.linear(prefix + ".q_b_proj", dtype, cfg.q_lora_rank)
    w["wkv_a"] = reader.linear(prefix + ".kv_a_proj_with_mqa", dtype, dim)
    w["kv_norm"] = reader.raw(prefix + ".kv_a_layernorm.weight").to(dtype)
    w["wkv_b"] = reader.linear(prefix + ".kv_b_proj", dtype, cfg.kv_lora_rank)
    w["wo"] = reader.linear(prefix + ".o_proj", dtype, cfg.num_attention_heads * cfg.v_head_dim)
    for key, name in (("wq_a_bias", "q_a_proj"), ("wkv_a_bias", "kv_a_proj_with_mqa"), ("wo_bias", "o_proj")):
        b = reader.optional(f"{prefix}.{name}.bias", dtype)
        if b is not None:
            w[key] = b
    return w


def load_model(path: str | Path, dtype: torch.dtype = torch.float32, quant: str | None = None):
    """Load a checkpoint directory into a ``DeepseekEngineModel``; ``quant`` "int8"/"int4" then
    quantises its linear weights in place (``quantize_model``). A checkpoint already quantised by
    ``engine quantize`` loads as it is (``quant`` may name its mode, or be None)."""
    from .model import DeepseekEngineModel  # local import keeps loader importable on its own

    cfg = EngineConfig.from_file(Path(path))
    quant = None if quant in (None, "none") else quant
    if cfg.quant_mode and quant not in (None, cfg.quant_mode):
        raise EngineError(f"{path} is already quantised to {cfg.quant_mode}; it cannot load as {quant} "
                          f"(quantise the original checkpoint instead)")
    reader = CheckpointReader(path, cfg, cfg.weight_block_size)
    model = DeepseekEngineModel.from_reader(cfg, reader, dtype)
    model.quant = cfg.quant_mode
    if quant is not None and cfg.quant_mode is None:
        from .quantize_model import quantize_model

        quantize_model(model, quant)
    return model
