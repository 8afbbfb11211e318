"""The owner's admin tabs: Knowledge base (``ui.admin_kb``) and Tickets (``ui.admin_tickets``).

``build_admin_tabs(lingxi, blocks, i18n)`` adds both to the page, after the
schedule tabs. Like the rest of the owner's page, every event is callable
through ``/gradio_api``: mount this only where the owner is meant to reach it.
"""

from __future__ import annotations

import gradio as gr

from assistant.services import Lingxi
from ui.admin_kb import build_kb_tab
from ui.admin_tickets import build_tickets_tab


def build_admin_tabs(lingxi: Lingxi, blocks: gr.Blocks, i18n: gr.I18n) -> None:
    """The Knowledge base and Tickets tabs; call inside ``gr.Tabs()`` within ``blocks``."""
    build_kb_tab(lingxi, blocks, i18n)
    build_tickets_tab(lingxi, blocks, i18n)
