"""REST routes for events, reminders and the in-app inbox.

Times in request bodies are ISO-8601 or natural language (Chinese or
English), resolved in the given or the owner's zone. Every validation
failure is a 400 ``{"error": {"code", "message"}}`` and writes nothing.
The same service functions back the agent's tools and the UI's forms.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from assistant import events, reminders
from assistant.api import error_response, lingxi_of
from assistant.models import Event
from assistant.reminders import ScheduleError
from tools.timeparse import TimeParseError, resolve

router = APIRouter()
Channel = Literal["inapp", "webhook", "email"]


class ReminderIn(BaseModel):
    text: str
    when: str | None = Field(default=None, description="ISO-8601 or natural language; may be recurring")
    rrule: str | None = Field(default=None, description="explicit RRULE; `when` gives its first occurrence")
    timezone: str | None = None
    event_id: str | None = None
    lead_minutes: int = 0
    channels: list[Channel] = ["inapp"]
    webhook_url: str | None = None
    email_to: str | None = None


class ReminderPatch(BaseModel):
    text: str | None = None
    when: str | None = None
    rrule: str | None = None
    timezone: str | None = None
    channels: list[Channel] | None = None
    webhook_url: str | None = None
    email_to: str | None = None


class EventIn(BaseModel):
    title: str
    start: str
    end: str | None = None
    all_day: bool = False
    location: str = ""
    notes: str = ""
    rrule: str | None = None
    timezone: str | None = None


class EventPatch(BaseModel):
    title: str | None = None
    start: str | None = None
    end: str | None = None
    all_day: bool | None = None
    location: str | None = None
    notes: str | None = None
    rrule: str | None = None


class ReadIn(BaseModel):
    ids: list[int] | None = None


def _when(text: str, request: Request, tz: str | None = None) -> tuple[datetime, str | None]:
    settings = lingxi_of(request).settings
    tz = tz or settings.timezone
    now = datetime.now(reminders.zone(tz))
    resolved = resolve(text, now=now, tz=tz)
    return resolved.when, resolved.rrule


def install_error_handlers(app: FastAPI) -> None:
    """Bad times and schedule input become 400s (404 for unknown ids); the session has rolled back."""

    @app.exception_handler(TimeParseError)
    async def _time(_request: Request, exc: TimeParseError) -> JSONResponse:
        return error_response(400, f"time_{exc.code}", str(exc))

    @app.exception_handler(ScheduleError)
    async def _schedule(_request: Request, exc: ScheduleError) -> JSONResponse:
        if str(exc).startswith("no "):
            return error_response(404, "not_found", str(exc))
        return error_response(400, "invalid", str(exc))


@router.get("/api/reminders")
def list_reminders(request: Request, status: str | None = None):
    with lingxi_of(request).db.session() as session:
        return {"reminders": [reminders.as_dict(r) for r in reminders.list_all(session=session, status=status)]}


@router.post("/api/reminders", status_code=201)
def create_reminder(body: ReminderIn, request: Request):
    lingxi = lingxi_of(request)
    due, rule = _when(body.when, request, body.timezone) if body.when else (None, None)
    with lingxi.db.session() as session:
        reminder = reminders.create(
            session=session, settings=lingxi.settings, text=body.text, due_at=due, rrule=body.rrule or rule,
            tz=body.timezone, event_id=body.event_id, lead_minutes=body.lead_minutes,
            channels=list(body.channels), webhook_url=body.webhook_url, email_to=body.email_to,
        )
        return reminders.as_dict(reminder)


@router.get("/api/reminders/{reminder_id}")
def get_reminder(reminder_id: str, request: Request):
    with lingxi_of(request).db.session() as session:
        reminder = reminders.get(reminder_id, session=session)
        attempts = [
            {"channel": a.channel, "number": a.number, "ok": a.ok, "late": a.late, "detail": a.detail,
             "occurrence_at": a.occurrence_at.isoformat(), "at": a.created_at.isoformat()}
            for a in reminders.attempts(reminder_id, session=session)
        ]
        return {**reminders.as_dict(reminder), "attempts": attempts}


@router.patch("/api/reminders/{reminder_id}")
def patch_reminder(reminder_id: str, body: ReminderPatch, request: Request):
    lingxi = lingxi_of(request)
    changes = body.model_dump(exclude_unset=True, exclude={"when", "timezone"})
    if body.timezone:
        changes["tz"] = body.timezone
    with lingxi.db.session() as session:
        if body.when:
            # Read the new time in the zone the reminder will have: its new one, else its own.
            tz = body.timezone or reminders.get(reminder_id, session=session).timezone
            changes["due_at"], rule = _when(body.when, request, tz)
            changes.setdefault("rrule", rule)
        reminder = reminders.change(reminder_id, session=session, settings=lingxi.settings, **changes)
        return reminders.as_dict(reminder)


@router.delete("/api/reminders/{reminder_id}")
def cancel_reminder(reminder_id: str, request: Request):
    with lingxi_of(request).db.session() as session:
        return reminders.as_dict(reminders.cancel(reminder_id, session=session))


@router.post("/api/reminders/{reminder_id}/retry")
def retry_reminder(reminder_id: str, request: Request):
    with lingxi_of(request).db.session() as session:
        return reminders.as_dict(reminders.retry(reminder_id, session=session))


@router.get("/api/events")
def list_events(request: Request, start: str | None = None, end: str | None = None):
    now = datetime.now(lingxi_of(request).settings.tz)
    try:
        begin = datetime.fromisoformat(start) if start else now - timedelta(days=1)
        finish = datetime.fromisoformat(end) if end else begin + timedelta(days=31)
    except ValueError as exc:
        return error_response(400, "invalid", f"start/end must be ISO-8601: {exc}")
    tz = lingxi_of(request).settings.tz
    begin, finish = (d if d.tzinfo else d.replace(tzinfo=tz) for d in (begin, finish))
    with lingxi_of(request).db.session() as session:
        return {"events": events.agenda(session=session, start=begin, end=finish)}


@router.get("/api/events.ics")
def export_ics(request: Request):
    with lingxi_of(request).db.session() as session:
        body = events.to_ics(list(session.scalars(select(Event).order_by(Event.starts_at))))
    return Response(body, media_type="text/calendar; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="lingxi.ics"'})


@router.post("/api/events", status_code=201)
def create_event(body: EventIn, request: Request):
    lingxi = lingxi_of(request)
    tz = body.timezone or lingxi.settings.timezone
    start, rule = _when(body.start, request, tz)
    end = _when(body.end, request, tz)[0] if body.end else None
    with lingxi.db.session() as session:
        event, clashes = events.create(
            session=session, title=body.title, starts_at=start, ends_at=end, all_day=body.all_day,
            location=body.location, notes=body.notes, rrule=body.rrule or rule, tz=tz,
        )
        return {**events.as_dict(event), "overlaps": [{"id": e.id, "title": e.title} for e, _ in clashes]}


@router.patch("/api/events/{event_id}")
def patch_event(event_id: str, body: EventPatch, request: Request):
    lingxi = lingxi_of(request)
    changes = body.model_dump(exclude_unset=True, exclude={"start", "end"})
    with lingxi.db.session() as session:
        tz = events.get(event_id, session=session).timezone  # times are read in the event's own zone
        if body.start:
            changes["starts_at"], rule = _when(body.start, request, tz)
            changes.setdefault("rrule", rule)
        if body.end:
            changes["ends_at"] = _when(body.end, request, tz)[0]
        event, clashes = events.change(event_id, session=session, **changes)
        return {**events.as_dict(event), "overlaps": [{"id": e.id, "title": e.title} for e, _ in clashes]}


@router.delete("/api/events/{event_id}")
def delete_event(event_id: str, request: Request):
    with lingxi_of(request).db.session() as session:
        return {"deleted": event_id, "reminders_cancelled": events.delete(event_id, session=session)}


@router.get("/api/inbox")
def inbox(request: Request, unread: bool = False, after_id: int = 0):
    with lingxi_of(request).db.session() as session:
        items = reminders.inbox(session=session, unread_only=unread, after_id=after_id)
        return {"unread": reminders.unread_count(session=session),
                "notifications": [reminders.notification_dict(n) for n in items]}


@router.post("/api/inbox/read")
def mark_read(body: ReadIn, request: Request):
    with lingxi_of(request).db.session() as session:
        return {"marked": reminders.mark_read(session=session, ids=body.ids)}
