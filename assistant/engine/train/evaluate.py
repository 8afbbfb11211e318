"""``python app.py engine eval-assistant``: score a local model on the synthetic assistant tasks.

    python app.py engine eval-assistant [--model DIR] [--split heldout|train] [--n 400] [--seed 0]
                                        [--max-tokens 96] [--max-batch 16] [--threads N]
                                        [--device auto|cpu|cuda] [--json]

Does: draw ``n`` examples from ``data.generate(split, n, seed)``; render each conversation but its
last (target) message, with the example's tools, through the model's chat template; decode
greedily with ``LLMEngine`` (all requests submitted at once, so continuous batching runs up to
``--max-batch`` of them together; generation stops at the end of a tool-calls block); parse the
reply with the engine's DeepSeek-V3 tool-call parser; and score it (``score``), for zh, en and
all, against the issue-7 targets (tool selection >= 90 %, argument match >= 80 %).

Metrics (each reports ``hits`` / ``n`` and ``value``, None when ``n`` is 0):
  * tool_selection: targets with tool calls; the first predicted call names the target's first tool.
  * argument_match: same examples; the first call's arguments, JSON-parsed, equal the target's
    exactly (unparseable or no call: a miss).  argument_match_given_selection: the same, over the
    examples whose tool was selected correctly.
  * no_tool_accuracy: text targets; the prediction makes no tool call.
  * faithfulness: kind "grounded"; the reply without citation markers ("[n]") is non-empty and,
    whitespace-normalised, lies inside one passage -- or each of its pieces between citation
    markers (edge punctuation stripped) does.  citation_ok: it cites at least one [n] and every
    cited n is in 1..len(passages).
  * unanswerable_detection: kind "unanswerable" with a text target; the reply contains an
    ``UNKNOWN_MARKERS[lang]`` phrase and makes no tool call.  false_decline_rate: kind "grounded";
    the reply contains such a phrase (lower is better).

Does not: train, sample (temperature is 0), judge free-form quality (chit-chat, refusals and
follow-ups count only through no_tool_accuracy), or compare calls after the first.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from assistant.config import BUNDLED_MODEL

TARGETS = {"tool_selection": 0.90, "argument_match": 0.80}
METRICS = ("tool_selection", "argument_match", "argument_match_given_selection", "no_tool_accuracy",
           "faithfulness", "citation_ok", "unanswerable_detection", "false_decline_rate")
LANG_ORDER = ("zh", "en")


# ---------------------------------------------------------------- prediction

def _submit(engine, tokenizer, example, max_tokens: int):
    """Queue one example; returns its ``RequestHandle``, or an error string (e.g. context too long)."""
    from ..config import EngineError
    from ..sampler import SamplingParams
    from ..toolcalls import CALLS_END

    try:
        ids = tokenizer.encode_chat(list(example.messages[:-1]), list(example.tools or []) or None)
        params = SamplingParams(temperature=0.0, max_tokens=max_tokens, stop=[CALLS_END])
        return engine.submit(ids, params)
    except (EngineError, ValueError) as exc:  # ContextTooLong / BadRequest / template errors
        return f"{type(exc).__name__}: {exc}"


def _collect(handle) -> dict:
    """Wait for one request and parse its reply into an assistant message."""
    from ..toolcalls import parse_tool_calls

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


def predict(engine, tokenizer, example, max_tokens: int = 96) -> dict:
    """Greedy reply to ``example.messages[:-1]`` -> ``{"content", "tool_calls", "finish_reason"}``."""
    return _collect(_submit(engine, tokenizer or engine.tokenizer, example, max_tokens))


def predict_all(engine, examples, max_tokens: int = 96, tokenizer=None) -> list[dict]:
    """``predict`` for many examples, all submitted first so the engine batches them."""
    tokenizer = tokenizer or engine.tokenizer
    handles = [_submit(engine, tokenizer, ex, max_tokens) for ex in examples]
    try:
        return [_collect(h) for h in handles]
    finally:
        for h in handles:
            if not isinstance(h, str):
                h.cancel()


# ---------------------------------------------------------------- scoring

_CITE = re.compile(r"\s*\[(\d+)\]")
_EDGE = " \t\r\n.,;:!?\"'()（）。，；：！？、“”‘’"


def _norm(text: str) -> str:
    return " ".join(text.split())


def _args(call) -> dict | None:
    args = (call.get("function") or {}).get("arguments")
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except ValueError:
            return None
    return args if isinstance(args, dict) else None


def _name(call) -> str | None:
    return (call.get("function") or {}).get("name")


def _calls(message) -> list[dict]:
    return list((message or {}).get("tool_calls") or [])


def _declines(text: str, lang: str, markers) -> bool:
    text = text.replace("\u2019", "'").lower()
    return any(m.replace("\u2019", "'").lower() in text for m in markers.get(lang, ()))


def faithful(text: str, passages) -> bool:
    """See the module docstring (faithfulness)."""
    bare = _norm(_CITE.sub("", text or ""))
    if not bare.strip(_EDGE):
        return False
    sources = [_norm(p) for p in passages or []]
    if any(bare in p for p in sources):
        return True
    pieces = [s for s in (_norm(p).strip(_EDGE) for p in _CITE.split(text or "")[::2]) if s]
    return bool(pieces) and all(any(s in p for p in sources) for s in pieces)


def citation_ok(text: str, passages) -> bool:
    refs = [int(n) for n in _CITE.findall(text or "")]
    return bool(refs) and all(1 <= n <= len(passages or []) for n in refs)


def _judge(example, pred: dict, markers) -> dict[str, bool]:
    """Which metrics this example counts in, and whether it hits each."""
    target, lang = example.messages[-1], example.lang
    tcalls, pcalls = _calls(target), _calls(pred)
    content = pred.get("content") or ""
    out: dict[str, bool] = {}
    if tcalls:
        selected = bool(pcalls) and _name(pcalls[0]) == _name(tcalls[0])
        want = _args(tcalls[0])
        match = selected and want is not None and _args(pcalls[0]) == want
        out["tool_selection"], out["argument_match"] = selected, match
        if selected:
            out["argument_match_given_selection"] = match
    else:
        out["no_tool_accuracy"] = not pcalls
    if example.kind == "grounded":
        out["faithfulness"] = not pcalls and faithful(content, example.passages)
        out["citation_ok"] = not pcalls and citation_ok(content, example.passages)
        out["false_decline_rate"] = _declines(content, lang, markers)
    if example.kind == "unanswerable" and not tcalls:
        out["unanswerable_detection"] = not pcalls and _declines(content, lang, markers)
    return out


def score(examples, predictions, markers=None) -> dict:
    """Pure: ``{lang: {metric: {"hits", "n", "value"[, "target", "pass"]}, "examples": n}}``.

    Languages are zh, en (then any other seen) and "all"; ``markers`` defaults to
    ``data.UNKNOWN_MARKERS``.
    """
    examples, predictions = list(examples), list(predictions)
    if len(examples) != len(predictions):
        raise ValueError(f"{len(examples)} examples but {len(predictions)} predictions")
    if markers is None:
        from .data import UNKNOWN_MARKERS as markers
    langs = [*LANG_ORDER, *sorted({e.lang for e in examples} - set(LANG_ORDER)), "all"]
    counts = {lang: {m: [0, 0] for m in METRICS} for lang in langs}
    sizes = dict.fromkeys(langs, 0)
    for ex, pred in zip(examples, predictions):
        for lang in (ex.lang, "all"):
            sizes[lang] += 1
            for metric, hit in _judge(ex, pred, markers).items():
                counts[lang][metric][0] += int(hit)
                counts[lang][metric][1] += 1
    report: dict = {}
    for lang in langs:
        report[lang] = {"examples": sizes[lang]}
        for metric, (hits, n) in counts[lang].items():
            row = {"hits": hits, "n": n, "value": hits / n if n else None}
            if metric in TARGETS:
                row["target"] = TARGETS[metric]
                row["pass"] = None if not n else row["value"] >= TARGETS[metric]
            report[lang][metric] = row
    return report


def format_table(report: dict) -> str:
    langs = [k for k in report if report[k]["examples"] or k == "all"]
    lines = [f"{'metric':<32}" + "".join(f"{lang:>19}" for lang in langs) + "  target"]
    for metric in METRICS:
        cells = []
        for lang in langs:
            row = report[lang][metric]
            val = "-" if row["value"] is None else f"{100 * row['value']:.1f}%"
            mark = {True: " PASS", False: " miss"}.get(row.get("pass"), "")
            cells.append(f"{val} ({row['n']}){mark}".rjust(19))
        target = f"  >= {100 * TARGETS[metric]:.0f}%" if metric in TARGETS else ""
        lines.append(f"{metric:<32}" + "".join(cells) + target)
    lines.append(f"{'examples':<32}" + "".join(f"{report[lang]['examples']:>19}" for lang in langs))
    return "\n".join(lines)


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
    p.add_argument("--json", action="store_true", help="print one JSON object")
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

    if args.n < 1 or args.max_tokens < 1:
        raise EngineError("--n and --max-tokens must be at least 1")
    opts = SimpleNamespace(model=Path(args.model), dtype="float32", quant="none", max_context=None,
                           threads=getattr(args, "threads", None), device=getattr(args, "device", "auto"))
    engine = _open_engine(opts, max_batch=getattr(args, "max_batch", 16))
    try:
        from . import data

        examples = data.generate(args.split, args.n, args.seed)
        start = time.perf_counter()
        preds = predict_all(engine, examples, args.max_tokens)
        seconds = time.perf_counter() - start
    finally:
        engine.close()
    report = score(examples, preds, data.UNKNOWN_MARKERS)
    errors = sum(1 for p in preds if p.get("finish_reason") == "error")
    if args.json:
        print(json.dumps({"model": str(args.model), "split": args.split, "n": len(examples), "seed": args.seed,
                          "max_tokens": args.max_tokens, "seconds": round(seconds, 2), "errors": errors,
                          "metrics": report}, ensure_ascii=False))
    else:
        print(f"{engine.model_name}: {len(examples)} {args.split} examples (seed {args.seed}), "
              f"{seconds:.1f}s, {errors} failed requests")
        print(format_table(report))
    return 0
