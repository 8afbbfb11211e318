"""``engine quantize``: write a weight-only int8 / int4 copy of a checkpoint, once.

Does: stream the source checkpoint tensor by tensor (mmap, so memory stays about one tensor plus
one output shard), dequantise FP8 block-scaled weights, and replace every projection weight --
attention ``q_proj``/``q_a_proj``/``q_b_proj``/``kv_a_proj_with_mqa``/``kv_b_proj``/``o_proj``,
the dense, shared and routed experts' ``gate_proj``/``up_proj``/``down_proj`` (per expert, or
transformers' packed ``gate_up_proj``/``down_proj``) -- by ``<name>.qweight`` + ``<name>.scales``
in the format of ``quant.py``. ``lm_head`` is int8 per row in both modes (as ``quantize_model``
does at load). Embeddings, norms, biases, the router gate and its bias are copied unchanged. MTP
layers are dropped (the engine never reads them). Output: shards of about ``shard_bytes`` with
``model.safetensors.index.json``, ``config.json`` with ``"quant_config": {"mode", "group_size",
"lm_head": "int8"}`` (and no FP8 ``quantization_config``), and the tokenizer / generation files.
``load_model`` then builds ``QuantLinear`` / ``QuantExperts`` straight from it.

Does not: calibrate (round-to-nearest, like ``--quant``), overwrite a non-empty directory, or
write anything ``transformers`` can load (the format is the engine's own).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import save_file

from .config import EngineConfig, EngineError
from .loader import FP8_DTYPES, INDEX, CheckpointReader
from .quant import MODES, quantize

PROJECTIONS = ("q_proj", "q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj",
               "gate_proj", "up_proj", "down_proj", "lm_head")
PACKED_EXPERTS = (".mlp.experts.gate_up_proj", ".mlp.experts.down_proj")
COPY_FILES = ("tokenizer.json", "tokenizer_config.json", "generation_config.json", "special_tokens_map.json")


@dataclass
class QuantizeReport:
    mode: str
    group_size: int
    quantised: int = 0
    copied: int = 0
    dropped: list[str] = field(default_factory=list)
    bytes_in: int = 0
    bytes_out: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"{self.mode} (group {self.group_size or 'per row'}): {self.quantised} weights quantised, "
                f"{self.copied} tensors copied, {len(self.dropped)} MTP tensors dropped; "
                f"{self.bytes_in / 2**20:.1f} MiB -> {self.bytes_out / 2**20:.1f} MiB in {self.seconds:.1f} s")


def _target(name: str, t: torch.Tensor) -> str | None:
    """The prefix to quantise ``name`` under, or None to copy it."""
    if name.endswith(PACKED_EXPERTS) and t.dim() == 3:
        return name
    if name.endswith(".weight") and t.dim() == 2:
        prefix = name[: -len(".weight")]
        if prefix.rsplit(".", 1)[-1] in PROJECTIONS:
            return prefix
    return None


class _ShardWriter:
    """Collects tensors and writes ``model-NNNNN.safetensors`` files of about ``limit`` bytes."""

    def __init__(self, out: Path, limit: int):
        self.out, self.limit = out, limit
        self.pending: dict[str, torch.Tensor] = {}
        self.size = 0
        self.files: list[tuple[str, list[str]]] = []
        self.total = 0

    def add(self, name: str, t: torch.Tensor) -> None:
        t = t.contiguous()
        self.pending[name] = t
        self.size += t.numel() * t.element_size()
        if self.size >= self.limit:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        fname = f"part-{len(self.files) + 1:05d}.safetensors"
        save_file(self.pending, str(self.out / fname), metadata={"format": "pt"})
        self.files.append((fname, list(self.pending)))
        self.total += self.size
        self.pending, self.size = {}, 0

    def finish(self) -> None:
        """Name shards ``model-i-of-n`` and write the index."""
        self.flush()
        n, weight_map = len(self.files), {}
        for i, (tmp, names) in enumerate(self.files, 1):
            final = f"model-{i:05d}-of-{n:05d}.safetensors"
            (self.out / tmp).rename(self.out / final)
            weight_map.update(dict.fromkeys(names, final))
        index = {"metadata": {"total_size": self.total}, "weight_map": weight_map}
        (self.out / INDEX).write_text(json.dumps(index, indent=1), encoding="utf-8")


def quantize_checkpoint(src: str | Path, dst: str | Path, mode: str, group_size: int | None = None,
                        shard_bytes: int = 2 * 2**30, progress=None) -> QuantizeReport:
    """Write the ``mode`` copy of ``src`` to the new or empty directory ``dst``."""
    src, dst = Path(src), Path(dst)
    if mode not in MODES:
        raise EngineError(f"unknown quant mode {mode!r}: use one of {', '.join(MODES)}")
    group = (128 if mode == "int4" else 0) if group_size is None else int(group_size)
    if mode == "int4" and (group <= 0 or group % 2):
        raise EngineError(f"int4 group size must be a positive even number, got {group}")
    cfg = EngineConfig.from_file(src)
    if cfg.quant_mode:
        raise EngineError(f"{src} is already quantised ({cfg.quant_mode}); quantise the original checkpoint")
    if dst.exists() and any(dst.iterdir()):
        raise EngineError(f"output directory {dst} is not empty")
    reader = CheckpointReader(src, cfg, cfg.weight_block_size)
    report = QuantizeReport(mode, group, dropped=list(reader.skipped))
    start = time.perf_counter()
    dst.mkdir(parents=True, exist_ok=True)
    writer = _ShardWriter(dst, shard_bytes)
    names = sorted(reader.weight_map)
    for i, name in enumerate(names):
        if name.endswith("_scale_inv") and reader.has(name[: -len("_scale_inv")]):
            continue  # consumed by the FP8 dequantisation of its weight
        raw = reader.raw(name)
        report.bytes_in += raw.numel() * raw.element_size()
        prefix = _target(name, raw)
        if prefix is None:
            if raw.dtype in FP8_DTYPES:
                raise EngineError(f"{name} is FP8 but not a projection weight this tool knows how to dequantise")
            writer.add(name, raw)
            report.copied += 1
        else:
            w = reader.weight(prefix, torch.float32) if name.endswith(".weight") else raw.float()
            q = quantize(w, "int8" if prefix == "lm_head" else mode, group or None)
            for k, t in q.to_tensors(prefix).items():
                writer.add(k, t)
            report.quantised += 1
        if progress:
            progress(i + 1, len(names), name)
    writer.finish()
    report.bytes_out = writer.total
    config = dict(cfg.raw)
    config.pop("quantization_config", None)
    config["quant_config"] = {"mode": mode, "group_size": group, "lm_head": "int8"}
    (dst / "config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")
    for f in COPY_FILES:
        if (src / f).is_file():
            shutil.copy(src / f, dst / f)
    report.seconds = time.perf_counter() - start
    return report
