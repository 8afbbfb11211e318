"""``python app.py engine train``: data, tokenizer, model, AdamW, and a checkpoint in HF layout.

Does: take the data from ``prepared`` (the synthetic training split, the BPE tokenizer trained on
it, every conversation rendered through the chat template the checkpoint ships, so training sees
exactly the tokens the engine will be served; made here, or read from a ``--prepare`` file), and
train with the loss on assistant tokens only (replies, tool calls
and their closing end-of-sentence). Batches are length-bucketed up to a token budget; the schedule
is linear warm-up then cosine decay; the router bias is steered after every step the
DeepSeek-V3 way (aux-loss-free: raise the bias of under-used experts, lower it for over-used ones).
At the end it measures each MoE layer's expert utilisation on unseen conversations and writes the
checkpoint, ``train_config.json`` and ``train_report.json``.

Mixed precision (``precision``): the matmuls run under bf16 autocast where the hardware does bf16
natively (a CPU with AVX512-BF16 or AMX, a GPU with bf16), with the weights, AdamW, the router and
(on the CPU) attention in fp32; on this machine's 2 cores six real batches took 14% less time than in
fp32, so the same minutes cover more conversations. Elsewhere, or with ``precision`` "fp32",
everything is fp32.

Does not: resume or shard across processes (the weights are stored in bf16 afterwards).
"""

from __future__ import annotations

import json
import math
import os
import random
import time
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

from ..config import EngineConfig, EngineError
from . import model as tmodel
from . import prepared
from . import tokenizer as ttok
from .choosing import Choosing, choosing
from .curriculum import DrillPhase, Encoded, batches, collate, schedule


@dataclass
class TrainConfig:
    examples: int = 120000         # synthetic training conversations
    random_fill: float = 0.8       # share of copied fill-ins made random (data.COPIED): forces copying
    compose: float = 0.5           # share of requests phrased from recombined templates (data_compose)
    answered: float = 0.5          # share of grounded answers about a random topic (data_compose.answered)
    copy_drills: int = 40000       # sequences of random tokens said twice (see ``copy_drills``)
    drill_steps: int = 3000        # at most this many steps on drills alone (see ``DrillPhase``), then the
                                   # drill batches are shuffled in among the conversations'. Copying formed by
                                   # step 1,974 in every run that formed it (runs 22-28); the stalled ones were
                                   # still at 3.6-4.3 at steps 2,500-3,475 (27a, 28a)
    drill_restarts: int = 2        # a drill phase that reaches its cap unformed starts again from fresh weights
                                   # (the next seed), at most this many times, within the same ``minutes``
    drill_target: float | None = 1.0  # the phase ends sooner once the drill loss is below this (None: never);
                                      # 1.5, mid-drop, let copying fall apart once conversations came in (run 16)
    drill_batch: int = 32          # drills per batch, of mixed lengths (see ``drill_batches``)
    drill_lengths: tuple[int, int] = (3, 12)  # tokens per drilled span; short spans leave the plateau sooner
    drill_distinct: bool = True    # no token twice in one drilled span (see ``copy_drills``)
    drill_widen: float = 0.3       # after the drill phase, share of drill tokens drawn from the whole vocabulary
    choice_weight: float = 4.0     # loss weight of the tokens that choose (a reply's first, the tool's name; ``Choosing``)
    choice_arguments: float = 4.0  # loss weight of the choices inside a call's arguments ({, keys, value starts, , or });
                                   # 1: not weighted. Runs 24-25 (4): arguments up, selection down; the default
                                   # since runs 27 and 28 (1 until then)
    choice_values: bool = True     # with choice_arguments, weight every token of a string value (going on as
                                   # much as closing; ``Choosing``); moot when choice_arguments is 1
    vocab_size: int = 6000
    tokenizer_examples: int = 8000  # conversations the BPE is trained on
    steps: int = 12000             # a cap for a GPU run; on the CPU ``minutes`` ends the run first
    minutes: float = 100.0         # cap on the optimisation loop (the issue allows 2 hours in all)
    batch_tokens: int = 4096       # padded tokens per batch
    max_len: int = 1024            # longer conversations are dropped (and counted)
    lr: float = 2e-3
    min_lr: float = 1e-4
    warmup: int = 100
    weight_decay: float = 0.1
    clip: float = 1.0
    bias_update: float = 1e-3      # DeepSeek-V3's gamma for the router bias
    seed: int = 1                  # data and weights; 0 until run 28, whose drill phase stalled on seed 0 (28a)
    threads: int | None = None
    device: str = "auto"           # "auto": CUDA when a GPU is visible, else the CPU
    precision: str = "auto"        # "auto": bf16 autocast where the hardware has bf16 (``autocast_dtype``); "bf16"; "fp32"
    save_every: float = 10.0       # minutes between snapshots of the checkpoint into the output directory
    shape: tmodel.Shape = field(default_factory=tmodel.Shape)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """A ``train_config.json``: missing fields keep their defaults; an unknown field or a value of
        the wrong type (``"no"`` for a flag would otherwise read as true) is a ValueError naming it."""
        if not isinstance(d, dict):
            raise ValueError(f"a training config is a JSON object, not {type(d).__name__}")
        d = dict(d)
        shape = tmodel.Shape(**checked(tmodel.Shape, d.pop("shape", {})))
        cfg = cls(**checked(cls, d), shape=shape)
        # Asked for in so many words, values weighted 1 times would be a silent no-op; left at its
        # default, choice_values simply goes with choice_arguments 1 (weighting off).
        if d.get("choice_values") is True and cfg.choice_arguments == 1:
            raise ValueError("TrainConfig.choice_values weights the arguments' tokens: "
                             "it needs choice_arguments other than 1")
        return cfg


def checked(cls, d: dict) -> dict:
    """``d`` with its lists made tuples where ``cls`` declares tuples, after checking every key is a
    field of the dataclass ``cls`` and every value has the field's type (an int is a float too; a bool
    is not a number)."""
    if not isinstance(d, dict):
        raise ValueError(f"{cls.__name__} must be a JSON object, not {type(d).__name__}")
    hints = typing.get_type_hints(cls)
    out = {}
    for key, value in d.items():
        if key not in hints:
            raise ValueError(f"unknown {cls.__name__} field {key!r}")
        if not _fits(value, hints[key]):
            raise ValueError(f"{cls.__name__}.{key} must be {_name(hints[key])}, not {value!r}")
        out[key] = tuple(value) if typing.get_origin(hints[key]) is tuple else value
    return out


def _fits(value, hint) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if origin is tuple:
        return (isinstance(value, (list, tuple)) and len(value) == len(args)
                and all(_fits(v, a) for v, a in zip(value, args)))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, origin or hint)


def _name(hint) -> str:
    return str(hint) if typing.get_origin(hint) else hint.__name__


# oneDNN (the CPU's bf16 matmuls) keeps 1,024 compiled kernels by default, one per shape, and a run meets
# more: ~900 for the bucketed products (``layers.row_bucket``) and three for each distinct batch size in the
# MoE's slot-weighting bmm (349 a pass). An evicted kernel is compiled again when its shape comes back
# (1.06 ms a product of 100-150 rows after 1,200 other shapes, 0.14 ms with room; ``/tmp`` microbenchmark).
# Run 27's steps slowed from 0.57 s to 0.9 s with the default; run 28, with this room and the same batches,
# held 0.59-0.63 s a step from step 5,000 on.
KERNEL_CACHE = "16384"


def roomy_kernel_cache() -> None:
    """Let oneDNN keep every kernel a run compiles. It reads the capacity when it builds its first
    kernel, so this goes before any product; a capacity set in the environment stands."""
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", KERNEL_CACHE)


def train_device(name: str) -> torch.device:
    """``auto`` -> CUDA when a GPU is visible, else the CPU; ``cuda`` without one is a clear error."""
    from ..runner import resolve_device

    return resolve_device(("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 when asked for, or on "auto" where bf16 is native (bf16 emulated on an older CPU is slower
    than fp32); None for fp32."""
    if precision not in ("auto", "bf16", "fp32"):  # a train_config.json can say anything
        raise EngineError(f"precision must be auto, bf16 or fp32, not {precision!r}")
    if precision == "auto":
        native = (torch.cuda.is_bf16_supported() if device.type == "cuda" else
                  any(getattr(torch.cpu, probe, lambda: False)()
                      for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")))
        precision = "bf16" if native else "fp32"
    return torch.bfloat16 if precision == "bf16" else None


def lr_at(step: int, cfg: TrainConfig, elapsed: float = 0.0) -> float:
    """Warm-up, then cosine decay to ``min_lr`` by the last step or the time cap, whichever
    comes first (``elapsed`` seconds), so a run stopped by the clock still ends annealed."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = min(1.0, max((step - cfg.warmup) / max(1, cfg.steps - cfg.warmup), elapsed / (cfg.minutes * 60)))
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * progress))


def moe_layers(model) -> list[tuple[int, object]]:
    return [(i, layer.mlp) for i, layer in enumerate(model.layers) if hasattr(layer.mlp, "last_counts")]


def steer_bias(params: dict, model, gamma: float) -> None:
    """Aux-loss-free balancing: bias += gamma * sign(mean load - load) per expert."""
    for i, moe in moe_layers(model):
        bias = params[f"model.layers.{i}.mlp.gate.e_score_correction_bias"]
        load = torch.tensor(moe.last_counts, dtype=torch.float32, device=bias.device)
        bias += gamma * torch.sign(load.mean() - load)


def loss_of(model, batch: list[Encoded], pad_id: int, choose: Choosing | None = None) -> tuple[torch.Tensor, int]:
    """The weighted mean cross-entropy over the assistant tokens of ``batch``, and their count."""
    inputs, labels, weights = (t.to(model.embed.device) for t in collate(batch, pad_id, choose))
    hidden = model.forward_train(inputs)
    rows = weights.nonzero().squeeze(1)  # only assistant positions reach the lm_head
    losses = F.cross_entropy(model.logits(hidden[rows]), labels[rows], reduction="none")
    weights = weights[rows]
    return (losses * weights).sum() / weights.sum(), int(rows.numel())


@torch.no_grad()
def utilisation(cfg: EngineConfig, params: dict, data: list[Encoded], pad_id: int, budget: int) -> dict:
    """Share of routed (token, slot) assignments each expert receives, per MoE layer, over ``data``."""
    totals: dict[int, torch.Tensor] = {}
    model = tmodel.build(cfg, params)
    for batch in batches(data, budget, random.Random(0)):
        loss_of(model, batch, pad_id)
        for i, moe in moe_layers(model):
            totals[i] = totals.get(i, torch.zeros(cfg.n_routed_experts)) + torch.tensor(moe.last_counts, dtype=torch.float32)
    report = {}
    for i, counts in sorted(totals.items()):
        share = counts / counts.sum()
        report[str(i)] = {"share": [round(float(s), 4) for s in share],
                          "max_over_mean": round(float(share.max() * len(share)), 3),
                          "min_over_mean": round(float(share.min() * len(share)), 3)}
    return report


def write_checkpoint(out: Path, hf: dict, params: dict, tok: Tokenizer) -> None:
    tmodel.save(out, hf, params)
    ttok.save(tok, out)
    (out / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": hf["bos_token_id"], "eos_token_id": hf["eos_token_id"]}), "utf-8")


def fresh_weights(ecfg: EngineConfig, cfg: TrainConfig, seed: int, device: torch.device):
    """-> (the HF-named weights initialised from ``seed``, their AdamW). Initialised on the CPU, so a GPU
    run starts from the same weights; the router bias and norms (1-d) are not decayed."""
    params = {k: t.detach().to(device).requires_grad_(t.requires_grad)
              for k, t in tmodel.init_params(ecfg, seed=seed).items()}
    decay = [t for t in params.values() if t.requires_grad and t.dim() == 2]
    no_decay = [t for t in params.values() if t.requires_grad and t.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95))
    return params, opt


def train(cfg: TrainConfig, out: Path, log=print, data: Path | None = None) -> dict:
    """Run the whole pipeline into ``out``; returns the report (also written as train_report.json).
    With ``data``, the conversations, tokenizer and drills come from that ``prepared`` file (made by
    ``prepared.save`` with the same data settings) instead of being made here."""
    roomy_kernel_cache()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    device = train_device(cfg.device)  # before the data, so a bad --device or precision fails at once
    low = autocast_dtype(cfg.precision, device)
    t0 = time.monotonic()
    prep = prepared.load(data, cfg) if data else prepared.prepare(cfg)
    tok, kept, drills, later = prep.tok, prep.kept, prep.drills, prep.later
    rng = random.Random()
    rng.setstate(prep.rng_state)
    log(prep.summary() + (f" (prepared; read in {time.monotonic() - t0:.0f} s)" if data else ""))

    shape = tmodel.Shape(**{**asdict(cfg.shape), "vocab_size": tok.get_vocab_size()})
    hf = tmodel.hf_config(shape, bos_token_id=tok.token_to_id(ttok.BOS), eos_token_id=tok.token_to_id(ttok.EOS))
    ecfg = EngineConfig.from_dict(hf)
    seed = cfg.seed
    params, opt = fresh_weights(ecfg, cfg, seed, device)
    pad_id = tok.token_to_id(ttok.PAD)
    choose = choosing(tok, cfg.choice_weight, cfg.choice_arguments, cfg.choice_values)
    log(f"model: {sum(t.numel() for t in params.values()) / 1e6:.2f} M parameters; "
        f"{'bf16 autocast' if low else 'fp32'} on {device.type}")

    items = len(kept) + len(drills)  # one pass ("epoch") over the training data
    curve, step, seen, started = [], 0, 0, time.monotonic()
    saved, stopped, restarts = started, "steps", []
    phase = DrillPhase(cfg.drill_steps, cfg.drill_target)
    batches = schedule(kept, drills, cfg, rng, phase, later)
    while True:  # the schedule never ends; a restart swaps it for a new one
        batch = next(batches)
        if phase.losses and not phase.active and phase.steps == step:  # the first batch after the drill phase
            log(f"drills alone: {phase.steps} steps, drill loss {phase.recent_loss:.2f}: "
                + ("copying formed" if phase.formed else "the cap came first; copying may not have formed"))
            if not phase.formed and len(restarts) < cfg.drill_restarts:
                # Whether copying forms is down to the initial weights (seed 0 stalled twice on the plateau
                # where seed 1 formed at step ~1,790), and a model that cannot copy cannot learn the tool
                # calls: start again from the next seed's weights, on the same data, within the same minutes.
                restarts.append({"seed": seed, "steps": phase.steps, "loss": round(phase.recent_loss, 3)})
                seed += 1
                log(f"drill phase stalled: starting again from the weights of seed {seed}")
                params, opt = fresh_weights(ecfg, cfg, seed, device)
                curve, step, seen = [], 0, 0
                phase = DrillPhase(cfg.drill_steps, cfg.drill_target)
                batches = schedule(kept, drills, cfg, rng, phase, later)
                continue
        if step >= cfg.steps:
            break
        if time.monotonic() - started > cfg.minutes * 60:
            stopped = "time"
            break
        lr = lr_at(step, cfg, time.monotonic() - started)
        for group in opt.param_groups:
            group["lr"] = lr
        model = tmodel.build(ecfg, params)
        with torch.autocast(device.type, dtype=low or torch.float32, enabled=low is not None):
            loss, n = loss_of(model, batch, pad_id, choose)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([t for t in params.values() if t.requires_grad], cfg.clip)
        opt.step()
        phase.record(loss.item())
        with torch.no_grad():
            steer_bias(params, model, cfg.bias_update)
        if step % 25 == 0 or step == cfg.steps - 1:
            curve.append({"step": step, "loss": round(loss.item(), 4), "lr": round(lr, 6),
                          "seconds": round(time.monotonic() - started, 1)})
            log(f"step {step} epoch {seen / items:.2f} loss {loss.item():.4f} ({n} targets) "
                f"{time.monotonic() - started:.0f} s")
        step += 1
        seen += len(batch)
        if time.monotonic() - saved > cfg.save_every * 60:  # a snapshot to evaluate while training goes on
            write_checkpoint(out, hf, params, tok)
            saved = time.monotonic()

    write_checkpoint(out, hf, params, tok)
    report = {
        "steps": step, "epochs": round(seen / items, 2), "stopped_by": stopped,
        "device": device.type, "precision": "bf16" if low else "fp32", "threads": torch.get_num_threads(),
        "train_seconds": round(time.monotonic() - started, 1), "total_seconds": round(time.monotonic() - t0, 1),
        "data": str(data) if data else "generated",
        "conversations": len(kept), "dropped_too_long": prep.generated - len(kept), "copy_drills": len(drills),
        "drill_phase": {"steps": phase.steps, "loss": phase.recent_loss and round(phase.recent_loss, 3),
                        "copying_formed": phase.formed},
        "weights_seed": seed, "drill_restarts": restarts,
        "tokens_per_epoch": sum(len(e.ids) for e in kept), "parameters": sum(t.numel() for t in params.values()),
        "final_loss": curve[-1]["loss"] if curve else None, "loss_curve": curve,
        "expert_utilisation": utilisation(ecfg, params, prep.probe, pad_id, cfg.batch_tokens),
    }
    (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2), "utf-8")
    (out / "train_report.json").write_text(json.dumps(report, indent=2), "utf-8")
    return report
