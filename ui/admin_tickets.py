"""The owner's Tickets tab: the hand-offs the assistant recorded, to read and close.

``build_tickets_tab(lingxi, blocks, i18n)`` adds one tab: a table of tickets
(newest first; open, closed or all) with who to contact, the summary and the
conversation each came from, and a Close button for the selected one.

Handlers go through ``assistant.tickets``; creating tickets is the
``create_ticket`` tool's job, not this tab's. The pure functions first in this
file turn ``tickets.as_dict`` results into rows.
"""

from __future__ import annotations

import html
from typing import Any

import gradio as gr

from assistant import tickets
from assistant.services import Lingxi
from ui.admin_kb import first_cell
from ui.i18n import lang_of, text
from ui.schedule import short_time

FILTERS = ("open", "closed", "all")
COLUMNS = ("col_id", "ticket_col_created", "ticket_col_name", "ticket_col_contact", "ticket_col_summary",
           "col_status", "ticket_col_conversation")

# ---- pure formatting ---------------------------------------------------------------


def ticket_status(status: str, lang: str) -> str:
    try:
        return text(lang, f"ticket_status.{status}")
    except KeyError:  # a status newer than this table
        return status


def ticket_table(items: list[dict[str, Any]], tz, lang: str) -> dict[str, list]:
    """Rows of ``tickets.as_dict``: id, created (in ``tz``), name, contact, summary, status, conversation id."""
    rows = [
        [t["id"], short_time(t["created_at"], tz), t["name"], t["contact"], t["summary"],
         ticket_status(t["status"], lang), t["conversation_id"] or ""]
        for t in items
    ]
    return {"headers": [text(lang, c) for c in COLUMNS], "data": rows}


def ticket_choices(items: list[dict[str, Any]], lang: str) -> list[tuple[str, int]]:
    return [(f"#{t['id']} · {t['name'] or t['contact']} · {t['summary'][:40]} · {ticket_status(t['status'], lang)}",
             t["id"]) for t in items]


def ticket_id(value: Any) -> int | None:
    """The id from the dropdown or a clicked row (an int, or its text after a trip through the browser)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# ---- handlers ----------------------------------------------------------------------


class TicketHandlers:
    """Handlers of the tab, bound to one ``Lingxi``."""

    def __init__(self, lingxi: Lingxi):
        self.lingxi = lingxi

    def view(self, show: str, selected: Any = None, request: gr.Request = None) -> tuple:
        """[table, ticket dropdown]; the selection is kept while it is listed."""
        lang, selected = lang_of(request), ticket_id(selected)
        status = show if show in ("open", "closed") else None
        with self.lingxi.db.session() as s:
            items = [tickets.as_dict(t) for t in tickets.list_all(session=s, status=status)]
        choices = ticket_choices(items, lang)
        value = selected if any(v == selected for _, v in choices) else None
        return ticket_table(items, self.lingxi.settings.tz, lang), gr.Dropdown(choices=choices, value=value)

    def close(self, selected: Any, show: str, request: gr.Request = None) -> tuple:
        """[table, ticket dropdown, status]."""
        lang, tid = lang_of(request), ticket_id(selected)
        if tid is None:
            message = text(lang, "select_ticket_first")
        else:
            try:
                with self.lingxi.db.session() as s:
                    tickets.close(tid, session=s)
                message = None
            except tickets.TicketError:  # gone: another tab, or the database was reset
                message = text(lang, "ticket_not_found", id=tid)
        if message:
            gr.Warning(html.escape(message, quote=False))
            return *self.view(show, None, request), message
        return *self.view(show, tid, request), text(lang, "ticket_closed", id=tid)


# ---- layout ------------------------------------------------------------------------


def build_tickets_tab(lingxi: Lingxi, blocks: gr.Blocks, i18n: gr.I18n) -> None:
    """The Tickets tab; call inside ``gr.Tabs()`` within ``blocks``."""
    h = TicketHandlers(lingxi)
    with gr.Tab(i18n("tab_tickets"), elem_id="lingxi-tab-tickets") as tab:
        with gr.Row():
            show = gr.Radio([(i18n(f"tickets_filter.{f}"), f) for f in FILTERS], value="open",
                            label=i18n("tickets_filter"), scale=4)
            refresh = gr.Button(i18n("refresh"), size="sm", scale=0, min_width=100)
        table = gr.Dataframe(label=i18n("tab_tickets"), interactive=False, wrap=True, elem_id="lingxi-tickets")
        with gr.Row():
            pick = gr.Dropdown(label=i18n("select_ticket"), info=i18n("kb_select_info"), choices=[], scale=4,
                               elem_id="lingxi-ticket-pick")
            close = gr.Button(i18n("close_ticket"), variant="primary", scale=1, elem_id="lingxi-ticket-close")
        status = gr.Markdown(elem_id="lingxi-ticket-status")

    gr.on([tab.select, refresh.click, show.change], h.view, [show, pick], [table, pick], show_progress="hidden")
    table.select(first_cell, None, pick, show_progress="hidden")
    close.click(h.close, [pick, show], [table, pick, status])
