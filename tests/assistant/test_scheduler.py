"""The real scheduler: on time, after a restart, and with two processes on one database."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

from assistant import reminders
from assistant.models import Notification, Reminder, new_id, utcnow
from assistant.services import Lingxi

ROOT = Path(__file__).resolve().parents[2]
RUNNER = """
import sys, time
from assistant.config import Settings
from assistant.services import Lingxi
app = Lingxi.create(Settings(database_url=sys.argv[1], data_dir=sys.argv[2], reminder_poll_seconds=0.2), migrate=False)
app.scheduler.start()
time.sleep(float(sys.argv[3]))
app.close()
"""


def wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def notifications(app: Lingxi) -> list[Notification]:
    with app.db.session() as session:
        return list(session.scalars(select(Notification)))


def raw_reminders(app: Lingxi, dues, **extra) -> list[str]:
    """Insert rows as if written earlier (e.g. before a shutdown), bypassing the 'not in the past' check."""
    now = utcnow()
    rows = [{"id": new_id(), "text": f"r{i}", "timezone": "Asia/Shanghai", "due_at": due, "channels": ["inapp"],
             "status": "scheduled", "lead_minutes": 0, "fire_count": 0, "created_at": now, "updated_at": now, **extra}
            for i, due in enumerate(dues)]
    with app.db.session() as session:
        session.execute(insert(Reminder), rows)
    return [r["id"] for r in rows]


def test_reminder_fires_within_two_seconds(lingxi):
    with lingxi.db.session() as session:
        rid = reminders.create(session=session, settings=lingxi.settings, text="喝水",
                               due_at=utcnow() + timedelta(seconds=1.5)).id
        due = session.get(Reminder, rid).due_at
    lingxi.scheduler.start()
    assert wait_until(lambda: notifications(lingxi), timeout=8)
    lingxi.scheduler.shutdown()
    note = notifications(lingxi)[0]
    assert note.reminder_id == rid and note.late is False
    assert timedelta(0) <= note.created_at - due < timedelta(seconds=2)


def test_restart_delivers_what_fell_due_while_down_once_and_late(settings):
    before = Lingxi.create(settings)
    now = utcnow()
    missed, future = raw_reminders(before, [now - timedelta(minutes=30), now + timedelta(hours=1)])
    [daily] = raw_reminders(before, [now - timedelta(days=2)], rrule="FREQ=DAILY", dtstart=now - timedelta(days=2))
    before.close()  # the app is down while they fall due

    after = Lingxi.create(settings)
    after.scheduler.start()
    try:
        assert wait_until(lambda: len(notifications(after)) == 2, timeout=8)
        time.sleep(0.5)  # a further sweep must not deliver anything again
        notes = notifications(after)
    finally:
        after.scheduler.shutdown()
    assert sorted(n.reminder_id for n in notes) == sorted([missed, daily])
    assert all(n.late for n in notes)
    with after.db.session() as session:
        assert session.get(Reminder, missed).status == "late"
        assert session.get(Reminder, future).status == "scheduled"
        recurring = session.get(Reminder, daily)
        assert recurring.status == "scheduled" and recurring.due_at > utcnow()
    after.close()


def test_two_processes_never_deliver_twice(lingxi, settings):
    start = utcnow() + timedelta(seconds=1.5)
    ids = raw_reminders(lingxi, [start + timedelta(milliseconds=5 * i) for i in range(300)])
    command = [sys.executable, "-c", RUNNER, settings.db_url, str(settings.data_dir), "5"]
    procs = [subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    with lingxi.db.session() as session:
        counts = dict(session.execute(
            select(Notification.reminder_id, func.count()).group_by(Notification.reminder_id)).all())
    assert counts == {rid: 1 for rid in ids}
