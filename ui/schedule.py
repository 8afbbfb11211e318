"""The owner's Agenda and Reminders tabs: tables and forms that work without the LLM.

``build_schedule_tabs(lingxi, blocks, i18n)`` adds two tabs to the page:

* Agenda: occurrences for today, this week or the next 30 days in the owner's
  zone, and a form to create, edit or delete an event (overlaps are warned about);
* Reminders: every reminder with its next time, recurrence, channels, status and
  last error, and a form to create, edit, cancel or retry one.

Times typed into the forms are ISO-8601 or natural language ("明天下午三点",
"每周一早上9点"), resolved by ``tools.timeparse`` in the form's zone, as the
REST routes in ``assistant.schedule_api`` do. An unreadable time or a
``ScheduleError`` becomes a message in the browser's language and writes
nothing. Handlers go through ``assistant.events`` / ``assistant.reminders``;
the pure functions first in this file turn their dicts into rows and text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import gradio as gr

from assistant import events, reminders
from assistant.models import utcnow
from assistant.reminders import ScheduleError
from assistant.services import Lingxi
from tools.timeparse import TimeParseError, resolve
from ui.i18n import lang_of, text, translate_error

RANGES = ("today", "week", "30d")
EVENT_COLUMNS = ("col_date", "col_time", "col_title", "col_location", "col_repeats", "col_id")
REMINDER_COLUMNS = ("col_text", "col_due", "col_repeats", "col_channels", "col_status", "col_error", "col_id")
NONE = "—"
FREQS = ("hourly", "daily", "weekly", "monthly", "yearly")
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")

# ---- pure formatting ---------------------------------------------------------------


def range_bounds(name: str, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of "today", "week" (Monday to Monday) or "30d", in ``now``'s zone."""
    midnight = datetime.combine(now.date(), time(), tzinfo=now.tzinfo)
    if name == "today":
        return midnight, midnight + timedelta(days=1)
    if name == "week":
        monday = midnight - timedelta(days=now.weekday())
        return monday, monday + timedelta(days=7)
    return midnight, midnight + timedelta(days=30)


def short_time(value: str | datetime, tz: ZoneInfo | None = None) -> str:
    dt = datetime.fromisoformat(value) if isinstance(value, str) else value
    return (dt.astimezone(tz) if tz else dt).strftime("%Y-%m-%d %H:%M")


def repeats_text(rrule: str | None, lang: str) -> str:
    """The rule as stored, named when it is a plain hourly ... yearly one."""
    if not rrule:
        return NONE
    freq = dict(p.split("=", 1) for p in rrule.split(";") if "=" in p).get("FREQ", "").lower()
    return f"{text(lang, 'repeat.' + freq)} ({rrule})" if freq in FREQS else rrule


def agenda_table(items: list[dict[str, Any]], tz: ZoneInfo, lang: str) -> dict[str, list]:
    """Rows of ``events.agenda`` occurrences, times in ``tz``: date, time, title, location, repeats, id."""
    weekdays = text(lang, "weekdays").split()
    rows = []
    for item in items:
        start = datetime.fromisoformat(item["occurrence_start"]).astimezone(tz)
        end = datetime.fromisoformat(item["occurrence_end"]).astimezone(tz)
        if item["all_day"]:
            when = text(lang, "all_day")
        else:
            days = (end.date() - start.date()).days
            when = f"{start:%H:%M}–{end:%H:%M}" + (f" (+{days})" if days else "")
        rows.append([f"{start:%Y-%m-%d} {weekdays[start.weekday()]}", when, item["title"], item["location"] or "",
                     repeats_text(item["rrule"], lang), item["id"]])
    return {"headers": [text(lang, c) for c in EVENT_COLUMNS], "data": rows}


def event_choices(items: list[dict[str, Any]], tz: ZoneInfo) -> list[tuple[str, str]]:
    """One dropdown entry per event (its first occurrence listed), in the table's order."""
    seen: dict[str, str] = {}
    for item in items:
        start = item.get("occurrence_start") or item["starts_at"]
        seen.setdefault(item["id"], f"{short_time(start, tz)} · {item['title']}")
    return [(label, eid) for eid, label in seen.items()]


def reminder_table(items: list[dict[str, Any]], lang: str) -> dict[str, list]:
    """Rows of ``reminders.as_dict``: text, next time in its own zone, repeats, channels, status, error, id."""
    rows = [
        [r["text"], f"{short_time(r['due_at'])} {r['timezone']}", repeats_text(r["rrule"], lang),
         ", ".join(text(lang, f"channel.{c}") for c in r["channels"]), text(lang, f"status.{r['status']}"),
         r["last_error"] or "", r["id"]]
        for r in items
    ]
    return {"headers": [text(lang, c) for c in REMINDER_COLUMNS], "data": rows}


def reminder_choices(items: list[dict[str, Any]], lang: str) -> list[tuple[str, str]]:
    return [(f"{short_time(r['due_at'])} · {r['text'][:40]} · {text(lang, 'status.' + r['status'])}", r["id"])
            for r in items]


def overlap_text(clashes: list[tuple[str, datetime]], tz: ZoneInfo, lang: str) -> str:
    items = "; ".join(f"“{title}” {short_time(start, tz)}" for title, start in clashes)
    return text(lang, "overlaps", items=items)


def error_text(exc: Exception, lang: str) -> str:
    """A time-parse error (already in the input's language) or a ScheduleError, for the user."""
    if isinstance(exc, TimeParseError):
        reason = str(exc)
        if (lang == "zh") != bool(CJK.search(reason)):  # the input's language isn't the page's
            try:
                reason = f"{text(lang, 'time.' + exc.code)} ({reason})"
            except KeyError:  # a code newer than this table
                pass
    else:
        reason = translate_error("", str(exc), lang)
    return text(lang, "not_saved", reason=reason)


def row_id(evt: gr.SelectData) -> str | None:
    """The id (last column) of the clicked table row."""
    row = evt.row_value or []
    return row[-1] if row else None


# ---- handlers ----------------------------------------------------------------------


class ScheduleHandlers:
    """Handlers of both tabs, bound to one ``Lingxi``; ``clock`` is for tests.

    Every change returns [table, dropdown, status, loaded]. ``loaded`` holds the
    time fields as last loaded or saved, so that Save re-reads only the ones the
    owner changed. On failure only the status changes and the form keeps its input.
    """

    def __init__(self, lingxi: Lingxi, clock: Callable[[], datetime] = utcnow):
        self.lingxi = lingxi
        self.clock = clock
        self.tz = lingxi.settings.tz

    def _zone(self, tz: str | None) -> str:
        return (tz or "").strip() or self.lingxi.settings.timezone

    def _when(self, value: str | None, tz: str):
        """``resolve`` in zone ``tz``, checked first so that a bad zone is named as such."""
        return resolve((value or "").strip(), now=self.clock().astimezone(reminders.zone(tz)), tz=tz)

    def _failed(self, problem: Exception | str, lang: str) -> tuple:
        message = error_text(problem, lang) if isinstance(problem, Exception) else text(lang, problem)
        gr.Warning(html.escape(message, quote=False))  # toasts render HTML; the input may hold some
        return gr.skip(), gr.skip(), message, gr.skip()

    # --- Agenda ---

    def agenda_view(self, range_name: str, selected: str | None = None, request: gr.Request = None) -> tuple:
        """[table, event dropdown] for the range; the selection is kept even outside it."""
        start, end = range_bounds(range_name, self.clock().astimezone(self.tz))
        with self.lingxi.db.session() as s:
            items = events.agenda(session=s, start=start, end=end)
            choices = event_choices(items, self.tz)
            if selected and all(v != selected for _, v in choices):
                try:
                    choices += event_choices([events.as_dict(events.get(selected, session=s))], self.tz)
                except ScheduleError:  # deleted elsewhere
                    selected = None
        return agenda_table(items, self.tz, lang_of(request)), gr.Dropdown(choices=choices, value=selected)

    def load_event(self, event_id: str | None) -> tuple:
        """[title, start, end, all day, location, notes, zone, loaded] of the selected event; none keeps the form."""
        try:
            with self.lingxi.db.session() as s:
                e = events.as_dict(events.get(event_id, session=s)) if event_id else None
        except ScheduleError:  # deleted elsewhere
            e = None
        if e is None:
            return (gr.skip(),) * 8
        start, end = e["starts_at"][:16], (e["ends_at"] or "")[:16]  # ISO to the minute, in its zone
        loaded = {"start": start, "end": end, "tz": e["timezone"]}
        return e["title"], start, end, e["all_day"], e["location"], e["notes"], e["timezone"], loaded

    def create_event(self, range_name, title, start, end, all_day, location, notes, tz, request: gr.Request = None):
        """The new event becomes the selection; the form keeps what was typed."""
        lang, tz = lang_of(request), self._zone(tz)
        typed = {"start": (start or "").strip(), "end": (end or "").strip(), "tz": tz}
        try:
            first = self._when(start, tz)
            ends = self._when(end, tz).when if (end or "").strip() else None
            with self.lingxi.db.session() as s:
                event, clashes = events.create(
                    session=s, title=title, starts_at=first.when, ends_at=ends, all_day=bool(all_day or first.all_day),
                    location=location or "", notes=notes or "", rrule=first.rrule, tz=tz,
                )
                saved, clashes = events.as_dict(event), [(e.title, at) for e, at in clashes]
        except (TimeParseError, ScheduleError) as exc:
            return self._failed(exc, lang)
        return self._event_done("event_created", range_name, saved, clashes, typed, request)

    def save_event(self, range_name, event_id, loaded, title, start, end, all_day, location, notes, tz,
                   request: gr.Request = None):
        """Times are sent only when changed: an untouched start keeps the recurrence."""
        lang, tz, loaded = lang_of(request), self._zone(tz), loaded or {}
        if not event_id:
            return self._failed("select_event_first", lang)
        typed = {"start": (start or "").strip(), "end": (end or "").strip(), "tz": tz}
        changes: dict[str, Any] = {"title": title, "all_day": bool(all_day), "location": location or "",
                                   "notes": notes or ""}
        try:
            if tz != loaded.get("tz"):
                changes["tz"] = tz
            if typed["start"] != loaded.get("start"):
                resolved = self._when(start, tz)
                changes["starts_at"], changes["rrule"] = resolved.when, resolved.rrule
            if typed["end"] != loaded.get("end"):
                changes["ends_at"] = self._when(end, tz).when if typed["end"] else None
            with self.lingxi.db.session() as s:
                event, clashes = events.change(event_id, session=s, now=self.clock(), **changes)
                saved, clashes = events.as_dict(event), [(e.title, at) for e, at in clashes]
        except (TimeParseError, ScheduleError) as exc:
            return self._failed(exc, lang)
        return self._event_done("event_saved", range_name, saved, clashes, typed, request)

    def _event_done(self, key: str, range_name: str, saved: dict, clashes: list, loaded, request) -> tuple:
        lang = lang_of(request)
        status = text(lang, key, title=saved["title"], when=short_time(saved["starts_at"], self.tz))
        if clashes:  # a warning, not an error: the event is saved
            warning = overlap_text(clashes, self.tz, lang)
            gr.Warning(html.escape(warning, quote=False))
            status = f"{status}\n\n{warning}"
        return (*self.agenda_view(range_name, saved["id"], request), status, loaded)

    def delete_event(self, range_name: str, event_id: str | None, request: gr.Request = None) -> tuple:
        """The form keeps the deleted event's fields: Create brings it back."""
        lang = lang_of(request)
        if not event_id:
            return self._failed("select_event_first", lang)
        try:
            with self.lingxi.db.session() as s:
                title = events.get(event_id, session=s).title
                cancelled = events.delete(event_id, session=s)
        except ScheduleError as exc:
            return self._failed(exc, lang)
        status = text(lang, "event_deleted", title=title, count=cancelled)
        return (*self.agenda_view(range_name, None, request), status, gr.skip())

    # --- Reminders ---

    def reminder_view(self, selected: str | None = None, request: gr.Request = None) -> tuple:
        """[table, reminder dropdown]."""
        lang = lang_of(request)
        with self.lingxi.db.session() as s:
            items = [reminders.as_dict(r) for r in reminders.list_all(session=s)]
        choices = reminder_choices(items, lang)
        value = selected if any(v == selected for _, v in choices) else None
        return reminder_table(items, lang), gr.Dropdown(choices=choices, value=value)

    def load_reminder(self, reminder_id: str | None) -> tuple:
        """[text, when, zone, channels, webhook URL, e-mail, loaded] of the selected reminder; none keeps the form."""
        try:
            with self.lingxi.db.session() as s:
                r = reminders.as_dict(reminders.get(reminder_id, session=s)) if reminder_id else None
        except ScheduleError:
            r = None
        if r is None:
            return (gr.skip(),) * 7
        when = r["due_at"][:16]
        return (r["text"], when, r["timezone"], r["channels"], r["webhook_url"] or "", r["email_to"] or "",
                {"when": when, "tz": r["timezone"]})

    def create_reminder(self, body, when, tz, channels, webhook_url, email_to, request: gr.Request = None):
        """The new reminder becomes the selection; the form keeps what was typed."""
        lang, tz = lang_of(request), self._zone(tz)
        try:
            resolved = self._when(when, tz)
            with self.lingxi.db.session() as s:
                r = reminders.as_dict(reminders.create(
                    session=s, settings=self.lingxi.settings, text=body, due_at=resolved.when, rrule=resolved.rrule,
                    tz=tz, channels=list(channels or ["inapp"]), webhook_url=(webhook_url or "").strip() or None,
                    email_to=(email_to or "").strip() or None, now=self.clock(),
                ))
        except (TimeParseError, ScheduleError) as exc:
            return self._failed(exc, lang)
        return self._reminder_done("reminder_created", r, {"when": (when or "").strip(), "tz": tz}, request)

    def save_reminder(self, reminder_id, loaded, body, when, tz, channels, webhook_url, email_to,
                      request: gr.Request = None):
        """The time is sent only when changed: an untouched one keeps the recurrence."""
        lang, tz, loaded = lang_of(request), self._zone(tz), loaded or {}
        if not reminder_id:
            return self._failed("select_reminder_first", lang)
        typed = {"when": (when or "").strip(), "tz": tz}
        changes: dict[str, Any] = {"text": body, "channels": list(channels or ["inapp"]),
                                   "webhook_url": (webhook_url or "").strip() or None,
                                   "email_to": (email_to or "").strip() or None}
        try:
            if tz != loaded.get("tz"):
                changes["tz"] = tz
            if typed["when"] != loaded.get("when"):
                resolved = self._when(when, tz)
                changes["due_at"], changes["rrule"] = resolved.when, resolved.rrule
            with self.lingxi.db.session() as s:
                r = reminders.as_dict(reminders.change(
                    reminder_id, session=s, settings=self.lingxi.settings, now=self.clock(), **changes))
        except (TimeParseError, ScheduleError) as exc:
            return self._failed(exc, lang)
        return self._reminder_done("reminder_saved", r, typed, request)

    def _reminder_done(self, key: str, r: dict, loaded, request) -> tuple:
        status = text(lang_of(request), key, text=r["text"], when=f"{short_time(r['due_at'])} {r['timezone']}")
        return (*self.reminder_view(r["id"], request), status, loaded)

    def cancel_reminder(self, reminder_id: str | None, request: gr.Request = None) -> tuple:
        return self._act(reminders.cancel, "reminder_cancelled", reminder_id, request)

    def retry_reminder(self, reminder_id: str | None, request: gr.Request = None) -> tuple:
        return self._act(reminders.retry, "reminder_retried", reminder_id, request)

    def _act(self, action: Callable, done_key: str, reminder_id: str | None, request) -> tuple:
        lang = lang_of(request)
        if not reminder_id:
            return self._failed("select_reminder_first", lang)
        try:
            with self.lingxi.db.session() as s:
                body = action(reminder_id, session=s).text
        except ScheduleError as exc:
            return self._failed(exc, lang)
        return (*self.reminder_view(reminder_id, request), text(lang, done_key, text=body), gr.skip())


# ---- layout ------------------------------------------------------------------------


def build_schedule_tabs(lingxi: Lingxi, blocks: gr.Blocks, i18n: gr.I18n) -> None:
    """The Agenda and Reminders tabs; call inside ``gr.Tabs()`` within ``blocks``."""
    h = ScheduleHandlers(lingxi)
    zone_box = dict(label=i18n("timezone"), info=i18n("timezone_info"), value=lingxi.settings.timezone, max_lines=1)
    when_info = i18n("when_info")

    with gr.Tab(i18n("tab_agenda"), elem_id="lingxi-tab-agenda") as agenda_tab:
        with gr.Row():
            span = gr.Radio([(i18n(f"range_{r}"), r) for r in RANGES], value="week", label=i18n("range"), scale=4)
            agenda_refresh = gr.Button(i18n("refresh"), size="sm", scale=0, min_width=100)
        agenda = gr.Dataframe(label=i18n("tab_agenda"), interactive=False, wrap=True, elem_id="lingxi-agenda")
        event_pick = gr.Dropdown(label=i18n("select_event"), info=i18n("select_info"), choices=[])
        with gr.Row():
            title = gr.Textbox(label=i18n("title"), max_lines=1, scale=2, elem_id="lingxi-event-title")
            start = gr.Textbox(label=i18n("start"), info=when_info, max_lines=1, scale=2, elem_id="lingxi-event-start")
            end = gr.Textbox(label=i18n("end"), max_lines=1, scale=2, elem_id="lingxi-event-end")
            all_day = gr.Checkbox(label=i18n("all_day"), scale=1)
        with gr.Row():
            location = gr.Textbox(label=i18n("location"), max_lines=1, elem_id="lingxi-event-location")
            event_zone = gr.Textbox(**zone_box)
        notes = gr.Textbox(label=i18n("notes"), lines=2)
        with gr.Row():
            event_create = gr.Button(i18n("create"), variant="primary", elem_id="lingxi-event-create")
            event_save = gr.Button(i18n("save"), elem_id="lingxi-event-save")
            event_delete = gr.Button(i18n("delete"), variant="stop", elem_id="lingxi-event-delete")
        event_status = gr.Markdown(elem_id="lingxi-event-status")
        event_loaded = gr.State({})  # time fields as last loaded or saved (see ScheduleHandlers)

    with gr.Tab(i18n("tab_reminders"), elem_id="lingxi-tab-reminders") as reminders_tab:
        with gr.Row():
            reminders_refresh = gr.Button(i18n("refresh"), size="sm", scale=0, min_width=100)
        table = gr.Dataframe(label=i18n("tab_reminders"), interactive=False, wrap=True, elem_id="lingxi-reminders")
        reminder_pick = gr.Dropdown(label=i18n("select_reminder"), info=i18n("select_info"), choices=[])
        with gr.Row():
            body = gr.Textbox(label=i18n("reminder_text"), max_lines=2, scale=3, elem_id="lingxi-reminder-text")
            when = gr.Textbox(label=i18n("when"), info=when_info, max_lines=1, scale=2, elem_id="lingxi-reminder-when")
            reminder_zone = gr.Textbox(**zone_box, scale=1)
        with gr.Row():
            channels = gr.CheckboxGroup([(i18n(f"channel.{c}"), c) for c in reminders.CHANNELS], value=["inapp"],
                                        label=i18n("channels"))
            webhook_url = gr.Textbox(label=i18n("webhook_url"), max_lines=1)
            email_to = gr.Textbox(label=i18n("email_to"), max_lines=1)
        with gr.Row():
            reminder_create = gr.Button(i18n("create"), variant="primary", elem_id="lingxi-reminder-create")
            reminder_save = gr.Button(i18n("save"), elem_id="lingxi-reminder-save")
            reminder_cancel = gr.Button(i18n("cancel_reminder"), variant="stop", elem_id="lingxi-reminder-cancel")
            reminder_retry = gr.Button(i18n("retry_delivery"), elem_id="lingxi-reminder-retry")
        reminder_status = gr.Markdown(elem_id="lingxi-reminder-status")
        reminder_loaded = gr.State({})

    event_form = [title, start, end, all_day, location, notes, event_zone]
    agenda_out = [agenda, event_pick, event_status, event_loaded]
    gr.on([blocks.load, span.change, agenda_refresh.click, agenda_tab.select], h.agenda_view, [span, event_pick],
          [agenda, event_pick], show_progress="hidden")
    # Only the owner's own picks load the form: a pick set by Create must not overwrite typing.
    agenda.select(row_id, None, event_pick, show_progress="hidden").then(
        h.load_event, [event_pick], [*event_form, event_loaded], show_progress="hidden")
    event_pick.input(h.load_event, [event_pick], [*event_form, event_loaded], show_progress="hidden")
    event_create.click(h.create_event, [span, *event_form], agenda_out)
    event_save.click(h.save_event, [span, event_pick, event_loaded, *event_form], agenda_out)
    event_delete.click(h.delete_event, [span, event_pick], agenda_out)

    reminder_form = [body, when, reminder_zone, channels, webhook_url, email_to]
    reminder_out = [table, reminder_pick, reminder_status, reminder_loaded]
    gr.on([blocks.load, reminders_refresh.click, reminders_tab.select], h.reminder_view, [reminder_pick],
          [table, reminder_pick], show_progress="hidden")
    table.select(row_id, None, reminder_pick, show_progress="hidden").then(
        h.load_reminder, [reminder_pick], [*reminder_form, reminder_loaded], show_progress="hidden")
    reminder_pick.input(h.load_reminder, [reminder_pick], [*reminder_form, reminder_loaded], show_progress="hidden")
    reminder_create.click(h.create_reminder, reminder_form, reminder_out)
    reminder_save.click(h.save_reminder, [reminder_pick, reminder_loaded, *reminder_form], reminder_out)
    reminder_cancel.click(h.cancel_reminder, [reminder_pick], reminder_out)
    reminder_retry.click(h.retry_reminder, [reminder_pick], reminder_out)
