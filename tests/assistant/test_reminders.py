"""The reminder service: validation that writes nothing, changes, retry, and the in-app inbox."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from assistant import events, reminders
from assistant.models import Reminder
from assistant.reminders import ScheduleError
from tests.fakes.receivers import Receiver

SHANGHAI = ZoneInfo("Asia/Shanghai")
LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=SHANGHAI)  # a Sunday
TOMORROW_3PM = datetime(2026, 11, 23, 15, 0, tzinfo=SHANGHAI)
REPO = Path(__file__).resolve().parents[2]


def make(lingxi, settings=None, now=NOW, **kwargs) -> str:
    kwargs.setdefault("text", "给王总回电话")
    kwargs.setdefault("due_at", TOMORROW_3PM)
    with lingxi.db.session() as session:
        return reminders.create(session=session, settings=settings or lingxi.settings, now=now, **kwargs).id


def load(lingxi, rid) -> Reminder:
    with lingxi.db.session() as session:
        reminder = session.get(Reminder, rid)
        session.expunge(reminder)
        return reminder


def count(lingxi) -> int:
    with lingxi.db.session() as session:
        return session.scalar(select(func.count()).select_from(Reminder))


# --------------------------------------------------------------------------- create: validation


@pytest.mark.parametrize("kwargs,message", [
    ({"text": ""}, "a reminder needs some text"),
    ({"text": "   \n "}, "a reminder needs some text"),
    ({"text": "长" * 2001}, "the reminder text is too long (2001 characters, at most 2000)"),
    ({"tz": "Mars/Olympus_Mons"}, "unknown time zone 'Mars/Olympus_Mons'; use an IANA name such as Asia/Shanghai"),
    ({"rrule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"}, "invalid recurrence: rule never occurs"),
    ({"rrule": "FREQ=SECONDLY"}, "invalid recurrence: rules more frequent than once every 5 minutes"),
    ({"rrule": "FREQ=DAILY;COUNT=2", "due_at": NOW - timedelta(days=10)}, "the recurrence has no occurrence after now"),
    ({"channels": ["webhook"], "webhook_url": "ftp://hooks.example.com/x"}, "webhook URL must be http(s): got scheme 'ftp'"),
    ({"channels": ["webhook"]}, "the webhook channel needs a URL (per reminder, or LINGXI_WEBHOOK_URL)"),
    ({"channels": ["email"]}, "the email channel needs an address (per reminder, or LINGXI_NOTIFY_EMAIL)"),
    ({"channels": ["email"], "email_to": "boss@example.com\nBcc: spy@example.com"}, "is not an e-mail address"),
    ({"channels": ["email"], "email_to": "not-an-address"}, "'not-an-address' is not an e-mail address"),
    ({"channels": ["sms"]}, "unknown channel(s) sms; choose from inapp, webhook, email"),
    ({"due_at": NOW - timedelta(minutes=1)}, "is in the past; ask the user for a future time"),
    ({"due_at": NOW}, "is in the past"),
    ({"due_at": None}, "a reminder needs a time"),
    ({"lead_minutes": -5}, "lead time must be between 0 minutes and 30 days"),
    ({"event_id": "nope"}, "no event with id nope"),
])
def test_bad_input_raises_and_writes_nothing(lingxi, kwargs, message):
    with pytest.raises(ScheduleError) as caught:
        make(lingxi, **kwargs)
    assert message in str(caught.value)
    assert count(lingxi) == 0


def test_exactly_max_text_is_accepted(lingxi):
    rid = make(lingxi, text="长" * 2000)
    assert len(load(lingxi, rid).text) == 2000


def test_naive_due_at_is_read_in_the_reminders_zone(lingxi):
    rid = make(lingxi, due_at=datetime(2026, 11, 23, 9, 0), tz="Europe/London")
    reminder = load(lingxi, rid)
    assert reminder.due_at == datetime(2026, 11, 23, 9, 0, tzinfo=LONDON)
    assert reminders.as_dict(reminder)["due_at"] == "2026-11-23T09:00:00+00:00"


def test_recurring_reminder_starting_in_the_past_is_due_at_its_next_occurrence(lingxi):
    rid = make(lingxi, due_at=datetime(2026, 11, 20, 9, 0, tzinfo=SHANGHAI), rrule="freq=daily")
    reminder = load(lingxi, rid)
    assert reminder.rrule == "FREQ=DAILY"
    assert reminder.due_at == datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)  # today's 09:00 has passed at 10:00
    assert reminder.dtstart == datetime(2026, 11, 20, 9, 0, tzinfo=SHANGHAI)


def test_reminder_for_an_event_follows_its_start_zone_and_rule(lingxi):
    with lingxi.db.session() as session:
        event, _ = events.create(session=session, title="周会", starts_at=datetime(2026, 11, 23, 9, 0, tzinfo=LONDON),
                                 tz="Europe/London", rrule="FREQ=WEEKLY;BYDAY=MO")
        event_id = event.id
    rid = make(lingxi, due_at=None, event_id=event_id, lead_minutes=15)
    reminder = load(lingxi, rid)
    assert (reminder.timezone, reminder.rrule, reminder.lead_minutes) == ("Europe/London", "FREQ=WEEKLY;BYDAY=MO", 15)
    assert reminder.due_at == datetime(2026, 11, 23, 8, 45, tzinfo=LONDON)


def test_reminder_before_an_event_that_is_too_soon_is_refused(lingxi):
    with lingxi.db.session() as session:
        event, _ = events.create(session=session, title="电话", starts_at=NOW + timedelta(minutes=10), tz="Asia/Shanghai")
        event_id = event.id
    with pytest.raises(ScheduleError, match="in the past"):
        make(lingxi, due_at=None, event_id=event_id, lead_minutes=30)
    assert count(lingxi) == 0


@pytest.mark.parametrize("module", ["assistant.reminders", "assistant.events", "assistant.schedule_api"])
def test_service_modules_import_on_their_own(module):
    """Regression: assistant.reminders <-> tools <-> assistant.events was a circular import."""
    done = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-500:]


# --------------------------------------------------------------------------- change


def test_change_text_and_time(lingxi):
    rid = make(lingxi)
    with lingxi.db.session() as session:
        reminders.change(rid, session=session, settings=lingxi.settings, now=NOW, text="  给李总回电话 ",
                         due_at=datetime(2026, 11, 24, 8, 0, tzinfo=SHANGHAI))
    reminder = load(lingxi, rid)
    assert reminder.text == "给李总回电话"
    assert reminder.due_at == datetime(2026, 11, 24, 8, 0, tzinfo=SHANGHAI)
    assert reminder.status == "scheduled" and reminder.rrule is None


def test_change_only_zone_keeps_the_wall_time_of_a_recurring_reminder(lingxi):
    rid = make(lingxi, due_at=datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI), rrule="FREQ=DAILY")
    with lingxi.db.session() as session:
        reminders.change(rid, session=session, settings=lingxi.settings, now=NOW, tz="Europe/London")
    reminder = load(lingxi, rid)
    assert reminder.timezone == "Europe/London" and reminder.rrule == "FREQ=DAILY"
    assert reminder.due_at == datetime(2026, 11, 23, 9, 0, tzinfo=LONDON)  # 17:00 in Shanghai
    assert reminder.dtstart.astimezone(LONDON).hour == 9
    assert reminders.as_dict(reminder)["due_at"] == "2026-11-23T09:00:00+00:00"


def test_change_only_zone_of_a_one_off_keeps_its_wall_time(lingxi):
    rid = make(lingxi)  # 15:00 Shanghai tomorrow
    with lingxi.db.session() as session:
        reminders.change(rid, session=session, settings=lingxi.settings, now=NOW, tz="America/New_York")
    reminder = load(lingxi, rid)
    assert reminder.due_at == datetime(2026, 11, 23, 15, 0, tzinfo=ZoneInfo("America/New_York"))
    assert reminder.dtstart is None


def test_change_with_a_bad_zone_changes_nothing(lingxi):
    rid = make(lingxi)
    with pytest.raises(ScheduleError, match="unknown time zone"):
        with lingxi.db.session() as session:
            reminders.change(rid, session=session, settings=lingxi.settings, now=NOW, text="新的", tz="Nowhere/Land")
    reminder = load(lingxi, rid)
    assert (reminder.text, reminder.timezone) == ("给王总回电话", "Asia/Shanghai")


def test_change_to_a_past_time_is_refused(lingxi):
    rid = make(lingxi)
    with pytest.raises(ScheduleError, match="in the past"):
        with lingxi.db.session() as session:
            reminders.change(rid, session=session, settings=lingxi.settings, now=NOW, due_at=NOW - timedelta(hours=1))
    assert load(lingxi, rid).due_at == TOMORROW_3PM


def test_change_empty_text_is_refused(lingxi):
    rid = make(lingxi)
    with pytest.raises(ScheduleError, match="needs some text"):
        with lingxi.db.session() as session:
            reminders.change(rid, session=session, settings=lingxi.settings, now=NOW, text=" ")
    assert load(lingxi, rid).text == "给王总回电话"


def test_change_too_long_text_is_refused_like_create(lingxi):
    """Regression: change() used to truncate silently."""
    rid = make(lingxi)
    with pytest.raises(ScheduleError, match="too long"):
        with lingxi.db.session() as session:
            reminders.change(rid, session=session, settings=lingxi.settings, now=NOW, text="长" * 2001)
    assert load(lingxi, rid).text == "给王总回电话"


def test_change_reschedules_a_sent_reminder_and_refuses_a_cancelled_one(lingxi):
    rid = make(lingxi)
    assert lingxi.firer.fire_due(TOMORROW_3PM) == 1
    assert load(lingxi, rid).status == "sent"
    with lingxi.db.session() as session:
        reminders.change(rid, session=session, settings=lingxi.settings, now=TOMORROW_3PM,
                         due_at=TOMORROW_3PM + timedelta(days=1))
    reminder = load(lingxi, rid)
    assert reminder.status == "scheduled" and reminder.due_at == TOMORROW_3PM + timedelta(days=1)
    with lingxi.db.session() as session:
        reminders.cancel(rid, session=session)
    with pytest.raises(ScheduleError, match="cancelled"):
        with lingxi.db.session() as session:
            reminders.change(rid, session=session, settings=lingxi.settings, now=NOW, text="x")
    assert load(lingxi, rid).status == "cancelled"


def test_change_channels_validates_them(lingxi):
    rid = make(lingxi)
    with pytest.raises(ScheduleError, match="webhook URL must be http"):
        with lingxi.db.session() as session:
            reminders.change(rid, session=session, settings=lingxi.settings, now=NOW,
                             channels=["webhook"], webhook_url="ftp://x.example.com")
    assert load(lingxi, rid).channels == ["inapp"]
    with lingxi.db.session() as session:
        reminders.change(rid, session=session, settings=lingxi.settings, now=NOW,
                         channels=["inapp", "webhook", "inapp"], webhook_url="https://x.example.com/hook")
    reminder = load(lingxi, rid)
    assert reminder.channels == ["inapp", "webhook"] and reminder.webhook_url == "https://x.example.com/hook"


# --------------------------------------------------------------------------- get / list / cancel / retry


def test_get_and_list(lingxi):
    later = make(lingxi, text="后", due_at=TOMORROW_3PM + timedelta(days=2))
    sooner = make(lingxi, text="先")
    with lingxi.db.session() as session:
        reminders.cancel(later, session=session)
    with lingxi.db.session() as session:
        assert [r.id for r in reminders.list_all(session=session)] == [sooner, later]
        assert [r.id for r in reminders.list_all(session=session, status="cancelled")] == [later]
        assert [r.id for r in reminders.list_all(session=session, status="scheduled")] == [sooner]
        with pytest.raises(ScheduleError, match="unknown status 'done'"):
            reminders.list_all(session=session, status="done")
        with pytest.raises(ScheduleError, match="no reminder with id nope"):
            reminders.get("nope", session=session)


def test_as_dict_shows_local_time_and_fields(lingxi):
    rid = make(lingxi, rrule="FREQ=WEEKLY;BYDAY=MO", due_at=datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI))
    shown = reminders.as_dict(load(lingxi, rid))
    assert shown == {
        "id": rid, "text": "给王总回电话", "due_at": "2026-11-23T09:00:00+08:00", "timezone": "Asia/Shanghai",
        "rrule": "FREQ=WEEKLY;BYDAY=MO", "event_id": None, "lead_minutes": 0, "channels": ["inapp"],
        "webhook_url": None, "email_to": None, "status": "scheduled", "last_error": None, "last_fired_at": None,
        "fire_count": 0,
    }
    assert list(shown)[:2] == ["text", "id"]  # the name before the id, for a causal model picking a row


@pytest.mark.parametrize("fire", [False, True])
def test_retry_of_a_reminder_that_has_not_failed_raises(lingxi, fire):
    rid = make(lingxi)
    if fire:
        lingxi.firer.fire_due(TOMORROW_3PM)
    expected = "sent" if fire else "scheduled"
    with pytest.raises(ScheduleError, match="only a failed reminder can be retried"):
        with lingxi.db.session() as session:
            reminders.retry(rid, session=session)
    assert load(lingxi, rid).status == expected
    with pytest.raises(ScheduleError, match="no reminder with id nope"):
        with lingxi.db.session() as session:
            reminders.retry("nope", session=session)


def test_cancel_for_event_cancels_only_scheduled_ones(lingxi):
    with lingxi.db.session() as session:
        event, _ = events.create(session=session, title="会", starts_at=TOMORROW_3PM, tz="Asia/Shanghai")
        event_id = event.id
    pending = make(lingxi, due_at=None, event_id=event_id, lead_minutes=10)
    done = make(lingxi, due_at=None, event_id=event_id, lead_minutes=60)
    lingxi.firer.fire_due(TOMORROW_3PM - timedelta(minutes=60))
    with lingxi.db.session() as session:
        assert reminders.cancel_for_event(event_id, session=session) == 1
    assert (load(lingxi, pending).status, load(lingxi, done).status) == ("cancelled", "sent")


# --------------------------------------------------------------------------- the inbox


def test_inbox_unread_count_and_mark_read(lingxi):
    first = make(lingxi, text="第一条", due_at=NOW + timedelta(minutes=5))
    second = make(lingxi, text="第二条", due_at=NOW + timedelta(minutes=10))
    receiver = Receiver(200)
    hook = make(lingxi, text="只发webhook", due_at=NOW + timedelta(minutes=10), channels=["webhook"],
                webhook_url=receiver.url)
    with lingxi.db.session() as session:
        assert reminders.unread_count(session=session) == 0 and reminders.inbox(session=session) == []

    assert lingxi.firer.fire_due(NOW + timedelta(minutes=5)) == 1
    with lingxi.db.session() as session:
        items = reminders.inbox(session=session)
        assert [(n.reminder_id, n.text, n.late) for n in items] == [(first, "第一条", False)]
        assert reminders.unread_count(session=session) == 1
        first_note = items[0].id

    with receiver:
        assert lingxi.firer.fire_due(NOW + timedelta(minutes=12)) == 2  # the webhook-only one adds no inbox row
    assert len(receiver.requests) == 1 and load(lingxi, hook).status == "late"
    with lingxi.db.session() as session:
        items = reminders.inbox(session=session)
        assert [n.text for n in items] == ["第二条", "第一条"]  # newest first
        assert reminders.unread_count(session=session) == 2
        second_note = items[0].id
        assert [n.id for n in reminders.inbox(session=session, after_id=first_note)] == [second_note]
        shown = reminders.notification_dict(items[0])
        assert (shown["reminder_id"], shown["text"], shown["read"], shown["late"]) == (second, "第二条", False, True)
        assert datetime.fromisoformat(shown["due_at"]) == NOW + timedelta(minutes=10)

    with lingxi.db.session() as session:
        assert reminders.mark_read(session=session, ids=[first_note]) == 1
    with lingxi.db.session() as session:
        assert reminders.unread_count(session=session) == 1
        assert [n.id for n in reminders.inbox(session=session, unread_only=True)] == [second_note]
        assert reminders.notification_dict(reminders.inbox(session=session)[1])["read"] is True
        assert reminders.mark_read(session=session, ids=[first_note]) == 0  # already read
    with lingxi.db.session() as session:
        assert reminders.mark_read(session=session) == 1
    with lingxi.db.session() as session:
        assert reminders.unread_count(session=session) == 0
        assert reminders.inbox(session=session, unread_only=True) == []
        assert len(reminders.inbox(session=session)) == 2
        assert reminders.mark_read(session=session) == 0
