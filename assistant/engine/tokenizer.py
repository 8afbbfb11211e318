"""Tokenizer and chat template for local DeepSeek-architecture checkpoints.

What it does, as HF ``transformers`` does it but without that dependency:
  * loads ``tokenizer.json`` with ``tokenizers`` and ``tokenizer_config.json``
    (bos/eos tokens as strings or ``{"content": ...}`` dicts, ``add_bos_token``,
    ``chat_template`` as a string or a list of named templates);
  * renders the chat template in a sandboxed jinja2 environment.  The template comes from
    tokenizer_config.json, else a ``chat_template.jinja`` file beside it, else our own
    DeepSeek-V3-format ``templates/deepseek_v3.jinja``;
  * injects tool definitions into the system prompt when the template itself does not
    reference ``tools`` (the official DeepSeek-V3 template does not);
  * defuses control-token strings typed into user and tool messages (prompt injection);
  * for a checkpoint that asks for it (``"tool_result_view": "compact"``, Lingxi's bundled
    model), renders tool results in ``toolview``'s shorter view, the one it was trained on;
  * encodes with special tokens recognised in the text, decodes, and streams text deltas
    id by id (``Detokenizer``) without splitting multi-byte UTF-8 characters.

What it does not do: parse tool calls out of generated text (toolcalls.py), truncate
prompts to the context window, or handle tokenizer formats other than tokenizer.json.
"""
from __future__ import annotations

import json
import re
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import jinja2
from jinja2 import meta
from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from tokenizers import Tokenizer

from . import toolview
from .toolcalls import inject_tools

BUILTIN_TEMPLATE = Path(__file__).with_name("templates") / "deepseek_v3.jinja"


def _raise_exception(message: str):
    # Templates call raise_exception('...') to reject conversations they cannot render.
    raise TemplateError(message)


def _tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # HF's tojson: unlike jinja's built-in it keeps non-ASCII (Chinese) text as is and
    # does not HTML-escape, both of which would change the prompt the model was trained on.
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent,
                      separators=separators, sort_keys=sort_keys)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


@lru_cache(maxsize=16)
def _compile(source: str) -> tuple[jinja2.Template, bool]:
    """Compile a template once; also report whether it reads the ``tools`` variable."""
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    uses_tools = "tools" in meta.find_undeclared_variables(env.parse(source))
    return env.from_string(source), uses_tools


def _token_content(value) -> str | None:
    # tokenizer_config.json writes special tokens either as plain strings or as
    # serialised AddedToken dicts ({"__type": "AddedToken", "content": ...}).
    if isinstance(value, dict):
        return value.get("content")
    return value if isinstance(value, str) else None


def _pick_template(chat_template, has_tools: bool) -> str | None:
    if isinstance(chat_template, str) or chat_template is None:
        return chat_template
    named = {t["name"]: t["template"] for t in chat_template}
    # As HF does: the "tool_use" template when tools are given, else "default".
    if has_tools and "tool_use" in named:
        return named["tool_use"]
    return named.get("default", next(iter(named.values()), None))


def _text_content(content):
    # OpenAI content may be a list of parts; templates expect one string.
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content


# Roles whose text comes from outside (site visitors, tool results).  A marker typed there,
# e.g. "<｜tool▁outputs▁end｜>", would otherwise encode to the real control token and let
# the text forge turns or tool results.  A WORD JOINER (U+2060, invisible) after its first
# character keeps the text readable but stops the tokenizer from matching the marker.
UNTRUSTED_ROLES = ("user", "tool")
_WORD_JOINER = "\u2060"


def _normalise(message: dict, specials: re.Pattern | None) -> dict:
    """Shape one OpenAI message the way DeepSeek templates expect (a copy; no mutation)."""
    content = _text_content(message.get("content"))
    if specials is not None and content and message.get("role") in UNTRUSTED_ROLES:
        content = specials.sub(lambda mt: mt[0][0] + _WORD_JOINER + mt[0][1:], content)
    # DeepSeek templates concatenate strings: None content and dict arguments would raise.
    m = {**message, "content": "" if content is None else content}
    calls = message.get("tool_calls")
    if calls:
        m["tool_calls"] = [_call_with_text_arguments(c) for c in calls]
    else:
        # The official template tests "'tool_calls' in message": drop empty ones.
        m.pop("tool_calls", None)
    return m


def _call_with_text_arguments(call: dict) -> dict:
    fn = call.get("function") or {}
    args = fn.get("arguments")
    if isinstance(args, str):
        return call
    args = json.dumps({} if args is None else args, ensure_ascii=False)
    return {**call, "function": {**fn, "arguments": args}}


class ChatTokenizer:
    def __init__(self, tokenizer: Tokenizer, config: dict | None = None,
                 chat_template=None, generation_config: dict | None = None):
        self.tokenizer = tokenizer
        config = config or {}
        self.bos_token = _token_content(config.get("bos_token"))
        self.eos_token = _token_content(config.get("eos_token"))
        self.pad_token = _token_content(config.get("pad_token"))
        self.add_bos_token = bool(config.get("add_bos_token", False))
        # Lingxi's own key: a checkpoint trained on toolview's compact view of tool results reads it served too.
        self.tool_result_view = config.get("tool_result_view", "full")
        if self.tool_result_view not in toolview.VIEWS:
            raise ValueError(f"tool_result_view must be one of {', '.join(toolview.VIEWS)}, "
                             f"not {self.tool_result_view!r}")
        self.chat_template = chat_template          # str, or list of named templates
        self.template_source = "given" if chat_template else "none"
        self.bos_token_id = self.token_to_id(self.bos_token)
        self.eos_token_id = self.token_to_id(self.eos_token)
        # generation_config.json may name extra stop ids (eos_token_id int or list).
        stops = (generation_config or {}).get("eos_token_id")
        stops = stops if isinstance(stops, list) else [stops]
        self.stop_token_ids = {i for i in [self.eos_token_id, *stops] if isinstance(i, int)}
        markers = sorted((t for t in self.special_token_ids if len(t) > 1), key=len, reverse=True)
        self._specials = re.compile("|".join(map(re.escape, markers))) if markers else None

    @classmethod
    def from_dir(cls, path: str | Path) -> "ChatTokenizer":
        path = Path(path)
        tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        config = _read_json(path / "tokenizer_config.json")
        template, source = config.get("chat_template"), "tokenizer_config.json"
        if not template and (path / "chat_template.jinja").is_file():
            template, source = (path / "chat_template.jinja").read_text("utf-8"), "chat_template.jinja"
        if not template:
            template, source = BUILTIN_TEMPLATE.read_text("utf-8"), "builtin"
        self = cls(tokenizer, config, template, _read_json(path / "generation_config.json"))
        self.template_source = source
        return self

    # ------------------------------------------------------------ vocabulary
    def token_to_id(self, token: str | None) -> int | None:
        return self.tokenizer.token_to_id(token) if token else None

    @property
    def special_token_ids(self) -> dict[str, int]:
        """Every added token (bos/eos, User/Assistant, tool markers...) -> its id."""
        return {t.content: i for i, t in self.tokenizer.get_added_tokens_decoder().items()}

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    # ------------------------------------------------------------ chat template
    def apply_chat_template(self, messages: list[dict], tools: list[dict] | None = None,
                            add_generation_prompt: bool = True,
                            inject: bool | None = None, escape_markers: bool = True,
                            **kwargs) -> str:
        """Render ``messages`` to the prompt string.

        ``inject``: put the tool definitions into the system prompt; by default only when
        the template does not read ``tools`` itself.  ``escape_markers``: defuse control
        tokens typed into user and tool messages.  Extra kwargs reach the template.
        """
        source = _pick_template(self.chat_template, bool(tools))
        if not source:
            raise ValueError("this tokenizer has no chat template")
        template, uses_tools = _compile(source)
        if tools and (inject if inject is not None else not uses_tools):
            messages = inject_tools(messages, tools)
        specials = self._specials if escape_markers else None
        messages = [_normalise(m, specials) for m in messages]
        if self.tool_result_view == "compact":
            messages = [{**m, "content": toolview.view(m["content"])} if m.get("role") == "tool" else m
                        for m in messages]
        return template.render(
            messages=messages, tools=tools or None,
            add_generation_prompt=add_generation_prompt,
            bos_token=self.bos_token or "", eos_token=self.eos_token or "",
            pad_token=self.pad_token or "", **kwargs)

    def encode_chat(self, messages: list[dict], tools: list[dict] | None = None,
                    add_generation_prompt: bool = True, **kwargs) -> list[int]:
        prompt = self.apply_chat_template(messages, tools, add_generation_prompt, **kwargs)
        # The template writes its own BOS; encode() adds none on top of it.
        return self.encode(prompt)

    # ------------------------------------------------------------ encode / decode
    def encode(self, text: str, add_bos: bool | None = None) -> list[int]:
        """Token ids; special-token strings in ``text`` become their single ids.

        ``add_bos`` defaults to tokenizer_config's add_bos_token; BOS is never doubled.
        """
        # add_special_tokens=False: the tokenizer's own post-processor must not add BOS
        # behind our back; added tokens in the text are still matched either way.
        ids = self.tokenizer.encode(text, add_special_tokens=False).ids
        add_bos = self.add_bos_token if add_bos is None else add_bos
        if add_bos and self.bos_token_id is not None and ids[:1] != [self.bos_token_id]:
            ids.insert(0, self.bos_token_id)
        return ids

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        # Note: DeepSeek marks only bos/eos/pad (and a few others) as "special"; the tool
        # and role markers are ordinary added tokens and survive skip_special_tokens.
        return self.tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def detokenizer(self, skip_special_tokens: bool = True) -> "Detokenizer":
        return Detokenizer(self, skip_special_tokens)


class Detokenizer:
    """Turn generated ids, one at a time, into text deltas.

    One id may carry only part of a UTF-8 character (byte-level BPE splits Chinese and
    emoji into byte pieces), so text is released only when the decoded window no longer
    ends in U+FFFD.  The window keeps one earlier step's ids as context, so merges and
    spacing are decoded as decode() would; the deltas' concatenation equals
    ``decode(all ids)``.
    """

    def __init__(self, tokenizer: ChatTokenizer, skip_special_tokens: bool = True):
        self._tok = tokenizer
        self._skip = skip_special_tokens
        self.ids: list[int] = []
        self._prefix = 0    # window start: context already emitted once
        self._read = 0      # ids before this have been emitted
        self.text = ""

    def _decode(self, ids: list[int]) -> str:
        return self._tok.decode(ids, skip_special_tokens=self._skip)

    def step(self, token_id: int) -> str:
        """Add one id; return the newly complete text ('' while a character is open)."""
        self.ids.append(token_id)
        prefix_text = self._decode(self.ids[self._prefix:self._read])
        new_text = self._decode(self.ids[self._prefix:])
        if len(new_text) <= len(prefix_text) or new_text.endswith("\ufffd"):
            return ""
        delta = new_text[len(prefix_text):]
        self._prefix, self._read = self._read, len(self.ids)
        self.text += delta
        return delta

    def flush(self) -> str:
        """End of generation: release whatever is held (an unfinished char as U+FFFD)."""
        prefix_text = self._decode(self.ids[self._prefix:self._read])
        delta = self._decode(self.ids[self._prefix:])[len(prefix_text):]
        self._prefix = self._read = len(self.ids)
        self.text += delta
        return delta


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    with path.open(encoding="utf-8") as f:
        return json.load(f)
