"""What a tool call's argument may quote from the conversation, for ``copyguide``.

Does: the user's texts a free-text value may quote (raw and JSON-escaped, NUL-separated),
the ids that tool results give or the user pasted, and where a quote may start or end (not inside
a run of ASCII letters and digits, nor between such a run and a joiner that continues it, nor
inside a phone number's digit groups, nor inside a Chinese word: ``inside_words``).

Does not: decide which argument quotes what (``copyguide`` and ``argschema`` do).
"""

from __future__ import annotations

import itertools
import json
import logging
import re
from functools import cache

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


def boundary(text: bytes, i: int, inside: frozenset[int] = frozenset()) -> bool:
    """Whether a quote may start or end at byte ``i``: not inside a run of ASCII letters and digits,
    nor between such a run and a joiner that continues it (``liu.`` | ``yang@example.org``), nor
    beside the space between two digits (``_digit_groups``), nor at one of the ``inside`` offsets
    (``inside_words``)."""
    if i <= 0 or i >= len(text):
        return True
    if i in inside:
        return False
    before, after = text[i - 1], text[i]
    if word_byte(before) and word_byte(after):
        return False
    if _digit_groups(text, i):
        return False
    return not ((before in JOINERS and word_byte(after)) or (word_byte(before) and after in JOINERS
                                                                and i + 1 < len(text) and word_byte(text[i + 1])))


def _digit_groups(text: bytes, i: int) -> bool:
    """Whether ``i`` is next to a single space between two groups of digits, as in a phone number
    written in groups (``186 1111 3333``, ``+49 30 1234567``), which a quote keeps whole (run 24
    closed ``186 1111`` on its training split). A group is digits alone: ``Room 4 8:30am`` is two
    things, a room and a time."""
    space = i if text[i] == 32 else i - 1 if text[i - 1] == 32 else -1
    if space <= 0 or space + 1 >= len(text):
        return False
    # A few bytes either side are enough to see a group, and keep a long message from being rescanned.
    left = re.search(rb"(?:^|[^0-9A-Za-z:.])([0-9]+)$", text[max(0, space - 24):space])
    right = re.match(rb"([0-9]+)(?:$|[^0-9A-Za-z:.])", text[space + 1:space + 25])
    return left is not None and right is not None


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


CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


@cache
def _segmenter():
    """jieba's dictionary segmenter, or None where jieba is not installed (the engine's own command
    line runs with torch and tokenizers alone, on the device machines): Chinese quotes then keep to
    whole characters only."""
    try:
        import jieba
    except ImportError:
        return None
    jieba.setLogLevel(logging.WARNING)
    segmenter = jieba.Tokenizer()
    for week, day in itertools.product(("上周", "下周", "这周", "本周", "每周"), "一二三四五六日天"):
        segmenter.add_word(week + day)  # a weekday is one word (jieba splits 下/周三: run 24 quoted 「周三中午12点」)
    return segmenter


def inside_words(ctx: bytes) -> frozenset[int]:
    """The byte offsets of ``ctx`` (``quotable``'s NUL-separated texts) that fall between two Chinese
    characters of one word, as jieba's dictionary segments it (no HMM guesses, which glue unknown
    characters together: 「王总回」).

    Why: Chinese has no spaces to show where a word ends, and run 24 closed 「带猫打疫苗」 as
    「带猫打疫」 and 「买打印机墨盒」 as 「买打印机墨」, or ran 「理发」 on into 「理发重」 (重命名). Over 3,000
    held-out conversations every Chinese argument starts and ends on such a cut; over 3,000 training
    ones, 1 of 1,667 does not (「对接口设计」 segments as 对接/口), the price of the rule."""
    segmenter = _segmenter()
    if segmenter is None or not CJK.search(ctx.decode()):
        return frozenset()
    inside, start = set(), 0
    for part in ctx.split(b"\0"):
        at = start
        for word in segmenter.cut(part.decode(), HMM=False):
            for k in range(1, len(word)):
                if CJK.fullmatch(word[k - 1]) and CJK.fullmatch(word[k]):
                    inside.add(at + len(word[:k].encode()))
            at += len(word.encode())
        start += len(part) + 1
    return frozenset(inside)
