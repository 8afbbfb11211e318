"""rag.splitter: token-sized chunks at Chinese and English sentence ends, with overlap.

Sizes are measured with Lingxi's DeepSeek tokenizer, as in production.
"""

from __future__ import annotations

import pytest

from assistant.context import TokenCounter
from rag.loaders import Section
from rag.splitter import Piece, split

ZH_ENDS = "。！？；"
ZH_CLAUSES = [
    "本店支持七天无理由退货",
    "商品须保持完好且不影响二次销售",
    "退货运费由买家承担",
    "新疆西藏等偏远地区另行计算",
    "请在签收后及时验货",
    "如有问题请联系在线客服",
    "订单号可在个人中心查看",
]


@pytest.fixture(scope="module")
def count():
    return TokenCounter().count


def chinese_text(chars: int = 2000) -> str:
    """Varied sentences ending in 。！？； with no newline, about ``chars`` long."""
    text, i = "", 0
    while len(text) < chars:
        clauses = [ZH_CLAUSES[(i * 3 + k) % len(ZH_CLAUSES)] for k in range(1 + i % 3)]
        text += f"第{i}条，" + "，".join(clauses) + ZH_ENDS[i % 4]
        i += 1
    return text


def shared(a: str, b: str) -> str:
    """The longest end of ``a`` that ``b`` starts with."""
    return next((b[:k] for k in range(min(len(a), len(b)), 0, -1) if a.endswith(b[:k])), "")


def texts(pieces: list[Piece]) -> list[str]:
    return [p.text for p in pieces]


def test_chinese_splits_at_sentence_ends_within_size_with_overlap(count):
    text = chinese_text()
    assert "\n" not in text and len(text) >= 2000
    chunks = texts(split([Section(text, {})], chunk_tokens=100, overlap=30, count_tokens=count))

    assert len(chunks) > 5
    assert all(count(c) <= 100 for c in chunks)
    assert all(c[-1] in ZH_ENDS for c in chunks[:-1])
    assert all(c[0] not in ZH_ENDS for c in chunks)  # punctuation stays with its sentence
    rebuilt = chunks[0]
    for before, after in zip(chunks, chunks[1:]):
        overlap = shared(before, after)
        # Neighbours share whole sentences, at most 30 tokens of them.
        assert overlap and overlap[-1] in ZH_ENDS, (before[-30:], after[:30])
        assert count(overlap) <= 30
        rebuilt += after[len(shared(rebuilt, after)):]
    assert rebuilt == text  # nothing lost, nothing added


def test_chinese_without_sentence_ends_falls_back_to_commas(count):
    text = "，".join(ZH_CLAUSES * 12)
    chunks = texts(split([Section(text, {})], chunk_tokens=40, overlap=0, count_tokens=count))
    assert len(chunks) > 3
    assert all(count(c) <= 40 for c in chunks)
    assert all(c.endswith("，") for c in chunks[:-1])


def test_english_splits_at_sentence_ends(count):
    sentences = [
        "Returns are accepted within seven days of delivery.",
        "Is the item unused and in its original box?",
        "Shipping to remote areas costs extra; ask support first.",
        "Version 3.5 of the app shows the order number on the home page!",
    ]
    text = " ".join(sentences * 10)
    chunks = texts(split([Section(text, {})], chunk_tokens=50, overlap=15, count_tokens=count))
    assert len(chunks) > 3
    assert all(count(c) <= 50 for c in chunks)
    assert all(c[-1] in ".?;!" for c in chunks[:-1])
    assert not any(c.startswith(("5 of", ".5")) for c in chunks)  # "3.5" is not a sentence end
    assert all(shared(a, b) for a, b in zip(chunks, chunks[1:]))


def test_atomic_faq_pair_stays_whole_even_over_size(count):
    answer = "退货流程如下：" + "".join(f"第{i}步，按页面提示填写信息并提交。" for i in range(40))
    pair = Section(f"问：怎么退货？\n答：{answer}", {"source": "faq.csv", "section": "怎么退货？"}, atomic=True)
    assert count(pair.text) > 200
    [piece] = split([pair], chunk_tokens=50, overlap=10, count_tokens=count)
    assert piece.text == pair.text
    assert piece.metadata == {"source": "faq.csv", "section": "怎么退货？", "chunk_index": 0}


def test_chunk_index_runs_across_sections_and_metadata_is_carried(count):
    sections = [
        Section(chinese_text(600), {"source": "m.pdf", "title": "手册", "section": "", "page": 1}),
        Section("问：几点发货？\n答：下午四点前下单当天发。", {"source": "m.pdf", "section": "几点发货？"}, atomic=True),
        Section(chinese_text(600), {"source": "m.pdf", "title": "手册", "section": "", "page": 2}),
    ]
    pieces = split(sections, chunk_tokens=80, overlap=20, count_tokens=count)
    assert [p.metadata["chunk_index"] for p in pieces] == list(range(len(pieces)))
    pages = [p.metadata.get("page") for p in pieces]
    first, faq = pages.index(None), len(pages) - 1 - pages[::-1].index(1)
    assert first == faq + 1 and pages.count(None) == 1  # order kept: page 1, the pair, page 2
    assert pages[:first] == [1] * first and set(pages[first + 1:]) == {2}
    assert all(p.metadata["title"] == "手册" for p in pieces if p.metadata.get("page"))
    assert all("chunk_index" not in s.metadata for s in sections)  # inputs untouched


def test_short_text_passes_through_unchanged_and_blank_sections_vanish(count):
    sections = [Section("  \n\n \t ", {"section": "空"}), Section("七天无理由退货。", {"section": "退货"})]
    [piece] = split(sections, chunk_tokens=100, overlap=10, count_tokens=count)
    assert piece.text == "七天无理由退货。"  # nothing prepended
    assert piece.metadata == {"section": "退货", "chunk_index": 0}
    assert split([Section("\n \n", {}, atomic=True)], chunk_tokens=10, overlap=0, count_tokens=count) == []


def test_size_holds_when_joining_costs_more_than_the_parts():
    # A counter where each seam between sentences costs 3 extra tokens, so
    # summing the parts (as LangChain does) underestimates a joined chunk.
    def seam_count(s: str) -> int:
        return len(s) + 3 * sum(s[i] in ZH_ENDS for i in range(len(s) - 1))

    text = chinese_text(800)
    chunks = texts(split([Section(text, {})], chunk_tokens=60, overlap=10, count_tokens=seam_count))
    assert all(seam_count(c) <= 60 for c in chunks)
    assert all(c[-1] in ZH_ENDS for c in chunks[:-1])


@pytest.mark.parametrize(("chunk_tokens", "overlap"), [(0, 0), (100, 100), (100, -1)])
def test_bad_sizes_are_refused(count, chunk_tokens, overlap):
    with pytest.raises(ValueError):
        split([Section("text", {})], chunk_tokens=chunk_tokens, overlap=overlap, count_tokens=count)
