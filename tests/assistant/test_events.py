"""The calendar service: validation, agenda expansion across DST, overlaps, linked reminders, iCalendar export."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar
from sqlalchemy import func, select

from assistant import events, reminders
from assistant.models import Event, Reminder
from assistant.reminders import ScheduleError

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=SHANGHAI)  # a Sunday
MONDAY_9 = datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)


def add(lingxi, title="周会", starts_at=MONDAY_9, tz="Asia/Shanghai", **kwargs) -> str:
    with lingxi.db.session() as session:
        event, _ = events.create(session=session, title=title, starts_at=starts_at, tz=tz, **kwargs)
        return event.id


def agenda(lingxi, start, end) -> list[dict]:
    with lingxi.db.session() as session:
        return events.agenda(session=session, start=start, end=end)


def overlaps(lingxi, start, end, exclude_id=None) -> list[tuple[str, datetime]]:
    with lingxi.db.session() as session:
        return [(e.id, s) for e, s in events.overlapping(session=session, start=start, end=end, exclude_id=exclude_id)]


def count(lingxi, model=Event) -> int:
    with lingxi.db.session() as session:
        return session.scalar(select(func.count()).select_from(model))


# --------------------------------------------------------------------------- create: validation


@pytest.mark.parametrize("kwargs,message", [
    ({"title": "  "}, "an event needs a title"),
    ({"title": "会" * 201}, "the title is too long (at most 200 characters)"),
    ({"tz": "Mars/Olympus_Mons"}, "unknown time zone 'Mars/Olympus_Mons'"),
    ({"ends_at": MONDAY_9}, "the event must end after it starts"),
    ({"ends_at": MONDAY_9 - timedelta(minutes=1)}, "the event must end after it starts"),
    ({"rrule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"}, "invalid recurrence: rule never occurs"),
    ({"rrule": "FREQ=MINUTELY"}, "invalid recurrence: rules more frequent than once every 5 minutes"),
    ({"rrule": "FREQ=WEEKLY;BYDAY=XX"}, "invalid recurrence: bad BYDAY value 'XX'"),
])
def test_bad_event_raises_and_writes_nothing(lingxi, kwargs, message):
    with pytest.raises(ScheduleError) as caught:
        add(lingxi, **kwargs)
    assert message in str(caught.value)
    assert count(lingxi) == 0


def test_create_stores_and_shows_local_times(lingxi):
    eid = add(lingxi, title="  和王总开会 ", ends_at=MONDAY_9 + timedelta(minutes=90), location="三楼", notes="带合同",
              rrule="freq=weekly;byday=mo")
    with lingxi.db.session() as session:
        shown = events.as_dict(events.get(eid, session=session))
        with pytest.raises(ScheduleError, match="no event with id nope"):
            events.get("nope", session=session)
    assert shown == {
        "id": eid, "title": "和王总开会", "starts_at": "2026-11-23T09:00:00+08:00", "ends_at": "2026-11-23T10:30:00+08:00",
        "all_day": False, "location": "三楼", "notes": "带合同", "rrule": "FREQ=WEEKLY;BYDAY=MO", "timezone": "Asia/Shanghai",
    }
    assert list(shown)[:2] == ["title", "id"]  # the name before the id, for a causal model picking a row


def test_naive_start_is_wall_time_in_the_events_zone(lingxi):
    eid = add(lingxi, starts_at=datetime(2026, 11, 23, 9, 0), tz="Europe/Berlin")
    with lingxi.db.session() as session:
        event = session.get(Event, eid)
        assert event.starts_at == datetime(2026, 11, 23, 9, 0, tzinfo=BERLIN)
        assert events.as_dict(event)["starts_at"] == "2026-11-23T09:00:00+01:00"


# --------------------------------------------------------------------------- agenda


def test_weekly_event_keeps_9am_local_across_the_autumn_dst_change(lingxi):
    # Europe/Berlin falls back on Sunday 2026-10-25.
    eid = add(lingxi, title="Jour fixe", starts_at=datetime(2026, 10, 12, 9, 0, tzinfo=BERLIN), tz="Europe/Berlin",
              rrule="FREQ=WEEKLY;BYDAY=MO")
    items = agenda(lingxi, datetime(2026, 10, 10, tzinfo=BERLIN), datetime(2026, 11, 3, tzinfo=BERLIN))
    assert [i["id"] for i in items] == [eid] * 4
    assert [i["occurrence_start"] for i in items] == [
        "2026-10-12T09:00:00+02:00", "2026-10-19T09:00:00+02:00", "2026-10-26T09:00:00+01:00", "2026-11-02T09:00:00+01:00",
    ]
    assert [datetime.fromisoformat(i["occurrence_start"]).astimezone(timezone.utc).hour for i in items] == [7, 7, 8, 8]
    assert items[2]["occurrence_end"] == "2026-10-26T10:00:00+01:00"


def test_weekly_event_keeps_9am_local_across_the_spring_dst_change(lingxi):
    # Europe/Berlin springs forward on Sunday 2026-03-29; ask in Shanghai time, get Berlin wall times.
    add(lingxi, starts_at=datetime(2026, 3, 20, 9, 0, tzinfo=BERLIN), tz="Europe/Berlin", rrule="FREQ=WEEKLY;BYDAY=FR")
    items = agenda(lingxi, datetime(2026, 3, 20, 0, 0, tzinfo=SHANGHAI), datetime(2026, 4, 4, 0, 0, tzinfo=SHANGHAI))
    assert [i["occurrence_start"] for i in items] == [
        "2026-03-20T09:00:00+01:00", "2026-03-27T09:00:00+01:00", "2026-04-03T09:00:00+02:00",
    ]


def test_agenda_is_sorted_and_includes_occurrences_already_under_way(lingxi):
    long_one = add(lingxi, title="培训", starts_at=MONDAY_9, ends_at=MONDAY_9 + timedelta(hours=3))
    daily = add(lingxi, title="站会", starts_at=datetime(2026, 11, 20, 9, 30, tzinfo=SHANGHAI), rrule="FREQ=DAILY")
    lunch = add(lingxi, title="午饭", starts_at=datetime(2026, 11, 23, 12, 0, tzinfo=SHANGHAI))
    add(lingxi, title="下周", starts_at=datetime(2026, 11, 30, 9, 0, tzinfo=SHANGHAI))
    start = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)
    items = agenda(lingxi, start, start + timedelta(days=1))
    assert [(i["id"], i["occurrence_start"]) for i in items] == [
        (long_one, "2026-11-23T09:00:00+08:00"),  # 09:00-12:00 is still going at 10:00
        (daily, "2026-11-23T09:30:00+08:00"),  # 09:30-10:30 too
        (lunch, "2026-11-23T12:00:00+08:00"),
        (daily, "2026-11-24T09:30:00+08:00"),
    ]
    assert items[0]["occurrence_end"] == "2026-11-23T12:00:00+08:00"


def test_all_day_event_fills_its_day(lingxi):
    eid = add(lingxi, title="妈妈生日", starts_at=datetime(2026, 12, 3, tzinfo=SHANGHAI), all_day=True)
    items = agenda(lingxi, datetime(2026, 12, 3, 23, 0, tzinfo=SHANGHAI), datetime(2026, 12, 4, 1, 0, tzinfo=SHANGHAI))
    assert [(i["id"], i["occurrence_end"]) for i in items] == [(eid, "2026-12-04T00:00:00+08:00")]
    assert agenda(lingxi, datetime(2026, 12, 4, tzinfo=SHANGHAI), datetime(2026, 12, 5, tzinfo=SHANGHAI)) == []


def test_agenda_range_must_be_forward(lingxi):
    with pytest.raises(ScheduleError, match="end of the range must be after its start"):
        agenda(lingxi, NOW, NOW)


# --------------------------------------------------------------------------- overlaps


def test_overlapping_finds_an_occurrence_of_a_recurring_event(lingxi):
    weekly = add(lingxi, rrule="FREQ=WEEKLY;BYDAY=MO")  # Mondays 09:00-10:00 from 2026-11-23
    dec7 = datetime(2026, 12, 7, 9, 0, tzinfo=SHANGHAI)
    assert overlaps(lingxi, dec7 + timedelta(minutes=30), dec7 + timedelta(minutes=90)) == [(weekly, dec7)]
    assert overlaps(lingxi, dec7 - timedelta(hours=1), dec7 + timedelta(minutes=1)) == [(weekly, dec7)]
    assert overlaps(lingxi, dec7 + timedelta(hours=1), dec7 + timedelta(hours=2)) == []  # back to back
    assert overlaps(lingxi, dec7 - timedelta(hours=1), dec7) == []
    assert overlaps(lingxi, dec7 + timedelta(days=1), dec7 + timedelta(days=1, hours=1)) == []  # a Tuesday
    assert overlaps(lingxi, dec7, dec7 + timedelta(hours=1), exclude_id=weekly) == []
    # Years later the rule still clashes.
    far = datetime(2031, 11, 24, 9, 0, tzinfo=SHANGHAI)  # a Monday
    assert overlaps(lingxi, far, far + timedelta(minutes=15)) == [(weekly, far)]


def test_create_reports_the_events_it_overlaps(lingxi):
    long_one = add(lingxi, title="展会", starts_at=MONDAY_9, ends_at=MONDAY_9 + timedelta(days=3))
    with lingxi.db.session() as session:
        event, clashes = events.create(session=session, title="拜访客户", tz="Asia/Shanghai",
                                       starts_at=datetime(2026, 11, 25, 14, 0, tzinfo=SHANGHAI))
        assert [(e.id, s) for e, s in clashes] == [(long_one, MONDAY_9)]
        _, clashes = events.create(session=session, title="晚饭", tz="Asia/Shanghai",
                                   starts_at=datetime(2026, 11, 26, 18, 0, tzinfo=SHANGHAI))
        assert clashes == []
    assert count(lingxi) == 3


# --------------------------------------------------------------------------- change and delete


def linked_reminder(lingxi, event_id, lead_minutes, now=NOW) -> str:
    with lingxi.db.session() as session:
        return reminders.create(session=session, settings=lingxi.settings, text="准备", event_id=event_id,
                                lead_minutes=lead_minutes, now=now).id


def load_reminder(lingxi, rid) -> Reminder:
    with lingxi.db.session() as session:
        reminder = session.get(Reminder, rid)
        session.expunge(reminder)
        return reminder


def test_moving_keeps_the_length_and_the_reminders_follow(lingxi):
    eid = add(lingxi, ends_at=MONDAY_9 + timedelta(minutes=45))
    rid = linked_reminder(lingxi, eid, 30)
    assert load_reminder(lingxi, rid).due_at == datetime(2026, 11, 23, 8, 30, tzinfo=SHANGHAI)
    with lingxi.db.session() as session:
        event, clashes = events.change(eid, session=session, now=NOW,
                                       starts_at=datetime(2026, 11, 24, 14, 0, tzinfo=SHANGHAI), location="B座")
        shown = events.as_dict(event)
    assert (shown["starts_at"], shown["ends_at"], shown["location"], shown["title"]) == (
        "2026-11-24T14:00:00+08:00", "2026-11-24T14:45:00+08:00", "B座", "周会")
    assert clashes == []
    reminder = load_reminder(lingxi, rid)
    assert reminder.due_at == datetime(2026, 11, 24, 13, 30, tzinfo=SHANGHAI) and reminder.status == "scheduled"


def test_reminder_follows_an_event_that_becomes_recurring(lingxi):
    eid = add(lingxi)
    rid = linked_reminder(lingxi, eid, 10)
    with lingxi.db.session() as session:
        events.change(eid, session=session, now=NOW, rrule="FREQ=WEEKLY;BYDAY=MO,WE")
    reminder = load_reminder(lingxi, rid)
    assert (reminder.rrule, reminder.status) == ("FREQ=WEEKLY;BYDAY=MO,WE", "scheduled")
    assert reminder.due_at == datetime(2026, 11, 23, 8, 50, tzinfo=SHANGHAI)
    # After Monday's reminder the next one is Wednesday's.
    lingxi.firer.fire_due(datetime(2026, 11, 23, 8, 50, tzinfo=SHANGHAI))
    assert load_reminder(lingxi, rid).due_at == datetime(2026, 11, 25, 8, 50, tzinfo=SHANGHAI)


def test_moving_an_event_so_its_reminder_time_has_passed_cancels_the_reminder(lingxi):
    eid = add(lingxi, starts_at=NOW + timedelta(hours=2))
    rid = linked_reminder(lingxi, eid, 60)
    with lingxi.db.session() as session:
        events.change(eid, session=session, now=NOW, starts_at=NOW + timedelta(minutes=20))
    reminder = load_reminder(lingxi, rid)
    assert reminder.status == "cancelled"
    assert reminder.last_error == "the event moved so that this reminder's time has passed"


def test_bad_change_changes_nothing(lingxi):
    eid = add(lingxi, ends_at=MONDAY_9 + timedelta(hours=1))
    with pytest.raises(ScheduleError, match="end after it starts"):
        with lingxi.db.session() as session:
            events.change(eid, session=session, now=NOW, title="新标题", ends_at=MONDAY_9 - timedelta(hours=1))
    with pytest.raises(ScheduleError, match="no event with id nope"):
        with lingxi.db.session() as session:
            events.change("nope", session=session, now=NOW, title="x")
    with lingxi.db.session() as session:
        shown = events.as_dict(events.get(eid, session=session))
    assert (shown["title"], shown["ends_at"]) == ("周会", "2026-11-23T10:00:00+08:00")


def test_delete_cancels_pending_reminders(lingxi):
    eid = add(lingxi)
    other = add(lingxi, title="别的", starts_at=MONDAY_9 + timedelta(days=1))
    first, second = linked_reminder(lingxi, eid, 0), linked_reminder(lingxi, eid, 15)
    untouched = linked_reminder(lingxi, other, 5)
    with lingxi.db.session() as session:
        assert events.delete(eid, session=session) == 2
    assert [load_reminder(lingxi, r).status for r in (first, second, untouched)] == ["cancelled", "cancelled", "scheduled"]
    assert count(lingxi) == 1
    with pytest.raises(ScheduleError, match="no event with id"):
        with lingxi.db.session() as session:
            events.delete(eid, session=session)


# --------------------------------------------------------------------------- iCalendar


def export(lingxi) -> Calendar:
    with lingxi.db.session() as session:
        rows = list(session.scalars(select(Event).order_by(Event.starts_at)))
        body = events.to_ics(rows, now=NOW)
    assert isinstance(body, bytes)
    return Calendar.from_ical(body)


def seed_calendar(lingxi) -> tuple[str, str, str]:
    meeting = add(lingxi, title="和王总开会", starts_at=datetime(2026, 11, 23, 15, 0, tzinfo=SHANGHAI),
                  ends_at=datetime(2026, 11, 23, 16, 30, tzinfo=SHANGHAI), location="三楼会议室", notes="带合同")
    weekly = add(lingxi, title="Jour fixe 周会", starts_at=datetime(2026, 11, 23, 9, 0, tzinfo=BERLIN), tz="Europe/Berlin",
                 rrule="FREQ=WEEKLY;BYDAY=MO")
    birthday = add(lingxi, title="妈妈生日", starts_at=datetime(2026, 12, 3, tzinfo=SHANGHAI), all_day=True)
    return meeting, weekly, birthday


def test_ics_export_parses_with_zones_rules_and_dates(lingxi):
    meeting, weekly, birthday = seed_calendar(lingxi)
    cal = export(lingxi)
    assert str(cal["version"]) == "2.0"
    found = {str(v["uid"]): v for v in cal.walk("VEVENT")}
    assert set(found) == {f"{meeting}@lingxi", f"{weekly}@lingxi", f"{birthday}@lingxi"}

    v = found[f"{meeting}@lingxi"]
    assert str(v["summary"]) == "和王总开会"
    assert str(v["location"]) == "三楼会议室" and str(v["description"]) == "带合同"
    assert v["dtstart"].params["TZID"] == "Asia/Shanghai"
    assert v["dtstart"].dt == datetime(2026, 11, 23, 15, 0, tzinfo=SHANGHAI)
    assert v["dtend"].dt == datetime(2026, 11, 23, 16, 30, tzinfo=SHANGHAI)
    assert "rrule" not in v
    assert v["dtstamp"].dt == NOW.astimezone(timezone.utc)

    v = found[f"{weekly}@lingxi"]
    assert str(v["summary"]) == "Jour fixe 周会"
    assert v["dtstart"].params["TZID"] == "Europe/Berlin"
    assert v["dtstart"].dt.replace(tzinfo=None) == datetime(2026, 11, 23, 9, 0)  # wall time in its own zone
    assert v["dtend"].dt.replace(tzinfo=None) == datetime(2026, 11, 23, 10, 0)
    assert v["rrule"].to_ical() == b"FREQ=WEEKLY;BYDAY=MO"

    v = found[f"{birthday}@lingxi"]
    assert str(v["summary"]) == "妈妈生日"
    assert v["dtstart"].params.get("VALUE") == "DATE"
    assert type(v["dtstart"].dt) is date and v["dtstart"].dt == date(2026, 12, 3)
    assert type(v["dtend"].dt) is date and v["dtend"].dt == date(2026, 12, 4)


def test_ics_export_is_utf8_text(lingxi):
    seed_calendar(lingxi)
    with lingxi.db.session() as session:
        body = events.to_ics(list(session.scalars(select(Event))), now=NOW)
    text = body.decode("utf-8")
    assert text.startswith("BEGIN:VCALENDAR") and text.rstrip().endswith("END:VCALENDAR")
    assert "SUMMARY:和王总开会" in text and "RRULE:FREQ=WEEKLY;BYDAY=MO" in text
    assert "DTSTART;VALUE=DATE:20261203" in text
    assert "DTSTART;TZID=Europe/Berlin:20261123T090000" in text
    assert events.to_ics([], now=NOW).decode().count("BEGIN:VEVENT") == 0


def test_ics_export_defines_every_zone_it_uses(lingxi):
    """RFC 5545 3.2.19: a VTIMEZONE for each TZID used (regression)."""
    seed_calendar(lingxi)
    cal = export(lingxi)
    assert {str(tz["tzid"]) for tz in cal.walk("VTIMEZONE")} == {"Asia/Shanghai", "Europe/Berlin"}
