"""``python app.py engine train``: the command line over ``loop.train``.

    python app.py engine train --out DIR [--config train_config.json] [--examples N --steps N
                                          --minutes M --threads N --seed N --device D
                                          --precision P --data FILE --force]
    python app.py engine train --prepare FILE [--config ... --examples N --seed N]

``--config`` reads a ``train_config.json`` (the bundled model's lives next to its weights), and the
flags override its fields. The output directory must be new or empty unless ``--force``.
``--prepare`` only makes the data (conversations, tokenizer, drills) into one file, and ``--data``
trains from such a file (``prepared``): the optimisation then needs only torch and tokenizers, as
on a lent GPU machine (``python -m assistant.engine train ...`` there, without the app).

Does not: evaluate (``engine eval-assistant``) or quantise (``engine quantize``).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

OVERRIDES = ("examples", "steps", "minutes", "threads", "seed", "device", "precision")


def add_parser(cmds) -> None:
    p = cmds.add_parser("train", help="train the bundled offline model from synthetic data (CPU or GPU)")
    p.add_argument("--out", type=Path, help="output checkpoint directory (HF layout)")
    p.add_argument("--prepare", type=Path, metavar="FILE", help="only make the training data into FILE, then stop")
    p.add_argument("--data", type=Path, metavar="FILE", help="train from data made by --prepare")
    p.add_argument("--config", type=Path, help="train_config.json to start from (default: built-in defaults)")
    p.add_argument("--examples", type=int, help="synthetic training conversations")
    p.add_argument("--steps", type=int, help="optimiser steps")
    p.add_argument("--minutes", type=float, help="stop the optimisation after this long")
    p.add_argument("--threads", type=int, help="torch threads")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="auto (default): CUDA when a GPU is visible")
    p.add_argument("--precision", choices=["auto", "bf16", "fp32"],
                   help="auto (default): bf16 autocast where the hardware has bf16, else fp32")
    p.add_argument("--seed", type=int)
    p.add_argument("--force", action="store_true", help="write into a non-empty --out, or over an existing --prepare file")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(args: argparse.Namespace) -> int:
    from ..config import EngineError
    from . import prepared
    from .loop import TrainConfig, train

    cfg = TrainConfig()
    if args.config:
        try:
            cfg = TrainConfig.from_dict(json.loads(args.config.read_text("utf-8")))
        except (OSError, ValueError, TypeError) as exc:
            raise EngineError(f"cannot read training config {args.config}: {exc}") from exc
    cfg = replace(cfg, **{k: getattr(args, k) for k in OVERRIDES if getattr(args, k) is not None})
    if args.prepare:
        if args.out or args.data:
            raise EngineError("--prepare makes the data only: leave out --out and --data")
        if args.prepare.exists() and not args.force:  # minutes of work; the file may be a device run's input
            raise EngineError(f"{args.prepare} exists (pass --force to overwrite)")
        made = prepared.prepare(cfg)
        prepared.save(made, args.prepare)
        log(made.summary())
        print(f"wrote {args.prepare} ({args.prepare.stat().st_size / 2 ** 20:.1f} MiB)")
        return 0
    if not args.out:
        raise EngineError("engine train needs --out DIR (or --prepare FILE)")
    if args.out.exists() and any(args.out.iterdir()) and not args.force:
        raise EngineError(f"{args.out} is not empty (pass --force to overwrite)")
    report = train(cfg, args.out, log=log, data=args.data)
    print(json.dumps({k: v for k, v in report.items() if k != "loss_curve"}, indent=2))
    return 0
