"""``python app.py engine eval-assistant``: score a local model on the synthetic assistant tasks.

    python app.py engine eval-assistant [--model DIR] [--split heldout|train] [--n 400] [--seed 0]
                                        [--max-tokens 96] [--max-batch 16] [--threads N]
                                        [--device auto|cpu|cuda] [--json] [--dump FILE]

Does: draw ``n`` examples from ``data.generate(split, n, seed)``; render each conversation but its
last (target) message, with the example's tools, through the model's chat template; decode
greedily with ``LLMEngine`` (all requests submitted at once, so continuous batching runs up to
``--max-batch`` of them together; generation stops at the end of a tool-calls block); parse the
reply with the engine's DeepSeek-V3 tool-call parser; and score it (``scoring.score``), for zh, en
and all, against the issue-7 targets (tool selection >= 90 %, argument match >= 80 %), then by
tool (``scoring.by_tool``), and teacher-forced copying (``copying``). The metrics are defined in
``scoring``.

Does not: train, sample (temperature is 0), judge free-form quality (chit-chat, refusals and
follow-ups count only through no_tool_accuracy), or compare calls after the first.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from . import BUNDLED_MODEL

from .scoring import TARGETS, argument_errors, by_tool, format_by_tool, format_errors, format_table, score

__all__ = ["TARGETS", "add_parser", "main", "predict", "predict_all", "score"]


# ---------------------------------------------------------------- prediction

def _submit(engine, tokenizer, example, max_tokens: int, guide: bool | None = None):
    """Queue one example; returns its ``RequestHandle``, or an error string (e.g. context too long).
    ``guide``: copy-guided arguments as the server would apply them (None: the checkpoint's choice)."""
    from ..config import EngineError
    from ..copyguide import guide_for
    from ..sampler import SamplingParams
    from ..toolcalls import CALLS_END

    try:
        messages, tools = list(example.messages[:-1]), list(example.tools or []) or None
        ids = tokenizer.encode_chat(messages, tools)
        params = SamplingParams(temperature=0.0, max_tokens=max_tokens, stop=[CALLS_END],
                                guide=guide_for(engine, messages, tools, guide))
        return engine.submit(ids, params)
    except (EngineError, ValueError) as exc:  # ContextTooLong / BadRequest / template errors
        return f"{type(exc).__name__}: {exc}"


def _collect(handle) -> dict:
    """Wait for one request and parse its reply into an assistant message."""
    from ..toolcall_parser import parse_tool_calls

    if isinstance(handle, str):
        return {"content": "", "tool_calls": [], "finish_reason": "error", "error": handle}
    text, last = [], None
    try:
        for out in handle:
            text.append(out.text)
            last = out
    finally:
        handle.cancel()  # no-op once finished
    content, calls = parse_tool_calls("".join(text))
    pred = {"content": content.strip(),
            "tool_calls": [{"function": {"name": c.name, "arguments": c.arguments}} for c in calls if c.name],
            "finish_reason": last.finish_reason if last else "error"}
    if last is not None and last.error:
        pred["error"] = last.error
    return pred


def predict(engine, tokenizer, example, max_tokens: int = 96, guide: bool | None = None) -> dict:
    """Greedy reply to ``example.messages[:-1]`` -> ``{"content", "tool_calls", "finish_reason"}``."""
    return _collect(_submit(engine, tokenizer or engine.tokenizer, example, max_tokens, guide))


def predict_all(engine, examples, max_tokens: int = 96, tokenizer=None, guide: bool | None = None) -> list[dict]:
    """``predict`` for many examples, all submitted first so the engine batches them."""
    tokenizer = tokenizer or engine.tokenizer
    handles = [_submit(engine, tokenizer, ex, max_tokens, guide) for ex in examples]
    try:
        return [_collect(h) for h in handles]
    finally:
        for h in handles:
            if not isinstance(h, str):
                h.cancel()


def write_dump(path: Path, examples, preds) -> None:
    """One JSON line per example: what was asked, what was due, what the model said, what was wrong."""
    from .scoring import wrong_arguments

    with Path(path).open("w", encoding="utf-8") as f:
        for ex, pred in zip(examples, preds):
            asked = next((m["content"] for m in reversed(ex.messages[:-1]) if m["role"] == "user"), "")
            got = {k: pred[k] for k in ("content", "tool_calls", "finish_reason") if pred.get(k)}
            f.write(json.dumps({"lang": ex.lang, "kind": ex.kind, "asked": asked, "expected": ex.messages[-1],
                                "got": got, "wrong": wrong_arguments(ex, pred)}, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------- CLI

def add_parser(cmds) -> argparse.ArgumentParser:
    """Add ``eval-assistant`` to the engine's subparsers."""
    p = cmds.add_parser("eval-assistant", help="score a model on the held-out assistant tasks (issue 7)")
    p.add_argument("--model", type=Path, default=BUNDLED_MODEL,
                   help=f"checkpoint directory (default: the bundled {BUNDLED_MODEL.name})")
    p.add_argument("--split", choices=["heldout", "train"], default="heldout")
    p.add_argument("--n", type=int, default=400, help="examples to generate and score (default 400)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-tokens", type=int, default=96, help="reply length limit (default 96)")
    p.add_argument("--max-batch", type=int, default=16, help="sequences decoded together (default 16)")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--guide", choices=["auto", "on", "off"], default="auto",
                   help="copy-guided tool arguments and passage-guided answers (copyguide, answerguide): auto follows "
                        "the checkpoint, as serving does")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--dump", type=Path, metavar="FILE",
                   help="also write each conversation's request, expected and predicted reply and wrong arguments "
                        "as JSON lines")
    return p


def main(args: argparse.Namespace) -> int:
    from ..config import EngineError

    try:
        return _run(args)
    except EngineError as exc:
        print(f"lingxi engine: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from ..cli import _open_engine
    from ..config import EngineError
    from ..copyguide import guide_enabled
    from .copying import copy_accuracy
    from .prepared import encode

    if args.n < 1 or args.max_tokens < 1:
        raise EngineError("--n and --max-tokens must be at least 1")
    opts = SimpleNamespace(model=Path(args.model), dtype="float32", quant="none", max_context=None,
                           threads=getattr(args, "threads", None), device=getattr(args, "device", "auto"))
    engine = _open_engine(opts, max_batch=getattr(args, "max_batch", 16))
    try:
        from . import data

        examples = data.generate(args.split, args.n, args.seed)
        start = time.perf_counter()
        guide = {"auto": None, "on": True, "off": False}[getattr(args, "guide", "auto")]
        guided = guide_enabled(engine, guide)
        preds = predict_all(engine, examples, args.max_tokens, guide=guide)
        seconds = time.perf_counter() - start
    finally:
        engine.close()
    report, tools = score(examples, preds, data.UNKNOWN_MARKERS), by_tool(examples, preds)
    wrong = argument_errors(examples, preds)
    copied = copy_accuracy(engine.runner.model, [encode(engine.tokenizer, e) for e in examples],
                           [e.lang for e in examples])
    errors = sum(1 for p in preds if p.get("finish_reason") == "error")
    if getattr(args, "dump", None):
        write_dump(args.dump, examples, preds)
    if args.json:
        print(json.dumps({"model": str(args.model), "split": args.split, "n": len(examples), "seed": args.seed,
                          "max_tokens": args.max_tokens, "guided": guided, "seconds": round(seconds, 2), "errors": errors,
                          "metrics": report, "by_tool": tools, "argument_errors": wrong,
                          "copied_tokens": copied}, ensure_ascii=False))
    else:
        print(f"{engine.model_name}: {len(examples)} {args.split} examples (seed {args.seed}), "
              f"{'copy-guided' if guided else 'unguided'} arguments, {seconds:.1f}s, {errors} failed requests")
        print(format_table(report))
        print("copied tokens (teacher-forced): " + "  ".join(
            f"{lang} " + ("-" if row["value"] is None else f"{100 * row['value']:.1f}%") + f" ({row['n']})"
            for lang, row in copied.items()))
        print()
        print(format_by_tool(tools))
        print()
        print(format_errors(wrong))
    return 0
