"""Pure rendering for the chat UI: stored messages and stream events to chat messages.

A reply is kept as a list of ``Step``s (the user's message, reasoning, answer
text, tool calls with their results, errors, notices). ``history_steps`` builds
them from stored messages, ``fold`` applies one stream event, and ``render``
turns steps into Gradio "messages"-format dicts in the reader's language.
Knowledge-base passages (``citation`` events, or the stored search results)
ride on their tool step; ``render`` lists them after the turn's answer as a
collapsed "Sources" message, only the cited ones when the answer cites any.
Also here: markdown made safe (no raw HTML, no ``<think>`` tags) and the usage
line. The per-session model settings are in ``ui.chat_settings``.

Nothing here does I/O or needs a running Gradio app, so all of it is tested
without a browser. The handlers that call the services are in ``ui.chat``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ui.i18n import text, translate_error

TOOL_TEXT_LIMIT = 4000  # characters of arguments/results shown; the rest is cut
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`).+?(?<!`)\1(?!`)", re.S)
_THINK = re.compile(r"<think>(.*?)(?:</think>|\Z)\n*", re.S)
_CITE = re.compile(r"\[(\d+(?:\s*[,，、]\s*\d+)*)\]")  # [1], [1, 2], [1，2]
PASSAGE_KEYS = ("ref", "doc_id", "source", "title", "section", "page", "score", "text")
# HTML's special characters and markdown's punctuation as entities, in one pass (see ``_inert``).
_INERT = str.maketrans({c: f"&#{ord(c)};" for c in "&<>\"'!$*[]\\_`~|{}#"})


@dataclass
class Step:
    """One visible piece of a conversation, before it is rendered."""

    kind: str  # user | reasoning | answer | tool | error | notice | stopped
    text: str = ""
    done: bool = False
    # Tool steps: the call as the model made it, then its result.
    call_id: str = ""
    index: int | None = None
    called: bool = False  # the agent confirmed the call (its "call" event came)
    name: str = ""
    arguments: str = ""
    result: str | None = None
    ok: bool = True
    repeated: bool = False
    # Errors and notices: the code, and the values their text is made from.
    code: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    # Tool steps: the knowledge-base passages the result carried (``citation`` events).
    passages: list[dict[str, Any]] = field(default_factory=list)


# --- Building steps ---------------------------------------------------------


def history_steps(messages: list[dict[str, Any]], *, answering: bool = False) -> list[Step]:
    """Steps for stored messages (``conversations.as_dict`` dicts), in order.

    A turn left without an answer gets a notice pointing at Retry, unless
    ``answering`` (a reply to it is about to stream).
    """
    steps: list[Step] = []
    for m in messages:
        role, content = m.get("role"), m.get("content") or ""
        if role == "user":
            steps.append(Step("user", text=content, done=True))
        elif role == "assistant":
            if m.get("reasoning_content"):
                steps.append(Step("reasoning", text=m["reasoning_content"], done=True))
            if content:
                steps.append(Step("answer", text=content, done=True))
            for call in m.get("tool_calls") or []:
                fn = call.get("function") or {}
                steps.append(
                    Step("tool", call_id=call.get("id", ""), called=True, name=fn.get("name", ""),
                         arguments=fn.get("arguments", ""), done=True)
                )
            if m.get("status") == "stopped":
                steps.append(Step("stopped", done=True))
            elif m.get("status") == "error":
                # Stored errors keep only the English text; translate_error finds the code.
                steps.append(Step("error", text=m.get("error") or "", done=True))
        elif role == "tool":
            step = _tool_by_id(steps, m.get("tool_call_id") or "")
            if step is None:
                step = Step("tool", call_id=m.get("tool_call_id") or "", called=True, name=m.get("name") or "")
                steps.append(step)
            step.result, step.ok, step.done = content, m.get("status") != "error", True
            # What the agent's ``citation`` events carried when the reply streamed.
            step.passages = passages_of(content) if step.ok else []
    if not answering and messages and messages[-1].get("role") in ("user", "tool"):
        steps.append(Step("notice", code="unanswered", done=True))
    return steps


def fold(steps: list[Step], event: Any) -> list[Step]:
    """Apply one stream event (``assistant.streaming.Event``) to ``steps``, in place."""
    kind, data = event.type, event.data
    if kind != "retry":
        # A retry notice lasts until the provider answers (or fails for good).
        steps[:] = [s for s in steps if not (s.kind == "notice" and s.code == "retry")]
    if kind != "reasoning":
        for s in steps:
            if s.kind == "reasoning":
                s.done = True
    last = steps[-1] if steps else None
    if kind == "reasoning":
        if last and last.kind == "reasoning" and not last.done:
            last.text += data.get("text", "")
        else:
            steps.append(Step("reasoning", text=data.get("text", "")))
    elif kind == "delta":
        if last and last.kind == "answer" and not last.done:
            last.text += data.get("text", "")
        else:
            steps.append(Step("answer", text=data.get("text", "")))
    elif kind == "tool_call":
        step = _tool_for_call(steps, data)
        step.name = data.get("name") or step.name
        step.arguments = data.get("arguments", step.arguments)
        if data.get("phase") == "call":
            step.called, step.call_id = True, data.get("id") or step.call_id
        for s in steps:  # text before a tool call is finished once the call starts
            if s.kind == "answer":
                s.done = True
    elif kind == "tool_result":
        step = _tool_by_id(steps, data.get("id") or "")
        if step is None:
            step = Step("tool", call_id=data.get("id") or "", called=True, name=data.get("name", ""))
            steps.append(step)
        step.result, step.ok, step.repeated, step.done = (
            data.get("content", ""), bool(data.get("ok", True)), bool(data.get("repeated")), True)
    elif kind == "citation":
        # Sent right after its tool's result: the latest tool step with a result.
        step = next((s for s in reversed(steps) if s.kind == "tool" and s.result is not None), None)
        if step is not None and isinstance(data, dict):
            step.passages.append({k: data.get(k) for k in PASSAGE_KEYS})
    elif kind == "retry":
        steps.append(Step("notice", code="retry", info=dict(data)))
    elif kind == "error":
        steps.append(Step("error", text=data.get("message", ""), code=data.get("code", ""), done=True))
    elif kind == "done":
        for s in steps:
            s.done = True
        if data.get("stopped"):
            steps.append(Step("stopped", done=True))
    return steps  # usage events change no step


def passages_of(content: str) -> list[dict[str, Any]]:
    """The numbered passages in a stored knowledge-search result; [] for anything else.

    Mirrors ``assistant.agent.citations_of``, but never raises: stored JSON may be
    cut short or shaped otherwise.
    """
    try:
        payload = json.loads(content)
    except (ValueError, TypeError):
        return []
    passages = payload.get("passages") if isinstance(payload, dict) else None
    if not isinstance(passages, list):
        return []
    return [{k: p.get(k) for k in PASSAGE_KEYS} for p in passages if isinstance(p, dict) and "ref" in p]


def _tool_by_id(steps: list[Step], call_id: str) -> Step | None:
    if not call_id:
        return None
    return next((s for s in reversed(steps) if s.kind == "tool" and s.call_id == call_id), None)


def _tool_for_call(steps: list[Step], data: dict[str, Any]) -> Step:
    step = _tool_by_id(steps, data.get("id") or "")
    if step is None:
        open_calls = [s for s in steps if s.kind == "tool" and not s.called]
        if data.get("phase") == "delta":
            step = next((s for s in open_calls if s.index == data.get("index")), None)
        elif open_calls:
            step = open_calls[0]  # a server that sent no ids while streaming
    if step is None:
        step = Step("tool", call_id=data.get("id") or "", index=data.get("index"))
        steps.append(step)
    return step


# --- Rendering ---------------------------------------------------------------


def render(steps: list[Step], lang: str) -> list[dict[str, Any]]:
    """Gradio chat messages ("messages" format) for ``steps``, in ``lang``."""
    out: list[dict[str, Any]] = []
    sources = _sources_by_anchor(steps)
    for i, s in enumerate(steps):
        if s.kind == "user":
            out.append({"role": "user", "content": safe_markdown(s.text)})
        elif s.kind == "reasoning":
            out += _reasoning(s.text, s.done, lang)
        elif s.kind == "answer":
            hidden, visible = split_think(s.text)
            out += _reasoning(hidden, s.done or bool(visible.strip()), lang)
            if visible.strip():
                out.append({"role": "assistant", "content": safe_markdown(visible)})
        elif s.kind == "tool":
            out.append(_tool(s, lang))
        elif s.kind == "error":
            message = translate_error(s.code, s.text, lang)
            body = f"**{text(lang, 'error_prefix')}:** {safe_markdown(message)}\n\n{text(lang, 'retry_hint')}"
            out.append({"role": "assistant", "content": body})
        elif s.kind == "stopped":
            out.append({"role": "assistant", "content": f"*{text(lang, 'stopped')}*"})
        elif s.kind == "notice" and s.code == "retry":
            title = text(lang, "retrying", code=s.info.get("code", ""), attempt=s.info.get("attempt", ""),
                         delay=s.info.get("delay", ""))
            out.append({"role": "assistant", "content": "", "metadata": {"title": title, "status": "pending"}})
        elif s.kind == "notice":
            out.append({"role": "assistant", "content": f"*{text(lang, s.code)}*"})
        if i in sources:
            out.append(_sources(sources[i], lang))
    return out


def _sources_by_anchor(steps: list[Step]) -> dict[int, list[dict[str, Any]]]:
    """{index of a turn's last answer step: the passages to list after it}.

    A turn (the steps after a user message) gets a sources list when a tool step
    carried passages and an answer followed it. The list waits until that answer
    is finished, so it does not change while the answer streams; then it holds
    the passages the answer cites, or all of them when it cites none.
    """
    found: dict[int, list[dict[str, Any]]] = {}
    starts = [i for i, s in enumerate(steps) if s.kind == "user"]
    for start, end in zip([0, *starts], [*starts, len(steps)]):
        turn = list(range(start, end))
        first = next((i for i in turn if steps[i].kind == "tool" and steps[i].passages), None)
        if first is None:
            continue
        answers = [i for i in turn if i > first and steps[i].kind == "answer"]
        if not answers or not steps[answers[-1]].done:
            continue
        passages, seen = [], set()
        for i in turn:
            for p in steps[i].passages if steps[i].kind == "tool" else []:
                key = json.dumps([p.get(k) for k in PASSAGE_KEYS], default=str)
                if key not in seen:
                    seen.add(key)
                    passages.append(p)
        cited = {n for i in answers for n in _cited(split_think(steps[i].text)[1])}
        chosen = [p for p in passages if _ref(p) in cited]
        found[answers[-1]] = chosen or passages
    return found


def _cited(answer: str) -> set[str]:
    return {n for m in _CITE.finditer(answer) for n in re.split(r"\s*[,，、]\s*", m.group(1))}


def _ref(passage: dict[str, Any]) -> str:
    ref = passage.get("ref")
    try:
        return str(int(ref))
    except (TypeError, ValueError):
        return str(ref)


def _sources(passages: list[dict[str, Any]], lang: str) -> dict[str, Any]:
    """One collapsed message listing the passages, each one's text expandable under it.

    Each passage is a ``<details>`` element (the chatbot's sanitizer keeps it)
    built here, all on one line: markdown reads it as a single raw-HTML block and
    parses nothing inside. Everything from the passage is HTML-escaped, its
    markdown punctuation turned into entities and its line breaks into ``<br>``,
    so it can neither add a tag, nor load an image, nor end the block.
    """
    lines = []
    for p in passages:
        label = f"[{_ref(p)}] {p.get('source') or p.get('title') or p.get('doc_id') or '?'}"
        if p.get("section"):
            label += f" › {p['section']}"
        if p.get("page") not in (None, ""):
            label += " " + text(lang, "source_page", page=p["page"])
        body = _inert(str(p.get("text") or "").strip())
        lines.append(f"<details><summary>{_inert(label)}</summary>{body}</details>")
    meta = {"title": text(lang, "sources"), "status": "done"}
    return {"role": "assistant", "content": "\n".join(lines), "metadata": meta}


def _inert(value: str) -> str:
    """Text as HTML that shows it verbatim and means nothing to HTML or markdown."""
    return "<br>".join(line.strip().translate(_INERT) for line in str(value).splitlines())


def _reasoning(body: str, done: bool, lang: str) -> list[dict[str, Any]]:
    if not body.strip():
        return []
    meta = {"title": text(lang, "thinking"), "status": "done" if done else "pending"}
    return [{"role": "assistant", "content": safe_markdown(body), "metadata": meta}]


def _tool(s: Step, lang: str) -> dict[str, Any]:
    body = f"**{text(lang, 'tool_arguments')}**\n\n{_fenced(_pretty(s.arguments or '{}'), 'json')}"
    if s.result is not None:
        body += f"\n\n**{text(lang, 'tool_result')}**\n\n{_fenced(_pretty(s.result), 'json')}"
    meta: dict[str, Any] = {"title": f"🛠️ {s.name or '…'}", "status": "done" if s.done else "pending"}
    if s.repeated:
        meta["log"] = text(lang, "tool_repeated")
    elif s.result is not None and not s.ok:
        meta["log"] = text(lang, "tool_failed")
    elif not s.done:
        meta["log"] = text(lang, "tool_running")
    return {"role": "assistant", "content": body, "metadata": meta}


def _pretty(raw: str) -> str:
    try:
        shown = json.dumps(json.loads(raw), ensure_ascii=False, indent=2)
    except (ValueError, TypeError):
        shown = raw  # arguments still streaming, or not JSON at all
    return shown if len(shown) <= TOOL_TEXT_LIMIT else shown[:TOOL_TEXT_LIMIT] + "\n…"


def _fenced(body: str, info: str = "") -> str:
    # A fence longer than any backtick run inside, so the content cannot close it.
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{body}\n{fence}"


def split_think(content: str) -> tuple[str, str]:
    """(text inside ``<think>`` blocks, the rest): the tags never reach the reader.

    The agent already moves a leading block to reasoning; this also catches
    blocks later in the text and one still open while streaming.
    """
    inner = [m.group(1) for m in _THINK.finditer(content)]
    return "\n".join(inner), _THINK.sub("", content).replace("</think>", "")


def safe_markdown(body: str) -> str:
    """Markdown with every raw HTML tag shown as text; code is left untouched.

    ``<`` outside code becomes ``&lt;``, which markdown displays as ``<``, so
    no tag is ever parsed, whatever the sanitizer would let through.
    """
    out: list[str] = []
    prose: list[str] = []
    fence = ""
    for line in body.splitlines(keepends=True):
        m = _FENCE.match(line)
        if fence:
            out.append(line)
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not line.strip()[len(m.group(1)):]:
                fence = ""
        elif m:
            out.append(_escape_prose("".join(prose)))
            prose, fence = [], m.group(1)
            out.append(line)
        else:
            prose.append(line)
    out.append(_escape_prose("".join(prose)))
    return "".join(out)


def _escape_prose(chunk: str) -> str:
    pieces, start = [], 0
    for m in _CODE_SPAN.finditer(chunk):
        pieces.append(chunk[start : m.start()].replace("<", "&lt;"))
        pieces.append(m.group(0))
        start = m.end()
    pieces.append(chunk[start:].replace("<", "&lt;"))
    return "".join(pieces)


# --- Side panel and settings --------------------------------------------------


def usage_text(totals: dict[str, Any] | None, currency: str, lang: str) -> str:
    """The usage line for a conversation's totals (``Usage.as_dict()``)."""
    if not totals or not (totals.get("prompt_tokens") or totals.get("completion_tokens")):
        return text(lang, "usage_empty")
    cost = float(totals.get("cost") or 0)
    # DeepSeek turns cost fractions of a cent: show enough digits to see them.
    shown = f"{cost:.6f}" if cost < 0.01 else f"{cost:.4f}"
    return text(lang, "usage", prompt=totals.get("prompt_tokens", 0), completion=totals.get("completion_tokens", 0),
                hit=totals.get("cache_hit_tokens", 0), cost=shown, currency=currency)


def conversation_choices(summaries: list[dict[str, Any]], lang: str) -> list[tuple[str, str]]:
    """(label, id) pairs for the conversation list, from ``conversations.summary`` dicts."""
    return [(s.get("title") or text(lang, "untitled"), s["id"]) for s in summaries]
