"""What a tool call's argument may quote from the conversation, for ``copyguide``.

Does: the user's texts a free-text value may quote (raw and JSON-escaped, NUL-separated),
the ids that tool results give or the user pasted, and where a quote may start or end (not inside
a run of ASCII letters and digits, nor between such a run and a joiner that continues it).

Does not: decide which argument quotes what (``copyguide`` and ``argschema`` do).
"""

from __future__ import annotations

import json
import re

from .argschema import is_id_key
from .toolcalls import text_of


UUID = re.compile(rb"\b[0-9a-fA-F]{8}(?:-?[0-9a-fA-F]{4}){3}-?[0-9a-fA-F]{12}\b")


def id_values(messages: list[dict]) -> bytes:
    """The ids an id argument may take, each between NULs: the strings tool results give under an
    id key (``{"title": ..., "id": ...}`` rows, ``conversation_id``), and UUIDs in the user's words.
    Empty when there are none (an id argument is then quoted like any other)."""
    found: dict[bytes, None] = {}

    def walk(node) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            if isinstance(value, str) and is_id_key(key) and value and "\0" not in value:
                found[value.encode()] = None
            else:
                walk(value)

    for m in messages:
        content = text_of(m.get("content"))
        if m.get("role") == "tool" and content:
            try:
                walk(json.loads(content))
            except ValueError:  # a tool that answered plain text names no ids
                continue
        elif m.get("role") == "user" and content:
            found.update(dict.fromkeys(UUID.findall(content.encode())))
    return b"\0" + b"\0".join(found) + b"\0" if found else b""


def word_byte(b: int) -> bool:
    return 48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122  # ASCII letters and digits


JOINERS = b"._@-/"  # inside an address, a path or an id they join two runs of letters and digits


def boundary(text: bytes, i: int) -> bool:
    """Whether a quote may start or end at byte ``i``: not inside a run of ASCII letters and digits,
    nor between such a run and a joiner that continues it (``liu.`` | ``yang@example.org``)."""
    if i <= 0 or i >= len(text):
        return True
    before, after = text[i - 1], text[i]
    if word_byte(before) and word_byte(after):
        return False
    return not ((before in JOINERS and word_byte(after)) or (word_byte(before) and after in JOINERS
                                                                and i + 1 < len(text) and word_byte(text[i + 1])))


def quotable(messages: list[dict]) -> bytes:
    """What a free-text argument may quote: the user's messages, raw and JSON-escaped, NUL-separated
    so that no quote spans two of them.

    Only the user's words: every such argument the bundled model is trained on (a title, a time
    phrase, a contact, a summary, a query) is a span of them, and run 17 quoted a tool's or its own
    words instead (``"contact": "s contact"``). Ids from tool results are ``id_values``' business."""
    parts = []
    for m in messages:
        content = text_of(m.get("content"))
        if m.get("role") != "user" or not content:
            continue
        parts += [content, json.dumps(content, ensure_ascii=False)[1:-1]]
    return b"\0".join(p.encode() for p in parts)
