"""The Knowledge base tab in a real headless Chromium, against the real app.

``lingxi.kb`` is swapped for one with the instant ``FakeEmbedder`` before the
app is built, so ingestion takes milliseconds. Chromium rules (and the
``browser`` fixture) are those of test_chat_browser.py; screenshots land in tmp_path.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, expect

from assistant import tickets
from assistant.web import create_app
from rag.ingest import KnowledgeBase
from tests.fakes.embedder import FakeEmbedder
from tests.server import serve
from tests.ui.test_chat_browser import WAIT_MS, browser  # noqa: F401  (the fixture)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore:unclosed event loop:ResourceWarning"),
]


def test_upload_ingest_list_and_try_a_question(lingxi, browser: Browser, tmp_path):  # noqa: F811
    settings = lingxi.settings.model_copy(update={"kb_relevance_threshold": 0.3, "kb_collections": "default"})
    lingxi.kb = lingxi.agent.kb = KnowledgeBase(settings=settings, db=lingxi.db, counter=lingxi.counter,
                                                embedder=FakeEmbedder())
    upload = tmp_path / "upload"
    upload.mkdir()
    (upload / "returns.md").write_text("# 退货\n\n未拆封的商品 30 天内可以退货，全额退款。\n")
    (upload / "shipping.md").write_text("# 配送\n\n同城配送满 99 元免运费，其余订单运费 10 元。\n")

    with serve(create_app(lingxi)) as base:
        page = browser.new_page(locale="zh-CN", viewport={"width": 1400, "height": 1200})
        page.goto(base + "/")
        page.get_by_role("tab", name="📚 知识库").click()
        files = page.locator("#lingxi-kb-files")
        files.locator("input[type=file]").set_input_files([upload / "returns.md", upload / "shipping.md"])
        # Uploaded (listed with a download link) before ingesting.
        expect(files.get_by_role("link", name="73.0 B")).to_be_visible(timeout=WAIT_MS)
        page.locator("#lingxi-kb-ingest").click()

        status = page.locator("#lingxi-kb-status")
        expect(status).to_contain_text("「default」：2 个文件，2 就绪", timeout=WAIT_MS)
        docs = page.locator("#lingxi-kb-docs")
        for row, name in enumerate(("returns", "shipping")):
            expect(docs.get_by_test_id(f"cell-{row}-0")).to_have_text(name)
            expect(docs.get_by_test_id(f"cell-{row}-2")).to_have_text("就绪")
            expect(docs.get_by_test_id(f"cell-{row}-4")).to_have_text("1")  # chunks
        assert [d["status"] for d in lingxi.kb.documents("default")] == ["ready", "ready"]

        page.locator("#lingxi-kb-query input").fill("配送 99 元免运费")
        page.locator("#lingxi-kb-search").click()
        hits = page.locator("#lingxi-kb-hits")
        expect(hits).to_contain_text("shipping.md › 配送", timeout=WAIT_MS)
        expect(page.locator("#lingxi-kb-verdict")).to_contain_text("达到相关性阈值（0.3）")
        page.wait_for_timeout(500)  # let the table settle before the screenshot
        page.screenshot(path=tmp_path / "kb-zh-CN.png", full_page=True)

        # Delete: a clicked row selects the document; the first click only asks.
        docs.get_by_test_id("cell-0-1").click()
        expect(page.locator("#lingxi-kb-doc-pick input")).to_have_value(re.compile(r"^returns · "), timeout=WAIT_MS)
        delete = page.locator("#lingxi-kb-delete")
        delete.click()
        expect(status).to_contain_text("再点一次红色按钮确认", timeout=WAIT_MS)
        expect(delete).to_have_text("再点一次确认删除")
        assert len(lingxi.kb.documents("default")) == 2
        delete.click()
        expect(status).to_contain_text("已从「default」删除「returns」", timeout=WAIT_MS)
        expect(docs).not_to_contain_text("returns.md")
        expect(delete).to_have_text("删除")
        assert [d["doc_id"] for d in lingxi.kb.documents("default")] == ["shipping"]
        page.close()


def test_tickets_are_read_and_closed(lingxi, browser: Browser, tmp_path):  # noqa: F811
    with lingxi.db.session() as s:
        tid = tickets.create(session=s, contact="ann@example.com", summary="想要批量采购报价", name="Ann").id
    with serve(create_app(lingxi)) as base:
        page = browser.new_page(locale="zh-CN", viewport={"width": 1400, "height": 900})
        page.goto(base + "/")
        page.get_by_role("tab", name="🎫 工单").click()
        table = page.locator("#lingxi-tickets")
        expect(table).to_contain_text("想要批量采购报价", timeout=WAIT_MS)
        expect(table).to_contain_text("待处理")
        table.get_by_test_id("cell-0-4").click()  # the summary selects the ticket
        # The close handler reads the dropdown: wait for the select event to land first.
        expect(page.locator("#lingxi-ticket-pick input")).to_have_value(re.compile(rf"^#{tid} · "), timeout=WAIT_MS)
        page.locator("#lingxi-ticket-close").click()
        expect(page.locator("#lingxi-ticket-status")).to_contain_text(f"工单 #{tid} 已关闭", timeout=WAIT_MS)
        expect(table).not_to_contain_text("想要批量采购报价")  # the list shows open tickets
        page.get_by_label("已关闭").check()
        expect(table).to_contain_text("想要批量采购报价", timeout=WAIT_MS)
        page.screenshot(path=tmp_path / "tickets-zh-CN.png", full_page=True)
        page.close()
    with lingxi.db.session() as s:
        assert tickets.list_all(session=s, status="closed")[0].id == tid


def test_typed_collection_names_are_checked(lingxi, browser: Browser, tmp_path):  # noqa: F811
    with serve(create_app(lingxi)) as base:
        page = browser.new_page(locale="en-US", viewport={"width": 1400, "height": 900})
        page.goto(base + "/")
        page.get_by_role("tab", name="📚 Knowledge base").click()
        box = page.locator("#lingxi-kb-collection input")
        box.fill("a b")
        box.press("Enter")
        expect(page.locator("#lingxi-kb-status")).to_contain_text("is not a valid collection name", timeout=WAIT_MS)
        page.screenshot(path=tmp_path / "kb-bad-name.png", full_page=True)
        box.fill("faq-2")
        box.press("Enter")
        expect(page.locator("#lingxi-kb-status")).to_have_text("", timeout=WAIT_MS)  # a valid new name is fine
        page.close()

