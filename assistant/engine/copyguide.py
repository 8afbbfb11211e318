"""Copy-guided decoding: a tool call's free-text string arguments quote the conversation.

Does: ``CopyGuide`` is a per-request logits guide the sampler consults before every token
(``SamplingParams.guide``). It follows the DeepSeek-V3 tool-call block as it is generated
(``callscan.CallScanner``); it keeps a call's name to the offered tools' names (a small model
wrote ``服，_base``), and, inside the arguments object of an offered tool, keeps keys to the
tool's unused parameters (no ``,`` or new key once all are used, no ``}`` before the required
ones), and, while the model is writing the value of a top-level free-text string argument (no
``enum``; an optional string counts: a title, a time phrase, an id), keeps only the tokens that extend the value to something
the user said verbatim (its JSON-escaped form counts too; what tools and earlier replies said does not),
starting where a word starts; the closing quote is allowed once the value is a non-empty quote
that ends where a word ends (``_quoted``; a Chinese word as jieba segments it, ``quotes.inside_words``); once the object closes, only its closing fence and the
call's end marker may follow, once (a small model went on writing after ``}``, or wrote a second fence). Of the allowed tokens the ``keep`` most likely survive, in the
model's own order, so greedy decoding takes the model's best choice among real quotes.
An id argument (a parameter named ``id`` or ``*_id``) quotes a whole id instead: a string a tool
result gave under an id key, or a UUID the user pasted (``id_values``), when the conversation has one.
A string ``enum`` argument is one of its values, and an ``integer``, ``number`` or ``boolean`` one is
a JSON number or ``true``/``false`` (``argschema.value_kind``): the 10 M model wrote ``"k": ["多久？"``.
What the schemas say is read by ``argschema``; what may be quoted, and where a quote may start and
end, by ``quotes``.

Why: Lingxi's bundled model (issue 7) is a 10 M-parameter model, and its tool calls failed where
a copied span starts (``he@example.org`` for ``liu.yang@example.org``) or ends; its training data
makes every such argument a verbatim span (``train/data.py``), so a value that is no span is
certainly wrong. Grammar-constrained decoding of tool calls is common practice for small models
(llama.cpp grammars, Outlines); this is the narrowest such grammar. It is opt-in per checkpoint
(``"lingxi_copy_arguments": true`` in ``config.json``, which ``engine train`` writes): a real
DeepSeek model may rightly rephrase an argument (a date as ISO 8601), so it is never guided.

Does not: choose *which* span or value (the model does), validate the JSON, touch nested values
(arrays, objects) or text outside a tool call, or refuse a value when no token would quote the
conversation (the model then writes what it likes).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from functools import cached_property

import torch

from .answerguide import GuideChain, answer_guide_for
from .argschema import BARE, guided_arguments, is_id_key, parameters, required, typed_arguments
from .callscan import CallScanner
from .quotes import boundary, id_values, inside_words, quotable, word_byte
from .toolcalls import ARGS_OPEN, CALL_BEGIN, CALL_END, TOOL_SEP

NEG_INF = float("-inf")


def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet, reversed: the printable character standing for each byte -> the byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[chr(b)] = b
        else:
            chars[chr(256 + extra)] = b
            extra += 1
    return chars


@dataclass(frozen=True)
class GuideVocab:
    """What the guide needs of a tokenizer: each id's bytes, the added-token ids, the call markers."""
    token_bytes: tuple[bytes, ...]
    added: frozenset[int]
    call_begin: int | None
    call_end: int | None
    tool_sep: int | None
    first: torch.Tensor  # [vocab] each token's first byte (-1 for added tokens and empty ones)

    @cached_property
    def by_bytes(self) -> dict[bytes, int]:
        """Each plain token's bytes -> its id (the lowest, where two spell the same), for ``answerguide``."""
        return {b: i for i, b in reversed(list(enumerate(self.token_bytes))) if b and i not in self.added}

    @cached_property
    def longest(self) -> int:
        return max(map(len, self.by_bytes), default=1)

    @classmethod
    def of(cls, chat_tokenizer) -> GuideVocab:
        tok = chat_tokenizer.tokenizer
        added = {i: t.content for i, t in tok.get_added_tokens_decoder().items()}
        byte_level = (json.loads(tok.to_str()).get("decoder") or {}).get("type") == "ByteLevel"
        table = _byte_decoder()
        out = []
        for i in range(chat_tokenizer.vocab_size):
            piece = added.get(i) or tok.id_to_token(i) or ""
            if i in added or not byte_level or any(c not in table for c in piece):
                out.append(added[i].encode() if i in added else tok.decode([i]).encode())
            else:
                out.append(bytes(table[c] for c in piece))
        ids = {v: k for k, v in added.items()}
        first = torch.tensor([b[0] if b and i not in added else -1 for i, b in enumerate(out)], dtype=torch.long)
        return cls(tuple(out), frozenset(added), ids.get(CALL_BEGIN), ids.get(CALL_END), ids.get(TOOL_SEP), first)


class CopyGuide:
    """See the module docstring. ``mask(logits, output_ids)`` -> logits with the tokens that break
    the rules at -inf; as ``callscan.Rules`` it says what the rules are."""

    def __init__(self, vocab: GuideVocab, messages: list[dict], tools: list[dict], keep: int = 16):
        self.vocab, self.keep = vocab, keep
        self.context = quotable(messages)
        self.inside = inside_words(self.context)  # where a Chinese word goes on: no quote starts or ends there
        self.ids = id_values(messages)
        self.free_text = guided_arguments(tools)
        # The free-text parameters that name a record by id (``event_id``, ``reminder_id``).
        self.id_params = {name: frozenset(filter(is_id_key, keys)) for name, keys in self.free_text.items()}
        self.params = parameters(tools)
        self.typed = typed_arguments(tools)
        # What follows the separator of a call: an offered tool's name, then the fence and the object.
        self.heads = [f"{name}{ARGS_OPEN}{{".encode() for name in self.params]
        self.required = required(tools)
        self.scanner = CallScanner(vocab)
        self.fed = 0

    def prefill(self, ids: list[int]) -> CopyGuide:
        """Take ``ids`` as already written before the output (a reply the prompt has begun)."""
        for token in ids:
            self.scanner.feed(token)
        return self

    # ------------------------------------------------------------ the rules (callscan.Rules)
    def guided(self, scanner: CallScanner) -> bool:
        """A string the rules check as it is written: free text, or an enum's value."""
        return scanner.key in self.free_text.get(scanner.name, ()) or isinstance(self._typed(scanner), bytes)

    def _typed(self, scanner: CallScanner) -> str | bytes | None:
        return self.typed.get(scanner.name, {}).get(scanner.key)

    def bare_ok(self, scanner: CallScanner, value: bytes, closing: bool) -> bool:
        """A bare value (outside quotes) is, or (not ``closing``) may grow into, one of its ``BARE`` kind;
        a guided string parameter takes none; the others are left alone."""
        if self.guided(scanner):  # free text or an enum: a string, never bare
            return False
        kind = self._typed(scanner)
        if kind is None:
            return True
        pattern = BARE[kind]
        if closing:
            return pattern.fullmatch(value) is not None
        if kind == "boolean":
            return b"true".startswith(value) or b"false".startswith(value)
        return any(pattern.fullmatch(value + tail) for tail in (b"", b"0"))  # one digit ends any proper prefix

    def key_ok(self, scanner: CallScanner, key: bytes, whole: bool) -> bool:
        """A key is an unused parameter of the tool (a prefix of one while it is written)."""
        names = self.params.get(scanner.name)
        if names is None:  # a tool the request did not offer: leave its arguments alone
            return True
        left = [n.encode() for n in names if n not in scanner.used]
        return key in left if whole else any(n.startswith(key) for n in left)

    def more_keys(self, scanner: CallScanner) -> bool:
        names = self.params.get(scanner.name)
        return names is None or bool(names - scanner.used)

    def may_close(self, scanner: CallScanner) -> bool:
        """``}`` once every required parameter has a value, as a JSON-schema grammar would have it."""
        return self.required.get(scanner.name, frozenset()) <= scanner.used

    def _source(self, scanner: CallScanner) -> tuple[bytes, bool]:
        """(what the value being written may quote, whether only whole entries of it): an enum's
        values, the ids for an id argument when the conversation has any, else the conversation's texts."""
        kind = self._typed(scanner)
        if isinstance(kind, bytes):
            return kind, True
        if self.ids and scanner.key in self.id_params.get(scanner.name, ()):
            return self.ids, True
        return self.context, False

    def value_ok(self, scanner: CallScanner, value: bytes, closing: bool) -> bool:
        """``value`` is (or, not ``closing``, may grow into) a quote of the conversation: no leading or
        trailing whitespace, whole characters, on word boundaries (``_quoted``)."""
        if not value:
            return not closing
        if 0x80 <= value[0] < 0xC0 or value[:1].isspace() or value[:1] in b'{}[]",:\\':
            return False  # inside a character, padded, or JSON quoted from a tool result
        if closing:
            if value[-1:].isspace() or not any(word_byte(b) or b >= 0x80 for b in value):
                return False  # padded, or only punctuation (a "}" quoted from a tool result)
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                return False
        return self._quoted(value, closing, *self._source(scanner))

    def _quoted(self, text: bytes, closing: bool, ctx: bytes | None = None, whole: bool = False) -> bool:
        """Whether ``text`` occurs in the context starting at a word boundary (and ending at one when
        ``closing``): a quote never cuts an English word, a number or a Chinese word in two, which
        keeps a small model from closing ``liu.yang@example.org`` as ``l``, starting it at ``yang``'s
        ``ng``, or closing 「带猫打疫苗」 as 「带猫打疫」.
        ``whole``: ``ctx`` is NUL-delimited entries (``id_values``) and the quote is one of them."""
        ctx = self.context if ctx is None else ctx
        if whole:
            return b"\0" + text + (b"\0" if closing else b"") in ctx
        at = ctx.find(text)
        while at >= 0:
            if boundary(ctx, at, self.inside) and (not closing or boundary(ctx, at + len(text), self.inside)):
                return True
            at = ctx.find(text, at + 1)
        return False

    # ------------------------------------------------------------ masking
    def allows(self, token: int) -> bool:
        """Whether writing ``token`` next keeps to the rules."""
        if token >= len(self.vocab.token_bytes):
            return False
        if token in self.vocab.added:  # the call's end marker, once its arguments have closed
            return token == self.vocab.call_end and self.scanner.fenced
        data = self.vocab.token_bytes[token]
        if not data or b"\0" in data:  # NUL separates the quotable texts in ``context``
            return False
        if self.scanner.mode == "name":
            return self._names(data)
        return self.scanner.clone().scan(data, self)

    def _names(self, data: bytes) -> bool:
        """While the tool's name is written: it is (on the way to) an offered tool's name, then the
        fence and the object's ``{``; what the token has after the ``{`` follows the object's rules."""
        head = self.scanner.head + data
        at = head.find(b"{")
        if at < 0:
            return any(h.startswith(head) for h in self.heads)
        if head[: at + 1] not in self.heads:
            return False
        twin = self.scanner.clone()
        twin.open(head[:at])
        return twin.scan(head[at:], self)

    def _constrained(self) -> bool:
        """In the arguments object of an offered tool, and not inside a value the rules leave alone."""
        sc = self.scanner
        if sc.mode == "name":
            return bool(self.heads)  # the name is one of the offered tools'
        if sc.done and sc.name in self.params:
            return True  # after the object, only its closing fence and the call's end marker
        if not sc.top or sc.name not in self.params or not self.context:
            return False
        return not (sc.in_str and sc.is_value and not self.guided(sc))

    def _candidates(self, logits: torch.Tensor) -> torch.Tensor:
        """Ids of ``logits`` that may come next: inside a quote only those starting with a byte that
        follows the value somewhere in the context, or a closing quote."""
        first = self.vocab.first.to(logits.device)[: logits.shape[-1]]
        sc, value = self.scanner, self.scanner.cur
        if sc.mode == "name" or not (sc.in_str and sc.is_value and value):
            ids = torch.nonzero(first >= 0).flatten()
            if sc.done and self.vocab.call_end is not None and self.vocab.call_end < logits.shape[-1]:
                ids = torch.cat([ids, torch.tensor([self.vocab.call_end], device=ids.device)])
            return ids
        ctx, whole = self._source(sc)
        if whole:
            value = b"\0" + value
        nexts, at = {ord('"')}, ctx.find(value)
        while at >= 0:
            if at + len(value) < len(ctx):
                nexts.add(ctx[at + len(value)])
            at = ctx.find(value, at + 1)
        return torch.nonzero(torch.isin(first, torch.tensor(sorted(nexts), device=first.device))).flatten()

    def mask(self, logits: torch.Tensor, output_ids: list[int]) -> torch.Tensor:
        for token in output_ids[self.fed:]:
            self.scanner.feed(token)
        self.fed = len(output_ids)
        if not self._constrained():
            return logits
        # Sorting only the candidates keeps a step deep inside a quote to a few hundred checks.
        candidates = self._candidates(logits)
        order = candidates[torch.argsort(logits[candidates], descending=True)].tolist()
        allowed = []
        for token in order:
            if self.allows(token):
                allowed.append(token)
                if len(allowed) >= self.keep:
                    break
        if not allowed:
            return logits
        out = torch.full_like(logits, NEG_INF)
        idx = torch.tensor(allowed, dtype=torch.long, device=logits.device)
        out[idx] = logits[idx]
        return out


def guide_enabled(engine, enabled: bool | None = None) -> bool:
    """``enabled`` None follows the checkpoint's opt-in; True / False force the guide on or off."""
    return bool(engine.config.raw.get("lingxi_copy_arguments")) if enabled is None else enabled


def warm(engine) -> threading.Thread | None:
    """Build, on a background thread, what the first guided request would otherwise wait for: the
    vocabulary's byte table and jieba's dictionary (about a second each on a small CPU). None when
    ``engine``'s checkpoint does not guide."""
    if not guide_enabled(engine):
        return None
    thread = threading.Thread(target=lambda: (engine.guide_vocab, inside_words("预热".encode())),
                              name="guide-warm-up", daemon=True)  # a Chinese word loads jieba's dictionary
    thread.start()
    return thread


def guide_for(engine, messages: list[dict], tools: list[dict] | None, enabled: bool | None = None):
    """The guides for a chat request to ``engine``: a ``CopyGuide`` when tools are offered and the
    guide is on (``guide_enabled``), and an ``answerguide.AnswerGuide`` when the reply follows a
    passages result and that guide is on; one of them alone, both in a ``GuideChain``, or None."""
    guides = [CopyGuide(engine.guide_vocab, messages, tools)] if tools and guide_enabled(engine, enabled) else []
    answer = answer_guide_for(engine, messages, enabled)
    if answer is not None:
        guides.append(answer)
    return None if not guides else guides[0] if len(guides) == 1 else GuideChain(guides)
