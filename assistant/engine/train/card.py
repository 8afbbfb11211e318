"""``python -m assistant.engine.train.card DIR``: write DIR/MODEL_CARD.md from the run's own records.

Does: read ``config.json``, ``train_config.json``, ``train_report.json`` and ``eval_report.json``
(the ``engine eval-assistant --json`` output) of a trained checkpoint and render the model card:
what the model is, its data, size, steps, evaluation against the issue-7 targets, expert
utilisation and limits. Every figure comes from those files, so the card cannot drift from them.

Does not: train or evaluate anything itself.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from . import BUNDLED_MODEL

LIMITS = """\
- It knows only what its synthetic data taught it: Lingxi's own tools, short confirmations, answers copied
  from knowledge-base passages, and a few chit-chat and refusal patterns. It has no general knowledge and
  cannot hold an open conversation, write, translate or reason.
- Arguments are copied spans of the user's words; phrasings far from the training templates, long
  multi-request messages and unusual entities are where it fails. Check what it scheduled.
- Lingxi's two built-in system prompts are condensed to a profile tag by its chat template; any other
  system prompt is passed verbatim but the model was never trained to follow one.
- Context: trained on conversations of at most {max_len} tokens; longer histories degrade.
- Use an API model (DeepSeek) for anything that matters: set `LINGXI_LLM_API_KEY` in `.env`."""


def _pct(metric: dict | None) -> str:
    if not metric or metric.get("value") is None:
        return "–"
    return f"{100 * metric['value']:.1f}% ({metric['hits']}/{metric['n']})"


def _table(caption: str, head: list[str], rows: list[list[str]]) -> str:
    """A captioned Markdown table, set off by a blank line (empty when there are no rows)."""
    if not rows:
        return ""
    lines = [caption, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n\n" + "\n".join([*lines, *("| " + " | ".join(r) + " |" for r in rows)])


def _by_tool(ev: dict) -> str:
    """The report's ``by_tool`` rows as a Markdown table."""
    rows = [[f"`{tool}`", *(f"{r['selected']}, {r['args']} of {r['n']}" if (r := langs.get(lang)) else "–"
                            for lang in ("zh", "en"))] for tool, langs in (ev.get("by_tool") or {}).items()]
    return _table("By the tool the conversation needs (selected, then arguments right, out of n):",
                  ["tool", "zh", "en"], rows)


def _errors(ev: dict) -> str:
    """The report's ``argument_errors`` as a Markdown table."""
    rows = [[kind, str(row.get("zh", 0)), str(row.get("en", 0))] for kind, row in (ev.get("argument_errors") or {}).items()]
    return _table("What the wrong arguments of correctly chosen tools were (one count per wrong key):",
                  ["wrong argument", "zh", "en"], rows)


def render(model_dir: Path) -> str:
    cfg = json.loads((model_dir / "config.json").read_text("utf-8"))
    tcfg = json.loads((model_dir / "train_config.json").read_text("utf-8"))
    report = json.loads((model_dir / "train_report.json").read_text("utf-8"))
    ev = json.loads((model_dir / "eval_report.json").read_text("utf-8"))
    tokcfg = json.loads((model_dir / "tokenizer_config.json").read_text("utf-8"))
    size = sum(p.stat().st_size for p in model_dir.iterdir() if p.is_file() and p.name != "MODEL_CARD.md")
    m = ev["metrics"]
    rows = [("tool selection (target ≥ 90%)", "tool_selection"), ("argument exact match (target ≥ 80%)", "argument_match"),
            ("argument match when the tool is right", "argument_match_given_selection"),
            ("no tool call when none is due", "no_tool_accuracy"), ("grounded-answer faithfulness", "faithfulness"),
            ("citation points at a real passage", "citation_ok"), ("unanswerable detected", "unanswerable_detection"),
            ("false \"I don't know\" on answerable", "false_decline_rate")]
    table = ["| metric | zh | en | all |", "|---|---|---|---|"]
    table += [f"| {label} | " + " | ".join(_pct(m.get(lang, {}).get(key)) for lang in ("zh", "en", "all")) + " |"
              for label, key in rows]
    util = ["| MoE layer | share of routed slots per expert | max / mean | min / mean |", "|---|---|---|---|"]
    util += [f"| {layer} | {' '.join(f'{100 * s:.0f}%' for s in u['share'])} | {u['max_over_mean']} | {u['min_over_mean']} |"
             for layer, u in report["expert_utilisation"].items()]
    active = cfg["num_experts_per_tok"]
    phase = report.get("drill_phase") or {"steps": tcfg.get("drill_steps", 0)}
    formed = {True: ", until copying formed", False: ", the cap, before copying formed"}.get(phase.get("copying_formed"), "")
    lo, hi = tcfg.get("drill_lengths", (6, 40))
    kind = "distinct tokens" if tcfg.get("drill_distinct") else "tokens"
    share = tcfg.get("drill_widen", 0)
    widen = f"; afterwards {100 * share:.0f}% of drill tokens drawn from the whole vocabulary" if share else ""
    drills = (f" Plus {report['copy_drills']} copy drills (a random span of {lo}-{hi} {kind} said twice; the first"
              f" {phase['steps']} steps on drills alone{formed}, in batches of {tcfg.get('drill_batch', 32)}"
              f"{widen}) to teach copying the user's words." if report.get("copy_drills") else "")
    guided = (", tool arguments copy-guided as the engine serves them (`assistant/engine/copyguide.py`: a free-text"
              " argument can only be a verbatim quote of the user's words, an id one a tool result gave, an enum one of"
              " its values, a number a number; the model picks which), and an answer that starts quoting a passage"
              " sentence finishes it and cites that passage (`assistant/engine/answerguide.py`)"
              if ev.get("guided") else "")
    shown = (" It reads them, trained and served, in a shorter view (`assistant/engine/toolview.py`: no zone names,"
             " plain defaults, listing range or retrieval details; names, ids, times and texts as the tools write them)."
             if tokcfg.get("tool_result_view") == "compact" else "")
    return f"""# lingxi-mini

Lingxi's bundled offline assistant model: a {report['parameters'] / 1e6:.1f} M-parameter DeepSeek-V3-architecture MoE
(MLA attention, {cfg['n_routed_experts']} routed experts with {active} active plus {cfg['n_shared_experts']} shared,
sigmoid router with aux-loss-free bias balancing, {cfg['num_hidden_layers']} layers of width {cfg['hidden_size']}, the first
{cfg['first_k_dense_replace']} dense), trained from scratch by `python app.py engine train` and served by Lingxi's own
engine like any DeepSeek checkpoint. It answers when no API key is configured.

- **Files:** {size / 1e6:.1f} MB in all: weights in bf16 (`model.safetensors`; the router bias in fp32), byte-level BPE
  `tokenizer.json` ({cfg['vocab_size']} tokens + the DeepSeek-V3 turn and tool markers), `tokenizer_config.json` with the
  chat template, `train_config.json` (reproduces the run), `train_report.json` (loss curve, utilisation), `eval_report.json`.
- **Data:** {tcfg['examples']} synthetic conversations (seed {tcfg['seed']}, `assistant/engine/train/data*.py`), half Chinese and
  half English: a call to each of the owner's and the customer-service assistant's tools, follow-ups after tool results,
  answers copied from knowledge-base passages with their `[n]`, "I don't know" with a hand-off offer when the passages
  don't answer, chit-chat and refusals; tool results in the app's tools' own shapes. Loss on assistant tokens only. In {100 * tcfg.get('random_fill', 0):.0f}% of requests the
  copied words and contacts are random, some of them made-up words and characters (so they must be copied, not remembered), and {100 * tcfg.get('compose', 0):.0f}% are phrased from pieces of
  several templates with fillers beside the copied words, or ask about a random topic, and {100 * tcfg.get('answered', 0):.0f}% of the
  grounded answers are about a random topic, answered by one of several passages.{shown}{drills}
- **Training:** {report['steps']} AdamW steps (lr {tcfg['lr']}, warm-up {tcfg['warmup']}, cosine to {tcfg['min_lr']},
  weight decay {tcfg['weight_decay']}, batches of ≤ {tcfg['batch_tokens']} padded tokens), {report['epochs']} passes over the data,
  stopped by {report['stopped_by']}; {report['train_seconds'] / 60:.0f} min of optimisation, {report['total_seconds'] / 60:.0f} min in all
  on the {report.get('device', 'cpu').upper()} ({report.get('threads', '?')} threads, {report.get('precision', 'fp32')}). Final training loss {report['final_loss']}.

## Evaluation

`python app.py engine eval-assistant --n {ev['n']} --seed {ev['seed']}`: {ev['n']} conversations of the held-out split, written
with other templates and vocabulary (other titles, names, topics and phrasings) than training; greedy decoding{guided}.

{chr(10).join(table)}{_by_tool(ev)}{_errors(ev)}

## Expert utilisation

Share of routed (token, slot) assignments each expert received on 300 unseen training-style conversations
(1/{cfg['n_routed_experts']} = {100 / cfg['n_routed_experts']:.1f}% is perfect balance):

{chr(10).join(util)}

## Limits

{LIMITS.format(max_len=tcfg['max_len'])}
"""


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    model_dir = Path(args[0]) if args else BUNDLED_MODEL
    (model_dir / "MODEL_CARD.md").write_text(render(model_dir), "utf-8")
    print(f"wrote {model_dir / 'MODEL_CARD.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
