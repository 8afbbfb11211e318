"""Where generation stands inside a DeepSeek-V3 tool call, for ``copyguide``.

Does: ``CallScanner`` follows the generated tokens through ``<｜tool▁call▁begin｜>function
<｜tool▁sep｜>NAME`` and the JSON object of arguments after it, byte by byte: which tool, which
key is being written or was last written, which keys are used, whether a string is open and
whether it is a key or a value, and how deep in the object it is. ``scan(data, rules)`` advances
over bytes and, given ``rules`` (the guide), stops with False at the first byte that breaks them:
a key that is no unused parameter of the tool, a ``,`` or a new key when none is left, stray text
between the members or more than one whitespace byte in a row there (``json.dumps``, which wrote the
training data, never does), a guided argument (free text or an enum) that is not a string or stops being
a quote of the conversation (or one of the enum's values), or a bare value (a number, ``true``,
``false``, ``null``) that the rules do not take for its parameter.

Does not: parse JSON fully (nested values pass unchecked) or decide what the rules are
(``copyguide.CopyGuide`` does).
"""

from __future__ import annotations

import copy
from typing import Protocol

from .toolcalls import ARGS_CLOSE

FENCE = ARGS_CLOSE.encode()
JSON_SPACE = " \t\n\r"  # bytes are read one by one, so str.isspace would take 0x85 and 0xA0 for spaces


class Rules(Protocol):
    def key_ok(self, scanner: CallScanner, key: bytes, whole: bool) -> bool: ...
    def more_keys(self, scanner: CallScanner) -> bool: ...
    def may_close(self, scanner: CallScanner) -> bool: ...
    def value_ok(self, scanner: CallScanner, value: bytes, closing: bool) -> bool: ...
    def bare_ok(self, scanner: CallScanner, value: bytes, closing: bool) -> bool: ...
    def guided(self, scanner: CallScanner) -> bool: ...


class CallScanner:
    """See the module docstring; ``feed(token)`` for tokens actually generated."""

    def __init__(self, vocab):
        self.vocab = vocab
        self.mode = "text"            # "text" | "head" (after CALL_BEGIN) | "name" | "json"
        self.name, self.head = "", b""
        self.stack: list[str] = []
        self.in_str = self.escape = False
        self.is_value, self.key, self.cur = False, "", b""  # ``cur``: the string, or bare value, being written
        # At the top level, what comes next: "first" (a key or '}'), "key", "colon", "value",
        # "bare" (inside a number, true, false or null), "next" (',' or '}').
        self.expect = "first"
        self.closed = False           # the arguments object has closed
        self.tail = b""               # what followed the object's ``}`` (the closing fence, written so far)
        self.spaced = False           # the last byte outside strings at the top level was whitespace
        self.used: set[str] = set()

    def clone(self) -> CallScanner:
        twin = copy.copy(self)
        twin.stack, twin.used = list(self.stack), set(self.used)
        return twin

    @property
    def done(self) -> bool:
        """The arguments object of the call being written has closed (its end marker not yet seen)."""
        return self.mode == "json" and self.closed

    @property
    def fenced(self) -> bool:
        """The arguments object has closed and its closing fence is written: the call may end."""
        return self.done and self.tail == FENCE

    @property
    def top(self) -> bool:
        """Inside the arguments object itself (not a nested value)."""
        return self.mode == "json" and len(self.stack) == 1

    def feed(self, token: int) -> None:
        v = self.vocab
        if token == v.call_begin:
            self.mode, self.head = "head", b""
        elif token == v.tool_sep and self.mode == "head":
            self.mode, self.head = "name", b""
        elif token == v.call_end or token in v.added:
            self.mode = "text"
        elif self.mode == "name":
            self.head += v.token_bytes[token]
            if b"{" in self.head:
                at = self.head.index(b"{")
                self.open(self.head[:at])
                self.scan(self.head[at:])
        elif self.mode == "json":
            self.scan(v.token_bytes[token])

    def open(self, head: bytes) -> None:
        """Begin the arguments object of the tool that ``head`` (the text after the separator) names."""
        self.name = head.split(b"\n")[0].decode("utf-8", "replace").strip()
        self.mode, self.stack, self.in_str, self.used, self.closed = "json", [], False, set(), False
        self.tail = b""

    def scan(self, data: bytes, rules: Rules | None = None) -> bool:
        """Advance over ``data``; with ``rules``, False as soon as a byte breaks them."""
        for c in data:
            ch = chr(c)
            if self.in_str:
                if not self._string_byte(c, ch, rules):
                    return False
                continue
            if self.closed:
                self.tail += bytes((c,))
                if rules and not FENCE.startswith(self.tail):
                    return False  # after the object only its closing fence: a small model wrote a second one
                continue
            if rules and self.top and not self._member_ok(ch, rules):
                return False
            if rules and self.top and self.spaced and ch in JSON_SPACE:
                return False  # one whitespace byte at a time: a small model spun on spaces to its token limit
            self.spaced = self.top and ch in JSON_SPACE
            if rules and ch in "}]" and self.stack[-1:] != ["{" if ch == "}" else "["]:
                return False  # closes what is not open
            self._structure(ch, c)
        if rules and self.in_str and self.is_value and self.top and rules.guided(self):
            return rules.value_ok(self, self.cur, False)
        return True

    def _string_byte(self, c: int, ch: str, rules: Rules | None) -> bool:
        if self.escape:
            self.escape = False
        elif ch == "\\":
            self.escape = True
        elif ch == '"':
            if rules and self.top and not self._closes(rules):
                return False
            self.in_str = False
            if self.top and not self.is_value:
                self.key = self.cur.decode("utf-8", "replace")
                self.used.add(self.key)
                self.expect = "colon"
            elif self.top:
                self.expect = "next"
            return True
        self.cur += bytes((c,))
        return not (rules and self.top and not self.is_value and not rules.key_ok(self, self.cur, False))

    def _structure(self, ch: str, c: int) -> None:
        """Follow one byte outside strings: brackets, and at the top level what comes next."""
        if self.top and self.expect == "bare" and ch not in ",}":
            if ch in JSON_SPACE:
                self.expect = "next"
            else:
                self.cur += bytes((c,))
        elif ch in "{[":
            self.stack.append(ch)
            if len(self.stack) == 1:
                self.expect = "first"
        elif ch in "}]":
            self.stack = self.stack[:-1]
            if len(self.stack) == 1:
                self.expect = "next"  # a nested value has closed
            self.closed = self.closed or not self.stack
        elif ch == '"':
            self.in_str, self.cur, self.escape = True, b"", False
            self.is_value = not self.top or self.expect == "value"
        elif self.top and ch == ":":
            self.expect = "value"
        elif self.top and ch == ",":
            self.expect = "key"
        elif self.top and ch not in JSON_SPACE and self.expect == "value":
            self.expect, self.cur = "bare", bytes((c,))

    def _member_ok(self, ch: str, rules: Rules) -> bool:
        """Whether ``ch``, outside any string at the top level, keeps the object well formed: keys
        that are unused parameters, ``:``, a value (a string for a free-text argument), then ``,``
        while a key is left, or ``}`` once the required ones have values."""
        expect, byte = self.expect, ch.encode("latin-1")
        if ch in JSON_SPACE:
            return expect != "bare" or rules.bare_ok(self, self.cur, True)
        if expect in ("first", "key"):
            return (ch == '"' and rules.more_keys(self)) or (ch == "}" and expect == "first" and rules.may_close(self))
        if expect == "colon":
            return ch == ":"
        if expect == "value":
            return ch == '"' if rules.guided(self) else ch not in ",:}]" and rules.bare_ok(self, byte, False)
        if ch in ",}" and expect == "bare" and not rules.bare_ok(self, self.cur, True):
            return False  # a number, true or false cut short
        if ch == ",":
            return rules.more_keys(self)
        if ch == "}":
            return rules.may_close(self)
        # The rest of a number, true, false or null.
        return expect == "bare" and ch not in ':"{[]' and rules.bare_ok(self, self.cur + byte, False)

    def _closes(self, rules: Rules) -> bool:
        """The string open at the top level may close here: a whole unused key, or a guided value that is a quote."""
        if not self.is_value:
            return rules.key_ok(self, self.cur, True)
        return not rules.guided(self) or rules.value_ok(self, self.cur, True)
