"""Reassembling a streamed chat completion.

Pieces the agent needs while reading ``chat.completion.chunk``s: tool-call
fragments keyed by index, DeepSeek's untyped ``reasoning_content`` field, and
``<think>…</think>`` blocks that some OpenAI-compatible servers put inside
``content``, which are moved to reasoning so the tags never reach the user.
Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from assistant.conversations import Usage

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


@dataclass
class Event:
    """One item of a reply's stream; ``type`` is one of the SSE event types."""

    type: str  # delta | reasoning | tool_call | tool_result | citation | usage | error | retry | done
    data: dict[str, Any] = field(default_factory=dict)


def extra_field(obj: Any, name: str) -> Any:
    """A field the SDK does not type (e.g. reasoning_content), or None."""
    value = getattr(obj, name, None)
    if value is None:
        extra = getattr(obj, "model_extra", None) or {}
        value = extra.get(name)
    return value


@dataclass
class ToolCallAccumulator:
    """Tool calls rebuilt from deltas; a call's fragments share its index."""

    _calls: dict[int, dict[str, Any]] = field(default_factory=dict)

    def add(self, deltas: list[Any] | None) -> list[int]:
        touched = []
        for d in deltas or []:
            index = d.index if d.index is not None else len(self._calls)
            call = self._calls.setdefault(
                index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
            )
            if d.id:
                call["id"] = d.id
            fn = d.function
            if fn is not None:
                if fn.name:
                    call["function"]["name"] += fn.name
                if fn.arguments:
                    call["function"]["arguments"] += fn.arguments
            touched.append(index)
        return touched

    def get(self, index: int) -> dict[str, Any]:
        return self._calls[index]

    def calls(self) -> list[dict[str, Any]]:
        out = []
        for i, index in enumerate(sorted(self._calls)):
            call = self._calls[index]
            # Some servers omit ids; the protocol needs one to pair results.
            call["id"] = call["id"] or f"call_{i}"
            out.append(call)
        return out


@dataclass
class ThinkTagSplitter:
    """Routes text inside a leading <think> block to reasoning, the rest to content."""

    _state: str = "start"  # start | think | after (newlines to drop) | content
    _buffer: str = ""

    def feed(self, text: str) -> tuple[str, str]:
        if self._state == "after":
            text = text.lstrip("\n")
            if text:
                self._state = "content"
        if self._state in ("after", "content"):
            return "", text
        self._buffer += text
        if self._state == "start":
            stripped = self._buffer.lstrip()
            if THINK_OPEN.startswith(stripped):
                return "", ""  # might still become "<think>": wait for more
            if not stripped.startswith(THINK_OPEN):
                self._state = "content"
                out, self._buffer = self._buffer, ""
                return "", out
            self._state = "think"
            self._buffer = stripped[len(THINK_OPEN) :]
        end = self._buffer.find(THINK_CLOSE)
        if end >= 0:
            reasoning, rest = self._buffer[:end], self._buffer[end + len(THINK_CLOSE) :]
            self._state, self._buffer = "after", ""
            return reasoning, self.feed(rest)[1]
        # Hold back a tail that could be the start of "</think>".
        keep = next((k for k in range(len(THINK_CLOSE) - 1, 0, -1) if self._buffer.endswith(THINK_CLOSE[:k])), 0)
        reasoning = self._buffer[: len(self._buffer) - keep]
        self._buffer = self._buffer[len(self._buffer) - keep :]
        return reasoning, ""

    def flush(self) -> tuple[str, str]:
        out, self._buffer = self._buffer, ""
        return (out, "") if self._state == "think" else ("", out)


@dataclass
class StepReader:
    """Everything one streamed model call produced, and the events it implies."""

    content: str = ""
    reasoning: str = ""
    usage: Usage = field(default_factory=Usage)
    calls: ToolCallAccumulator = field(default_factory=ToolCallAccumulator)
    think: ThinkTagSplitter = field(default_factory=ThinkTagSplitter)

    def consume(self, chunk: Any) -> list[Event]:
        events: list[Event] = []
        if getattr(chunk, "usage", None):
            u = chunk.usage
            prompt = u.prompt_tokens or 0
            hit = extra_field(u, "prompt_cache_hit_tokens")
            miss = extra_field(u, "prompt_cache_miss_tokens")
            if hit is None and miss is None:
                cached = getattr(getattr(u, "prompt_tokens_details", None), "cached_tokens", None) or 0
                hit, miss = cached, prompt - cached
            self.usage = Usage(
                prompt_tokens=prompt,
                completion_tokens=u.completion_tokens or 0,
                cache_hit_tokens=int(hit or 0),
                cache_miss_tokens=int(miss if miss is not None else prompt - (hit or 0)),
            )
        if not chunk.choices:
            return events
        delta = chunk.choices[0].delta
        reasoning = extra_field(delta, "reasoning_content") or ""
        more_reasoning, content = self.think.feed(delta.content or "")
        events += self._text(reasoning + more_reasoning, content)
        for index in self.calls.add(delta.tool_calls):
            call = self.calls.get(index)
            events.append(
                Event(
                    "tool_call",
                    {
                        "phase": "delta",
                        "index": index,
                        "id": call["id"],
                        "name": call["function"]["name"],
                        "arguments": call["function"]["arguments"],
                    },
                )
            )
        return events

    def finish(self) -> list[Event]:
        return self._text(*self.think.flush())

    def _text(self, reasoning: str, content: str) -> list[Event]:
        events = []
        if reasoning:
            self.reasoning += reasoning
            events.append(Event("reasoning", {"text": reasoning}))
        if content:
            self.content += content
            events.append(Event("delta", {"text": content}))
        return events
