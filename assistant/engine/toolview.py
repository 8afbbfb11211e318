"""A shorter view of Lingxi's tool results, for a checkpoint trained on it (the bundled model).

Does: rewrite one tool message's JSON without what a small model does not need to read: a
successful call's ``"ok": true``, a record's zone name (its timestamps carry the offset), the
values a plain record always has (``all_day`` false, ``lead_minutes`` 0, ``channels`` in-app
only, ``status`` scheduled, ``fire_count`` 0), a listing's range, an occurrence's start where it
is the event's own start, and a passage's retrieval details (doc id, file, score, a section named
as the document) and the answering instruction the model was trained to follow anyway. What is
left (names, ids, times, texts, errors) is written as the tools write it, so a value the model
copies from a result is the value the tool gave.

A checkpoint opts in with ``"tool_result_view": "compact"`` in ``tokenizer_config.json``
(``ChatTokenizer`` applies it to every tool message before the chat template), so training,
evaluation and serving read the same view, while the app and a remote API keep the whole result.
Tool results are half of the bundled model's training tokens; this view makes them about half as
long.

Does not: touch a message that is not a JSON object or list (an error text, another tool's output
stays as it is), or drop anything a tool reports only when it matters (a failure, a clash, a
recurring event's series start, a cancelled reminder's status).
"""

from __future__ import annotations

import json
from typing import Any

VIEWS = ("full", "compact")

# Key -> the value a plain record reports; the key is dropped when it holds exactly that value.
_PLAIN = {"ok": True, "all_day": False, "lead_minutes": 0, "channels": ["inapp"], "status": "scheduled",
          "fire_count": 0}
_NEVER = frozenset({"timezone", "instruction", "doc_id", "source", "score"})
_RANGE = ("from", "to")  # a list_events result's range, beside its "events"


def _view(value: Any) -> Any:
    if isinstance(value, list):
        return [_view(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, v in value.items():
        if key in _NEVER or (key in _PLAIN and v == _PLAIN[key]):
            continue
        if key in _RANGE and "events" in value:
            continue
        if key == "occurrence_start" and v == value.get("starts_at"):
            continue
        if key == "section" and v == value.get("title"):
            continue
        out[key] = _view(v)
    return out


def view(content: str) -> str:
    """The compact view of one tool message's text; text that is not a JSON object or list is kept."""
    try:
        value = json.loads(content)
    except (TypeError, ValueError):
        return content
    if not isinstance(value, (dict, list)):
        return content
    return json.dumps(_view(value), ensure_ascii=False)
