"""Engine ``Output`` deltas -> OpenAI objects: chat.completion(.chunk) and text_completion.

``ChatTranslator`` runs the generated text through ``ToolCallParser`` whether streamed or not,
so DeepSeek-V3 tool-call markers never leak into content; it reports ``done`` as soon as the
tool-calls block closes, so the caller stops generating there.  A streamed call arrives as
OpenAI's do: a ``tool_calls`` delta with index, id, type, name and empty arguments once the
name is generated, then deltas carrying pieces of the arguments as they are generated (a call
the parser could not start early arrives whole in one delta).  ``CompletionTranslator`` passes
raw text.
Both build the streamed chunks (in exactly OpenAI's shapes, usage chunk included) and the
non-streamed reply from the same events.

No I/O here: no HTTP, no SSE framing, no engine calls (that is server.py), so the translation
is unit-tested with scripted outputs.  Request parsing is in protocol.py.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from .toolcall_parser import ArgsDelta, CallStart, ContentDelta, ToolCall, ToolCallParser

log = logging.getLogger("lingxi.engine.server")


def _usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


class _Translator:
    object_chunk = ""

    def __init__(self, *, model: str, completion_id: str | None = None, created: int | None = None):
        self.model = model
        self.id = completion_id or self._new_id()
        self.created = int(time.time()) if created is None else created
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.engine_finish: str | None = None
        self.error: str | None = None

    @staticmethod
    def _new_id() -> str:
        return "cmpl-" + uuid.uuid4().hex

    def _count(self, out) -> None:
        self.prompt_tokens = out.prompt_tokens or self.prompt_tokens
        self.completion_tokens = max(self.completion_tokens, out.completion_tokens or 0)
        if out.finished:
            self.engine_finish = out.finish_reason
            if out.finish_reason == "error":
                self.error = out.error or "generation failed"

    @property
    def usage(self) -> dict:
        return _usage(self.prompt_tokens, self.completion_tokens)

    def _chunk(self, choices: list[dict], **extra) -> dict:
        return {"id": self.id, "object": self.object_chunk, "created": self.created,
                "model": self.model, "system_fingerprint": None, "choices": choices, **extra}

    def usage_chunk(self) -> dict:
        return self._chunk([], usage=self.usage)


class ChatTranslator(_Translator):
    """Engine ``Output`` deltas -> chat.completion chunks, or one chat.completion.

    ``feed(out)`` returns the chunks for one step; ``done`` turns true once the engine finished
    or the tool-calls block closed (the caller then stops generating); ``finish()`` returns the
    last chunks (held-back text, a cut-off call, the chunk with ``finish_reason``).
    ``completion()`` is the non-streaming reply built from the same events.
    Tool calls are surfaced only when ``tools_enabled``; otherwise a tool-calls block the model
    writes anyway is dropped (never shown as text).
    """

    object_chunk = "chat.completion.chunk"

    def __init__(self, *, model: str, tools_enabled: bool, completion_id: str | None = None,
                 created: int | None = None, make_id=None):
        super().__init__(model=model, completion_id=completion_id, created=created)
        self.tools_enabled = tools_enabled
        self.parser = ToolCallParser(make_id)
        self.content = ""
        self.calls: list[ToolCall] = []
        self._streamed: dict[int, int] = {}  # parser index of a call streamed piecewise -> its tool_calls index
        self._finished = False

    @staticmethod
    def _new_id() -> str:
        return "chatcmpl-" + uuid.uuid4().hex

    @property
    def done(self) -> bool:
        return self.parser.done or self.engine_finish is not None

    def first_chunk(self) -> dict:
        return self._chunk([{"index": 0, "delta": {"role": "assistant", "content": ""},
                             "logprobs": None, "finish_reason": None}])

    def _events_to_chunks(self, events) -> list[dict]:
        chunks, text = [], ""
        for ev in events:
            if isinstance(ev, ContentDelta):
                text += ev.text
                continue
            if text:
                chunks.append(self._delta({"content": text}))
                self.content += text
                text = ""
            if isinstance(ev, ArgsDelta):
                if ev.index in self._streamed:
                    chunks.append(self._call_delta({"index": self._streamed[ev.index],
                                                    "function": {"arguments": ev.text}}))
                continue
            if not (self.tools_enabled and ev.name):
                if isinstance(ev, ToolCall):
                    log.info("dropped a tool call (%s): %r", "tools off" if ev.name else ev.error, ev.name)
                continue
            if isinstance(ev, CallStart):
                self._streamed[ev.index] = index = len(self.calls) + len(self._streamed)
                chunks.append(self._call_delta({"index": index, "id": ev.id, "type": "function",
                                                "function": {"name": ev.name, "arguments": ""}}))
                continue
            if not ev.valid:
                log.info("tool call %s is malformed: %s", ev.name, ev.error)
            if self._streamed.pop(ev.index, None) is None:  # not started early: the whole call at once
                chunks.append(self._call_delta({"index": len(self.calls), "id": ev.id, "type": "function",
                                                "function": {"name": ev.name, "arguments": ev.arguments}}))
            self.calls.append(ev)
        if text:
            chunks.append(self._delta({"content": text}))
            self.content += text
        return chunks

    def _call_delta(self, call: dict) -> dict:
        return self._delta({"tool_calls": [call]})

    def _delta(self, delta: dict, finish_reason: str | None = None) -> dict:
        return self._chunk([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}])

    def feed(self, out) -> list[dict]:
        self._count(out)
        return self._events_to_chunks(self.parser.feed(out.text or ""))

    @property
    def finish_reason(self) -> str:
        if self.calls:
            cut = self.engine_finish == "length" and self.calls[-1].error and "cut off" in self.calls[-1].error
            return "length" if cut else "tool_calls"
        if self.parser.done:  # the tool-calls block closed, its calls dropped: the turn ended
            return "stop"
        if self.engine_finish in ("stop", "length"):
            return self.engine_finish
        return "stop"

    def finish(self) -> list[dict]:
        if self._finished:
            return []
        self._finished = True
        chunks = self._events_to_chunks(self.parser.finish())
        return chunks + [self._delta({}, self.finish_reason)]

    def completion(self) -> dict:
        self.finish()
        message: dict[str, Any] = {"role": "assistant", "content": self.content or None}
        if self.calls:
            message["tool_calls"] = [{"id": c.id, "type": "function",
                                      "function": {"name": c.name, "arguments": c.arguments}}
                                     for c in self.calls]
        else:
            message["content"] = self.content
        return {"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
                "system_fingerprint": None,
                "choices": [{"index": 0, "message": message, "logprobs": None,
                             "finish_reason": self.finish_reason}],
                "usage": self.usage}


class CompletionTranslator(_Translator):
    """Engine ``Output`` deltas -> text_completion chunks, or one text_completion."""

    object_chunk = "text_completion"

    def __init__(self, **kw):
        super().__init__(**kw)
        self.text = ""

    @property
    def done(self) -> bool:
        return self.engine_finish is not None

    def _choice(self, text: str, finish_reason: str | None) -> dict:
        return self._chunk([{"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}])

    def feed(self, out) -> list[dict]:
        self._count(out)
        self.text += out.text or ""
        return [self._choice(out.text, None)] if out.text else []

    @property
    def finish_reason(self) -> str:
        return self.engine_finish if self.engine_finish in ("stop", "length") else "stop"

    def finish(self) -> list[dict]:
        return [self._choice("", self.finish_reason)]

    def completion(self) -> dict:
        body = self._choice(self.text, self.finish_reason)
        body["usage"] = self.usage
        return body
