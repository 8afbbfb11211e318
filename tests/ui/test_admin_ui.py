"""The Knowledge base and Tickets tabs: pure formatting, then the handlers called directly.

Handlers run against a real ``KnowledgeBase`` (Chroma in tmp_path) with the
instant ``FakeEmbedder`` and against the real tickets service. Browser checks
are in test_admin_browser.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import gradio as gr
import pytest

from assistant import tickets
from rag.ingest import FileOutcome, KnowledgeBase
from rag.retriever import Retrieved
from rag.store import EmbeddingMismatch
from tests.fakes.embedder import FakeEmbedder
from ui.admin_kb import (
    KnowledgeHandlers,
    collection_choices,
    document_table,
    failure_text,
    hit_table,
    ingest_summary,
    name_problem,
    overall_fraction,
    verdict_text,
    where_text,
)
from ui.admin_tickets import TicketHandlers, ticket_id, ticket_table
from ui.i18n import make_i18n

SHANGHAI = ZoneInfo("Asia/Shanghai")
ZH = SimpleNamespace(headers={"accept-language": "zh-CN,zh;q=0.9"})
EN = SimpleNamespace(headers={"accept-language": "en-US"})
RETURNS = "# Returns\n\nUnopened items can be returned within 30 days for a full refund.\n"
SHIPPING = "# 配送\n\n同城配送满 99 元免运费，其余订单运费 10 元。\n"

pytestmark = pytest.mark.filterwarnings("ignore:unclosed event loop:ResourceWarning")


# ---- pure formatting ---------------------------------------------------------------


def test_collections_list_the_configured_ones_first():
    assert collection_choices(["faq", "default"], {"zeta", "default", "alpha"}) == ["faq", "default", "alpha", "zeta"]
    assert collection_choices([], []) == []


def test_overall_progress_counts_finished_files():
    assert overall_fraction(0, 2, 0.0) == 0.0
    assert overall_fraction(0, 2, 0.5) == 0.25
    assert overall_fraction(1, 2, 1.0) == 1.0
    assert overall_fraction(0, 0, 2.0) == 1.0  # nonsense in, a valid bar out


def test_document_rows_translate_status_and_show_progress_and_errors():
    docs = [
        {"doc_id": "returns", "source": "returns.md", "status": "ready", "progress": 1.0, "chunks": 3, "error": None,
         "updated_at": "2030-01-10T02:00:00+00:00"},
        {"doc_id": "bad", "source": "bad.pdf", "status": "error", "progress": 0.0, "chunks": 0,
         "error": "bad.pdf: the PDF is corrupt", "updated_at": "2030-01-10T02:01:00+00:00"},
        {"doc_id": "big", "source": "big.docx", "status": "indexing", "progress": 0.456, "chunks": 0, "error": None,
         "updated_at": "2030-01-10T02:02:00+00:00"},
    ]
    table = document_table(docs, SHANGHAI, "zh")
    assert table["headers"] == ["文档 ID", "文件", "状态", "进度", "片段数", "错误", "更新时间"]
    assert table["data"] == [
        ["returns", "returns.md", "就绪", "100%", 3, "", "2030-01-10 10:00"],
        ["bad", "bad.pdf", "出错", "0%", 0, "bad.pdf: the PDF is corrupt", "2030-01-10 10:01"],
        ["big", "big.docx", "索引中", "46%", 0, "", "2030-01-10 10:02"],
    ]
    assert document_table(docs, SHANGHAI, "en")["data"][2][2] == "indexing"


def test_summary_counts_outcomes_and_gives_each_files_reason():
    outcomes = [
        FileOutcome("a.md", "a", "ready", 3),
        FileOutcome("b.md", "b", "unchanged", 2),
        FileOutcome("c_copy.md", "c_copy", "duplicate", 3, "c_copy.md: same content as a.md; not indexed again"),
        FileOutcome("bad.pdf", "bad", "error", error="bad.pdf: the PDF is corrupt or encrypted"),
    ]
    zh = ingest_summary(outcomes, "default", "zh").splitlines()
    assert zh[0] == "**「default」：4 个文件，1 就绪 · 1 未变化 · 1 重复 · 1 出错。**"
    assert zh[2] == "- ✅ **a\\.md**: 就绪 — 3 个片段"
    assert zh[3] == "- ♻️ **b\\.md**: 未变化 — 2 个片段"
    assert zh[4].startswith("- 📑 **c\\_copy\\.md**: 重复 — c\\_copy\\.md: same content as a\\.md")
    assert zh[5] == "- ❌ **bad\\.pdf**: 出错 — bad\\.pdf: the PDF is corrupt or encrypted"
    assert ingest_summary(outcomes[:1], "faq", "en").startswith("**“faq”: 1 file(s), 1 ready.**")


def test_hits_show_every_score_the_place_and_the_threshold():
    hits = [
        Retrieved("c1", "Unopened items\n can be returned", {"source": "returns.md", "section": "Returns"},
                  score=0.0328, dense_score=0.61, bm25_score=2.5, rank=1),
        Retrieved("c2", "x" * 400, {"source": "manual.pdf", "section": "", "page": 3}, score=0.0161,
                  dense_score=None, bm25_score=1.25, rank=2),
        Retrieved("c3", "low", {"doc_id": "faq"}, score=0.0159, dense_score=0.2, rank=3),
    ]
    table = hit_table(hits, 0.5, "en")
    assert table["headers"][:5] == ["#", "Score (ranking)", "Dense (cosine)", "BM25", "≥ threshold"]
    assert table["data"][0] == [1, "0.0328", "0.6100", "2.5000", "✓", "returns.md › Returns",
                                "Unopened items can be returned"]
    assert table["data"][1][:6] == [2, "0.0161", "—", "1.2500", "—", "manual.pdf (p. 3)"]
    assert table["data"][1][6].endswith("…") and len(table["data"][1][6]) == 301
    assert table["data"][2][4:6] == ["✗", "faq"]
    assert where_text({"source": "m.pdf", "section": "退货", "page": 2}, "zh") == "m.pdf › 退货 (第 2 页)"


def test_verdict_says_whether_the_assistant_would_answer():
    hit = Retrieved("c1", "t", {}, score=0.03, dense_score=0.4, rank=1)
    assert verdict_text([hit], True, 0.3, "default", ["default"], "zh").startswith("✅ 达到相关性阈值（0.3）")
    below = verdict_text([hit], False, 0.82, "default", ["default"], "en")
    assert below.startswith("⚠️ Below the relevance threshold (0.82; best dense score 0.4000)")
    other = verdict_text([], False, 0.82, "faq", ["default"], "en")
    assert other == "No chunks found in “faq”.\n\nNote: the assistant does not search “faq”; it searches “default”."


def test_names_and_model_changes_are_explained():
    assert name_problem("default", "en") is None
    assert name_problem("a b", "zh").startswith("⚠️ “a b”不是有效的集合名称")
    assert "3 to 512 characters" in name_problem("x", "en")
    mismatch = EmbeddingMismatch("default", "fake:a", "e5:multilingual-e5-small")
    assert failure_text(mismatch, "en") == (
        "⚠️ “default” was indexed with fake:a, but the configured embedding model is e5:multilingual-e5-small. "
        "Press “Re-index collection” to rebuild it.")
    assert failure_text(RuntimeError("disk full"), "zh") == "⚠️ 知识库出错：RuntimeError: disk full"


def test_ticket_rows_show_local_time_and_status():
    item = {"id": 7, "created_at": "2030-01-10T02:00:00+00:00", "name": "Ann", "contact": "ann@example.com",
            "summary": "bulk order", "status": "open", "conversation_id": None}
    table = ticket_table([item], SHANGHAI, "zh")
    assert table["headers"] == ["ID", "创建时间", "姓名", "联系方式", "摘要", "状态", "对话"]
    assert table["data"] == [[7, "2030-01-10 10:00", "Ann", "ann@example.com", "bulk order", "待处理", ""]]
    assert ticket_id("7") == 7 and ticket_id(None) is None and ticket_id("x") is None


# ---- knowledge-base handlers, against the real service --------------------------------------


@pytest.fixture
def kb(lingxi) -> KnowledgeBase:
    settings = lingxi.settings.model_copy(update={"kb_relevance_threshold": 0.3, "kb_collections": "default"})
    lingxi.kb = KnowledgeBase(settings=settings, db=lingxi.db, counter=lingxi.counter, embedder=FakeEmbedder())
    return lingxi.kb


@pytest.fixture
def h(lingxi, kb) -> KnowledgeHandlers:
    return KnowledgeHandlers(lingxi, make_i18n())


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    folder = tmp_path / "upload"
    folder.mkdir()
    paths = {"returns": folder / "returns.md", "shipping": folder / "shipping.md", "bad": folder / "bad.pdf"}
    paths["returns"].write_text(RETURNS)
    paths["shipping"].write_text(SHIPPING)
    paths["bad"].write_bytes(b"%PDF-1.4\nnot really a pdf\n")
    return paths


def test_ingest_reports_each_file_and_lists_the_documents(h, kb, files):
    steps: list[tuple[float, str]] = []
    status, table, pick, collection, upload = h.ingest(
        "default", [str(files["returns"]), str(files["shipping"]), str(files["bad"])], ZH,
        progress=lambda fraction, desc=None: steps.append((fraction, desc)))

    lines = status.splitlines()
    assert lines[0] == "**「default」：3 个文件，2 就绪 · 1 出错。**"
    assert "- ✅ **returns\\.md**: 就绪 — 1 个片段" in lines
    assert any(line.startswith("- ❌ **bad\\.pdf**: 出错 — bad\\.pdf: the PDF is corrupt") for line in lines)
    rows = {row[0]: row for row in table["data"]}
    assert set(rows) == {"returns", "shipping", "bad"}
    assert [rows[d][2:5] for d in ("returns", "shipping")] == [["就绪", "100%", 1]] * 2
    assert rows["bad"][2] == "出错" and "corrupt" in rows["bad"][5]
    assert {v for _, v in pick.choices} == set(rows) and pick.value is None
    assert collection.value == "default" and "default" in [v for _, v in collection.choices]
    assert upload is None  # the upload box empties

    # The bar moves forward, file by file, and names the file it is on.
    fractions = [f for f, _ in steps]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(2 / 3)
    assert any(desc == "正在索引 2/3：shipping.md" for _, desc in steps)
    assert [d["doc_id"] for d in kb.documents("default") if d["status"] == "ready"] == ["returns", "shipping"]


def test_duplicates_and_unchanged_uploads_are_reported(h, files, tmp_path):
    h.ingest("default", [str(files["returns"])], EN)
    copy = tmp_path / "returns_copy.md"
    copy.write_text(RETURNS)
    status, table, *_ = h.ingest("default", [str(files["returns"]), str(copy)], EN)
    assert status.splitlines()[0] == "**“default”: 2 file(s), 1 unchanged · 1 duplicate.**"
    assert "same content as returns\\.md; not indexed again" in status
    assert [row[0] for row in table["data"]] == ["returns"]


def test_nothing_to_ingest_and_bad_names_write_nothing(h, kb, files):
    with pytest.warns(UserWarning):
        update = h.ingest("default", [], ZH)
    assert update == ("请先选择一个或多个文件。", *(gr.skip(),) * 4)
    with pytest.warns(UserWarning) as shown:
        status, *rest = h.ingest("bad name!", [str(files["returns"])], EN)
    assert status.startswith("⚠️ “bad name!” is not a valid collection name") and str(shown[0].message) == status
    assert rest == [gr.skip()] * 4
    assert kb.documents() == [] and kb.store.collection_names() == []
    # Picking the name shows the problem at once, without a toast.
    _, _, status, *_ = h.pick_collection("x", ZH)
    assert status.startswith("⚠️ “x”不是有效的集合名称")


def test_an_embedding_model_change_is_explained(h, lingxi, files):
    h.ingest("default", [str(files["returns"])], EN)
    lingxi.kb = KnowledgeBase(settings=lingxi.kb.settings, db=lingxi.db, counter=lingxi.counter,
                              embedder=FakeEmbedder(model_id="fake:b"))
    with pytest.warns(UserWarning):
        status, *rest = h.ingest("default", [str(files["shipping"])], EN)
    assert status.startswith("⚠️ “default” was indexed with fake:a, but the configured embedding model is fake:b")
    assert rest[-1] == gr.skip()  # the upload is kept for after the re-index
    with pytest.warns(UserWarning):
        verdict, hits = h.try_question("default", "refund", "hybrid", 4, EN)
    assert "Re-index collection" in verdict and hits == gr.skip()

    status, table, _ = h.reindex("default", EN)
    assert status.startswith("🔁 Re-indexed “default”.") and "returns\\.md**: ready" in status
    assert [row[:3] for row in table["data"]] == [["returns", "returns.md", "ready"]]


def test_delete_asks_first_then_removes(h, kb, files):
    h.ingest("default", [str(files["returns"]), str(files["shipping"])], ZH)
    with pytest.warns(UserWarning):
        assert h.delete("default", None, None, ZH)[0] == "请先选择一个文档。"

    status, table, pick, button, armed = h.delete("default", "returns", None, ZH)
    assert status == "要从「default」删除「returns」及其所有片段吗？再点一次红色按钮确认。"
    assert (table, pick) == (gr.skip(), gr.skip())
    assert "confirm_delete" in button.value and button.variant == "stop" and armed == "default/returns"
    assert len(kb.documents("default")) == 2  # nothing deleted yet
    # Armed for another document: asks again instead of deleting.
    assert h.delete("default", "shipping", armed, ZH)[4] == "default/shipping"
    assert len(kb.documents("default")) == 2

    status, table, pick, button, armed = h.delete("default", "returns", "default/returns", ZH)
    assert status == "🗑 已从「default」删除「returns」。"
    assert [row[0] for row in table["data"]] == ["shipping"] and armed is None and button.variant == "secondary"
    assert [d["doc_id"] for d in kb.documents("default")] == ["shipping"]
    assert all(h.metadata["doc_id"] == "shipping" for h in kb.search("default", "refund returned", k=5))
    assert h.delete("default", "returns", "default/returns", ZH)[0] == "「default」中已没有「returns」。"


def test_try_a_question_shows_scores_and_the_answerable_flag(h, files):
    h.ingest("default", [str(files["returns"]), str(files["shipping"])], EN)
    verdict, table = h.try_question("default", "can unopened items be returned for a refund", "hybrid", 4, EN)
    assert verdict.startswith("✅ Passes the relevance threshold (0.3)")
    first = table["data"][0]
    assert first[0] == 1 and first[4] == "✓" and first[5] == "returns.md › Returns"
    assert float(first[1]) > 0 and float(first[2]) >= 0.3 and float(first[3]) > 0
    assert "30 days" in first[6]

    verdict, table = h.try_question("default", "quantum chromodynamics", "dense", 2, ZH)
    assert verdict.startswith("⚠️ 低于相关性阈值（0.3；最佳向量得分") and table["data"][0][3] == "—"
    verdict, table = h.try_question("default", "运费", "bm25", 4, ZH)
    assert table["data"][0][5] == "shipping.md › 配送" and table["data"][0][2] == "—"
    with pytest.warns(UserWarning):
        assert h.try_question("default", "  ", "hybrid", 4, ZH)[0] == "请先输入问题。"


def test_collection_picker_lists_existing_and_new_names(h, lingxi, files):
    h.ingest("faq", [str(files["returns"])], EN)
    picker, table, pick = h.open_tab("faq", None, EN)
    assert [v for _, v in picker.choices] == ["default", "faq"] and picker.value == "faq"
    assert [row[0] for row in table["data"]] == ["returns"]
    picker, table, _ = h.open_tab("brand-new", None, EN)
    assert "brand-new" in [v for _, v in picker.choices] and table["data"] == []
    with pytest.warns(UserWarning, match="no documents"):
        h.reindex("brand-new", EN)


# ---- tickets -------------------------------------------------------------------------


def test_tickets_are_listed_filtered_and_closed(lingxi):
    with lingxi.db.session() as s:
        first = tickets.create(session=s, contact="ann@example.com", summary="bulk order quote", name="Ann").id
        second = tickets.create(session=s, contact="+86 138-0013-8000", summary="配送问题").id
    h = TicketHandlers(lingxi)
    table, pick = h.view("open", None, ZH)
    assert {row[0] for row in table["data"]} == {first, second}
    assert {row[5] for row in table["data"]} == {"待处理"}
    assert any(label.startswith(f"#{second} · +86 138-0013-8000 · 配送问题") for label, _ in pick.choices)

    table, pick, status = h.close(str(first), "open", ZH)  # a row click hands the id over as text
    assert status == f"✅ 工单 #{first} 已关闭。"
    assert [row[0] for row in table["data"]] == [second] and pick.value is None
    table, pick = h.view("closed", first, EN)
    assert [row[0] for row in table["data"]] == [first] and table["data"][0][5] == "closed" and pick.value == first
    assert len(h.view("all", None, EN)[0]["data"]) == 2
    with lingxi.db.session() as s:
        assert tickets.list_all(session=s, status="closed")[0].closed_at is not None

    with pytest.warns(UserWarning):
        assert h.close(None, "open", EN)[2] == "Select a ticket first."
    with pytest.warns(UserWarning):
        assert h.close(999, "open", ZH)[2] == "没有 #999 号工单。"


def test_the_page_has_the_admin_tabs(lingxi):
    from ui.chat import build_ui

    config = json.dumps(build_ui(lingxi).get_config_file(), default=str, ensure_ascii=False)
    for key in ("tab_kb", "tab_tickets", "kb_ingest", "kb_try", "close_ticket"):
        assert key in config
