"""What the offered tools' JSON schemas say a tool call's arguments may be, for ``copyguide``.

Does: per tool, its parameters, the required ones, the free-text string ones (a user's words fill
them), and the kind of value each typed one takes (``value_kind``: a JSON number, ``true``/``false``,
or one of a string ``enum``'s values); which keys name a record by id. Malformed schemas yield
nothing to guide rather than an error.

Does not: validate arguments (the app's tool registry does, with pydantic) or follow ``$ref``s and
nested objects.
"""

from __future__ import annotations

import re

from .toolcalls import function_of


def _free_text(schema) -> bool:
    """A string schema without ``enum``/``const``; ``anyOf``/``oneOf`` with one (an optional string) counts."""
    if not isinstance(schema, dict) or "enum" in schema or "const" in schema:
        return False
    kind = schema.get("type")
    if kind == "string" or (isinstance(kind, list) and "string" in kind):
        return True
    return any(_free_text(s) for s in [*schema.get("anyOf", []), *schema.get("oneOf", [])])


def _schemas(tools: list[dict] | None):
    """(tool name, its parameters' schemas, the names it requires) for each tool, OpenAI-shaped or bare."""
    for tool in tools or []:
        try:
            fn = function_of(tool)
        except ValueError:  # a tool without a name: nothing can call it
            continue
        params = fn.get("parameters")
        props = params.get("properties") if isinstance(params, dict) else None
        props = props if isinstance(props, dict) else {}  # a malformed schema guides nothing
        need = params.get("required") if isinstance(params, dict) else None
        yield fn["name"], props, frozenset(need if isinstance(need, list) else ()) & frozenset(props)


BARE = {"integer": re.compile(rb"-?(?:0|[1-9][0-9]{0,8})"), "boolean": re.compile(rb"true|false"),
        "number": re.compile(rb"-?(?:0|[1-9][0-9]{0,8})(?:\.[0-9]{1,9})?(?:[eE][+-]?[0-9]{1,3})?")}


def value_kind(schema) -> str | tuple[str, ...] | None:
    """What a top-level value of ``schema`` must be: "text" (``_free_text``), a ``BARE`` kind, the
    values of a string ``enum``, or None (left alone); an optional one (``anyOf`` with null) counts."""
    if not isinstance(schema, dict):
        return None
    if _free_text(schema):
        return "text"
    if "enum" in schema:
        values = schema["enum"]
        ok = isinstance(values, list) and values and all(isinstance(v, str) and v and "\0" not in v for v in values)
        return tuple(values) if ok else None
    kind = schema.get("type")
    if isinstance(kind, list) and len(set(kind) - {"null"}) == 1:
        kind = next(k for k in kind if k != "null")
    if isinstance(kind, str) and kind in BARE:
        return kind
    options = [value_kind(s) for s in [*schema.get("anyOf", []), *schema.get("oneOf", [])]
               if not (isinstance(s, dict) and s.get("type") == "null")]
    return options[0] if len(options) == 1 else None


def required(tools: list[dict]) -> dict[str, frozenset[str]]:
    """Tool name -> the parameters its schema requires (of those it declares)."""
    return {name: need for name, _, need in _schemas(tools)}


def guided_arguments(tools: list[dict]) -> dict[str, frozenset[str]]:
    """Tool name -> its top-level free-text string parameters (the ones a user's words fill)."""
    return {name: frozenset(k for k, s in props.items() if _free_text(s)) for name, props, _ in _schemas(tools)}


def typed_arguments(tools: list[dict]) -> dict[str, dict[str, str | bytes]]:
    """Tool name -> {parameter: its ``BARE`` kind, or its enum's values between NULs (as ``id_values``)}."""
    out: dict[str, dict[str, str | bytes]] = {}
    for name, props, _ in _schemas(tools):
        kinds = {k: value_kind(s) for k, s in props.items()}
        out[name] = {k: b"\0" + "\0".join(v).encode() + b"\0" if isinstance(v, tuple) else v
                     for k, v in kinds.items() if v is not None and v != "text"}
    return out


def is_id_key(key) -> bool:
    """A key that names a record by id: ``id`` or ``*_id``."""
    return isinstance(key, str) and (key == "id" or key.endswith("_id"))


def parameters(tools: list[dict]) -> dict[str, frozenset[str]]:
    """Tool name -> the names of all its parameters (the keys its arguments may use)."""
    return {name: frozenset(props) for name, props, _ in _schemas(tools)}
