"""Tool registry: typed Python functions become chat-completions tools.

A tool is a plain function with type hints and a docstring. Its JSON schema
comes from the signature (through pydantic) and its descriptions from the
docstring's first paragraph and its ``Args:`` section. A parameter annotated
``ToolContext`` is filled in by the agent and never shown to the model.

Each agent profile has an allow-list. It is enforced here, when a call is
executed, not when schemas are offered: a model may ask for any name, and a
name outside the profile is refused and reported as an error result.

A tool that can't go on without the user (an ambiguous time, a name that
matches no record or several) raises ``NeedsUser``; the registry answers
with an ``ask_user`` result, so no tool repeats that handling.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, get_type_hints

from pydantic import Field, ValidationError, create_model

from assistant.config import Settings
from assistant.db import Database
from tools.profiles import PROFILES

def compact(value: Any) -> Any:
    """``value`` without its empty dict entries (None or ""), recursively: the model reads every key
    it is sent, and ``"notes": ""`` tells it nothing a missing key does not. Lists stay whole (an
    empty ``passages`` list is an answer)."""
    if isinstance(value, dict):
        return {k: compact(v) for k, v in value.items() if v is not None and v != ""}
    if isinstance(value, list):
        return [compact(v) for v in value]
    return value


@dataclass
class ToolContext:
    """What a running tool may know about its caller."""

    settings: Settings
    db: Database
    profile: str
    conversation_id: str | None = None
    clock: Callable[[], datetime] | None = None
    kb: Any = None  # rag.ingest.KnowledgeBase, for the knowledge tools
    collections: list[str] | None = None  # a widget site's collections; None: the configured ones
    site_id: int | None = None

    @property
    def kb_collections(self) -> list[str]:
        return self.collections or self.settings.collections

    def now(self) -> datetime:
        """The current moment, zone-aware, in the owner's zone."""
        return self.clock() if self.clock else datetime.now(self.settings.tz)


class NeedsUser(Exception):
    """The tool can't proceed without the user's answer; str() is the question, and ``candidates``
    the records the user may mean, for the model to call again by id once the user has chosen."""

    def __init__(self, question: str, candidates: list[dict] | None = None):
        super().__init__(question)
        self.candidates = candidates or []


def ask_user(question: str, candidates: list[dict] | None = None) -> dict:
    """The result a tool gives instead of guessing: the question for the model to put to the user."""
    result = {"ok": False, "ask_user": question, "instruction": "Ask the user this question; do not guess."}
    if candidates:
        result["candidates"] = candidates
    return result


@dataclass
class ToolResult:
    ok: bool
    content: str

    @classmethod
    def error(cls, message: str) -> ToolResult:
        return cls(ok=False, content=json.dumps({"error": message}, ensure_ascii=False))


@dataclass
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    fn: Callable[..., Any]
    args_model: type
    context_param: str | None = None

    @property
    def schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """(description, {param: description}) from a Google-style docstring."""
    doc = inspect.cleandoc(doc or "")
    head, _, rest = doc.partition("\nArgs:")
    description = " ".join(head.split("\n\n")[0].split())
    params: dict[str, str] = {}
    current = None
    for line in rest.splitlines():
        if line and not line[0].isspace():
            break  # a new section such as Returns:
        match = re.match(r"\s+(\w+)(?:\s*\([^)]*\))?:\s*(.*)", line)
        if match:
            current = match.group(1)
            params[current] = match.group(2).strip()
        elif current and line.strip():
            params[current] += " " + line.strip()
    return description, params


def _strip_titles(node: Any) -> Any:
    """Drop pydantic's generated "title"s, which only cost tokens.

    Keys of "properties" are parameter names, so a parameter called "title" stays.
    """
    if isinstance(node, dict):
        return {
            k: ({p: _strip_titles(v) for p, v in value.items()} if k == "properties" else _strip_titles(value))
            for k, value in node.items()
            if k != "title"
        }
    if isinstance(node, list):
        return [_strip_titles(v) for v in node]
    return node


def make_tool(fn: Callable[..., Any], name: str | None = None) -> Tool:
    description, arg_docs = parse_docstring(fn.__doc__)
    if not description:
        raise ValueError(f"tool {fn.__name__} needs a docstring: it is the model's only guide")
    hints = get_type_hints(fn)
    fields: dict[str, Any] = {}
    context_param = None
    for pname, param in inspect.signature(fn).parameters.items():
        hint = hints.get(pname, Any)
        if hint is ToolContext:
            context_param = pname
            continue
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[pname] = (hint, Field(default, description=arg_docs.get(pname)))
    args_model = create_model(f"{fn.__name__}_args", **fields)
    parameters = _strip_titles(args_model.model_json_schema())
    parameters.setdefault("properties", {})
    return Tool(
        name=name or fn.__name__,
        description=description,
        parameters=parameters,
        fn=fn,
        args_model=args_model,
        context_param=context_param,
    )


@dataclass
class Registry:
    tools: dict[str, Tool] = field(default_factory=dict)
    profiles: Mapping[str, frozenset[str]] = field(default_factory=lambda: PROFILES)

    def register(self, fn: Callable[..., Any], name: str | None = None) -> Tool:
        tool = make_tool(fn, name)
        if tool.name in self.tools:
            raise ValueError(f"tool {tool.name} registered twice")
        self.tools[tool.name] = tool
        return tool

    def allowed(self, profile: str) -> frozenset[str]:
        if profile not in self.profiles:
            raise KeyError(f"unknown profile {profile!r}")
        return self.profiles[profile]

    def schemas(self, profile: str) -> list[dict[str, Any]]:
        allowed = self.allowed(profile)
        return [t.schema for name, t in sorted(self.tools.items()) if name in allowed]

    def execute(self, name: str, arguments: str | None, *, context: ToolContext) -> ToolResult:
        """Run one call from the model. Never raises: failures become error results."""
        if name not in self.allowed(context.profile):
            return ToolResult.error(f"tool '{name}' is not available to the {context.profile} profile")
        tool = self.tools.get(name)
        if tool is None:
            return ToolResult.error(f"tool '{name}' does not exist")
        try:
            raw = json.loads(arguments or "{}")
        except json.JSONDecodeError as exc:
            return ToolResult.error(f"arguments are not valid JSON ({exc.msg} at position {exc.pos}); resend them")
        if not isinstance(raw, dict):
            return ToolResult.error("arguments must be a JSON object")
        try:
            args = tool.args_model.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors())
            return ToolResult.error(f"invalid arguments: {problems}")
        kwargs = {k: getattr(args, k) for k in type(args).model_fields}
        if tool.context_param:
            kwargs[tool.context_param] = context
        try:
            value = tool.fn(**kwargs)
        except NeedsUser as exc:  # raised before any change is committed, so nothing changed
            value = ask_user(str(exc), exc.candidates)
        except Exception as exc:  # the model should see the failure and recover
            return ToolResult.error(f"{type(exc).__name__}: {exc}")
        if isinstance(value, str):
            return ToolResult(ok=True, content=value)
        return ToolResult(ok=True, content=json.dumps(compact(value), ensure_ascii=False, default=str))
