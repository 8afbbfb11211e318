"""Parsing DeepSeek-V3 tool calls out of generated text, incrementally.

``ToolCallParser`` is fed decoded text deltas and returns events:
  * ``ContentDelta``: plain text for the user. A tail that could begin a marker is held back,
    so no partial marker ever reaches content, whatever the chunking.
  * ``CallStart`` then ``ArgsDelta``s: a call's name as soon as it is known, then its arguments
    piece by piece as they are generated, the way OpenAI streams them. The pieces join to
    exactly the final ``ToolCall.arguments``: the opening code fence is skipped, and trailing
    whitespace and backticks (possibly the closing fence) are held back until more text follows.
  * ``ToolCall``: the whole call, once its end marker arrives, with ``valid``/``error``. A call
    whose head does not look like a call (no name line, no ``{`` where the arguments should
    start) is never started and arrives only as this.
``parse_tool_calls`` runs the same parser over a whole completion.

Does not: decode token ids (tokenizer.py), validate arguments against the tool's schema,
or stop generation (``ToolCallParser.done`` tells the caller when the block has closed).
The markers, the tools prompt and rendering are in toolcalls.py.
"""
from __future__ import annotations

import json
import logging
import re
import uuid
from dataclasses import dataclass
from typing import Callable, Union

from .toolcalls import CALL_BEGIN, CALL_END, CALLS_BEGIN, CALLS_END, TOOL_SEP

log = logging.getLogger("lingxi.engine.toolcalls")


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str          # raw JSON text as the model wrote it ("{}" when empty)
    index: int = 0          # position among this completion's calls
    type: str = "function"
    valid: bool = True      # False: malformed (bad JSON, no name, or cut off)
    error: str | None = None

    def to_openai(self) -> dict:
        return {"id": self.id, "type": self.type,
                "function": {"name": self.name, "arguments": self.arguments}}


@dataclass
class ContentDelta:
    text: str


@dataclass
class CallStart:
    """A call's name is known; its arguments follow as ``ArgsDelta``s, then the ``ToolCall``."""
    index: int
    id: str
    name: str


@dataclass
class ArgsDelta:
    index: int
    text: str


Event = Union[ContentDelta, CallStart, ArgsDelta, ToolCall]

_OPEN_FENCE = re.compile(r"\A\s*```[A-Za-z]*[ \t]*\n?")
_CLOSE_FENCE = re.compile(r"\n?[ \t]*```\s*\Z")
_ARGS_LEAD = re.compile(r"\s*(?:```[A-Za-z]*[ \t]*\n?)?\s*")  # what may precede the "{" of the arguments
_HEAD_LIMIT = 200  # characters of a call's head (type, name, fence) before giving up on streaming it


def _unfence(args: str) -> str:
    """Arguments without the code fence around them; a fence left open or closed alone is dropped too."""
    m = _OPEN_FENCE.match(args)
    args = args[m.end():] if m else args
    m = _CLOSE_FENCE.search(args)
    return (args[:m.start()] if m else args).strip()


def _parse_call_body(body: str) -> tuple[str, str, str | None]:
    """``function<sep>NAME\\n```json\\nARGS\\n``` `` -> (name, args, error or None)."""
    head, sep, rest = body.partition(TOOL_SEP)
    if not sep:
        return "", body.strip(), "missing tool separator"
    if head.strip() == "function" and "\n" in rest:
        # DeepSeek-V3: the type before the separator, name on its own line, fenced args.
        name, _, args = rest.partition("\n")
        name, args = name.strip(), _unfence(args)
    else:
        # DeepSeek-V3.1 style "NAME<sep>ARGS" (no type, no fence): accept it too.
        name, args = head.strip(), _unfence(rest)
    args = args or "{}"
    error = None if name else "missing function name"
    try:
        if error is None and not isinstance(json.loads(args), dict):
            error = "arguments are not a JSON object"
    except ValueError as exc:
        error = f"arguments are not valid JSON: {exc}"
    return name, args, error


def _args_start(body: str) -> tuple[str, int] | None | bool:
    """Where a call's arguments begin: (name, offset of the "{") once the head is complete;
    None while it may still become one; False when it never will (the call then arrives whole)."""
    sep = body.find(TOOL_SEP)
    if sep < 0:
        return None if len(body) < _HEAD_LIMIT else False
    head, after = body[:sep].strip(), sep + len(TOOL_SEP)
    if head == "function":  # the name is on its own line
        newline = body.find("\n", after)
        if newline < 0:
            return None if len(body) - after < _HEAD_LIMIT else False
        name, lead = body[after:newline].strip(), newline + 1
    else:
        name, lead = head, after
    brace = body.find("{", lead)
    if brace < 0:
        return None if len(body) - lead < _HEAD_LIMIT else False
    if not name or not _ARGS_LEAD.fullmatch(body, lead, brace):
        return False
    return name, brace


def _held_suffix(buf: str, markers: tuple[str, ...]) -> int:
    """Length of the longest tail of ``buf`` that could begin one of ``markers``."""
    longest = max(len(m) for m in markers) - 1
    for k in range(min(len(buf), longest), 0, -1):
        tail = buf[-k:]
        if any(m.startswith(tail) for m in markers):
            return k
    return 0


_CALL_STOPS = (CALL_END, CALLS_END, CALL_BEGIN)
_LONGEST_MARKER = max(len(m) for m in _CALL_STOPS)


def _default_id(index: int) -> str:  # OpenAI-like; uuid so ids never repeat across turns
    return f"call_{uuid.uuid4().hex[:24]}"


@dataclass
class _Open:
    """The call being streamed: its arguments start at ``offset`` of the buffer; ``sent`` are out."""
    start: CallStart
    offset: int
    sent: int = 0


class ToolCallParser:
    """Incremental DeepSeek-V3 tool-call parser over text deltas.

    States: ``content`` (plain text; the tail that could start a marker is held back),
    ``block`` (inside the tool_calls block, between calls), ``call`` (inside one call),
    ``after`` (the block has closed).  Text after the closing marker is *ignored*, not
    content: DeepSeek-V3 ends its turn there, and anything else (e.g. hallucinated tool
    outputs) must not reach the user; it is kept in ``ignored`` for logging.
    A bare ``<｜tool▁call▁begin｜>`` in content (the outer marker forgotten) also opens
    a call, since the model does that occasionally.
    """

    _START = (CALLS_BEGIN, CALL_BEGIN)

    def __init__(self, make_id: Callable[[int], str] | None = None):
        self._make_id = make_id or _default_id
        self._state = "content"
        self._buf = ""
        self._scanned = 0      # in "call": how far _buf was already searched for markers
        self._open: _Open | None | bool = None  # in "call": the streamed call; False: not streamable
        self.calls: list[ToolCall] = []
        self.ignored = ""
        # True once the tool_calls block has closed: the caller may stop generating.
        self.done = False

    def feed(self, text: str) -> list[Event]:
        events: list[Event] = []
        if self._state in ("after", "finished"):
            self.ignored += text
            return events
        self._buf += text
        while True:
            if self._state == "content":
                hits = [(i, m) for m in self._START if (i := self._buf.find(m)) >= 0]
                if not hits:
                    keep = _held_suffix(self._buf, self._START)
                    self._emit_content(events, self._buf[:len(self._buf) - keep])
                    self._buf = self._buf[len(self._buf) - keep:]
                    return events
                i, marker = min(hits)
                self._emit_content(events, self._buf[:i])
                self._buf = self._buf[i + len(marker):]
                if marker == CALL_BEGIN:
                    self._begin_call()
                else:
                    self._state = "block"
            elif self._state == "block":
                # Between calls only whitespace is expected; anything else is dropped.
                hits = [(i, m) for m in (CALL_BEGIN, CALLS_END) if (i := self._buf.find(m)) >= 0]
                if not hits:
                    keep = _held_suffix(self._buf, (CALL_BEGIN, CALLS_END))
                    self._buf = self._buf[len(self._buf) - keep:]
                    return events
                i, marker = min(hits)
                self._buf = self._buf[i + len(marker):]
                if marker == CALLS_END:
                    return self._close(events)
                self._begin_call()
            else:  # "call": wait for the end of this call (or a marker that implies it)
                # Only re-search the tail that could hold a marker split across deltas,
                # so long arguments streamed in many deltas stay linear.
                start = max(0, self._scanned - _LONGEST_MARKER + 1)
                hits = [(i, m) for m in _CALL_STOPS if (i := self._buf.find(m, start)) >= 0]
                if not hits:
                    self._scanned = len(self._buf)
                    self._stream(events)
                    return events
                i, marker = min(hits)
                body, self._buf = self._buf[:i], self._buf[i + len(marker):]
                events += self._finish_call(body, None if marker == CALL_END else "call end marker missing")
                if marker == CALLS_END:
                    return self._close(events)
                if marker == CALL_BEGIN:
                    self._begin_call()
                else:
                    self._state = "block"

    def finish(self) -> list[Event]:
        """Flush at the end of generation: held-back text, or a call cut off mid-way."""
        events: list[Event] = []
        if self._state == "content":
            self._emit_content(events, self._buf)
        elif self._state == "call":
            events += self._finish_call(self._buf, "cut off before the call ended")
        self._buf = ""
        self._state = "finished"
        return events

    def _begin_call(self) -> None:
        self._state, self._scanned, self._open = "call", 0, None

    def _stream(self, events: list[Event]) -> None:
        """Start the open call once its name is known, then release its arguments so far."""
        limit = len(self._buf) - _held_suffix(self._buf, _CALL_STOPS)
        if self._open is None:
            found = _args_start(self._buf[:limit])
            if not found:
                self._open = found  # None: not yet; False: never
                return
            index = len(self.calls)
            self._open = _Open(CallStart(index, self._make_id(index), found[0]), found[1])
            events.append(self._open.start)
        if not self._open:
            return
        o, end = self._open, limit
        while end > o.offset + o.sent and self._buf[end - 1] in " \t\r\n`":  # maybe the closing fence
            end -= 1
        if end > o.offset + o.sent:
            events.append(ArgsDelta(o.start.index, self._buf[o.offset + o.sent:end]))
            o.sent = end - o.offset

    def _close(self, events: list[Event]) -> list[Event]:
        self._state, self.done = "after", True
        self.ignored += self._buf
        self._buf = ""
        return events

    @staticmethod
    def _emit_content(events: list[Event], text: str) -> None:
        events.extend([ContentDelta(text)] if text else [])

    def _finish_call(self, body: str, error: str | None) -> list[Event]:
        name, args, parse_error = _parse_call_body(body)
        error = error or parse_error
        index, events = len(self.calls), []
        call_id = self._open.start.id if self._open else self._make_id(index)
        if self._open:
            sent = body[self._open.offset:self._open.offset + self._open.sent]
            if args.startswith(sent):
                events += [ArgsDelta(index, args[len(sent):])] if len(args) > len(sent) else []
            else:  # cannot happen for the fences _unfence strips; the client keeps what it got
                log.warning("streamed arguments of call %d are not a prefix of the final ones", index)
        call = ToolCall(id=call_id, name=name, arguments=args, index=index, valid=error is None, error=error)
        self.calls.append(call)
        self._open, self._scanned = None, 0
        return [*events, call]


def parse_tool_calls(text: str, make_id: Callable[[int], str] | None = None
                     ) -> tuple[str, list[ToolCall]]:
    """Whole completion -> (content, calls)."""
    parser = ToolCallParser(make_id)
    events = parser.feed(text) + parser.finish()
    content = "".join(e.text for e in events if isinstance(e, ContentDelta))
    return content, [e for e in events if isinstance(e, ToolCall)]
