"""The events, reminders and inbox REST routes over a real loopback server.

The API resolves natural-language times against the real clock, so expectations are
computed from ``datetime.now`` (before and after the request, in case midnight passes),
and explicit times are ISO-8601 a few days ahead. Firing is driven with
``lingxi.firer.fire_due(<a moment after the due time>)``.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from icalendar import Calendar
from sqlalchemy import func, select

from assistant.firing import Firer
from assistant.models import Event, Reminder
from assistant.web import create_app
from tests.fakes.receivers import Receiver
from tests.server import serve

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def api(lingxi):
    with serve(create_app(lingxi)) as base:
        with httpx.Client(base_url=base, timeout=30) as client:
            yield client


def count(lingxi, model=Reminder) -> int:
    with lingxi.db.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def day_after(days: int, zone=SHANGHAI) -> date:
    return datetime.now(zone).date() + timedelta(days=days)


def at(day: date, hour: int, minute: int = 0, zone=SHANGHAI) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=zone)


def wall(day: date, hour: int, minute: int = 0) -> str:
    """A naive ISO time: wall time in whatever zone the request names."""
    return f"{day.isoformat()}T{hour:02d}:{minute:02d}"


def error_code(response: httpx.Response) -> str:
    return response.json()["error"]["code"]


def new_reminder(api, **body) -> dict:
    body.setdefault("text", "给王总回电话")
    body.setdefault("when", wall(day_after(2), 9))
    response = api.post("/api/reminders", json=body)
    assert response.status_code == 201, response.text
    return response.json()


# --------------------------------------------------------------------------- reminders


def test_create_reminder_from_natural_language(api, lingxi):
    before = datetime.now(SHANGHAI).date()
    response = api.post("/api/reminders", json={"text": "给王总回电话", "when": "明天下午三点"})
    after = datetime.now(SHANGHAI).date()
    assert response.status_code == 201
    body = response.json()
    expected = {at(d + timedelta(days=1), 15).isoformat() for d in (before, after)}
    assert body["due_at"] in expected and body["due_at"].endswith("T15:00:00+08:00")
    assert (body["text"], body["status"], body["rrule"], body["channels"], body["timezone"]) == (
        "给王总回电话", "scheduled", None, ["inapp"], "Asia/Shanghai")
    with lingxi.db.session() as session:
        stored = session.get(Reminder, body["id"])
        assert stored.due_at == datetime.fromisoformat(body["due_at"])


def test_create_reminder_in_two_hours_and_recurring(api):
    body = new_reminder(api, when="in 2 hours")
    delta = datetime.fromisoformat(body["due_at"]) - datetime.now(SHANGHAI)
    assert timedelta(hours=2) - timedelta(seconds=30) < delta <= timedelta(hours=2)
    body = new_reminder(api, when="每月1号早上9点")
    assert body["rrule"] == "FREQ=MONTHLY;BYMONTHDAY=1"
    due = datetime.fromisoformat(body["due_at"])
    assert (due.day, due.hour, due.minute) == (1, 9, 0) and due > datetime.now(SHANGHAI)
    body = new_reminder(api, when=wall(day_after(3), 7, 15), rrule="FREQ=DAILY")
    assert (body["rrule"], body["due_at"]) == ("FREQ=DAILY", at(day_after(3), 7, 15).isoformat())


def test_create_reminder_in_its_own_zone(api):
    day = day_after(3, BERLIN)
    body = new_reminder(api, when=wall(day, 9), timezone="Europe/Berlin")
    assert body["timezone"] == "Europe/Berlin"
    assert datetime.fromisoformat(body["due_at"]) == at(day, 9, zone=BERLIN)


@pytest.mark.parametrize("body,code,fragment", [
    ({"when": "2月30日"}, "time_impossible", "2月30日不存在"),
    ({"when": "三点"}, "time_ambiguous", "下午3点"),
    ({"when": "yesterday 3pm"}, "time_past", "in the past"),
    ({"when": "whenever you like"}, "time_unparsed", ""),
    ({"when": "明天下午三点", "timezone": "Mars/Olympus_Mons"}, "invalid", "unknown time zone"),
    ({"when": "2030-01-01T09:00", "timezone": "Mars/Olympus_Mons"}, "invalid", "unknown time zone"),
    ({"when": "明天下午三点", "text": " "}, "invalid", "needs some text"),
    ({"when": None}, "invalid", "a reminder needs a time"),
    ({"when": "明天下午三点", "rrule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"}, "invalid", "never occurs"),
    ({"when": "明天下午三点", "channels": ["webhook"]}, "invalid", "LINGXI_WEBHOOK_URL"),
    ({"when": "明天下午三点", "channels": ["webhook"], "webhook_url": "ftp://x.example.com/h"}, "invalid", "http(s)"),
    ({"when": "明天下午三点", "channels": ["sms"]}, "bad_request", "channels"),
    ({"when": "明天下午三点", "event_id": "nope"}, "not_found", "no event with id nope"),
])
def test_bad_reminder_is_a_clear_error_and_stores_nothing(api, lingxi, body, code, fragment):
    body.setdefault("text", "给王总回电话")
    response = api.post("/api/reminders", json=body)
    expected_status = 404 if code == "not_found" else 400
    assert response.status_code == expected_status, response.text
    assert error_code(response) == code
    assert fragment in response.json()["error"]["message"]
    if code.startswith("time_"):
        assert code in {"time_impossible", "time_ambiguous", "time_past", "time_unparsed"}
    assert count(lingxi) == 0
    assert api.get("/api/reminders").json() == {"reminders": []}


def test_list_patch_and_delete_reminders(api):
    later = new_reminder(api, text="后", when=wall(day_after(4), 9))
    sooner = new_reminder(api, text="先", when=wall(day_after(2), 9))
    listed = api.get("/api/reminders").json()["reminders"]
    assert [(r["id"], r["text"]) for r in listed] == [(sooner["id"], "先"), (later["id"], "后")]

    response = api.patch(f"/api/reminders/{sooner['id']}", json={"text": "先打电话", "when": wall(day_after(5), 16, 30)})
    assert response.status_code == 200, response.text
    patched = response.json()
    assert (patched["text"], patched["due_at"], patched["status"]) == (
        "先打电话", at(day_after(5), 16, 30).isoformat(), "scheduled")
    assert [r["id"] for r in api.get("/api/reminders").json()["reminders"]] == [later["id"], sooner["id"]]

    response = api.patch(f"/api/reminders/{sooner['id']}", json={"when": "每周一早上9点"})
    assert response.json()["rrule"] == "FREQ=WEEKLY;BYDAY=MO"
    assert datetime.fromisoformat(response.json()["due_at"]).weekday() == 0

    bad = api.patch(f"/api/reminders/{later['id']}", json={"when": "2月30日", "text": "不该改"})
    assert bad.status_code == 400 and error_code(bad) == "time_impossible"
    bad = api.patch(f"/api/reminders/{later['id']}", json={"text": "不该改", "timezone": "Nowhere/Land"})
    assert bad.status_code == 400 and error_code(bad) == "invalid"
    assert api.get(f"/api/reminders/{later['id']}").json()["text"] == "后"

    response = api.delete(f"/api/reminders/{later['id']}")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert api.get(f"/api/reminders/{later['id']}").json()["status"] == "cancelled"
    statuses = {r["id"]: r["status"] for r in api.get("/api/reminders").json()["reminders"]}
    assert statuses == {later["id"]: "cancelled", sooner["id"]: "scheduled"}
    assert [r["id"] for r in api.get("/api/reminders", params={"status": "cancelled"}).json()["reminders"]] == [
        later["id"]]
    response = api.get("/api/reminders", params={"status": "done"})
    assert response.status_code == 400 and error_code(response) == "invalid"
    again = api.patch(f"/api/reminders/{later['id']}", json={"text": "复活"})
    assert again.status_code == 400 and "cancelled" in again.json()["error"]["message"]


def test_patch_only_timezone_keeps_the_wall_time(api):
    body = new_reminder(api, when=wall(day_after(3), 9), rrule="FREQ=DAILY")
    response = api.patch(f"/api/reminders/{body['id']}", json={"timezone": "Europe/London"})
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["timezone"] == "Europe/London" and patched["rrule"] == "FREQ=DAILY"
    assert patched["due_at"] == at(day_after(3), 9, zone=ZoneInfo("Europe/London")).isoformat()


def test_reminder_detail_shows_delivery_attempts(api, lingxi):
    body = new_reminder(api)
    detail = api.get(f"/api/reminders/{body['id']}").json()
    assert detail["attempts"] == [] and detail["fire_count"] == 0
    due = datetime.fromisoformat(body["due_at"])
    assert lingxi.firer.fire_due(due + timedelta(seconds=1)) == 1
    detail = api.get(f"/api/reminders/{body['id']}").json()
    assert (detail["status"], detail["fire_count"]) == ("sent", 1)
    assert len(detail["attempts"]) == 1
    attempt = detail["attempts"][0]
    assert (attempt["channel"], attempt["number"], attempt["ok"], attempt["late"]) == ("inapp", 1, True, False)
    assert datetime.fromisoformat(attempt["occurrence_at"]) == due
    assert datetime.fromisoformat(detail["last_fired_at"]) == due + timedelta(seconds=1)


def test_retry_only_a_failed_reminder(api, lingxi):
    body = new_reminder(api)
    response = api.post(f"/api/reminders/{body['id']}/retry")
    assert response.status_code == 400 and error_code(response) == "invalid"
    assert "only a failed reminder" in response.json()["error"]["message"]

    firer = Firer(settings=lingxi.settings.model_copy(update={"webhook_max_attempts": 1}), db=lingxi.db)
    with Receiver(500, 200) as rx:
        hook = new_reminder(api, channels=["webhook"], webhook_url=rx.url)
        due = datetime.fromisoformat(hook["due_at"])
        firer.fire_due(due)
        failed = api.get(f"/api/reminders/{hook['id']}").json()
        assert failed["status"] == "failed" and "HTTP 500" in failed["last_error"]
        assert [(a["channel"], a["ok"]) for a in failed["attempts"]] == [("webhook", False)]
        response = api.post(f"/api/reminders/{hook['id']}/retry")
        assert response.status_code == 200 and response.json()["status"] == "scheduled"
        firer.fire_due(due + timedelta(minutes=5))
    detail = api.get(f"/api/reminders/{hook['id']}").json()
    assert detail["status"] == "late" and detail["last_error"] is None
    assert [(a["channel"], a["ok"]) for a in detail["attempts"]] == [("webhook", False), ("webhook", True)]
    assert len(rx.requests) == 2


@pytest.mark.parametrize("method,path,body", [
    ("GET", "/api/reminders/nope", None),
    ("PATCH", "/api/reminders/nope", {"text": "x"}),
    ("DELETE", "/api/reminders/nope", None),
    ("POST", "/api/reminders/nope/retry", None),
    ("PATCH", "/api/events/nope", {"title": "x"}),
    ("DELETE", "/api/events/nope", None),
])
def test_unknown_ids_are_404(api, method, path, body):
    response = api.request(method, path, json=body)
    assert response.status_code == 404
    assert error_code(response) == "not_found" and "nope" in response.json()["error"]["message"]


# --------------------------------------------------------------------------- events


def test_event_create_agenda_patch_delete(api, lingxi):
    day = day_after(3)
    response = api.post("/api/events", json={"title": "和王总开会", "start": wall(day, 15), "end": wall(day, 16, 30),
                                             "location": "三楼"})
    assert response.status_code == 201, response.text
    meeting = response.json()
    assert (meeting["starts_at"], meeting["ends_at"], meeting["overlaps"]) == (
        at(day, 15).isoformat(), at(day, 16, 30).isoformat(), [])

    weekly = api.post("/api/events", json={"title": "周会", "start": "每周一早上9点"}).json()
    assert weekly["rrule"] == "FREQ=WEEKLY;BYDAY=MO"
    clash = api.post("/api/events", json={"title": "牙医", "start": wall(day, 16)})
    assert clash.status_code == 201 and clash.json()["overlaps"] == [{"id": meeting["id"], "title": "和王总开会"}]

    start, end = at(day, 0), at(day, 0) + timedelta(days=14)
    listed = api.get("/api/events", params={"start": start.isoformat(), "end": end.isoformat()}).json()["events"]
    mondays = [i for i in listed if i["id"] == weekly["id"]]
    assert len(mondays) == 2
    assert all(datetime.fromisoformat(i["occurrence_start"]).weekday() == 0 for i in mondays)
    assert all(i["occurrence_start"].endswith("T09:00:00+08:00") for i in mondays)
    assert [i["occurrence_start"] for i in listed] == sorted(i["occurrence_start"] for i in listed)
    assert [i["title"] for i in listed if i["id"] != weekly["id"]] == ["和王总开会", "牙医"]
    # Naive range bounds are read in the owner's zone.
    naive = api.get("/api/events", params={"start": wall(day, 15, 30), "end": wall(day, 15, 45)}).json()["events"]
    assert [i["title"] for i in naive] == ["和王总开会"]
    bad = api.get("/api/events", params={"start": "next week"})
    assert bad.status_code == 400 and error_code(bad) == "invalid"
    bad = api.get("/api/events", params={"start": end.isoformat(), "end": start.isoformat()})
    assert bad.status_code == 400 and error_code(bad) == "invalid"

    reminder = new_reminder(api, text="准备材料", when=None, event_id=meeting["id"], lead_minutes=30)
    assert reminder["due_at"] == at(day, 14, 30).isoformat()

    moved = api.patch(f"/api/events/{meeting['id']}", json={"start": wall(day + timedelta(days=1), 10), "title": "和王总签约"})
    assert moved.status_code == 200, moved.text
    moved = moved.json()
    assert (moved["title"], moved["starts_at"], moved["ends_at"], moved["location"]) == (
        "和王总签约", at(day + timedelta(days=1), 10).isoformat(), at(day + timedelta(days=1), 11, 30).isoformat(), "三楼")
    assert api.get(f"/api/reminders/{reminder['id']}").json()["due_at"] == at(day + timedelta(days=1), 9, 30).isoformat()
    bad = api.patch(f"/api/events/{meeting['id']}", json={"end": wall(day, 9)})
    assert bad.status_code == 400 and "end after it starts" in bad.json()["error"]["message"]

    response = api.delete(f"/api/events/{meeting['id']}")
    assert response.status_code == 200
    assert response.json() == {"deleted": meeting["id"], "reminders_cancelled": 1}
    assert api.get(f"/api/reminders/{reminder['id']}").json()["status"] == "cancelled"
    assert count(lingxi, Event) == 2


@pytest.mark.parametrize("body,code", [
    ({"title": "会", "start": "2月30日"}, "time_impossible"),
    ({"title": "会", "start": "今天早上0点"}, "time_past"),
    ({"title": "会", "start": "明天下午三点", "timezone": "Mars/Olympus_Mons"}, "invalid"),
    ({"title": " ", "start": "明天下午三点"}, "invalid"),
    ({"title": "会", "start": "明天下午三点", "end": "明天下午两点"}, "invalid"),
    ({"title": "会"}, "bad_request"),
])
def test_bad_event_is_refused_and_stores_nothing(api, lingxi, body, code):
    response = api.post("/api/events", json=body)
    assert response.status_code == 400, response.text
    assert error_code(response) == code
    assert count(lingxi, Event) == 0


def test_event_in_its_own_zone(api):
    day = day_after(4, BERLIN)
    created = api.post("/api/events", json={"title": "Jour fixe", "start": wall(day, 9), "timezone": "Europe/Berlin"})
    assert created.status_code == 201
    assert created.json()["starts_at"] == at(day, 9, zone=BERLIN).isoformat()
    assert created.json()["timezone"] == "Europe/Berlin"


def test_patching_an_event_reads_times_in_its_own_zone(api):
    """Regression: PATCH used to read times in the owner's zone (09:00 Shanghai = 02:00 Berlin)."""
    day = day_after(4, BERLIN)
    created = api.post("/api/events", json={"title": "Jour fixe", "start": wall(day, 9), "timezone": "Europe/Berlin"})
    moved = api.patch(f"/api/events/{created.json()['id']}", json={"start": wall(day + timedelta(days=1), 9)})
    assert moved.status_code == 200
    assert moved.json()["starts_at"] == at(day + timedelta(days=1), 9, zone=BERLIN).isoformat()


def test_ics_export_contains_the_events(api):
    day = day_after(3)
    meeting = api.post("/api/events", json={"title": "和王总开会", "start": wall(day, 15), "notes": "带合同"}).json()
    weekly = api.post("/api/events", json={"title": "周会", "start": "每周一早上9点"}).json()
    birthday = api.post("/api/events", json={"title": "妈妈生日", "start": (day + timedelta(days=2)).isoformat(),
                                              "all_day": True}).json()
    response = api.get("/api/events.ics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/calendar")
    assert "lingxi.ics" in response.headers["content-disposition"]
    cal = Calendar.from_ical(response.content)
    found = {str(v["uid"]): v for v in cal.walk("VEVENT")}
    assert set(found) == {f"{e['id']}@lingxi" for e in (meeting, weekly, birthday)}
    v = found[f"{meeting['id']}@lingxi"]
    assert str(v["summary"]) == "和王总开会" and str(v["description"]) == "带合同"
    assert v["dtstart"].params["TZID"] == "Asia/Shanghai" and v["dtstart"].dt == at(day, 15)
    assert v["dtend"].dt == at(day, 16)
    assert found[f"{weekly['id']}@lingxi"]["rrule"].to_ical() == b"FREQ=WEEKLY;BYDAY=MO"
    v = found[f"{birthday['id']}@lingxi"]
    assert str(v["summary"]) == "妈妈生日" and v["dtstart"].dt == day + timedelta(days=2)
    assert {str(tz["tzid"]) for tz in cal.walk("VTIMEZONE")} == {"Asia/Shanghai"}


# --------------------------------------------------------------------------- inbox


def test_inbox_after_firing_and_mark_read(api, lingxi):
    assert api.get("/api/inbox").json() == {"unread": 0, "notifications": []}
    first = new_reminder(api, text="第一条", when=wall(day_after(2), 9))
    second = new_reminder(api, text="第二条", when=wall(day_after(2), 10))
    lingxi.firer.fire_due(datetime.fromisoformat(first["due_at"]))
    lingxi.firer.fire_due(datetime.fromisoformat(second["due_at"]) + timedelta(minutes=5))

    inbox = api.get("/api/inbox").json()
    assert inbox["unread"] == 2
    notes = inbox["notifications"]
    assert [(n["reminder_id"], n["text"], n["late"], n["read"]) for n in notes] == [
        (second["id"], "第二条", True, False), (first["id"], "第一条", False, False)]
    assert datetime.fromisoformat(notes[1]["due_at"]) == datetime.fromisoformat(first["due_at"])
    newer = api.get("/api/inbox", params={"after_id": notes[1]["id"]}).json()["notifications"]
    assert [n["id"] for n in newer] == [notes[0]["id"]]

    response = api.post("/api/inbox/read", json={"ids": [notes[1]["id"]]})
    assert response.status_code == 200 and response.json() == {"marked": 1}
    inbox = api.get("/api/inbox").json()
    assert inbox["unread"] == 1
    assert {n["id"]: n["read"] for n in inbox["notifications"]} == {notes[0]["id"]: False, notes[1]["id"]: True}
    unread = api.get("/api/inbox", params={"unread": "true"}).json()
    assert [n["id"] for n in unread["notifications"]] == [notes[0]["id"]] and unread["unread"] == 1

    assert api.post("/api/inbox/read", json={}).json() == {"marked": 1}
    assert api.post("/api/inbox/read", json={}).json() == {"marked": 0}
    inbox = api.get("/api/inbox").json()
    assert inbox["unread"] == 0 and all(n["read"] for n in inbox["notifications"])
    bad = api.post("/api/inbox/read", json={"ids": ["x"]})
    assert bad.status_code == 400 and error_code(bad) == "bad_request"


def test_patching_a_reminder_reads_times_in_its_own_zone(api):
    """Regression: without a timezone in the body, `when` was read in the owner's zone."""
    day = day_after(4, ZoneInfo("Europe/London"))
    body = new_reminder(api, when=wall(day, 9), timezone="Europe/London")
    patched = api.patch(f"/api/reminders/{body['id']}", json={"when": wall(day + timedelta(days=1), 9)})
    assert patched.status_code == 200
    assert patched.json()["due_at"] == at(day + timedelta(days=1), 9, zone=ZoneInfo("Europe/London")).isoformat()
