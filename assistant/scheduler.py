"""The reminder scheduler: APScheduler 3.11 running the firing sweep.

One interval job calls ``Firer.fire_due`` every ``reminder_poll_seconds``
(1 s by default), with its first run at start-up so reminders that fell due
while the app was down go out at once, marked late. The reminders table is
the source of truth: jobs hold no reminder data, so nothing is pickled, a
restart rebuilds nothing, and reminders created by any process (or straight
in the database) are picked up. Several processes may run this on one
database; the claim in ``Firer`` keeps each occurrence to one of them.

It does not decide what is due or how to deliver; ``assistant.firing`` does.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from assistant.firing import Firer

log = logging.getLogger(__name__)
JOB_ID = "lingxi-reminder-sweep"


class ReminderScheduler:
    def __init__(self, firer: Firer, *, poll_seconds: float = 1.0):
        self.firer = firer
        self.poll_seconds = poll_seconds
        self._scheduler: BackgroundScheduler | None = None

    @property
    def running(self) -> bool:
        return self._scheduler is not None and self._scheduler.running

    def start(self) -> None:
        if self.running:
            return
        scheduler = BackgroundScheduler(
            timezone=timezone.utc,
            executors={"default": ThreadPoolExecutor(max_workers=2)},
            # misfire_grace_time=None: a late sweep still runs (APScheduler's default of 1 s
            # would skip it silently); coalesce: a backlog of missed sweeps runs once.
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
        )
        scheduler.add_job(
            self._sweep, "interval", seconds=self.poll_seconds, id=JOB_ID,
            next_run_time=datetime.now(timezone.utc),
        )
        scheduler.start()
        self._scheduler = scheduler

    def _sweep(self) -> None:
        try:
            fired = self.firer.fire_due()
        except Exception:  # keep sweeping: one bad row or a DB hiccup must not stop all reminders
            log.exception("reminder sweep failed")
            return
        if fired:
            log.debug("delivered %d reminder occurrence(s)", fired)

    def shutdown(self) -> None:
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=True)
        self._scheduler = None
