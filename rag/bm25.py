"""Keyword retrieval: a tokenizer for Chinese and English, and an Okapi BM25 index.

``tokenize`` segments CJK runs with jieba (search mode, so a compound like
七天无理由退货 also yields its parts) and turns Latin text into lower-cased word
tokens; punctuation and a small list of stop words in both languages are dropped.
``BM25Index`` scores chunks against a query with Okapi BM25 (k1=1.5, b=0.75).

It does not stem English, expand synonyms or persist anything: the index lives in
memory and is rebuilt from the store's chunks (the retriever caches it).
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from types import ModuleType
from typing import Protocol

K1 = 1.5
B = 0.75

# CJK ideographs (basic, extension A, compatibility) are segmented by jieba;
# runs of Latin letters and digits become one token each.
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
# Apostrophes split words ("what's" -> what, s); the leftovers are stop words.
_WORD = re.compile(r"[^\W_]+")

# Function words that match almost every chunk and so only add noise. Question
# words are here too: customers phrase questions with them, documents don't.
STOP_WORDS: frozenset[str] = frozenset(
    """
    的 地 得 了 着 过 是 在 和 与 及 或 而 也 都 还 就 又 把 被 给 对 从 向 让
    吗 呢 吧 啊 呀 哦 嘛 么 啦 我 你 您 他 她 它 我们 你们 他们 她们 它们 咱们
    这 那 这个 那个 这些 那些 这里 那里 什么 怎么 怎么样 怎样 如何 为什么 哪 哪个
    怎么办 谁 哪些 哪里 请问 请 一下 一个 个 有 没 没有 要 想 会 能 可以 可 之 其 等 啥
    a an the is are was were be been being am to of in on at for and or but with by
    from as it its this that these those i me my mine you your yours we us our he him
    his she her they them their do does did doing can could would should will shall
    may might must how what when where which who whom why please there here if so
    than then too very just about into over also any some has have had having
    s t d ll m re ve don doesn didn isn aren wasn weren won
    """.split()
)


def _jieba() -> ModuleType:
    """jieba, initialised and quiet. Imported lazily: loading its dictionary takes ~1 s.

    ``jieba.initialize()`` is idempotent and guarded by jieba's own lock, so no
    state of ours is needed to make this once per process.
    """
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def tokenize(text: str) -> list[str]:
    """Search tokens of ``text``: jieba words for CJK, lower-cased words otherwise."""
    tokens: list[str] = []
    pos = 0
    for match in _CJK_RUN.finditer(text):
        tokens.extend(_latin(text[pos : match.start()]))
        tokens.extend(_cjk(match.group()))
        pos = match.end()
    tokens.extend(_latin(text[pos:]))
    return tokens


def _latin(text: str) -> list[str]:
    words = (w.lower() for w in _WORD.findall(text))
    return [w for w in words if w not in STOP_WORDS]


def _cjk(run: str) -> list[str]:
    return [w for w in _jieba().cut_for_search(run) if w.strip() and w not in STOP_WORDS]


class ChunkLike(Protocol):
    """What the index needs of a chunk (rag.store.Chunk satisfies it)."""

    @property
    def id(self) -> str: ...

    @property
    def text(self) -> str: ...


class BM25Index:
    """Okapi BM25 over a fixed set of chunks. Build once, search many times."""

    def __init__(self, chunks: Iterable[ChunkLike], *, k1: float = K1, b: float = B) -> None:
        self.k1, self.b = k1, b
        self.ids: list[str] = []
        self._tf: list[Counter[str]] = []
        self._len: list[int] = []
        for chunk in chunks:
            terms = tokenize(chunk.text)
            self.ids.append(chunk.id)
            self._tf.append(Counter(terms))
            self._len.append(len(terms))
        n = len(self.ids)
        self._avglen = (sum(self._len) / n) if n else 0.0
        df: Counter[str] = Counter()
        for tf in self._tf:
            df.update(tf.keys())
        # Lucene's IDF variant: always positive, unlike the classic formula, which
        # goes negative (and punishes a match) for a term in over half the chunks.
        self._idf = {t: math.log(1.0 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()}

    def __len__(self) -> int:
        return len(self.ids)

    def scores(self, query_terms: Sequence[str]) -> list[float]:
        """BM25 score of every chunk, in index order, for already tokenized terms."""
        out = [0.0] * len(self.ids)
        if not self._avglen:
            return out
        for term, qtf in Counter(query_terms).items():
            idf = self._idf.get(term)
            if idf is None:
                continue
            for i, tf in enumerate(self._tf):
                f = tf.get(term)
                if f:
                    norm = self.k1 * (1.0 - self.b + self.b * self._len[i] / self._avglen)
                    out[i] += qtf * idf * f * (self.k1 + 1.0) / (f + norm)
        return out

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """Top ``k`` (chunk_id, score), best first; chunks sharing no term are left out."""
        scored = [(s, i) for i, s in enumerate(self.scores(tokenize(query))) if s > 0.0]
        # Ties go to the earlier chunk, so results are deterministic.
        scored.sort(key=lambda si: (-si[0], si[1]))
        return [(self.ids[i], s) for s, i in scored[: max(k, 0)]]
