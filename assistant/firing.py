"""Firing reminders: claim what is due, deliver it, record it, move on.

``Firer.fire_due(now)`` is the whole algorithm, and a pure function of the
database and ``now``, so tests drive it with a controlled clock:

1. **Claim.** One UPDATE marks due, unclaimed rows with this sweep's token and a
   lease. The database serialises concurrent UPDATEs, so two processes (or
   two threads) never claim the same occurrence; a crashed claimer's lease
   runs out and another process takes the row over.
2. **Deliver** each claimed reminder on its channels: the in-app inbox, a
   signed webhook, e-mail. A channel that already succeeded for this
   occurrence (a retry after a partial failure) is skipped.
3. **Finish** in one transaction guarded by the token: attempts, inbox row,
   and the new state: ``sent``/``late``/``failed`` for a one-off, the next
   occurrence for a recurring one (occurrences missed while the app was down
   are delivered once, late, not once each).

Delivery is at-least-once only if a process dies between delivering and
finishing; otherwise exactly once. This module schedules nothing; see
``assistant.scheduler``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select, update

from assistant.config import Settings
from assistant.db import Database
from assistant.models import DeliveryAttempt, Event, Notification, Reminder, utcnow
from tools.delivery import Attempt, DeliveryConfigError, DeliveryResult, Notice, send_email, send_webhook
from tools.recurrence import next_occurrence

log = logging.getLogger(__name__)

LATE_AFTER = timedelta(seconds=60)  # fired this long after its time: the app was down or overloaded
LEASE = timedelta(minutes=5)  # longer than the slowest delivery (webhook retries, SMTP timeouts)


@dataclass
class Claimed:
    id: str
    text: str
    due_at: datetime
    timezone: str
    channels: list[str]
    webhook_url: str | None
    email_to: str | None
    event_title: str | None
    done_channels: set[str]


@dataclass
class Firer:
    settings: Settings
    db: Database
    clock: Callable[[], datetime] = utcnow
    node: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    batch: int = 200
    workers: int = 8

    def fire_due(self, now: datetime | None = None) -> int:
        """Deliver every reminder due at ``now``; returns how many occurrences were handled."""
        total = 0
        while True:
            now_ = now or self.clock()
            token, claimed = self._claim(now_)
            if not claimed:
                return total
            with ThreadPoolExecutor(max_workers=min(self.workers, len(claimed))) as pool:
                results = list(pool.map(lambda c: (c, self._deliver(c, now_)), claimed))
            self._finish(token, results, now_)
            total += len(claimed)
            if len(claimed) < self.batch:
                return total

    def _claim(self, now: datetime) -> tuple[str, list[Claimed]]:
        token = f"{self.node}:{uuid.uuid4().hex[:12]}"
        free = or_(Reminder.claimed_until.is_(None), Reminder.claimed_until < now)
        with self.db.session() as session:
            due_ids = (
                select(Reminder.id)
                .where(Reminder.status == "scheduled", Reminder.due_at <= now, free)
                .order_by(Reminder.due_at)
                .limit(self.batch)
            )
            # The outer WHERE repeats the conditions: on PostgreSQL a row another
            # transaction claimed meanwhile is re-checked after its lock and skipped.
            session.execute(
                update(Reminder)
                .where(Reminder.id.in_(due_ids.scalar_subquery()), Reminder.status == "scheduled", free)
                .values(claimed_by=token, claimed_until=now + LEASE)
                .execution_options(synchronize_session=False)
            )
        with self.db.session() as session:
            rows = session.execute(
                select(Reminder, Event.title)
                .outerjoin(Event, Event.id == Reminder.event_id)
                .where(Reminder.claimed_by == token)
            ).all()
            claimed = []
            for reminder, title in rows:
                done = session.scalars(
                    select(DeliveryAttempt.channel).where(
                        DeliveryAttempt.reminder_id == reminder.id,
                        DeliveryAttempt.occurrence_at == reminder.due_at,
                        DeliveryAttempt.ok.is_(True),
                    )
                )
                claimed.append(
                    Claimed(
                        id=reminder.id, text=reminder.text, due_at=reminder.due_at, timezone=reminder.timezone,
                        channels=list(reminder.channels or ["inapp"]), webhook_url=reminder.webhook_url,
                        email_to=reminder.email_to, event_title=title, done_channels=set(done),
                    )
                )
        return token, claimed

    def _deliver(self, c: Claimed, now: datetime) -> list[DeliveryResult]:
        zone = ZoneInfo(c.timezone)
        notice = Notice(
            reminder_id=c.id, text=c.text, due_at=c.due_at.astimezone(zone), fired_at=now.astimezone(zone),
            late=now - c.due_at > LATE_AFTER, event_title=c.event_title,
        )
        results = []
        for channel in c.channels:
            if channel in c.done_channels or channel == "inapp":
                continue  # in-app delivery is the inbox row written in _finish
            try:
                results.append(self._send(channel, notice, c))
            except DeliveryConfigError as exc:
                results.append(DeliveryResult(channel, False, [Attempt(channel, 1, False, str(exc), now)], str(exc)))
            except Exception as exc:  # a channel bug must not stop the others
                log.exception("delivering reminder %s over %s failed", c.id, channel)
                detail = f"{type(exc).__name__}: {exc}"
                results.append(DeliveryResult(channel, False, [Attempt(channel, 1, False, detail, now)], detail))
        return results

    def _send(self, channel: str, notice: Notice, c: Claimed) -> DeliveryResult:
        s = self.settings
        if channel == "webhook":
            secret = s.webhook_secret.get_secret_value() if s.webhook_secret else None
            return send_webhook(
                notice, url=c.webhook_url or s.webhook_url or "", secret=secret, max_attempts=s.webhook_max_attempts
            )
        if channel == "email":
            if not s.smtp_host:
                raise DeliveryConfigError("e-mail is not configured: set LINGXI_SMTP_HOST")
            return send_email(
                notice, to=c.email_to or s.notify_email or "", host=s.smtp_host, port=s.smtp_port,
                sender=s.smtp_from, user=s.smtp_user,
                password=s.smtp_password.get_secret_value() if s.smtp_password else None, starttls=s.smtp_starttls,
            )
        raise DeliveryConfigError(f"unknown channel {channel!r}")

    def _finish(self, token: str, results: list[tuple[Claimed, list[DeliveryResult]]], now: datetime) -> None:
        with self.db.session() as session:
            for c, channel_results in results:
                reminder = session.get(Reminder, c.id)
                if reminder is None or reminder.claimed_by != token:
                    continue  # deleted, or the lease ran out and another process took over
                late = now - c.due_at > LATE_AFTER
                if "inapp" in c.channels and "inapp" not in c.done_channels:
                    session.add(Notification(reminder_id=c.id, text=c.text, due_at=c.due_at, late=late))
                    session.add(DeliveryAttempt(reminder_id=c.id, occurrence_at=c.due_at, channel="inapp",
                                                ok=True, late=late, detail="inbox"))
                for result in channel_results:
                    for a in result.attempts:
                        session.add(DeliveryAttempt(reminder_id=c.id, occurrence_at=c.due_at, channel=a.channel,
                                                    number=a.number, ok=a.ok, late=late, detail=a.detail))
                errors = [f"{r.channel}: {r.error}" for r in channel_results if not r.ok]
                reminder.last_error = "; ".join(errors) or None
                reminder.last_fired_at = now
                reminder.fire_count += 1
                reminder.claimed_by = reminder.claimed_until = None
                reminder.updated_at = utcnow()
                if reminder.rrule and reminder.dtstart:
                    nxt = next_occurrence(reminder.rrule, dtstart=reminder.dtstart.astimezone(ZoneInfo(reminder.timezone)),
                                          after=max(now, c.due_at))
                    if nxt is None:
                        reminder.status = "failed" if errors else ("late" if late else "sent")
                    else:
                        reminder.due_at = nxt
                else:
                    reminder.status = "failed" if errors else ("late" if late else "sent")
