"""Calendar and reminder tools, called through the registry with JSON arguments as the model calls them.

Every call runs with a controlled clock: NOW is Sunday 2026-11-22 10:00 in Asia/Shanghai,
the owner's zone in the test settings.
"""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from assistant import events
from assistant.models import Event, Reminder
from tools.registry import ToolContext

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=SHANGHAI)  # a Sunday


def context(lingxi, profile="owner", settings=None) -> ToolContext:
    return ToolContext(settings=settings or lingxi.settings, db=lingxi.db, profile=profile, clock=lambda: NOW)


def call(lingxi, name, args, profile="owner", settings=None):
    """(ToolResult, parsed JSON content)."""
    result = lingxi.registry.execute(name, json.dumps(args, ensure_ascii=False),
                                     context=context(lingxi, profile, settings))
    return result, json.loads(result.content)


def ok(lingxi, name, args) -> dict:
    result, payload = call(lingxi, name, args)
    assert result.ok is True, payload
    assert payload["ok"] is True, payload
    return payload


def count(lingxi, model) -> int:
    with lingxi.db.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def stored(lingxi, rid) -> Reminder:
    with lingxi.db.session() as session:
        reminder = session.get(Reminder, rid)
        session.expunge(reminder)
        return reminder


# --------------------------------------------------------------------------- create_reminder


@pytest.mark.parametrize("when,due,rrule", [
    ("明天下午三点", "2026-11-23T15:00:00+08:00", None),
    ("every weekday at 8:30", "2026-11-23T08:30:00+08:00", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"),
    ("每月1号早上9点", "2026-12-01T09:00:00+08:00", "FREQ=MONTHLY;BYMONTHDAY=1"),
    ("in 2 hours", "2026-11-22T12:00:00+08:00", None),
    ("2026-11-30T07:45", "2026-11-30T07:45:00+08:00", None),
])
def test_create_reminder_resolves_the_time(lingxi, when, due, rrule):
    payload = ok(lingxi, "create_reminder", {"text": "给王总回电话", "when": when})
    shown = payload["reminder"]
    assert (shown["due_at"], shown.get("rrule"), shown["status"]) == (due, rrule, "scheduled")  # None is left out
    assert shown["text"] == "给王总回电话" and shown["channels"] == ["inapp"]
    assert shown["timezone"] == "Asia/Shanghai"
    reminder = stored(lingxi, shown["id"])
    assert reminder.due_at == datetime.fromisoformat(due)
    assert reminder.rrule == rrule and reminder.status == "scheduled"
    assert count(lingxi, Reminder) == 1


def test_recurring_reminder_keeps_its_dtstart(lingxi):
    payload = ok(lingxi, "create_reminder", {"text": "站会", "when": "every weekday at 8:30"})
    reminder = stored(lingxi, payload["reminder"]["id"])
    assert reminder.dtstart == datetime(2026, 11, 23, 8, 30, tzinfo=SHANGHAI)
    assert reminder.due_at.astimezone(SHANGHAI).weekday() == 0  # Monday


@pytest.mark.parametrize("when,fragment", [
    ("三点", "下午3点"),  # ambiguous bare hour: a question offering both readings
    ("今天早上8点", "已经过去"),
    ("yesterday 3pm", "in the past"),
    ("2月30日", "2月30日不存在"),
    ("下下下周八", None),  # not a time phrase at all
])
def test_unusable_time_asks_the_user_and_stores_nothing(lingxi, when, fragment):
    result, payload = call(lingxi, "create_reminder", {"text": "给王总回电话", "when": when})
    assert result.ok is True  # the tool ran; its answer is a question for the user
    assert payload["ok"] is False
    assert isinstance(payload["ask_user"], str) and payload["ask_user"]
    if fragment:
        assert fragment in payload["ask_user"]
    assert "do not guess" in payload["instruction"]
    assert count(lingxi, Reminder) == 0


def test_missing_when_asks_the_user(lingxi):
    for args in ({"text": "给王总回电话"}, {"text": "给王总回电话", "when": None}, {"text": "给王总回电话", "when": ""}):
        _, payload = call(lingxi, "create_reminder", args)
        assert payload["ok"] is False and "什么时候提醒" in payload["ask_user"]
    assert count(lingxi, Reminder) == 0


def test_webhook_without_a_configured_url_is_an_error(lingxi):
    assert lingxi.settings.webhook_url is None
    result, payload = call(lingxi, "create_reminder",
                           {"text": "给王总回电话", "when": "明天下午三点", "channels": ["inapp", "webhook"]})
    assert result.ok is False
    assert "LINGXI_WEBHOOK_URL" in payload["error"]
    assert count(lingxi, Reminder) == 0


def test_webhook_with_a_configured_url_is_stored(lingxi):
    settings = lingxi.settings.model_copy(update={"webhook_url": "https://hooks.example.com/lingxi"})
    result, payload = call(lingxi, "create_reminder", {"text": "交报表", "when": "明天下午三点", "channels": ["webhook"]},
                           settings=settings)
    assert result.ok is True and payload["ok"] is True, payload
    assert payload["reminder"]["channels"] == ["webhook"]
    assert "webhook_url" not in payload["reminder"]  # None, left out: the configured URL is used at delivery time
    assert count(lingxi, Reminder) == 1


def test_unknown_channel_is_refused_by_validation(lingxi):
    result, payload = call(lingxi, "create_reminder", {"text": "给王总回电话", "when": "明天下午三点", "channels": ["sms"]})
    assert result.ok is False
    assert payload["error"].startswith("invalid arguments")
    assert "channels" in payload["error"]
    assert count(lingxi, Reminder) == 0


def test_empty_text_is_an_error(lingxi):
    result, payload = call(lingxi, "create_reminder", {"text": "   ", "when": "明天下午三点"})
    assert result.ok is False and "needs some text" in payload["error"]
    assert count(lingxi, Reminder) == 0


def test_customer_profile_cannot_create_reminders(lingxi):
    result, payload = call(lingxi, "create_reminder", {"text": "给王总回电话", "when": "明天下午三点"},
                           profile="customer_service")
    assert result.ok is False
    assert payload == {"error": "tool 'create_reminder' is not available to the customer_service profile"}
    assert count(lingxi, Reminder) == 0
    result, _ = call(lingxi, "list_reminders", {}, profile="customer_service")
    assert result.ok is False


# --------------------------------------------------------------------------- update / cancel / list reminders


def test_update_reminder_text_and_time(lingxi):
    rid = ok(lingxi, "create_reminder", {"text": "给王总回电话", "when": "明天下午三点"})["reminder"]["id"]
    shown = ok(lingxi, "update_reminder", {"reminder_id": rid, "text": "给李总回电话"})["reminder"]
    assert (shown["text"], shown["due_at"]) == ("给李总回电话", "2026-11-23T15:00:00+08:00")
    shown = ok(lingxi, "update_reminder", {"reminder_id": rid, "when": "后天上午十点"})["reminder"]
    assert (shown["text"], shown["due_at"], shown.get("rrule")) == ("给李总回电话", "2026-11-24T10:00:00+08:00", None)
    shown = ok(lingxi, "update_reminder", {"reminder_id": rid, "when": "每周一早上9点"})["reminder"]
    assert (shown["due_at"], shown["rrule"]) == ("2026-11-23T09:00:00+08:00", "FREQ=WEEKLY;BYDAY=MO")
    reminder = stored(lingxi, rid)
    assert reminder.text == "给李总回电话" and reminder.rrule == "FREQ=WEEKLY;BYDAY=MO"
    assert reminder.due_at == datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)


def test_update_reminder_with_a_past_time_asks_and_changes_nothing(lingxi):
    rid = ok(lingxi, "create_reminder", {"text": "给王总回电话", "when": "明天下午三点"})["reminder"]["id"]
    _, payload = call(lingxi, "update_reminder", {"reminder_id": rid, "when": "今天早上8点", "text": "新的"})
    assert payload["ok"] is False and "已经过去" in payload["ask_user"]
    reminder = stored(lingxi, rid)
    assert reminder.text == "给王总回电话"
    assert reminder.due_at == datetime(2026, 11, 23, 15, 0, tzinfo=SHANGHAI)


def test_update_unknown_reminder_is_an_error(lingxi):
    result, payload = call(lingxi, "update_reminder", {"reminder_id": "nope", "text": "x"})
    assert result.ok is False and "no reminder with id nope" in payload["error"]


def test_cancel_and_list_reminders_by_status(lingxi):
    first = ok(lingxi, "create_reminder", {"text": "一", "when": "明天下午三点"})["reminder"]["id"]
    second = ok(lingxi, "create_reminder", {"text": "二", "when": "in 2 hours"})["reminder"]["id"]
    third = ok(lingxi, "create_reminder", {"text": "三", "when": "每月1号早上9点"})["reminder"]["id"]
    shown = ok(lingxi, "cancel_reminder", {"reminder_id": first})["reminder"]
    assert shown["status"] == "cancelled"
    assert stored(lingxi, first).status == "cancelled"

    everything = ok(lingxi, "list_reminders", {})["reminders"]
    assert [r["id"] for r in everything] == [second, first, third]  # soonest first
    scheduled = ok(lingxi, "list_reminders", {"status": "scheduled"})["reminders"]
    assert [(r["id"], r["status"]) for r in scheduled] == [(second, "scheduled"), (third, "scheduled")]
    cancelled = ok(lingxi, "list_reminders", {"status": "cancelled"})["reminders"]
    assert [r["text"] for r in cancelled] == ["一"]
    assert ok(lingxi, "list_reminders", {"status": "failed"})["reminders"] == []
    result, payload = call(lingxi, "list_reminders", {"status": "done"})
    assert result.ok is False and payload["error"].startswith("invalid arguments")


def test_cancelled_reminder_cannot_be_updated(lingxi):
    rid = ok(lingxi, "create_reminder", {"text": "一", "when": "明天下午三点"})["reminder"]["id"]
    ok(lingxi, "cancel_reminder", {"reminder_id": rid})
    result, payload = call(lingxi, "update_reminder", {"reminder_id": rid, "text": "二"})
    assert result.ok is False and "cancelled" in payload["error"]
    assert stored(lingxi, rid).text == "一"


# --------------------------------------------------------------------------- events


def test_create_event_defaults_to_one_hour(lingxi):
    event = ok(lingxi, "create_event", {"title": "和王总开会", "start": "明天下午三点", "location": "3楼会议室"})["event"]
    assert event["starts_at"] == "2026-11-23T15:00:00+08:00"
    assert "ends_at" not in event and "rrule" not in event  # None, left out by the registry
    assert (event["title"], event["location"], event["timezone"]) == ("和王总开会", "3楼会议室", "Asia/Shanghai")
    assert count(lingxi, Event) == 1


def test_second_event_at_the_same_time_warns_about_the_overlap(lingxi):
    first = ok(lingxi, "create_event", {"title": "和王总开会", "start": "明天下午三点"})
    assert "warning" not in first and "overlaps" not in first
    second = ok(lingxi, "create_event", {"title": "牙医", "start": "明天下午3点半", "end": "明天下午四点半"})
    assert "overlap" in second["warning"]
    assert second["overlaps"] == [
        {"id": first["event"]["id"], "title": "和王总开会", "starts_at": "2026-11-23T15:00:00+08:00"}
    ]
    # Back to back is not an overlap: the first (one hour) ends at 16:00.
    third = ok(lingxi, "create_event", {"title": "健身", "start": "明天下午五点"})
    assert "overlaps" not in third
    assert count(lingxi, Event) == 3


def test_event_overlapping_a_recurring_occurrence_is_reported(lingxi):
    weekly = ok(lingxi, "create_event", {"title": "周会", "start": "每周一早上9点"})["event"]
    clash = ok(lingxi, "create_event", {"title": "面试", "start": "2026-12-07T09:30"})
    assert clash["overlaps"] == [{"id": weekly["id"], "title": "周会", "starts_at": "2026-12-07T09:00:00+08:00"}]


def test_event_ending_before_it_starts_is_an_error(lingxi):
    result, payload = call(lingxi, "create_event", {"title": "开会", "start": "明天下午三点", "end": "明天下午两点"})
    assert result.ok is False
    assert "end after it starts" in payload["error"]
    assert count(lingxi, Event) == 0


def test_event_with_a_past_start_asks_the_user(lingxi):
    _, payload = call(lingxi, "create_event", {"title": "开会", "start": "今天早上8点"})
    assert payload["ok"] is False and "已经过去" in payload["ask_user"]
    assert count(lingxi, Event) == 0


def test_recurring_event_stores_its_rule(lingxi):
    event = ok(lingxi, "create_event", {"title": "周会", "start": "每周一早上9点"})["event"]
    assert (event["starts_at"], event["rrule"]) == ("2026-11-23T09:00:00+08:00", "FREQ=WEEKLY;BYDAY=MO")
    with lingxi.db.session() as session:
        row = session.get(Event, event["id"])
        assert row.rrule == "FREQ=WEEKLY;BYDAY=MO"
        assert row.starts_at == datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)


def test_all_day_event_from_a_bare_date(lingxi):
    event = ok(lingxi, "create_event", {"title": "妈妈生日", "start": "12月3日"})["event"]
    assert event["all_day"] is True and event["starts_at"] == "2026-12-03T00:00:00+08:00"


def test_list_events_default_range_expands_recurrences_in_order(lingxi):
    weekly = ok(lingxi, "create_event", {"title": "健身", "start": "every Monday, Wednesday and Friday at 9am"})["event"]
    one_off = ok(lingxi, "create_event", {"title": "牙医", "start": "后天下午三点"})["event"]
    ok(lingxi, "create_event", {"title": "下个月出差", "start": "2026-12-10T09:00"})  # outside the week
    payload = ok(lingxi, "list_events", {})
    assert (payload["from"], payload["to"]) == ("2026-11-22T10:00:00+08:00", "2026-11-29T10:00:00+08:00")
    got = [(e["id"], e["occurrence_start"]) for e in payload["events"]]
    assert got == [
        (weekly["id"], "2026-11-23T09:00:00+08:00"),
        (one_off["id"], "2026-11-24T15:00:00+08:00"),
        (weekly["id"], "2026-11-25T09:00:00+08:00"),
        (weekly["id"], "2026-11-27T09:00:00+08:00"),
    ]
    assert payload["events"][0]["occurrence_end"] == "2026-11-23T10:00:00+08:00"


def test_list_events_from_today_includes_this_mornings_events(lingxi):
    with lingxi.db.session() as session:  # an event earlier today: the tools refuse past times, the service doesn't
        events.create(session=session, title="早餐会", starts_at=datetime(2026, 11, 22, 8, 0, tzinfo=SHANGHAI),
                      tz="Asia/Shanghai")
    later = ok(lingxi, "create_event", {"title": "晚饭", "start": "今天晚上7点"})["event"]
    assert later["starts_at"] == "2026-11-22T19:00:00+08:00"
    payload = ok(lingxi, "list_events", {"start": "今天"})
    assert (payload["from"], payload["to"]) == ("2026-11-22T00:00:00+08:00", "2026-11-29T00:00:00+08:00")
    assert [(e["title"], e["occurrence_start"]) for e in payload["events"]] == [
        ("早餐会", "2026-11-22T08:00:00+08:00"),
        ("晚饭", "2026-11-22T19:00:00+08:00"),
    ]
    # "今天" to "今天" is the whole day.
    payload = ok(lingxi, "list_events", {"start": "今天", "end": "今天"})
    assert (payload["from"], payload["to"]) == ("2026-11-22T00:00:00+08:00", "2026-11-23T00:00:00+08:00")
    assert len(payload["events"]) == 2
    # A range may begin on a day that has passed.
    payload = ok(lingxi, "list_events", {"start": "这周一"})
    assert payload["from"] == "2026-11-16T00:00:00+08:00"
    assert [e["title"] for e in payload["events"]] == ["早餐会", "晚饭"]


def test_list_events_with_an_ambiguous_start_asks(lingxi):
    _, payload = call(lingxi, "list_events", {"start": "三点"})
    assert payload["ok"] is False and payload["ask_user"]


def test_moving_an_event_moves_its_reminder_and_deleting_cancels_it(lingxi):
    event = ok(lingxi, "create_event", {"title": "和王总开会", "start": "明天下午三点"})["event"]
    reminder = ok(lingxi, "create_reminder", {"text": "准备开会材料", "event_id": event["id"], "lead_minutes": 30})["reminder"]
    assert (reminder["due_at"], reminder["event_id"], reminder["lead_minutes"]) == (
        "2026-11-23T14:30:00+08:00", event["id"], 30)

    moved = ok(lingxi, "update_event", {"event_id": event["id"], "start": "明天下午四点"})
    assert moved["event"]["starts_at"] == "2026-11-23T16:00:00+08:00"
    row = stored(lingxi, reminder["id"])
    assert row.due_at == datetime(2026, 11, 23, 15, 30, tzinfo=SHANGHAI)
    assert row.status == "scheduled"

    shown = ok(lingxi, "list_reminders", {})["reminders"]
    assert [(r["id"], r["due_at"]) for r in shown] == [(reminder["id"], "2026-11-23T15:30:00+08:00")]

    deleted = ok(lingxi, "delete_event", {"event_id": event["id"]})
    assert deleted == {"ok": True, "deleted": event["id"], "title": "和王总开会", "reminders_cancelled": 1}
    assert stored(lingxi, reminder["id"]).status == "cancelled"
    assert count(lingxi, Event) == 0
    assert ok(lingxi, "list_events", {})["events"] == []


def test_update_event_keeps_its_length_and_changes_only_given_fields(lingxi):
    event = ok(lingxi, "create_event", {"title": "培训", "start": "明天下午两点", "end": "明天下午四点",
                                        "notes": "带电脑"})["event"]
    moved = ok(lingxi, "update_event", {"event_id": event["id"], "start": "后天上午十点", "location": "B座"})["event"]
    assert (moved["starts_at"], moved["ends_at"]) == ("2026-11-24T10:00:00+08:00", "2026-11-24T12:00:00+08:00")
    assert (moved["title"], moved["location"], moved["notes"]) == ("培训", "B座", "带电脑")


def test_moving_an_event_onto_another_warns(lingxi):
    first = ok(lingxi, "create_event", {"title": "开会", "start": "明天下午三点"})["event"]
    second = ok(lingxi, "create_event", {"title": "复盘", "start": "明天上午十点"})["event"]
    moved = ok(lingxi, "update_event", {"event_id": second["id"], "start": "明天下午三点"})
    assert [o["id"] for o in moved["overlaps"]] == [first["id"]]


def test_delete_unknown_event_is_an_error_result(lingxi):
    _, payload = call(lingxi, "delete_event", {"event_id": "nope"})
    assert payload == {"ok": False, "error": "no event with id nope"}


def test_reminder_for_unknown_event_is_an_error(lingxi):
    result, payload = call(lingxi, "create_reminder", {"text": "x", "event_id": "nope", "lead_minutes": 5})
    assert result.ok is False and "no event with id nope" in payload["error"]
    assert count(lingxi, Reminder) == 0


def test_update_event_start_replaces_the_recurrence_and_other_fields_keep_it(lingxi):
    eid = ok(lingxi, "create_event", {"title": "周会", "start": "每周一早上9点"})["event"]["id"]
    renamed = ok(lingxi, "update_event", {"event_id": eid, "title": "组会"})["event"]
    assert (renamed["title"], renamed["rrule"], renamed["starts_at"]) == ("组会", "FREQ=WEEKLY;BYDAY=MO",
                                                                          "2026-11-23T09:00:00+08:00")
    moved = ok(lingxi, "update_event", {"event_id": eid, "start": "每周三早上10点"})["event"]
    assert (moved["rrule"], moved["starts_at"]) == ("FREQ=WEEKLY;BYDAY=WE", "2026-11-25T10:00:00+08:00")
    once = ok(lingxi, "update_event", {"event_id": eid, "start": "明天下午三点"})["event"]
    assert (once.get("rrule"), once["starts_at"]) == (None, "2026-11-23T15:00:00+08:00")
    assert len(ok(lingxi, "list_events", {"start": "今天", "end": "2026-12-31"})["events"]) == 1
