"""``python app.py engine ...``: serve a local DeepSeek-architecture checkpoint, or generate once.

    python app.py engine serve --model PATH [--host 127.0.0.1 --port 8000 --dtype float32
                                             --quant none|int8|int4 --max-batch 8 --threads N
                                             --device auto|cpu|cuda]
    python app.py engine generate --model PATH --prompt TEXT [--max-tokens 64 --temperature 0
                                                             --seed N --chat --json]
    python app.py engine quantize --model PATH --out DIR --quant int8|int4 [--group-size 128]
    python app.py engine bench [--json --model PATH --layers 3 --contexts 128,1024,4096 --decode 16]
    python app.py engine train --out DIR [--config FILE --examples N --steps N --minutes M]   (train/cli.py)
    python app.py engine eval-assistant [--model DIR --n 400 --json]                          (train/evaluate.py)

``serve`` exposes the OpenAI-compatible API of ``server.py``.  ``generate`` encodes the prompt as
raw text (no chat template) unless ``--chat`` is given, and with ``--json`` prints one line
``{"text": ..., "token_ids": [...]}``. ``quantize`` writes a pre-quantised copy once
(``quant_checkpoint.py``) that ``serve`` / ``generate`` load without ``--quant``.  A bad model path or an unsupported checkpoint ends with
one line on stderr and exit status 2, not a traceback.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from pathlib import Path

DTYPES = ("float32", "bfloat16")


def add_parser(sub, **kwargs) -> None:
    """The ``engine`` command and its subcommands; ``kwargs`` go to its parser (``prog``)."""
    engine = sub.add_parser("engine", help="local DeepSeek-architecture engine: serve or generate", **kwargs)
    cmds = engine.add_subparsers(dest="engine_command", required=True)

    def model_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--model", required=True, type=Path, help="checkpoint directory (HF layout)")
        p.add_argument("--dtype", choices=DTYPES, default="float32", help="weight dtype (default float32)")
        p.add_argument("--quant", choices=["none", "int8", "int4"], default="none",
                       help="weight-only int8 (per row) / int4 (groups of 128) after load; CPU only")
        p.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
        p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                       help="auto (default): cuda when a GPU is visible and the weights are float, else cpu")
        p.add_argument("--max-context", type=int, help="context length (default: the model's)")

    serve = cmds.add_parser("serve", help="serve an OpenAI-compatible API (chat, completions, tools, streaming)")
    model_args(serve)
    serve.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1; there is no auth)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--max-batch", type=int, default=8, help="sequences decoded together")

    gen = cmds.add_parser("generate", help="generate once and print the text")
    model_args(gen)
    gen.add_argument("--prompt", required=True)
    gen.add_argument("--max-tokens", type=int, default=64)
    gen.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    gen.add_argument("--top-p", type=float, default=1.0)
    gen.add_argument("--seed", type=int)
    gen.add_argument("--chat", action="store_true", help="wrap the prompt as one user message in the chat template")
    gen.add_argument("--json", action="store_true", help='print {"text", "token_ids"}')
    quant = cmds.add_parser("quantize", help="write a weight-only int8/int4 copy of a checkpoint")
    quant.add_argument("--model", required=True, type=Path, help="source checkpoint directory (HF layout)")
    quant.add_argument("--out", required=True, type=Path, help="new (or empty) output directory")
    quant.add_argument("--quant", required=True, choices=["int8", "int4"])
    quant.add_argument("--group-size", type=int, help="int4 group size (default 128)")
    bench = cmds.add_parser("bench", help="our engine vs transformers on a V2-Lite-shaped random checkpoint")
    bench.add_argument("--model", type=Path, help="checkpoint to use (default: build a V2-Lite-shaped one once)")
    bench.add_argument("--layers", type=int, default=3, help="depth of the built checkpoint (default 3)")
    bench.add_argument("--contexts", default="128,1024,4096", help="context lengths (default 128,1024,4096)")
    bench.add_argument("--decode", type=int, default=16, help="decode steps timed per context (default 16)")
    bench.add_argument("--threads", type=int, help="torch threads for every run (default: torch's choice)")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    from .train import cli as train_cli, evaluate

    train_cli.add_parser(cmds)
    evaluate.add_parser(cmds)
    engine.set_defaults(func=run)


def run(_settings, args: argparse.Namespace) -> int:
    from .config import EngineError

    try:
        return COMMANDS[args.engine_command](args)
    except EngineError as exc:
        print(f"lingxi engine: {exc}", file=sys.stderr)
        return 2


def _open_engine(args: argparse.Namespace, **extra):
    """Build the ``LLMEngine``; raises ``EngineError`` with a one-line reason."""
    import torch

    from .config import EngineError
    from .engine import LLMEngine

    path: Path = args.model
    if not path.is_dir():
        raise EngineError(f"model directory not found: {path}")
    if not (path / "config.json").is_file():
        raise EngineError(f"{path} has no config.json: is it a Hugging Face checkpoint directory?")
    if not (path / "tokenizer.json").is_file():
        raise EngineError(f"{path} has no tokenizer.json")
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EngineError(f"cannot read {path / 'config.json'}: {exc}") from exc
    device = args.device
    if device == "auto":
        quantised = args.quant != "none" or bool(isinstance(config, dict) and config.get("quant_config"))
        device = "cuda" if torch.cuda.is_available() and not quantised else "cpu"
    kwargs = dict(dtype=getattr(torch, args.dtype), threads=args.threads, max_context=args.max_context,
                  device=device, **extra)
    accepted = inspect.signature(LLMEngine).parameters
    if args.quant != "none":
        if "quant" not in accepted:
            raise EngineError(f"--quant {args.quant} is not supported by this engine")
        kwargs["quant"] = args.quant
    kwargs = {k: v for k, v in kwargs.items() if k in accepted}
    try:
        return LLMEngine(path, **kwargs)
    except EngineError:
        raise
    except (OSError, ValueError, KeyError) as exc:  # unreadable files, malformed JSON, ...
        raise EngineError(f"cannot load {path}: {exc}") from exc


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .server import create_server

    engine = _open_engine(args, max_batch=args.max_batch)
    try:
        print(f"Lingxi engine serving {engine.model_name} on http://{args.host}:{args.port}/v1", flush=True)
        uvicorn.run(create_server(engine), host=args.host, port=args.port, log_level="warning")
    finally:
        engine.close()
    return 0


def _generate(args: argparse.Namespace) -> int:
    from .config import EngineError
    from .sampler import SamplingParams

    if args.max_tokens < 1:
        raise EngineError("--max-tokens must be at least 1")
    engine = _open_engine(args, max_batch=1)
    try:
        tok = engine.tokenizer
        if args.chat:
            ids = tok.encode_chat([{"role": "user", "content": args.prompt}])
        else:
            ids = tok.encode(args.prompt)
        params = SamplingParams(temperature=args.temperature, top_p=args.top_p, seed=args.seed,
                                max_tokens=args.max_tokens)
        out = engine.generate(ids, params)
    finally:
        engine.close()
    if out.finish_reason == "error":
        raise EngineError(f"generation failed: {out.error}")
    if args.json:
        print(json.dumps({"text": out.text, "token_ids": list(out.token_ids)}, ensure_ascii=False))
    else:
        print(out.text)
    return 0


def _quantize(args: argparse.Namespace) -> int:
    from .config import EngineError
    from .quant_checkpoint import quantize_checkpoint

    if not (args.model / "config.json").is_file():
        raise EngineError(f"{args.model} has no config.json: is it a Hugging Face checkpoint directory?")

    def progress(i: int, n: int, name: str) -> None:
        if i == n or i % 50 == 0:
            print(f"  {i}/{n} tensors ({name})", file=sys.stderr, flush=True)

    try:
        report = quantize_checkpoint(args.model, args.out, args.quant, args.group_size, progress=progress)
    except (OSError, ValueError) as exc:
        raise EngineError(f"cannot quantise {args.model}: {exc}") from exc
    print(f"wrote {args.out}: {report.summary()}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from .bench import run as run_bench

    try:
        return run_bench(args.model, args.layers, args.contexts, args.decode, args.threads, as_json=args.json)
    except ImportError as exc:
        from .config import EngineError

        raise EngineError(f"engine bench needs transformers (pip install -r requirements-dev.txt): {exc}") from exc


def _train(args: argparse.Namespace) -> int:
    from .train import cli as train_cli

    return train_cli.main(args)


def _eval_assistant(args: argparse.Namespace) -> int:
    from .train import evaluate

    return evaluate.main(args)


COMMANDS = {"serve": _serve, "generate": _generate, "quantize": _quantize, "bench": _bench,
            "train": _train, "eval-assistant": _eval_assistant}
