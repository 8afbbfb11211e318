"""Byte-level BPE tokenizer and chat template for the bundled model.

Does: train a byte-level BPE with ``tokenizers`` on rendered training conversations, with the
DeepSeek-V3 control tokens as added (special) tokens and pre-tokenizer splits that keep copied
spans aligned (``_pre_tokenizer``); write ``tokenizer.json`` and
``tokenizer_config.json`` carrying the chat template, so ``engine.tokenizer.ChatTokenizer``
reads them exactly as it reads a real DeepSeek checkpoint.

The chat template is the engine's DeepSeek-V3 template with two changes before the first turn:
- Lingxi's two built-in system prompts (``assistant.prompts``, recognised by their first line)
  are rendered as a profile tag, ``[owner]`` or ``[customer_service]``; any other system prompt
  is kept verbatim. The prompts are fixed text the owner never edits, and at about 230 tokens
  they were two thirds of every training conversation: the tag carries the same information.
- one line lists the offered tools by name, unless they are exactly the profile's own
  (``tools.profiles``), which its tag already says: the app always offers a profile all of its
  tools, and the owner's twelve names were ~42 of a training conversation's ~143 tokens (101
  without them), close to a third of every step's compute spent on a line that never changes. The full JSON definitions the
  engine would otherwise inject cost about 7,000 characters per request; a model this small
  learns each tool's arguments from the data, not from their schema.

As in DeepSeek's own tokenizer, only BOS, EOS and PAD are *special* tokens; the turn and tool
markers are added tokens that decoding keeps, so the engine's tool-call parser sees them.

Does not: train on anything but the text it is given, or normalise Unicode (NFKC would fold
full-width punctuation that Chinese users type).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

from ..tokenizer import BUILTIN_TEMPLATE, ChatTokenizer
from ..toolcalls import (CALL_BEGIN, CALL_END, CALLS_BEGIN, CALLS_END, OUTPUT_BEGIN, OUTPUT_END,
                         OUTPUTS_BEGIN, OUTPUTS_END, TOOL_SEP)

BOS, EOS, PAD = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>"
USER, ASSISTANT = "<｜User｜>", "<｜Assistant｜>"
SPECIALS = (BOS, EOS, PAD, USER, ASSISTANT, CALLS_BEGIN, CALLS_END, CALL_BEGIN, CALL_END, TOOL_SEP,
            OUTPUTS_BEGIN, OUTPUTS_END, OUTPUT_BEGIN, OUTPUT_END)

MARKERS = SPECIALS[3:]  # added tokens kept in decoded text (DeepSeek marks them non-special too)

# Where the header goes: right after BOS, instead of the system prompt as it stands.
_ANCHOR = "{{- bos_token ~ ns.system -}}"
_TOOLS_LINE = ("{%- if tools -%}{%- set names = tools | map(attribute='function') | map(attribute='name') | list -%}"
               "{%- if (names | sort | join(',')) != implied.get(header, '') -%}"
               "{{- '\\n\\nTools: ' ~ (names | join(', ')) -}}{%- endif -%}{%- endif -%}")


def _profile_header() -> str:
    """Jinja that writes ``[profile]`` for a built-in Lingxi system prompt, else the prompt itself,
    and sets ``implied``: each tag's own tool names, which ``_TOOLS_LINE`` then leaves out."""
    from assistant.prompts import PROMPTS
    from tools.profiles import PROFILES

    implied = {f"[{profile}]": ",".join(sorted(names)) for profile, names in PROFILES.items()}
    out = f"{{%- set header = ns.system -%}}{{%- set implied = {json.dumps(implied)} -%}}"
    for profile, prompt in PROMPTS.items():
        first = prompt.splitlines()[0].replace("'", "\\'")
        out += f"{{%- if ns.system.startswith('{first}') -%}}{{%- set header = '[{profile}]' -%}}{{%- endif -%}}"
    return out + "{{- bos_token ~ header -}}"


def chat_template() -> str:
    """The engine's DeepSeek-V3 template with the profile tag and tool names before the first turn."""
    source = BUILTIN_TEMPLATE.read_text("utf-8")
    if source.count(_ANCHOR) != 1:
        raise RuntimeError(f"{BUILTIN_TEMPLATE.name} changed: cannot find where the system prompt goes")
    return source.replace(_ANCHOR, _profile_header() + _TOOLS_LINE)


def _pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    """Pieces that look the same wherever a span is copied, since copying is most of the job: a
    tool argument repeats a span of the user's message, a reply repeats a passage. Each CJK
    character stands alone (a run split by BPE merges would tokenise 「给王总回电话」 one way inside
    the user's sentence and another way inside the JSON string); a space between words is a piece
    of its own, so "landlord" after an opening quote is the same token as in "the landlord";
    digits go in runs of at most three, as in DeepSeek's tokenizer."""
    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"\p{N}{1,3}"), behavior="isolated"),
        pre_tokenizers.Split(Regex("[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]"), behavior="isolated"),
        pre_tokenizers.Split(Regex(r"[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"),
                             behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    """Byte-level BPE over ``texts``: BOS/EOS/PAD are ids 0..2, ``vocab_size`` ids in all, then the
    turn and tool markers as added tokens. None of them is ever split or merged into."""
    split = re.compile("|".join(map(re.escape, SPECIALS)))
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = _pre_tokenizer()
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIALS[:3]), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator((split.sub("\n", t) for t in texts), trainer=trainer)
    tok.add_tokens([AddedToken(m, special=False, normalized=False) for m in MARKERS])
    return tok


def tokenizer_config() -> dict:
    return {
        "add_bos_token": False, "add_eos_token": False, "bos_token": BOS, "eos_token": EOS, "pad_token": PAD,
        "clean_up_tokenization_spaces": False, "model_max_length": 4096, "tokenizer_class": "PreTrainedTokenizerFast",
        "chat_template": chat_template(), "tool_result_view": "compact",
    }


def chat_tokenizer(tok: Tokenizer) -> ChatTokenizer:
    """The engine's ``ChatTokenizer`` over a trained tokenizer, configured as ``save`` writes it."""
    return ChatTokenizer(tok, tokenizer_config(), chat_template())


def save(tok: Tokenizer, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(json.dumps(tokenizer_config(), ensure_ascii=False, indent=2), "utf-8")
