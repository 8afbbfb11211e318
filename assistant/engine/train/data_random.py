"""Made-up fill-ins for the training split: pseudo-words, random common Chinese characters,
random contacts and openers, for ``data._Gen.v`` and ``data._Gen.opener`` (``random_fill``) and
``data_compose`` (random topics).

Why: a tool call copies the user's words, and on the held-out split those words are new. In
run 14, 9% of the held-out argument tokens (and some token of 95 of 144 search queries, and of
18 of 33 contacts) never occurred in the training conversations at all -- "warranty" is
``war ra nt y``, pieces the BPE made on its way to longer merges -- so their embeddings were
never trained and the model could not copy them. Random phrases made only of the training
pools' words cannot reach those pieces; pseudo-words spelled from random syllables, characters
drawn from the 3,755 common characters of GB2312 level 1, and contacts with made-up names and
random digits do, and they stay unmemorisable.

Does not: use any held-out vocabulary (it spells words, it does not look them up), or touch the
held-out split (``data`` calls it only for "train").
"""

from __future__ import annotations

import random
from functools import lru_cache

ONSETS = ("", "", "b", "bl", "br", "c", "ch", "cl", "cr", "d", "dr", "f", "fl", "fr", "g", "gl", "gr", "h", "j",
          "k", "l", "m", "n", "p", "pl", "pr", "qu", "r", "s", "sc", "sh", "sk", "sl", "sm", "sn", "sp", "st",
          "sw", "t", "th", "tr", "v", "w", "wh", "x", "y", "z", "zh")
NUCLEI = ("a", "e", "i", "o", "u", "a", "e", "i", "o", "ai", "ea", "ee", "ie", "oa", "oo", "ou", "ua", "y")
CODAS = ("", "", "", "", "", "", "n", "r", "s", "t", "l", "m", "nd", "nt", "ng", "rk", "st", "ck", "x", "ll", "ss", "ph", "sh")
DOMAINS = ("example", "mail", "corp.example", "shop.example", "163", "qq", "outlook", "post", "inbox")
TLDS = ("com", "org", "net", "cn", "io", "co.uk", "de", "com.cn")


def pseudo_word(rng: random.Random, syllables: tuple[int, ...] = (1, 2, 2, 3)) -> str:
    """A pronounceable made-up word of ``rng.choice(syllables)`` random syllables, sometimes capitalised."""
    word = "".join(rng.choice(ONSETS) + rng.choice(NUCLEI) + rng.choice(CODAS) for _ in range(rng.choice(syllables)))
    return word.capitalize() if rng.random() < 0.15 else word


@lru_cache(maxsize=None)
def common_hanzi() -> str:
    """The 3,755 level-1 characters of GB2312, the most common simplified Chinese characters."""
    out = []
    for hi in range(0xB0, 0xD8):
        for lo in range(0xA1, 0xFF):
            try:
                out.append(bytes((hi, lo)).decode("gb2312"))
            except UnicodeDecodeError:  # the five unassigned cells at the end of row 0xD7
                pass
    return "".join(out)


def phrase(lang: str, rng: random.Random, bank: tuple[str, ...], made_up: float = 0.4) -> str:
    """2-6 characters (zh) or 1-4 words (en); each one a made-up one at probability ``made_up``,
    else a word of ``bank``."""
    if lang == "zh":
        return "".join(rng.choice(common_hanzi()) if rng.random() < made_up else rng.choice(bank)
                       for _ in range(rng.randint(2, 6)))
    return " ".join(pseudo_word(rng) if rng.random() < made_up else rng.choice(bank) for _ in range(rng.randint(1, 4)))


@lru_cache(maxsize=None)
def neutral_hanzi(avoid: frozenset[str]) -> str:
    """``common_hanzi`` less the characters in ``avoid``."""
    return "".join(c for c in common_hanzi() if c not in avoid)


def opener(lang: str, rng: random.Random, avoid: frozenset[str] = frozenset()) -> str:
    """Made-up words that open a message before the request: 1-3 random characters (zh) or a
    made-up name or interjection (en), then punctuation ("珂敛，", "Brosta, "). A Chinese opener
    draws no character of ``avoid``: ``data`` passes the characters of its request templates,
    since one character such as 删 or 醒 right before a request would say which tool to call."""
    if lang == "zh":
        chars = neutral_hanzi(avoid)
        return "".join(rng.choice(chars) for _ in range(rng.randint(1, 3))) + rng.choice("，，！。~ ")
    word = pseudo_word(rng, (2, 3)).capitalize()
    return rng.choice((f"{word}, ", f"Hey {word}, ", f"{word}! ", f"{word}... ", f"{word} - "))


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def contact(lang: str, rng: random.Random) -> str:
    """A made-up e-mail address or phone number in one of the usual shapes."""
    r = rng.random()
    if r < 0.6:
        name = pseudo_word(rng).lower()
        shape = rng.random()
        if shape < 0.4:
            name += rng.choice(".__") + pseudo_word(rng, (1, 2)).lower()
        elif shape < 0.6:
            name += _digits(rng, rng.randint(1, 4))
        return f"{name}@{rng.choice(DOMAINS)}.{rng.choice(TLDS)}"
    if lang == "zh" and r < 0.85:
        mobile = "1" + rng.choice("3456789") + _digits(rng, 9)
        return mobile if rng.random() < 0.6 else f"{mobile[:3]}-{mobile[3:7]}-{mobile[7:]}"
    groups = [_digits(rng, rng.randint(2, 4)) for _ in range(rng.randint(2, 4))]
    return f"+{rng.randint(1, 99)} " + rng.choice((" ", "-")).join(groups)
