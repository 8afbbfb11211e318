"""Tokenization (jieba for Chinese, words for English) and Okapi BM25 ranking."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import pytest

from rag.bm25 import BM25Index, tokenize


@dataclass
class Doc:
    id: str
    text: str


def test_jieba_splits_a_chinese_compound_into_words():
    tokens = tokenize("七天无理由退货")
    assert "退货" in tokens
    assert "理由" in tokens or "无理由" in tokens
    assert "七天无理由退货" not in tokens  # segmented, not kept whole


def test_chinese_stop_words_and_punctuation_are_dropped():
    tokens = tokenize("请问你们的蛋糕怎么保存？")
    assert "蛋糕" in tokens and "保存" in tokens
    for noise in ("请问", "你们", "的", "怎么", "？"):
        assert noise not in tokens


def test_english_is_lower_cased_and_stop_words_dropped():
    assert tokenize("How do I return the Bike, please?!") == ["return", "bike"]
    assert tokenize("What's the e-bike’s warranty? Don't know.") == ["e", "bike", "warranty", "know"]


def test_mixed_text_keeps_numbers_and_latin_words():
    tokens = tokenize("满99元免运费，支持Apple Pay")
    assert "99" in tokens and "apple" in tokens and "pay" in tokens and "运费" in tokens


def test_empty_and_punctuation_only_text():
    assert tokenize("") == []
    assert tokenize("……！？ ,.;") == []


def test_jieba_is_quiet(caplog):
    with caplog.at_level(logging.DEBUG):
        tokenize("配送范围")
    assert not [r for r in caplog.records if r.name == "jieba" and r.levelno < logging.WARNING]


def test_exact_term_document_ranks_first():
    index = BM25Index(
        [
            Doc("delivery", "同城配送满99元免运费，不满收取8元配送费。"),
            Doc("invoice", "确认收货后可以在订单页面申请开具电子发票。"),
            Doc("hours", "门店营业时间为早上七点半到晚上九点。"),
        ]
    )
    assert index.search("怎么开发票", k=3)[0][0] == "invoice"
    assert index.search("运费多少", k=3)[0][0] == "delivery"


def test_english_ranking_and_k():
    index = BM25Index(
        [
            Doc("a", "Returns are accepted within 30 days of delivery."),
            Doc("b", "Our warranty covers frames for life."),
            Doc("c", "Warranty claims need proof of purchase; the warranty excludes crashes."),
        ]
    )
    hits = index.search("warranty claim", k=5)
    assert [cid for cid, _ in hits] == ["c", "b"]  # "a" shares no term and is left out
    assert hits[0][1] > hits[1][1] > 0
    assert len(index.search("warranty", k=1)) == 1


def test_okapi_formula_on_a_tiny_corpus():
    index = BM25Index([Doc("x", "apple banana"), Doc("y", "cherry")])
    # One doc of two: idf = ln(1 + (2 - 1 + 0.5) / (1 + 0.5)) = ln 2; tf 1, |d| 2, avgdl 1.5.
    norm = 1.5 * (1 - 0.75 + 0.75 * 2 / 1.5)
    expected = math.log(2) * 1 * 2.5 / (1 + norm)
    assert index.search("apple", k=1) == [("x", pytest.approx(expected))]


def test_term_in_every_chunk_still_counts_positively():
    index = BM25Index([Doc("x", "cake chocolate"), Doc("y", "cake vanilla"), Doc("z", "cake lemon")])
    assert all(score > 0 for _, score in index.search("cake", k=3))


def test_no_match_and_empty_index():
    assert BM25Index([Doc("x", "hello")]).search("absent", k=3) == []
    empty = BM25Index([])
    assert len(empty) == 0 and empty.search("anything", k=3) == []
