"""Reminder firing with controlled clocks: once, late after downtime, recurrences, DST, channels, races."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from pydantic import SecretStr
from sqlalchemy import func, select

from assistant import reminders
from assistant.firing import Firer
from assistant.models import DeliveryAttempt, Notification, Reminder
from tests.fakes.receivers import Collector, Receiver, smtp_server
from tools.delivery import verify

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=SHANGHAI)


def make(lingxi, now=NOW, **kwargs):
    kwargs.setdefault("text", "给王总回电话")
    with lingxi.db.session() as session:
        return reminders.create(session=session, settings=lingxi.settings, now=now, **kwargs).id


def state(lingxi, rid):
    with lingxi.db.session() as session:
        reminder = session.get(Reminder, rid)
        notes = list(session.scalars(select(Notification).where(Notification.reminder_id == rid)))
        attempts = reminders.attempts(rid, session=session)
        return reminder, notes, attempts


def test_one_off_fires_once_at_its_time(lingxi):
    rid = make(lingxi, due_at=NOW + timedelta(minutes=5))
    assert lingxi.firer.fire_due(NOW + timedelta(minutes=4, seconds=59)) == 0
    assert lingxi.firer.fire_due(NOW + timedelta(minutes=5)) == 1
    assert lingxi.firer.fire_due(NOW + timedelta(minutes=6)) == 0
    reminder, notes, attempts = state(lingxi, rid)
    assert reminder.status == "sent" and reminder.fire_count == 1
    assert [(n.text, n.late) for n in notes] == [("给王总回电话", False)]
    assert [(a.channel, a.ok) for a in attempts] == [("inapp", True)]
    with lingxi.db.session() as session:
        assert reminders.unread_count(session=session) == 1


def test_due_while_down_is_delivered_late(lingxi):
    rid = make(lingxi, due_at=NOW + timedelta(minutes=5))
    assert lingxi.firer.fire_due(NOW + timedelta(hours=3)) == 1  # the app came back three hours later
    reminder, notes, _ = state(lingxi, rid)
    assert reminder.status == "late" and notes[0].late is True


def test_recurring_schedules_next_occurrence_after_firing(lingxi):
    first = datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)
    rid = make(lingxi, due_at=first, rrule="FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR")
    lingxi.firer.fire_due(first + timedelta(seconds=1))
    reminder, notes, _ = state(lingxi, rid)
    assert reminder.status == "scheduled" and reminder.fire_count == 1
    assert reminder.due_at == datetime(2026, 11, 24, 9, 0, tzinfo=SHANGHAI)
    assert len(notes) == 1


def test_recurring_missed_occurrences_are_delivered_once_late(lingxi):
    first = datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)
    rid = make(lingxi, due_at=first, rrule="FREQ=DAILY")
    back = datetime(2026, 11, 26, 12, 0, tzinfo=SHANGHAI)  # down for three days
    assert lingxi.firer.fire_due(back) == 1
    assert lingxi.firer.fire_due(back + timedelta(seconds=1)) == 0
    reminder, notes, _ = state(lingxi, rid)
    assert [n.late for n in notes] == [True]
    assert reminder.due_at == datetime(2026, 11, 27, 9, 0, tzinfo=SHANGHAI)


def test_daily_reminder_keeps_local_time_across_dst(lingxi):
    start = datetime(2026, 3, 27, 9, 0, tzinfo=BERLIN)  # Berlin springs forward on 2026-03-29
    rid = make(lingxi, now=start - timedelta(hours=1), due_at=start, rrule="FREQ=DAILY", tz="Europe/Berlin")
    seen = []
    moment = start
    for _ in range(4):
        lingxi.firer.fire_due(moment)
        reminder, _, _ = state(lingxi, rid)
        seen.append(reminder.due_at.astimezone(timezone.utc).hour)
        moment = reminder.due_at
    assert seen == [8, 7, 7, 7]  # 09:00 CET is 08:00 UTC, 09:00 CEST is 07:00 UTC
    assert reminder.due_at.astimezone(BERLIN).hour == 9


def test_reminder_in_its_own_zone_fires_at_the_absolute_moment(lingxi):
    due = datetime(2026, 11, 22, 9, 0, tzinfo=ZoneInfo("America/New_York"))  # 22:00 in Shanghai
    rid = make(lingxi, due_at=due, tz="America/New_York")
    assert lingxi.firer.fire_due(datetime(2026, 11, 22, 21, 59, tzinfo=SHANGHAI)) == 0
    assert lingxi.firer.fire_due(datetime(2026, 11, 22, 22, 0, tzinfo=SHANGHAI)) == 1
    assert state(lingxi, rid)[0].status == "sent"


def test_webhook_is_signed_and_failure_is_recorded_then_retried(lingxi):
    settings = lingxi.settings.model_copy(update={"webhook_secret": SecretStr("whsec-test"), "webhook_max_attempts": 2})
    firer = Firer(settings=settings, db=lingxi.db)
    with Receiver(500, 500, 200) as rx:
        rid = make(lingxi, due_at=NOW + timedelta(minutes=1), channels=["inapp", "webhook"], webhook_url=rx.url)
        firer.fire_due(NOW + timedelta(minutes=1))
        reminder, notes, attempts = state(lingxi, rid)
        assert reminder.status == "failed" and "webhook" in reminder.last_error and "HTTP 500" in reminder.last_error
        assert [(a.channel, a.ok) for a in attempts] == [("inapp", True), ("webhook", False), ("webhook", False)]
        assert len(notes) == 1

        with lingxi.db.session() as session:
            reminders.retry(rid, session=session)
        firer.fire_due(NOW + timedelta(minutes=5))
        reminder, notes, attempts = state(lingxi, rid)
        assert reminder.status == "late" and reminder.last_error is None
        assert len(notes) == 1, "the inbox already had it: a retry re-sends only failed channels"
        assert [a.channel for a in attempts].count("inapp") == 1
    headers, body = rx.requests[-1]
    payload = json.loads(body)
    assert payload["text"] == "给王总回电话" and payload["reminder_id"] == rid
    assert verify("whsec-test", headers["X-Lingxi-Timestamp"], body, headers["X-Lingxi-Signature"],
                  now=float(headers["X-Lingxi-Timestamp"]))


def test_email_is_sent_over_smtp(lingxi):
    collector = Collector()
    with smtp_server(collector) as port:
        settings = lingxi.settings.model_copy(
            update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_starttls": False, "notify_email": "boss@example.com"}
        )
        firer = Firer(settings=settings, db=lingxi.db)
        with lingxi.db.session() as session:
            rid = reminders.create(session=session, settings=settings, now=NOW, text="交季度报表",
                                   due_at=NOW + timedelta(minutes=1), channels=["email"]).id
        firer.fire_due(NOW + timedelta(minutes=1))
    reminder, notes, attempts = state(lingxi, rid)
    assert reminder.status == "sent" and notes == []
    assert [(a.channel, a.ok) for a in attempts] == [("email", True)]
    assert collector.envelopes[0].rcpt_tos == ["boss@example.com"]
    assert "交季度报表".encode() in collector.envelopes[0].content or b"=?utf-8?" in collector.envelopes[0].content


def test_smtp_down_marks_failed_and_retry_works(lingxi):
    from tests.server import free_port

    port = free_port()  # nothing listens here
    settings = lingxi.settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_starttls": False, "notify_email": "boss@example.com"}
    )
    firer = Firer(settings=settings, db=lingxi.db)
    with lingxi.db.session() as session:
        rid = reminders.create(session=session, settings=settings, now=NOW, text="pay rent",
                               due_at=NOW + timedelta(minutes=1), channels=["email"]).id
    firer.fire_due(NOW + timedelta(minutes=1))
    reminder, _, _ = state(lingxi, rid)
    assert reminder.status == "failed" and f"127.0.0.1:{port}" in reminder.last_error
    collector = Collector()
    with smtp_server(collector) as live_port:
        firer.settings = settings.model_copy(update={"smtp_port": live_port})
        with lingxi.db.session() as session:
            reminders.retry(rid, session=session)
        firer.fire_due(NOW + timedelta(minutes=3))
    assert state(lingxi, rid)[0].status == "late"
    assert len(collector.envelopes) == 1


def test_email_channel_without_smtp_config_fails_clearly(lingxi):
    settings = lingxi.settings.model_copy(update={"notify_email": "boss@example.com"})
    with lingxi.db.session() as session:
        rid = reminders.create(session=session, settings=settings, now=NOW, text="x",
                               due_at=NOW + timedelta(minutes=1), channels=["email"]).id
    Firer(settings=settings, db=lingxi.db).fire_due(NOW + timedelta(minutes=1))
    reminder, _, _ = state(lingxi, rid)
    assert reminder.status == "failed" and "LINGXI_SMTP_HOST" in reminder.last_error


def test_concurrent_firers_deliver_each_occurrence_once(lingxi):
    due = NOW + timedelta(minutes=1)
    ids = [make(lingxi, due_at=due + timedelta(seconds=i % 7), text=f"r{i}") for i in range(120)]
    firers = [Firer(settings=lingxi.settings, db=lingxi.db, batch=25) for _ in range(4)]
    barrier = threading.Barrier(len(firers))

    def run(firer):
        barrier.wait()
        firer.fire_due(due + timedelta(seconds=10))

    threads = [threading.Thread(target=run, args=(f,)) for f in firers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with lingxi.db.session() as session:
        counts = dict(session.execute(
            select(Notification.reminder_id, func.count()).group_by(Notification.reminder_id)).all())
        statuses = set(session.scalars(select(Reminder.status)))
    assert counts == {rid: 1 for rid in ids}
    assert statuses == {"sent"}


def test_expired_claim_is_taken_over(lingxi):
    rid = make(lingxi, due_at=NOW + timedelta(minutes=1))
    crashed = Firer(settings=lingxi.settings, db=lingxi.db)
    token, claimed = crashed._claim(NOW + timedelta(minutes=1))  # claimed, then the process died
    assert [c.id for c in claimed] == [rid]
    assert lingxi.firer.fire_due(NOW + timedelta(minutes=2)) == 0  # lease still held
    assert lingxi.firer.fire_due(NOW + timedelta(minutes=7)) == 1  # lease ran out
    assert state(lingxi, rid)[0].status == "late"


def test_cancelled_reminder_never_fires(lingxi):
    rid = make(lingxi, due_at=NOW + timedelta(minutes=1))
    with lingxi.db.session() as session:
        reminders.cancel(rid, session=session)
    assert lingxi.firer.fire_due(NOW + timedelta(minutes=2)) == 0
    with lingxi.db.session() as session:
        assert session.scalar(select(func.count()).select_from(DeliveryAttempt)) == 0
