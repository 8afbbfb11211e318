"""The Agenda/Reminders tabs and the inbox: pure formatting, then the handlers called directly.

Handlers run against the real services on SQLite (and PostgreSQL when set up)
with a fixed clock; reminders are delivered with ``lingxi.firer.fire_due(now=...)``
so nothing waits on real time. Browser checks are in test_schedule_browser.py.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import gradio as gr
import pytest

from assistant import events, reminders
from assistant.reminders import ScheduleError
from tools.timeparse import TimeParseError
from ui.inbox import InboxHandlers, badge_text, panel_markdown, toast_text
from ui.schedule import (
    ScheduleHandlers,
    agenda_table,
    error_text,
    range_bounds,
    reminder_table,
    repeats_text,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2030, 1, 10, 10, 0, tzinfo=SHANGHAI)  # a Thursday
TOMORROW_3PM = datetime(2030, 1, 11, 15, 0, tzinfo=SHANGHAI)
ZH = SimpleNamespace(headers={"accept-language": "zh-CN,zh;q=0.9"})
EN = SimpleNamespace(headers={"accept-language": "en-US"})
NO_TARGETS = SimpleNamespace(webhook_url=None, notify_email=None)  # settings without default channel targets

pytestmark = pytest.mark.filterwarnings("ignore:unclosed event loop:ResourceWarning")


# ---- pure formatting ---------------------------------------------------------------


def test_ranges_start_at_midnight_in_the_owners_zone():
    def day(d: int, month: int = 1) -> datetime:
        return datetime(2030, month, d, tzinfo=SHANGHAI)

    assert range_bounds("today", NOW) == (day(10), day(11))
    assert range_bounds("week", NOW) == (day(7), day(14))  # Monday to Monday
    assert range_bounds("30d", NOW) == (day(10), day(9, 2))


def test_agenda_rows_show_local_times_all_day_and_repeats():
    base = {"location": "", "notes": "", "timezone": "UTC", "rrule": None, "all_day": False}
    items = [
        {**base, "id": "a", "title": "站会", "occurrence_start": "2030-01-10T02:00:00+00:00",
         "occurrence_end": "2030-01-10T02:30:00+00:00", "rrule": "FREQ=WEEKLY;BYDAY=TH", "location": "3楼"},
        {**base, "id": "b", "title": "夜班", "occurrence_start": "2030-01-10T14:00:00+00:00",
         "occurrence_end": "2030-01-10T18:00:00+00:00"},
        {**base, "id": "c", "title": "生日", "all_day": True, "occurrence_start": "2030-01-11T00:00:00+08:00",
         "occurrence_end": "2030-01-12T00:00:00+08:00"},
    ]
    table = agenda_table(items, SHANGHAI, "zh")
    assert table["headers"] == ["日期", "时间", "标题", "地点", "重复", "ID"]
    assert table["data"] == [
        ["2030-01-10 周四", "10:00–10:30", "站会", "3楼", "每周 (FREQ=WEEKLY;BYDAY=TH)", "a"],
        ["2030-01-10 周四", "22:00–02:00 (+1)", "夜班", "", "—", "b"],
        ["2030-01-11 周五", "全天", "生日", "", "—", "c"],
    ]
    assert agenda_table(items, SHANGHAI, "en")["data"][0][0] == "2030-01-10 Thu"
    assert repeats_text("FREQ=MINUTELY;INTERVAL=5", "en") == "FREQ=MINUTELY;INTERVAL=5"


def test_reminder_rows_translate_status_and_channels():
    item = {"id": "r1", "text": "交房租", "due_at": "2030-01-11T15:00:00+08:00", "timezone": "Asia/Shanghai",
            "rrule": "FREQ=MONTHLY", "channels": ["inapp", "email"], "status": "failed", "last_error": "email: down"}
    assert reminder_table([item], "zh")["data"] == [[
        "交房租", "2030-01-11 15:00 Asia/Shanghai", "每月 (FREQ=MONTHLY)", "站内, 邮件", "失败", "email: down", "r1",
    ]]
    assert reminder_table([item], "en")["data"][0][3:5] == ["In-app, E-mail", "failed"]


def test_inbox_panel_is_escaped_and_marks_unread():
    items = [
        {"id": 2, "text": "<b>call</b> *now*", "due_at": "2030-01-10T07:00:00+00:00", "late": True, "read": False},
        {"id": 1, "text": "water plants", "due_at": "2030-01-10T01:00:00+00:00", "late": False, "read": True},
    ]
    panel = panel_markdown(items, SHANGHAI, "zh")
    first, second = panel.splitlines()
    assert first.startswith("- **2030-01-10 15:00 · &lt;b&gt;call&lt;/b&gt; \\*now\\*** _(迟到)_")
    assert second == "- 2030-01-10 09:00 · water plants"
    assert panel_markdown([], SHANGHAI, "en") == "No notifications yet."
    assert toast_text(items[0], "en") == "⏰ &lt;b&gt;call&lt;/b&gt; *now* (late)"
    assert badge_text(3) == "🔔 3"


@pytest.mark.parametrize(
    ("call", "zh"),
    [
        (lambda: reminders.zone("Mars/Base"), "未知时区 'Mars/Base'"),
        (lambda: reminders.first_due(due_at=NOW, rrule=None, tz="Asia/Shanghai", now=NOW), "已经过去了"),
        (lambda: reminders.first_due(due_at=NOW, rrule="FREQ=SECONDLY", tz="UTC", now=NOW), "重复规则无效"),
        (lambda: reminders.check_channels(["email"], webhook_url=None, email_to=None, settings=NO_TARGETS), "邮件方式"),
        (lambda: events._validate("x", NOW, NOW, None, "Asia/Shanghai"), "结束时间必须晚于开始时间"),
    ],
)
def test_service_errors_are_translated(call, zh):
    # Raised by the services themselves, so a changed English text fails here.
    with pytest.raises(ScheduleError) as info:
        call()
    assert zh in error_text(info.value, "zh")
    assert error_text(info.value, "en") == f"⚠️ Nothing was saved: {info.value}"


def test_time_errors_keep_their_text_and_name_the_problem_in_the_pages_language():
    chinese = TimeParseError("impossible", "2月30日不存在")
    assert error_text(chinese, "zh") == "⚠️ 未保存：2月30日不存在"
    assert error_text(chinese, "en") == "⚠️ Nothing was saved: no such date or time (2月30日不存在)"
    english = TimeParseError("past", "2020-01-01 10:00 has passed")
    assert error_text(english, "zh") == "⚠️ 未保存：这个时间已经过去 (2020-01-01 10:00 has passed)"


# ---- handlers, against the real services ---------------------------------------------------


@pytest.fixture
def h(lingxi) -> ScheduleHandlers:
    return ScheduleHandlers(lingxi, clock=lambda: NOW)


def stored_reminders(lingxi) -> list[dict]:
    with lingxi.db.session() as s:
        return [reminders.as_dict(r) for r in reminders.list_all(session=s)]


def add_reminder(h, body="给王总回电话", when="明天下午三点", channels=("inapp",), email="", request=ZH):
    """[table, dropdown, status, loaded], as the create button gets them."""
    return h.create_reminder(body, when, "Asia/Shanghai", list(channels), "", email, request)


def test_reminder_from_natural_language_is_stored_and_listed(h, lingxi):
    table, pick, status, _ = add_reminder(h)
    [stored] = stored_reminders(lingxi)
    assert datetime.fromisoformat(stored["due_at"]) == TOMORROW_3PM
    assert (stored["text"], stored["status"], stored["channels"]) == ("给王总回电话", "scheduled", ["inapp"])
    assert status == "✅ 已设置提醒「给王总回电话」：2030-01-11 15:00 Asia/Shanghai。"
    assert table["data"][0][:5] == ["给王总回电话", "2030-01-11 15:00 Asia/Shanghai", "—", "站内", "待提醒"]
    assert pick.value == stored["id"]  # the new reminder is selected for editing


@pytest.mark.parametrize(
    ("when", "tz", "expected"),
    [("2月30日", "Asia/Shanghai", "⚠️ 未保存："), ("明天下午三点", "Mars/Base", "未知时区 'Mars/Base'"),
     ("", "Asia/Shanghai", "⚠️ 未保存：")],
)
def test_bad_times_and_zones_show_a_message_and_store_nothing(h, lingxi, when, tz, expected):
    with pytest.warns(UserWarning) as shown:  # gr.Warning outside a browser session
        update = h.create_reminder("看牙医", when, tz, ["inapp"], "", "", ZH)
    status = update[2]
    assert expected in status and str(shown[0].message) == status
    assert update[:2] + update[3:] == (gr.skip(),) * 3  # only the status changes; the form keeps the input
    assert stored_reminders(lingxi) == []


def test_bad_channel_settings_store_nothing(h, lingxi):
    with pytest.warns(UserWarning):
        _, _, status, _ = add_reminder(h, channels=["email"], request=EN)
    assert status == ("⚠️ Nothing was saved: the email channel needs an address "
                      "(per reminder, or LINGXI_NOTIFY_EMAIL)")
    assert stored_reminders(lingxi) == []


def test_edit_keeps_an_untouched_time_and_cancel_stops_it(h, lingxi):
    _, pick, *_ = add_reminder(h, body="吃药", when="每天早上9点")
    rid = pick.value
    body, when, tz, channels, webhook, email, loaded = h.load_reminder(rid)
    assert (body, when, tz, channels) == ("吃药", "2030-01-11T09:00", "Asia/Shanghai", ["inapp"])

    _, _, status, loaded = h.save_reminder(rid, loaded, "吃维生素", when, tz, channels, webhook, email, ZH)
    [stored] = stored_reminders(lingxi)
    assert (stored["text"], stored["rrule"]) == ("吃维生素", "FREQ=DAILY")  # the recurrence survived
    assert "吃维生素" in status

    h.save_reminder(rid, loaded, "吃维生素", "2030-01-12T20:30", tz, channels, webhook, email, ZH)
    [stored] = stored_reminders(lingxi)
    assert (stored["due_at"], stored["rrule"]) == ("2030-01-12T20:30:00+08:00", None)  # a new time replaces it

    table, _, status, _ = h.cancel_reminder(rid, ZH)
    assert status == "🗑 已取消提醒「吃维生素」。"
    assert table["data"][0][4] == "已取消"
    with pytest.warns(UserWarning):
        _, _, status, _ = h.save_reminder(rid, loaded, "again", when, tz, channels, webhook, email, ZH)
    assert status == "⚠️ 未保存：这个提醒已取消，请新建一个。"


def test_failed_delivery_can_be_retried(h, lingxi):
    # E-mail without an SMTP server fails; the in-app copy still arrives.
    _, pick, *_ = add_reminder(h, channels=["inapp", "email"], email="owner@example.com")
    rid = pick.value
    with pytest.warns(UserWarning):
        _, _, status, _ = h.retry_reminder(rid, ZH)
    assert status == "⚠️ 未保存：只有投递失败的提醒才能重试。"

    lingxi.firer.fire_due(now=TOMORROW_3PM + timedelta(seconds=1))
    [stored] = stored_reminders(lingxi)
    assert stored["status"] == "failed" and "LINGXI_SMTP_HOST" in stored["last_error"]
    table, _ = h.reminder_view(rid, ZH)
    assert table["data"][0][4:6] == ["失败", stored["last_error"]]

    _, _, status, _ = h.retry_reminder(rid, ZH)
    assert status == "🔁 提醒「给王总回电话」稍后会重新投递。"
    assert stored_reminders(lingxi)[0]["status"] == "scheduled"


def test_inbox_polling_returns_only_new_notifications(h, lingxi, capsys):
    inbox = InboxHandlers(lingxi)
    first_tab = inbox.on_load(ZH)
    assert first_tab == (0, "🔔 0", "还没有通知。")

    add_reminder(h)
    lingxi.firer.fire_due(now=TOMORROW_3PM + timedelta(seconds=1))
    new, seen = inbox.check(first_tab[0])
    assert [n["text"] for n in new] == ["给王总回电话"] and seen == new[0]["id"]
    assert inbox.check(seen) == ([], seen)  # nothing toasts twice

    seen_after_poll, badge, panel = inbox.poll(first_tab[0], ZH)
    assert (seen_after_poll, badge) == (seen, "🔔 1") and "给王总回电话" in panel
    assert capsys.readouterr().out == "⏰ 给王总回电话\n"  # gr.Info prints outside a browser session
    # A tab opened later starts at the newest id: old notifications don't toast there,
    # even when its timer ticks before its page load ran.
    assert inbox.on_load(EN)[:2] == (seen, "🔔 1")
    assert inbox.poll(None, EN)[:2] == (seen, "🔔 1")
    assert inbox.poll(seen, EN)[:2] == (seen, "🔔 1")
    assert capsys.readouterr().out == ""

    assert inbox.mark_all_read(ZH)[0] == "🔔 0"
    assert inbox.poll(seen, ZH)[1] == "🔔 0"


def test_event_create_warns_about_overlaps_then_edit_and_delete(h, lingxi):
    form = ("明天下午三点", "", False, "会议室", "", "Asia/Shanghai")
    table, pick, status, _ = h.create_event("week", "和王总开会", *form, ZH)
    first = pick.value
    assert status == "✅ 已创建「和王总开会」：2030-01-11 15:00。"
    assert table["data"] == [["2030-01-11 周五", "15:00–16:00", "和王总开会", "会议室", "—", first]]

    with pytest.warns(UserWarning, match="重叠"):
        _, pick, status, _ = h.create_event("week", "面试", "2030-01-11T15:30", "2030-01-11T16:30", False, "", "",
                                         "Asia/Shanghai", ZH)
    assert "⚠️ 与这些日程时间重叠：“和王总开会” 2030-01-11 15:00" in status
    second = pick.value

    assert h.load_event(None) == (gr.skip(),) * 8  # no selection leaves the form alone
    *values, loaded = h.load_event(second)
    assert values == ["面试", "2030-01-11T15:30", "2030-01-11T16:30", False, "", "", "Asia/Shanghai"]
    with pytest.warns(UserWarning, match="重叠"):  # still overlapping: warned again
        _, _, status, loaded = h.save_event("week", second, loaded, "二面", *values[1:], ZH)
    assert status.startswith("✅ 已保存「二面」：2030-01-11 15:30。")
    with pytest.warns(UserWarning):
        _, _, status, _ = h.save_event("week", second, loaded, "二面", values[1], "2030-01-11T15:00", *values[3:], ZH)
    assert status == "⚠️ 未保存：结束时间必须晚于开始时间。"
    # Moving the start alone keeps the length; it no longer overlaps.
    _, _, status, _ = h.save_event("week", second, loaded, "二面", "2030-01-11T17:00", *values[2:], ZH)
    assert status == "✅ 已保存「二面」：2030-01-11 17:00。"

    table, pick, status, _ = h.delete_event("week", first, ZH)
    assert status == "🗑 已删除「和王总开会」，取消了 0 个关联提醒。"
    assert [row[2] for row in table["data"]] == ["二面"] and pick.value is None
    with lingxi.db.session() as s:
        assert [e["title"] for e in events.agenda(session=s, start=NOW, end=NOW + timedelta(days=7))] == ["二面"]


def test_event_with_an_impossible_date_stores_nothing(h, lingxi):
    with pytest.warns(UserWarning):
        _, _, status, _ = h.create_event("week", "旅行", "2月30日", "", True, "", "", "Asia/Shanghai", ZH)
    assert status.startswith("⚠️ 未保存：")
    with pytest.warns(UserWarning):
        _, _, status, _ = h.create_event("week", "旅行", "明天下午三点", "", True, "", "", "Nowhere/City", EN)
    assert status.startswith("⚠️ Nothing was saved: unknown time zone 'Nowhere/City'")
    with lingxi.db.session() as s:
        assert events.agenda(session=s, start=NOW - timedelta(days=400), end=NOW + timedelta(days=400)) == []


def test_the_page_has_the_tabs_inbox_and_a_timer(lingxi):
    from ui.chat import build_ui

    blocks = build_ui(lingxi)
    config = json.dumps(blocks.get_config_file(), default=str, ensure_ascii=False)
    for key in ("tab_chat", "tab_agenda", "tab_reminders", "mark_all_read"):
        assert key in config
    assert any(isinstance(b, gr.Timer) for b in blocks.blocks.values())
    assert blocks._queue.default_concurrency_limit == lingxi.settings.ui_concurrency
