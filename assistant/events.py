"""Calendar events: create, list (recurrences expanded), update, delete, overlap check, iCalendar.

Service functions with a keyword-only ``session``; bad input raises
``ScheduleError`` before anything is written. An event without an end lasts
an hour (a day when all-day) for overlap checks and the agenda. Reminders
linked to an event follow it when it moves and are cancelled when it goes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from assistant import lookup, reminders
from assistant.models import Event, Reminder, utcnow
from assistant.reminders import ScheduleError, zone
from tools.recurrence import next_occurrence, occurrences, validate_rrule

DEFAULT_LENGTH = timedelta(hours=1)
MAX_TITLE = 200


def length(event: Event) -> timedelta:
    if event.ends_at:
        return event.ends_at - event.starts_at
    return timedelta(days=1) if event.all_day else DEFAULT_LENGTH


def _validate(title: str, starts_at: datetime, ends_at: datetime | None, rrule: str | None, tz: str):
    title = (title or "").strip()
    if not title:
        raise ScheduleError("an event needs a title")
    if len(title) > MAX_TITLE:
        raise ScheduleError(f"the title is too long (at most {MAX_TITLE} characters)")
    zinfo = zone(tz)
    starts_at = starts_at if starts_at.tzinfo else starts_at.replace(tzinfo=zinfo)
    if ends_at is not None:
        ends_at = ends_at if ends_at.tzinfo else ends_at.replace(tzinfo=zinfo)
        if ends_at <= starts_at:
            raise ScheduleError("the event must end after it starts")
    if rrule:
        try:
            rrule = validate_rrule(rrule, dtstart=starts_at.astimezone(zinfo))
        except ValueError as exc:
            raise ScheduleError(f"invalid recurrence: {exc}") from None
    return title, starts_at, ends_at, rrule or None


def expand(event: Event, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """(start, end) of each occurrence overlapping [start, end), in the event's zone."""
    tz = ZoneInfo(event.timezone)
    span = length(event)
    first = event.starts_at.astimezone(tz)
    if not event.rrule:
        return [(first, first + span)] if first < end and first + span > start else []
    starts = occurrences(event.rrule, dtstart=first, start=start - span, end=end)
    return [(s, s + span) for s in starts if s + span > start]


def overlapping(
    *, session: Session, start: datetime, end: datetime, exclude_id: str | None = None
) -> list[tuple[Event, datetime]]:
    """Events with an occurrence overlapping [start, end), and that occurrence's start."""
    longest = timedelta(days=31)  # candidates: started before end, and recurring or not long over
    query = select(Event).where(
        Event.starts_at < end, or_(Event.rrule.is_not(None), Event.starts_at > start - longest)
    )
    if exclude_id:
        query = query.where(Event.id != exclude_id)
    found = []
    for event in session.scalars(query):
        hits = expand(event, start, end)
        if hits:
            found.append((event, hits[0][0]))
    return found


def create(
    *,
    session: Session,
    title: str,
    starts_at: datetime,
    tz: str,
    ends_at: datetime | None = None,
    all_day: bool = False,
    location: str = "",
    notes: str = "",
    rrule: str | None = None,
) -> tuple[Event, list[tuple[Event, datetime]]]:
    """The new event, and the events it overlaps (a warning, not an error)."""
    title, starts_at, ends_at, rrule = _validate(title, starts_at, ends_at, rrule, tz)
    event = Event(
        title=title, starts_at=starts_at, ends_at=ends_at, all_day=all_day, location=location or "",
        notes=notes or "", rrule=rrule, timezone=tz,
    )
    clashes = overlapping(session=session, start=starts_at, end=starts_at + length(event))
    session.add(event)
    session.flush()
    return event, clashes


def get(event_id: str, *, session: Session) -> Event:
    event = session.get(Event, event_id)
    if event is None:
        raise ScheduleError(f"no event with id {event_id}")
    return event


def named(name: str, *, session: Session, now: datetime) -> list[Event]:
    """The events whose title ``name`` designates (``lookup.named``); when several do, those not over yet."""
    return lookup.named(name, session.scalars(select(Event).order_by(Event.starts_at)), lambda e: e.title,
                        prefer=lambda e: bool(e.rrule) or e.starts_at + length(e) > now)


def agenda(*, session: Session, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Occurrences in [start, end), sorted by start."""
    if end <= start:
        raise ScheduleError("the end of the range must be after its start")
    query = select(Event).where(Event.starts_at < end)
    items = []
    for event in session.scalars(query):
        for s, e in expand(event, start, end):
            items.append(occurrence(event, s, e))
    return sorted(items, key=lambda item: item["occurrence_start"])


def change(event_id: str, *, session: Session, now: datetime | None = None, **changes: Any):
    """Update fields; linked reminders move with the event. Returns (event, overlaps)."""
    event = get(event_id, session=session)
    tz = changes.get("tz") or event.timezone
    starts_at = changes.get("starts_at") or event.starts_at
    ends_at = changes["ends_at"] if "ends_at" in changes else event.ends_at
    if "starts_at" in changes and "ends_at" not in changes and event.ends_at:
        ends_at = starts_at + (event.ends_at - event.starts_at)  # moving keeps the length
    rrule = changes["rrule"] if "rrule" in changes else event.rrule
    title, starts_at, ends_at, rrule = _validate(changes.get("title", event.title), starts_at, ends_at, rrule, tz)
    event.title, event.starts_at, event.ends_at, event.rrule, event.timezone = title, starts_at, ends_at, rrule, tz
    for key in ("all_day", "location", "notes"):
        if key in changes and changes[key] is not None:
            setattr(event, key, changes[key])
    event.updated_at = utcnow()
    now = now or utcnow()
    for reminder in session.scalars(select(Reminder).where(Reminder.event_id == event.id, Reminder.status == "scheduled")):
        _follow(reminder, event, now)
    clashes = overlapping(session=session, start=starts_at, end=starts_at + length(event), exclude_id=event.id)
    session.flush()
    return event, clashes


def _follow(reminder: Reminder, event: Event, now: datetime) -> None:
    lead = timedelta(minutes=reminder.lead_minutes)
    anchor = event.starts_at.astimezone(ZoneInfo(event.timezone)) - lead
    reminder.timezone, reminder.rrule = event.timezone, event.rrule
    if event.rrule:
        reminder.dtstart = anchor
        nxt = next_occurrence(event.rrule, dtstart=anchor, after=now, inclusive=True)
        reminder.due_at = nxt or anchor
        if nxt is None:
            reminder.status = "cancelled"
    else:
        reminder.dtstart, reminder.due_at = None, anchor
        if anchor <= now:
            reminder.status = "cancelled"
            reminder.last_error = "the event moved so that this reminder's time has passed"
    reminder.updated_at = utcnow()


def delete(event_id: str, *, session: Session) -> int:
    """Delete the event; returns how many of its reminders were cancelled."""
    event = get(event_id, session=session)
    cancelled = reminders.cancel_for_event(event.id, session=session)
    session.delete(event)
    return cancelled


def as_dict(event: Event) -> dict[str, Any]:
    tz = ZoneInfo(event.timezone)
    # The name before the id: a causal model reads which row it is before the id it copies (issue 7).
    return {
        "title": event.title,
        "id": event.id,
        "starts_at": event.starts_at.astimezone(tz).isoformat(),
        "ends_at": event.ends_at.astimezone(tz).isoformat() if event.ends_at else None,
        "all_day": event.all_day,
        "location": event.location,
        "notes": event.notes,
        "rrule": event.rrule,
        "timezone": event.timezone,
    }


def occurrence(event: Event, start: datetime, end: datetime) -> dict[str, Any]:
    """One occurrence of ``event`` as ``agenda`` lists it: the event, then this occurrence's times."""
    return {**as_dict(event), "occurrence_start": start.isoformat(), "occurrence_end": end.isoformat()}


def to_ics(events: list[Event], *, now: datetime | None = None) -> bytes:
    """An iCalendar (RFC 5545) file of the events, recurrences as RRULE, times in their own zones."""
    from icalendar import Calendar, Event as VEvent, vRecur

    cal = Calendar()
    cal.add("prodid", "-//Lingxi//Lingxi 灵犀//EN")
    cal.add("version", "2.0")
    stamp = now or utcnow()
    for event in events:
        tz = ZoneInfo(event.timezone)
        v = VEvent()
        v.add("uid", f"{event.id}@lingxi")
        v.add("dtstamp", stamp)
        v.add("summary", event.title)
        start = event.starts_at.astimezone(tz)
        if event.all_day:
            v.add("dtstart", start.date())
            v.add("dtend", (start + length(event)).date())
        else:
            v.add("dtstart", start)
            v.add("dtend", start + length(event))
        if event.location:
            v.add("location", event.location)
        if event.notes:
            v.add("description", event.notes)
        if event.rrule:
            v.add("rrule", vRecur.from_ical(event.rrule))
        cal.add_component(v)
    # RFC 5545 wants a VTIMEZONE for every TZID used; Outlook misreads times without one.
    cal.add_missing_timezones()
    return cal.to_ical()
