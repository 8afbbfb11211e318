"""Split loaded sections into chunks sized in model tokens, Chinese-aware.

Uses LangChain's ``RecursiveCharacterTextSplitter`` measured with the caller's
token counter (Lingxi passes DeepSeek's), trying paragraph and line breaks
first, then Chinese and English sentence ends, then clause marks, then
spaces, then single characters. A separator stays at the end of the text it
closes, so a chunk ends with "。" rather than the next chunk starting with it.
Neighbouring chunks of a section share up to ``overlap`` tokens of whole
sentences. Atomic sections (FAQ pairs) are kept whole even when over size,
since half an answer is worse than a long chunk. Nothing is prepended to a
chunk's text; the heading path travels in the metadata.

One call handles one document: ``chunk_index`` runs from 0 across all the
sections given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from langchain_text_splitters import RecursiveCharacterTextSplitter

from rag.loaders import Section

# Regex levels, tried in order. Sentence ends of both languages share a level,
# and so do clause marks: with one level per mark, a text would first be cut
# at every "。" only, into runs of several sentences too long to overlap.
# English marks need the space after them, or "3.5" and "e.g." would split;
# closing quotes and brackets stay with the sentence they end.
SEPARATORS = (
    r"\n\n",
    r"\n",
    r"[。！？；][”’」』）]*|[.!?;][\"')]* ",
    r"，|, ",
    r" ",
    r"",
)


@dataclass
class Piece:
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)  # section metadata + chunk_index


def split(
    sections: list[Section],
    *,
    chunk_tokens: int,
    overlap: int,
    count_tokens: Callable[[str], int],
) -> list[Piece]:
    """Chunks of at most ``chunk_tokens`` tokens (atomic sections excepted)."""
    if chunk_tokens <= 0 or not 0 <= overlap < chunk_tokens:
        raise ValueError(f"need 0 <= overlap < chunk_tokens, got {overlap} and {chunk_tokens}")
    pieces: list[Piece] = []
    for section in sections:
        if section.atomic:
            texts = [section.text]
        else:
            texts = _fit(section.text, chunk_tokens, overlap, chunk_tokens, count_tokens)
        for text in texts:
            text = text.strip()
            if text:
                pieces.append(Piece(text, {**section.metadata, "chunk_index": len(pieces)}))
    return pieces


def _fit(text: str, size: int, overlap: int, limit: int, count_tokens: Callable[[str], int]) -> list[str]:
    """``text`` in chunks of at most ``limit`` tokens.

    LangChain sizes a chunk as the sum of its pieces' counts, but joining two
    pieces can cost a token more than the parts did (the tokenizer merges
    differently across the seam), so a chunk over the limit is split again
    with a smaller size. Sizes only shrink, so this ends; at size 1 a chunk is
    kept as is (one character can be several tokens).
    """
    splitter = RecursiveCharacterTextSplitter(
        separators=list(SEPARATORS),
        is_separator_regex=True,
        keep_separator="end",
        chunk_size=size,
        chunk_overlap=overlap,
        length_function=count_tokens,
    )
    chunks: list[str] = []
    for chunk in splitter.split_text(text):
        excess = count_tokens(chunk) - limit
        if excess > 0 and size > 1:
            smaller = max(1, size - excess)
            chunks += _fit(chunk, smaller, min(overlap, smaller - 1), limit, count_tokens)
        else:
            chunks.append(chunk)
    return chunks
