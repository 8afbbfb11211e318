"""Which assistant tokens the training loss weights more: the ones that choose.

Does: find, in an encoded conversation, each reply's first token and the called tool's name
and, with ``arguments``, the points of a call's JSON arguments where the model chooses: the
object's ``{`` (is there any argument?), the first letter of each key, a value's first character
(where the copied span starts), and the ``,`` or ``}`` after it (is there another key?).
``curriculum.collate`` gives them their weights.

The ``{`` shares its token with what follows it (``{"`` or ``{}`` in the trained BPE), so that
token is where an empty call is chosen; until run 27 it was not weighted, and "{}" for a request
that names its day or its time zone was the commonest key left out (``current_time`` for "time in
Australia/Sydney?", ``list_events`` for "next Monday").

Where a copied span stops is a choice between closing and going on, made at every one of its
characters. The closing quote always shares its token with the ``,`` or ``}`` after it (``",`` and
``"}`` in the trained BPE: run 24's extra weight on closing quotes added no position over 3,000
training conversations), so weighting that token weights closing and not going on; runs 24 and 25
both cut more spans short than they ran on. With ``values`` every token of a string value is
weighted, so both ways of the choice weigh alike.

Does not: tokenise or render (``prepared``), or compute the loss (``loop.loss_of``).
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass

from tokenizers import Tokenizer

from ..copyguide import GuideVocab
from . import tokenizer as ttok
from .curriculum import Encoded

_DECODER = json.JSONDecoder()


@dataclass(frozen=True)
class Choosing:
    """The assistant tokens that choose what a reply does, weighted ``weight`` times in the loss:
    the first token of each reply (a tool call or words; an answer or "I don't know") and the
    tool's name, from the token after ``sep`` through the first of ``ends`` (a newline); with
    ``call_end`` and ``pieces`` (each id's bytes) also the choices inside the call's arguments,
    weighted ``arg_weight`` times.

    They are a few of the ~45 assistant tokens of a conversation and decide both of issue 7's
    targets, while most of the rest (the call's markers, the JSON around the arguments) are
    predictable from the first and teach little once learnt. Runs 20-22 ended with the
    training split's own tool selection at 91%, 78% and 60%; run 23, with the first two kinds
    weighted 4 times, at 96%. Its commonest argument error was then a key left out (the object
    closed after ``text``), a choice the name-only weighting does not reach; run 24, with the
    arguments' choices weighted 4 times too, left out 17 keys, not 38, and its training split's
    argument match rose from 54% to 64%, while selection fell from 96% to 90%."""
    openers: frozenset[int]  # a reply's first token follows one of these (the turn marker, the end of tool outputs)
    sep: int                 # the tool-call marker the name follows
    ends: frozenset[int]     # tokens that end the name
    weight: float
    call_end: int | None = None   # the marker closing a call: the arguments lie between the name and it
    pieces: tuple[bytes, ...] = ()
    arg_weight: float = 1.0
    values: bool = False          # weight every token of a string value, not only its first

    def weights(self, e: Encoded) -> list[tuple[int, float]]:
        """(position, weight) of each weighted target of ``e``."""
        heads, inside = self._find(e)
        return [(i, self.weight) for i in heads] + [(i, self.arg_weight) for i in inside if i not in heads]

    def positions(self, e: Encoded) -> list[int]:
        return sorted({i for i, _ in self.weights(e)})

    def _find(self, e: Encoded) -> tuple[set[int], set[int]]:
        """Positions of the replies' first tokens and the names; positions inside the arguments."""
        out, inside, naming, args_from = [], [], False, None
        for i in range(1, len(e.ids)):
            if not e.targets[i]:
                naming, args_from = False, None
            elif naming:
                out.append(i)
                naming = e.ids[i] not in self.ends
                if not naming and self.call_end is not None:
                    args_from = i + 1
            elif args_from is not None and e.ids[i] == self.call_end:
                inside += self.in_arguments(e.ids, args_from, i)
                args_from = None
            else:
                if not e.targets[i - 1] and e.ids[i - 1] in self.openers:
                    out.append(i)
                naming = e.ids[i] == self.sep
        return set(out), set(inside)

    def in_arguments(self, ids: list[int], start: int, stop: int) -> list[int]:
        """Positions in ``ids[start:stop]`` (a call's arguments, JSON in a fence) holding a choice."""
        starts, raw = [], b""
        for i in range(start, stop):
            starts.append(len(raw))
            raw += self.pieces[ids[i]]
        try:
            text = raw.decode("utf-8")
            chars = _choice_chars(text, self.values)
        except (UnicodeDecodeError, ValueError, IndexError):  # not a whole JSON object: nothing to weight in it
            return []
        return [start + bisect.bisect_right(starts, len(text[:c].encode("utf-8"))) - 1 for c in chars]


def _choice_chars(text: str, values: bool = False) -> list[int]:
    """Offsets in ``text`` of the opening ``{``, each key's first letter, each value's first
    character (inside a string's quotes; with ``values``, each of a string's characters and its
    closing quote), and the ``,`` or ``}`` after each value, for the first JSON object in ``text``."""
    at = text.index("{")
    out, at = [at], at + 1

    def skip(i: int) -> int:
        while i < len(text) and text[i].isspace():
            i += 1
        return i

    while True:
        at = skip(at)
        if text[at] == "}":
            return out
        key_end = _DECODER.raw_decode(text, at)[1]
        out.append(at + 1)
        at = skip(text.index(":", key_end) + 1)
        end = _DECODER.raw_decode(text, at)[1]
        if values and text[at] == '"':
            out += range(at + 1, end)
        else:
            out.append(at + 1 if text[at] == '"' and end - at > 2 else at)
        at = skip(end)
        out.append(at)
        if text[at] == ",":
            at += 1
        elif text[at] != "}":
            raise ValueError(f"no , or }} after a value at {at}")
        else:
            return out


def choosing(tok: Tokenizer, weight: float, arguments: float = 1.0, values: bool = False) -> Choosing | None:
    """The ``Choosing`` tokens of ``tok``'s chat format, the arguments' choices (with ``values``, every
    token of a string value) weighted ``arguments`` times; None when both weights are 1 (a plain mean).
    ``values`` needs ``arguments`` other than 1. Each id's bytes come from the copy guide's view of the
    vocabulary, which reads them the same way."""
    if weight == 1 and arguments == 1:
        return None
    vocab = GuideVocab.of(ttok.chat_tokenizer(tok))
    ends = frozenset(i for i, piece in enumerate(vocab.token_bytes) if b"\n" in piece)
    openers = frozenset({tok.token_to_id(ttok.ASSISTANT), tok.token_to_id(ttok.OUTPUTS_END)})
    if arguments == 1:
        return Choosing(openers, vocab.tool_sep, ends, weight)
    return Choosing(openers, vocab.tool_sep, ends, weight, call_end=vocab.call_end, pieces=vocab.token_bytes,
                    arg_weight=arguments, values=values)
