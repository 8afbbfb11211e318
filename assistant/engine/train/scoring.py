"""Scoring for ``eval-assistant``: pure functions from (examples, predictions) to metrics and tables.

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

  ``by_tool`` breaks tool selection and argument match down by target tool and language, with the
  tools most often called instead, which is where a model's misses are read from.
  ``argument_errors`` sorts the wrong arguments of correctly selected calls into kinds (a key
  missing or extra, a span cut short or run on, another argument's value, another row's id), which
  says what the data has to teach next.

Does not: run a model (``evaluate`` does), or judge free-form quality.
"""

from __future__ import annotations

import json
import re
from collections import Counter

from ..argschema import is_id_key
from ..quotes import id_values

TARGETS = {"tool_selection": 0.90, "argument_match": 0.80}
METRICS = ("tool_selection", "argument_match", "argument_match_given_selection", "no_tool_accuracy",
           "faithfulness", "citation_ok", "unanswerable_detection", "false_decline_rate")
LANG_ORDER = ("zh", "en")


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


def by_tool(examples, predictions) -> dict:
    """Pure: ``{tool: {lang: {"n", "selected", "args", "instead"}}}`` over the examples whose target
    calls a tool, keyed by the target's first tool; ``instead`` counts what the misses did (another
    tool's name, or "(no call)"), most frequent first."""
    rows: dict = {}
    for ex, pred in zip(examples, predictions):
        tcalls = _calls(ex.messages[-1])
        if not tcalls:
            continue
        pcalls = _calls(pred)
        want, got = _name(tcalls[0]), (_name(pcalls[0]) if pcalls else None)
        row = rows.setdefault(want, {}).setdefault(ex.lang, {"n": 0, "selected": 0, "args": 0, "instead": Counter()})
        row["n"] += 1
        if got == want:
            row["selected"] += 1
            row["args"] += int(_args(pcalls[0]) == _args(tcalls[0]))
        else:
            row["instead"][got or "(no call)"] += 1
    for langs in rows.values():
        for row in langs.values():
            row["instead"] = dict(row["instead"].most_common())
    return dict(sorted(rows.items()))


def format_by_tool(rows: dict) -> str:
    """``by_tool`` as a table: one line per (tool, language), the two commonest wrong calls last."""
    lines = [f"{'tool':<24}{'lang':<6}{'n':>5}{'selected':>10}{'args':>8}  instead"]
    for tool, langs in rows.items():
        for lang in sorted(langs, key=lambda x: (x not in LANG_ORDER, LANG_ORDER.index(x) if x in LANG_ORDER else 0, x)):
            r = langs[lang]
            instead = ", ".join(f"{name} {k}" for name, k in list(r["instead"].items())[:2])
            lines.append(f"{tool:<24}{lang:<6}{r['n']:>5}{r['selected']:>10}{r['args']:>8}  {instead}")
    return "\n".join(lines)


ERROR_KINDS = ("unparseable", "missing key", "extra key", "id: another row", "id: not listed",
               "span: cut short", "span: runs on", "span: shifted", "another argument's value", "other value")


def _overlap(a: str, b: str) -> bool:
    """Whether two strings share a piece of two or more characters."""
    return any(a[i:i + 2] in b for i in range(len(a) - 1))


def _value_error(key: str, got, want: dict, listed: set[str]) -> str:
    w, others = want[key], [v for k, v in want.items() if k != key]
    if is_id_key(key):
        return "id: another row" if isinstance(got, str) and got in listed else "id: not listed"
    if isinstance(got, str) and isinstance(w, str) and got and w:
        if got in w:
            return "span: cut short"
        if w in got:
            return "span: runs on"
    if got in others:
        return "another argument's value"
    if isinstance(got, str) and isinstance(w, str) and _overlap(got, w):
        return "span: shifted"
    return "other value"


def wrong_arguments(example, prediction) -> dict[str, str]:
    """Pure: ``{key: kind}`` (``ERROR_KINDS``) for each wrong key of a call to the right first tool;
    empty when the tool is wrong or not called, or the arguments are right. ``{"": "unparseable"}``
    when no parser reads them. "id: another row" is an id that some tool result in the conversation
    listed."""
    tcalls, pcalls = _calls(example.messages[-1]), _calls(prediction)
    if not tcalls or not pcalls or _name(pcalls[0]) != _name(tcalls[0]):
        return {}
    want, got = _args(tcalls[0]) or {}, _args(pcalls[0])
    if got == want:
        return {}
    if got is None:
        return {"": "unparseable"}
    listed = {v.decode() for v in id_values(example.messages[:-1]).split(b"\0") if v}
    keys = [*want, *(k for k in got if k not in want)]
    return {k: ("missing key" if k not in got else "extra key" if k not in want else _value_error(k, got[k], want, listed))
            for k in keys if k not in got or k not in want or got[k] != want[k]}


def argument_errors(examples, predictions) -> dict:
    """Pure: ``{kind: {lang: n, "all": n}}`` over the examples whose first tool was selected but whose
    arguments differ, one count per wrong key (``wrong_arguments``; in ``ERROR_KINDS`` order, kinds
    never seen left out)."""
    counts: dict[str, Counter] = {}
    for ex, pred in zip(examples, predictions):
        for kind in wrong_arguments(ex, pred).values():
            counts.setdefault(kind, Counter()).update((ex.lang, "all"))
    return {kind: dict(counts[kind]) for kind in ERROR_KINDS if kind in counts}


def format_errors(errors: dict) -> str:
    """``argument_errors`` as a table, one line per kind."""
    langs = [*LANG_ORDER, "all"]
    lines = [f"{'wrong argument':<28}" + "".join(f"{lang:>7}" for lang in langs)]
    lines += [f"{kind:<28}" + "".join(f"{row.get(lang, 0):>7}" for lang in langs) for kind, row in errors.items()]
    return "\n".join(lines)
