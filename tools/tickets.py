"""The hand-off tool: record a ticket so a human follows up with the customer."""

from __future__ import annotations

from assistant import tickets
from tools.registry import ToolContext


def create_ticket(context: ToolContext, contact: str, summary: str, name: str = "") -> dict:
    """Hand the conversation to a human: record the customer's contact and what they need.

    Args:
        contact: the customer's e-mail address or phone number, exactly as they gave it. Ask for it first.
        summary: one or two sentences on what the customer needs, in their language.
        name: the customer's name, if they gave one.
    """
    with context.db.session() as session:
        ticket = tickets.create(
            session=session, contact=contact, summary=summary, name=name, conversation_id=context.conversation_id
        )
        return {"ok": True, "ticket_id": ticket.id, "message": "A colleague will contact the customer."}
