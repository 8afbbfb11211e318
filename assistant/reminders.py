"""Reminders and the in-app inbox: the service functions behind tools, API and UI.

Every function takes a keyword-only ``session`` and validates before it
writes, raising ``ScheduleError`` with a message meant for the user, so bad
input changes nothing. Times are zone-aware; recurring reminders keep their
RRULE and a ``dtstart`` in the reminder's own zone. Delivery itself is in
``assistant.firing``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from assistant import lookup
from assistant.models import DeliveryAttempt, Event, Notification, Reminder, utcnow
from tools.delivery import DeliveryConfigError, validate_webhook_url
from tools.recurrence import next_occurrence, validate_rrule

CHANNELS = ("inapp", "webhook", "email")
STATUSES = ("scheduled", "sent", "late", "failed", "cancelled")
MAX_TEXT = 2000


class ScheduleError(ValueError):
    """Bad input for an event or reminder; str() is the user-facing reason."""


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {name!r}; use an IANA name such as Asia/Shanghai") from None


def check_channels(channels: list[str], *, webhook_url: str | None, email_to: str | None, settings) -> list[str]:
    channels = list(dict.fromkeys(channels or ["inapp"]))
    unknown = [c for c in channels if c not in CHANNELS]
    if unknown:
        raise ScheduleError(f"unknown channel(s) {', '.join(unknown)}; choose from {', '.join(CHANNELS)}")
    if "webhook" in channels:
        url = webhook_url or settings.webhook_url
        if not url:
            raise ScheduleError("the webhook channel needs a URL (per reminder, or LINGXI_WEBHOOK_URL)")
        try:
            validate_webhook_url(url)
        except DeliveryConfigError as exc:
            raise ScheduleError(str(exc)) from None
    if "email" in channels and not (email_to or settings.notify_email):
        raise ScheduleError("the email channel needs an address (per reminder, or LINGXI_NOTIFY_EMAIL)")
    if email_to and ("@" not in email_to or any(c in email_to for c in "\r\n")):
        raise ScheduleError(f"{email_to!r} is not an e-mail address")
    return channels


def check_text(text: str | None) -> str:
    text = (text or "").strip()
    if not text:
        raise ScheduleError("a reminder needs some text")
    if len(text) > MAX_TEXT:
        raise ScheduleError(f"the reminder text is too long ({len(text)} characters, at most {MAX_TEXT})")
    return text


def first_due(*, due_at: datetime | None, rrule: str | None, tz: str, now: datetime) -> tuple[datetime, datetime | None, str | None]:
    """(due_at, dtstart, normalised rrule) for a new or changed reminder; rejects past and never-occurring times."""
    zinfo = zone(tz)
    if due_at is None:
        raise ScheduleError("a reminder needs a time")
    if due_at.tzinfo is None:
        due_at = due_at.replace(tzinfo=zinfo)
    due_at = due_at.astimezone(zinfo)
    if not rrule:
        if due_at <= now:
            raise ScheduleError(f"{due_at.isoformat()} is in the past; ask the user for a future time")
        return due_at, None, None
    try:
        rule = validate_rrule(rrule, dtstart=due_at)
    except ValueError as exc:
        raise ScheduleError(f"invalid recurrence: {exc}") from None
    nxt = next_occurrence(rule, dtstart=due_at, after=now, inclusive=True)
    if nxt is None:
        raise ScheduleError("the recurrence has no occurrence after now")
    return nxt, due_at, rule


def create(
    *,
    session: Session,
    settings,
    text: str,
    due_at: datetime | None = None,
    rrule: str | None = None,
    tz: str | None = None,
    event_id: str | None = None,
    lead_minutes: int = 0,
    channels: list[str] | None = None,
    webhook_url: str | None = None,
    email_to: str | None = None,
    now: datetime | None = None,
) -> Reminder:
    text = check_text(text)
    if lead_minutes < 0 or lead_minutes > 60 * 24 * 30:
        raise ScheduleError("lead time must be between 0 minutes and 30 days")
    now = now or utcnow()
    tz = tz or settings.timezone
    chans = check_channels(channels or ["inapp"], webhook_url=webhook_url, email_to=email_to, settings=settings)
    if event_id:
        event = session.get(Event, event_id)
        if event is None:
            raise ScheduleError(f"no event with id {event_id}")
        tz = event.timezone
        due_at = event.starts_at - timedelta(minutes=lead_minutes)
        rrule = event.rrule
    due, dtstart, rule = first_due(due_at=due_at, rrule=rrule, tz=tz, now=now)
    reminder = Reminder(
        text=text, timezone=tz, due_at=due, rrule=rule, dtstart=dtstart, event_id=event_id,
        lead_minutes=lead_minutes, channels=chans, webhook_url=webhook_url, email_to=email_to,
    )
    session.add(reminder)
    session.flush()
    return reminder


def get(reminder_id: str, *, session: Session) -> Reminder:
    reminder = session.get(Reminder, reminder_id)
    if reminder is None:
        raise ScheduleError(f"no reminder with id {reminder_id}")
    return reminder


def named(text: str, *, session: Session) -> list[Reminder]:
    """The reminders whose text ``text`` designates (``lookup.named``), cancelled ones left out; when
    several match, those still to fire."""
    rows = session.scalars(select(Reminder).where(Reminder.status != "cancelled").order_by(Reminder.due_at))
    return lookup.named(text, rows, lambda r: r.text, prefer=lambda r: r.status in ("scheduled", "late"))


def list_all(*, session: Session, status: str | None = None, limit: int = 500) -> list[Reminder]:
    query = select(Reminder).order_by(Reminder.due_at).limit(limit)
    if status:
        if status not in STATUSES:
            raise ScheduleError(f"unknown status {status!r}; one of {', '.join(STATUSES)}")
        query = query.where(Reminder.status == status)
    return list(session.scalars(query))


def change(
    reminder_id: str, *, session: Session, settings, now: datetime | None = None, **changes: Any
) -> Reminder:
    """Change text, time, recurrence, zone, channels or targets; a finished reminder is rescheduled."""
    reminder = get(reminder_id, session=session)
    if reminder.status == "cancelled":
        raise ScheduleError("this reminder is cancelled; create a new one")
    now = now or utcnow()
    if "text" in changes:
        reminder.text = check_text(changes["text"])
    if {"channels", "webhook_url", "email_to"} & changes.keys():
        webhook = changes.get("webhook_url", reminder.webhook_url)
        email = changes.get("email_to", reminder.email_to)
        reminder.channels = check_channels(
            changes.get("channels") or reminder.channels, webhook_url=webhook, email_to=email, settings=settings
        )
        reminder.webhook_url, reminder.email_to = webhook, email
    if {"due_at", "rrule", "tz"} & changes.keys():
        tz = changes.get("tz") or reminder.timezone
        start = changes.get("due_at") or (reminder.dtstart or reminder.due_at)
        rule = changes["rrule"] if "rrule" in changes else reminder.rrule
        if "due_at" not in changes:
            # A new zone alone keeps the wall time: "9:00 every day" stays 9:00 where the owner now is.
            start = start.astimezone(zone(reminder.timezone)).replace(tzinfo=None)
        due, dtstart, rule = first_due(due_at=start, rrule=rule, tz=tz, now=now)
        reminder.due_at, reminder.dtstart, reminder.rrule, reminder.timezone = due, dtstart, rule, tz
        reminder.status, reminder.last_error = "scheduled", None
        reminder.claimed_by = reminder.claimed_until = None
    reminder.updated_at = utcnow()
    session.flush()
    return reminder


def cancel(reminder_id: str, *, session: Session) -> Reminder:
    reminder = get(reminder_id, session=session)
    reminder.status = "cancelled"
    reminder.updated_at = utcnow()
    return reminder


def retry(reminder_id: str, *, session: Session) -> Reminder:
    """Deliver a failed reminder again; channels that already succeeded are not repeated."""
    reminder = get(reminder_id, session=session)
    if reminder.status != "failed":
        raise ScheduleError("only a failed reminder can be retried")
    # due_at still names the failed occurrence, so the next sweep delivers it (late).
    reminder.status = "scheduled"
    reminder.claimed_by = reminder.claimed_until = None
    reminder.updated_at = utcnow()
    return reminder


def cancel_for_event(event_id: str, *, session: Session) -> int:
    result = session.execute(
        update(Reminder)
        .where(Reminder.event_id == event_id, Reminder.status == "scheduled")
        .values(status="cancelled", updated_at=utcnow())
    )
    return result.rowcount or 0


def as_dict(reminder: Reminder) -> dict[str, Any]:
    tz = ZoneInfo(reminder.timezone)
    # The text before the id, as in ``events.as_dict``.
    return {
        "text": reminder.text,
        "id": reminder.id,
        "due_at": reminder.due_at.astimezone(tz).isoformat(),
        "timezone": reminder.timezone,
        "rrule": reminder.rrule,
        "event_id": reminder.event_id,
        "lead_minutes": reminder.lead_minutes,
        "channels": list(reminder.channels or []),
        "webhook_url": reminder.webhook_url,
        "email_to": reminder.email_to,
        "status": reminder.status,
        "last_error": reminder.last_error,
        "last_fired_at": reminder.last_fired_at.isoformat() if reminder.last_fired_at else None,
        "fire_count": reminder.fire_count,
    }


def attempts(reminder_id: str, *, session: Session) -> list[DeliveryAttempt]:
    return list(
        session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.reminder_id == reminder_id).order_by(DeliveryAttempt.id))
    )


# ---- the in-app inbox -------------------------------------------------------------


def inbox(*, session: Session, unread_only: bool = False, after_id: int = 0, limit: int = 50) -> list[Notification]:
    query = select(Notification).where(Notification.id > after_id).order_by(Notification.id.desc()).limit(limit)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    return list(session.scalars(query))


def unread_count(*, session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Notification).where(Notification.read_at.is_(None))) or 0


def mark_read(*, session: Session, ids: list[int] | None = None) -> int:
    """Mark the given notifications (or all) read; returns how many changed."""
    stmt = update(Notification).where(Notification.read_at.is_(None)).values(read_at=utcnow())
    if ids is not None:
        stmt = stmt.where(Notification.id.in_(ids))
    return session.execute(stmt).rowcount or 0


def notification_dict(n: Notification) -> dict[str, Any]:
    return {
        "id": n.id,
        "reminder_id": n.reminder_id,
        "text": n.text,
        "due_at": n.due_at.isoformat(),
        "late": n.late,
        "created_at": n.created_at.isoformat(),
        "read": n.read_at is not None,
    }
