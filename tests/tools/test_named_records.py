"""Owner tools that act on an event or reminder the user names by its title or text
(``event`` / ``reminder`` instead of an id): the one record meant is changed, and
none is touched when the name is missing, unknown or shared by several."""

from __future__ import annotations

from datetime import datetime

from assistant import events
from assistant.models import Event
from tests.tools.test_schedule_tools import SHANGHAI, call, count, ok, stored


def test_delete_event_by_its_title_deletes_only_that_event(lingxi):
    keep = ok(lingxi, "create_event", {"title": "和王总开会", "start": "明天下午三点"})["event"]
    gone = ok(lingxi, "create_event", {"title": "理发", "start": "后天上午十点"})["event"]
    deleted = ok(lingxi, "delete_event", {"event": "理发"})
    assert (deleted["deleted"], deleted["title"]) == (gone["id"], "理发")
    assert [e["id"] for e in ok(lingxi, "list_events", {"end": "下周日"})["events"]] == [keep["id"]]


def test_update_event_by_a_differently_written_title(lingxi):
    event = ok(lingxi, "create_event", {"title": "Dentist appointment", "start": "tomorrow 3pm"})["event"]
    moved = ok(lingxi, "update_event", {"event": "dentist", "start": "tomorrow 4pm", "location": "Room 2"})["event"]
    assert (moved["id"], moved["starts_at"], moved["location"]) == (event["id"], "2026-11-23T16:00:00+08:00", "Room 2")
    renamed = ok(lingxi, "update_event", {"event": "“Dentist Appointment”", "title": "Dentist"})["event"]
    assert (renamed["id"], renamed["title"]) == (event["id"], "Dentist")


def test_a_title_shared_by_two_upcoming_events_asks_which_and_changes_nothing(lingxi):
    first = ok(lingxi, "create_event", {"title": "周会", "start": "明天上午十点"})["event"]
    second = ok(lingxi, "create_event", {"title": "周会", "start": "后天上午十点"})["event"]
    result, payload = call(lingxi, "delete_event", {"event": "周会"})
    assert payload["ok"] is False and "周会" in payload["ask_user"]
    assert [c["id"] for c in payload["candidates"]] == [first["id"], second["id"]]
    assert [c["at"] for c in payload["candidates"]] == [first["starts_at"], second["starts_at"]]
    assert "周会 Mon Nov 23, 10:00; 周会 Tue Nov 24, 10:00" in payload["ask_user"]  # as a person says them
    assert "周会 11月23日（周一）10:00；周会 11月24日（周二）10:00" in payload["ask_user"]
    assert count(lingxi, Event) == 2
    assert ok(lingxi, "delete_event", {"event_id": second["id"]})["deleted"] == second["id"]


def test_a_title_shared_with_a_past_event_means_the_upcoming_one(lingxi):
    with lingxi.db.session() as session:  # the tool refuses a past start, the calendar keeps past events
        events.create(session=session, title="体检", starts_at=datetime(2026, 11, 20, 9, tzinfo=SHANGHAI), tz="Asia/Shanghai")
    upcoming = ok(lingxi, "create_event", {"title": "体检", "start": "下周一上午九点"})["event"]
    assert ok(lingxi, "delete_event", {"event": "体检"})["deleted"] == upcoming["id"]


def test_an_unknown_or_missing_name_asks_the_user(lingxi):
    ok(lingxi, "create_event", {"title": "理发", "start": "明天下午三点"})
    _, unknown = call(lingxi, "update_event", {"event": "家长会", "start": "明天下午四点"})
    assert unknown["ok"] is False and "家长会" in unknown["ask_user"] and "candidates" not in unknown
    _, neither = call(lingxi, "delete_event", {})
    assert neither["ok"] is False and "哪个日程" in neither["ask_user"]
    assert count(lingxi, Event) == 1


def test_reminder_before_an_event_named_by_its_title(lingxi):
    event = ok(lingxi, "create_event", {"title": "和王总开会", "start": "明天下午三点"})["event"]
    reminder = ok(lingxi, "create_reminder", {"text": "准备材料", "event": "和王总开会", "lead_minutes": 30})["reminder"]
    assert (reminder["event_id"], reminder["due_at"]) == (event["id"], "2026-11-23T14:30:00+08:00")
    _, payload = call(lingxi, "create_reminder", {"text": "准备材料", "event": "董事会", "lead_minutes": 30})
    assert payload["ok"] is False and "董事会" in payload["ask_user"]


def test_update_and_cancel_a_reminder_by_its_text(lingxi):
    call_back = ok(lingxi, "create_reminder", {"text": "给王总回电话", "when": "明天下午三点"})["reminder"]
    other = ok(lingxi, "create_reminder", {"text": "Buy printer ink", "when": "tomorrow 9am"})["reminder"]
    moved = ok(lingxi, "update_reminder", {"reminder": "给王总回电话", "when": "明天下午四点"})["reminder"]
    assert (moved["id"], moved["due_at"]) == (call_back["id"], "2026-11-23T16:00:00+08:00")
    assert ok(lingxi, "cancel_reminder", {"reminder": "printer ink"})["reminder"]["id"] == other["id"]
    assert stored(lingxi, other["id"]).status == "cancelled"
    assert stored(lingxi, call_back["id"]).status == "scheduled"
    # A cancelled reminder is no longer one the user can mean.
    _, again = call(lingxi, "cancel_reminder", {"reminder": "Buy printer ink"})
    assert again["ok"] is False and "Buy printer ink" in again["ask_user"]
