"""One measured run of ``engine bench``, in its own process so its peak RSS is its own.

    python -m assistant.engine.bench_worker PHASE --model DIR --out FILE [--quant int8|int4]
        [--impl eager|grouped_mm] [--contexts 128,1024,4096] [--decode 16] [--threads N]

PHASE is ``copy`` (memory-copy bandwidth and fp32 matmul GFLOP/s), ``ours`` (this engine, fp32 or ``--quant``) or ``hf``
(``transformers`` fp32 with ``experts_implementation=--impl``). For each context length C the
model prefills C random tokens (timed: prefill tokens/s), then decodes ``--decode`` tokens one at
a time, greedy (median ms/token). ``ours`` also saves, for drift, the logits of a fixed 128-token
prompt and a greedy 32-token continuation. Writes one JSON file (and a ``.pt`` with the tensors).

Both implementations run the same protocol: a fresh cache per context, batch 1, the same
threads, ``inference_mode``; transformers gets ``logits_to_keep=1`` on prefill, as ``generate``
does. Does not: compare or print (``bench.py`` does), or run on CUDA.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from pathlib import Path

import torch

DRIFT_PROMPT, DRIFT_GREEDY = 128, 32
WARMUP_S = 3.0


def _rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def copy_bandwidth(gib: float = 1.0, repeats: int = 10) -> float:
    """Best-of-``repeats`` ``dst.copy_(src)`` on filled tensors, in GB/s of bytes read + written."""
    n = int(gib * 2**30) // 4
    src, dst = torch.randn(n), torch.randn(n)
    best = float("inf")
    for _ in range(repeats + 1):
        t = time.perf_counter()
        dst.copy_(src)
        best = min(best, time.perf_counter() - t)
    return 2 * n * 4 / best / 1e9


class _Ours:
    """This engine: prefill through ``DeepseekEngineModel.forward``, decode through ``ModelRunner``."""

    def __init__(self, path: Path, quant: str | None):
        from .loader import load_model
        from .runner import ModelRunner

        self.model = load_model(path, torch.float32, quant)
        self.runner = ModelRunner(self.model)
        self.cfg = self.model.cfg

    def prefill(self, ids: list[int]):
        self.cache = self.runner.new_cache(len(ids) + 64)
        return self.runner.prefill(ids, self.cache)

    def step(self, tok: int):
        return self.runner.decode([tok], [self.cache])[0]

    def all_logits(self, ids: list[int]) -> torch.Tensor:
        with torch.inference_mode():
            return self.model.forward(torch.tensor(ids), None, self.model.new_cache(len(ids))).float()


class _HF:
    """transformers' ``DeepseekV2ForCausalLM`` / V3 with a ``DynamicCache``."""

    def __init__(self, path: Path, impl: str):
        from transformers import AutoModelForCausalLM

        self.model = AutoModelForCausalLM.from_pretrained(
            path, dtype=torch.float32, experts_implementation=impl).eval()
        self.cfg = self.model.config

    @torch.inference_mode()
    def prefill(self, ids: list[int]):
        from transformers import DynamicCache

        self.cache = DynamicCache(config=self.cfg)
        out = self.model(torch.tensor([ids]), past_key_values=self.cache, use_cache=True, logits_to_keep=1)
        return out.logits[0, -1]

    @torch.inference_mode()
    def step(self, tok: int):
        out = self.model(torch.tensor([[tok]]), past_key_values=self.cache, use_cache=True)
        return out.logits[0, -1]


def gemm_gflops(n: int = 1024, k: int = 2048, m: int = 2816, repeats: int = 5) -> float:
    """Best-of fp32 ``F.linear`` [n, k] x [m, k]^T (an expert's gate+up at prefill size), GFLOP/s."""
    a, b = torch.randn(n, k), torch.randn(m, k)
    best = float("inf")
    for _ in range(repeats + 1):
        t = time.perf_counter()
        torch.nn.functional.linear(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n * k * m / best / 1e9


def measure(impl, contexts: list[int], decode: int, vocab: int, seed: int = 0) -> list[dict]:
    """Prefill then greedy decode at each context length; returns one dict per context.

    An untimed warm-up first (at least 8 decode steps and about 3 s, at most 48 steps): it faults
    in mmap-backed weights, lets each library pick its kernels, and outlasts the stalls right
    after loading (the OS returning the freed float copies: 2-3x slower steps for a second or two),
    so the first timed context is not charged for them."""
    logits, start = impl.prefill(list(range(16))), time.perf_counter()
    for n in range(48):
        if n >= 8 and time.perf_counter() - start > WARMUP_S:
            break
        logits = impl.step(int(torch.argmax(logits)))
    rows = []
    for ctx in contexts:
        g = torch.Generator().manual_seed(seed + ctx)
        ids = torch.randint(0, vocab, (ctx,), generator=g).tolist()
        t = time.perf_counter()
        logits = impl.prefill(ids)
        prefill_s = time.perf_counter() - t
        times = []
        for _ in range(decode):
            tok = int(torch.argmax(logits))
            t = time.perf_counter()
            logits = impl.step(tok)
            times.append(time.perf_counter() - t)
        rows.append({"context": ctx, "prefill_s": prefill_s, "prefill_tok_s": ctx / prefill_s,
                     "decode_ms": statistics.median(times) * 1e3, "decode_ms_all": [x * 1e3 for x in times]})
    return rows


def greedy(impl, ids: list[int], n: int) -> list[int]:
    logits, out = impl.prefill(ids), []
    for _ in range(n):
        out.append(int(torch.argmax(logits)))
        logits = impl.step(out[-1])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench_worker")
    ap.add_argument("phase", choices=["copy", "ours", "hf"])
    ap.add_argument("--model", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--quant", choices=["none", "int8", "int4"], default="none")
    ap.add_argument("--impl", default="eager")
    ap.add_argument("--contexts", default="128,1024,4096")
    ap.add_argument("--decode", type=int, default=16)
    ap.add_argument("--threads", type=int)
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    res: dict = {"phase": a.phase, "threads": torch.get_num_threads()}
    if a.phase == "copy":
        res["copy_gb_s"] = copy_bandwidth()
        res["gemm_gflops"] = gemm_gflops()
    else:
        t = time.perf_counter()
        impl = _Ours(a.model, None if a.quant == "none" else a.quant) if a.phase == "ours" else _HF(a.model, a.impl)
        res["load_s"] = time.perf_counter() - t
        vocab = impl.cfg.vocab_size
        res["runs"] = measure(impl, [int(c) for c in a.contexts.split(",")], a.decode, vocab)
        g = torch.Generator().manual_seed(1234)
        prompt = torch.randint(0, vocab, (DRIFT_PROMPT,), generator=g).tolist()
        res["greedy"] = greedy(impl, prompt, DRIFT_GREEDY)
        if a.phase == "ours":
            from .bench_bytes import decode_weight_bytes

            res["decode_weight_bytes"] = decode_weight_bytes(impl.model)
            torch.save({"logits": impl.all_logits(prompt)}, a.out.with_suffix(".pt"))
        res["peak_rss_gib"] = _rss_gib()
    a.out.write_text(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
