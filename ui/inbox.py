"""The in-app inbox in the page header: an unread badge, a panel, and a toast per new notification.

``build_inbox(lingxi, blocks)`` renders a header row (the "🔔 N" button and a
panel listing notifications newest first, with "mark all read") and a
``gr.Timer`` that polls ``assistant.reminders.inbox`` every ``POLL_S``
seconds. The last notification id a browser session has seen lives in that
session's ``gr.State`` and starts at the newest id when the page loads, so
every open session toasts each new notification once and old ones never.

It delivers nothing (``assistant.firing`` writes the inbox rows) and only
reads and marks rows through the ``assistant.reminders`` service functions.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import gradio as gr

from assistant import reminders
from assistant.services import Lingxi
from ui.i18n import lang_of, text

POLL_S = 2.0  # how soon a toast follows delivery; each tick is one small indexed query
PANEL_LIMIT = 50  # the panel shows the newest ones; older ones stay in the API


# ---- pure formatting ---------------------------------------------------------------


def badge_text(unread: int) -> str:
    return f"🔔 {unread}"


def _markdown_escape(value: str) -> str:
    # Reminder text is the owner's, but may hold markdown or HTML that would
    # restyle the panel; show it as typed.
    escaped = html.escape(value, quote=False)
    return "".join("\\" + c if c in "\\`*_{}[]()#+-.!|>~" else c for c in escaped)


def toast_text(item: dict[str, Any], lang: str) -> str:
    """The toast for one notification (``reminders.notification_dict``); HTML-escaped, Gradio renders HTML."""
    late = f" ({text(lang, 'late')})" if item.get("late") else ""
    return f"⏰ {html.escape(item['text'])}{late}"


def panel_markdown(items: list[dict[str, Any]], tz: ZoneInfo, lang: str) -> str:
    """The panel's list, in the order given (newest first); unread ones in bold."""
    if not items:
        return text(lang, "inbox_empty")
    lines = []
    for item in items:
        due = datetime.fromisoformat(item["due_at"]).astimezone(tz).strftime("%Y-%m-%d %H:%M")
        body = _markdown_escape(item["text"])
        late = f" _({text(lang, 'late')})_" if item.get("late") else ""
        lines.append(f"- {due} · {body}{late}" if item.get("read") else f"- **{due} · {body}**{late} 🔵")
    return "\n".join(lines)


# ---- handlers ----------------------------------------------------------------------


class InboxHandlers:
    """Read the inbox through the services; outputs are [last seen id, badge, panel]."""

    def __init__(self, lingxi: Lingxi):
        self.lingxi = lingxi

    def _state(self, lang: str) -> tuple[int, str, str]:
        """(newest id, badge, panel) as stored now."""
        with self.lingxi.db.session() as s:
            items = [reminders.notification_dict(n) for n in reminders.inbox(session=s, limit=PANEL_LIMIT)]
            unread = reminders.unread_count(session=s)
        newest = items[0]["id"] if items else 0
        return newest, badge_text(unread), panel_markdown(items, self.lingxi.settings.tz, lang)

    def check(self, last_seen: int | None) -> tuple[list[dict[str, Any]], int]:
        """Notifications newer than ``last_seen``, oldest first, and the new last-seen id."""
        with self.lingxi.db.session() as s:
            new = [reminders.notification_dict(n) for n in reminders.inbox(session=s, after_id=last_seen or 0)]
        new.reverse()
        return new, max([last_seen or 0, *(n["id"] for n in new)])

    def on_load(self, request: gr.Request = None) -> tuple[int, str, str]:
        return self._state(lang_of(request))

    def poll(self, last_seen: int | None, request: gr.Request = None) -> tuple:
        """Toast what is new since ``last_seen``; None (a tick before the page load ran) toasts nothing."""
        lang = lang_of(request)
        if last_seen is None:
            return self._state(lang)
        new, seen = self.check(last_seen)
        for item in new:
            # Stays until closed: the owner may be away from the screen when it fires.
            gr.Info(toast_text(item, lang), title=text(lang, "toast_title"), duration=None)
        _, badge, panel = self._state(lang)
        return seen, badge, panel

    def mark_all_read(self, request: gr.Request = None) -> tuple[str, str]:
        with self.lingxi.db.session() as s:
            reminders.mark_read(session=s)
        _, badge, panel = self._state(lang_of(request))
        return badge, panel

    def toggle(self, is_open: bool) -> tuple[bool, gr.Group]:
        return (not is_open), gr.Group(visible=not is_open)


def build_inbox(lingxi: Lingxi, blocks: gr.Blocks, i18n: gr.I18n) -> None:
    """The header row and its timer; call inside ``blocks``, above the tabs."""
    h = InboxHandlers(lingxi)
    last_seen = gr.State(None)  # per browser session: the newest notification id it has seen
    is_open = gr.State(False)
    # On the left: toasts stack up in the top right corner and would hide it.
    with gr.Row(equal_height=True):
        badge = gr.Button(badge_text(0), size="sm", scale=0, min_width=72, elem_id="lingxi-inbox-badge")
        gr.Markdown(i18n("app_title"), elem_id="lingxi-header")
    with gr.Group(visible=False, elem_id="lingxi-inbox-panel") as panel_box:
        gr.Markdown(i18n("inbox"), padding=True)
        panel = gr.Markdown(padding=True, elem_id="lingxi-inbox-list")
        read_btn = gr.Button(i18n("mark_all_read"), size="sm", elem_id="lingxi-inbox-read")
    timer = gr.Timer(POLL_S)

    blocks.load(h.on_load, None, [last_seen, badge, panel], show_progress="hidden")
    timer.tick(h.poll, [last_seen], [last_seen, badge, panel], show_progress="hidden")
    badge.click(h.toggle, [is_open], [is_open, panel_box], show_progress="hidden")
    read_btn.click(h.mark_all_read, None, [badge, panel], show_progress="hidden")
