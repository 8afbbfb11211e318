"""The Reminders tab and the inbox in a real headless Chromium, against the real app.

The reminder is created through the form and delivered by the test calling
``lingxi.firer.fire_due(now=...)`` with a clock past its time, so the toast's
arrival depends only on the page's own inbox polling. Chromium rules (and the
``browser`` fixture) are those of test_chat_browser.py; screenshots land in tmp_path.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from playwright.sync_api import Browser, expect

from assistant import reminders
from assistant.web import create_app
from tests.server import serve
from tests.ui.test_chat_browser import WAIT_MS, browser  # noqa: F401  (the fixture)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore:unclosed event loop:ResourceWarning"),
]


def test_reminder_form_list_toast_and_badge(lingxi, browser: Browser, tmp_path):  # noqa: F811
    with serve(create_app(lingxi)) as base:
        page = browser.new_page(locale="zh-CN", viewport={"width": 1400, "height": 1000})
        other = browser.new_page(locale="zh-CN", viewport={"width": 1400, "height": 1000})  # a second open tab
        for p in (page, other):
            p.goto(base + "/")
            expect(p.locator("#lingxi-inbox-badge")).to_have_text("🔔 0", timeout=WAIT_MS)

        page.get_by_role("tab", name="⏰ 提醒").click()
        # Due soon, with room for a slow page; the firer's clock is moved past it below, so nothing waits.
        due = (datetime.now(lingxi.settings.tz) + timedelta(seconds=30)).replace(microsecond=0, tzinfo=None)
        page.locator("#lingxi-reminder-text textarea").fill("给王总回电话")
        page.locator("#lingxi-reminder-when input").fill(due.isoformat())
        page.locator("#lingxi-reminder-create").click()

        status = page.locator("#lingxi-reminder-status")
        expect(status).to_contain_text("已设置提醒「给王总回电话」", timeout=WAIT_MS)
        table = page.locator("#lingxi-reminders")
        expect(table).to_contain_text("给王总回电话")
        expect(table).to_contain_text("待提醒")

        with lingxi.db.session() as s:
            [stored] = [reminders.as_dict(r) for r in reminders.list_all(session=s)]
        assert stored["due_at"] == due.replace(tzinfo=lingxi.settings.tz).isoformat()
        assert lingxi.firer.fire_due(now=datetime.fromisoformat(stored["due_at"]) + timedelta(seconds=1)) == 1

        for p in (page, other):  # every open session gets the toast
            expect(p.locator(".toast-body").filter(has_text="给王总回电话")).to_be_visible(timeout=WAIT_MS)
            expect(p.locator("#lingxi-inbox-badge")).to_have_text("🔔 1", timeout=WAIT_MS)
        page.get_by_role("button", name="🔄 刷新").click()
        expect(table).to_contain_text("已发送", timeout=WAIT_MS)

        page.locator("#lingxi-inbox-badge").click()
        expect(page.locator("#lingxi-inbox-list")).to_contain_text("给王总回电话", timeout=WAIT_MS)
        page.wait_for_timeout(500)  # let the toast finish sliding in before the screenshot
        page.screenshot(path=tmp_path / "reminders-zh-CN.png", full_page=True)

        page.locator("#lingxi-inbox-read").click()
        expect(page.locator("#lingxi-inbox-badge")).to_have_text("🔔 0", timeout=WAIT_MS)
        page.close()
        other.close()


def test_agenda_form_warns_about_overlaps_and_edits_a_clicked_row(lingxi, browser: Browser, tmp_path):  # noqa: F811
    with serve(create_app(lingxi)) as base:
        page = browser.new_page(locale="zh-CN", viewport={"width": 1400, "height": 1100})
        page.goto(base + "/")
        page.get_by_role("tab", name="📅 日程").click()
        page.get_by_label("未来 30 天").check()  # "tomorrow" may fall into next week
        status = page.locator("#lingxi-event-status")
        for title, start in (("和王总开会", "明天下午三点"), ("面试", "明天下午三点半")):
            page.locator("#lingxi-event-title input").fill(title)
            page.locator("#lingxi-event-start input").fill(start)
            page.locator("#lingxi-event-create").click()
            expect(status).to_contain_text(f"已创建「{title}」", timeout=WAIT_MS)
        expect(status).to_contain_text("与这些日程时间重叠：“和王总开会”")
        expect(page.locator("#lingxi-agenda")).to_contain_text("15:30–16:30")

        page.locator("#lingxi-agenda").get_by_test_id("cell-0-2").click()  # the first row's title
        title = page.locator("#lingxi-event-title input")
        expect(title).to_have_value("和王总开会", timeout=WAIT_MS)
        title.fill("和王总开会（改）")
        page.locator("#lingxi-event-save").click()
        expect(status).to_contain_text("已保存「和王总开会（改）」", timeout=WAIT_MS)
        expect(page.locator("#lingxi-agenda")).to_contain_text("和王总开会（改）")

        page.locator("#lingxi-event-start input").fill("2月30日")
        page.locator("#lingxi-event-save").click()
        expect(status).to_contain_text("未保存：2月30日", timeout=WAIT_MS)
        page.wait_for_timeout(500)
        page.screenshot(path=tmp_path / "agenda-zh-CN.png", full_page=True)
        page.close()
