"""Tickets: the hand-off from the assistant to a human, and the owner's list of them.

Service functions with a keyword-only ``session``. A ticket records who to
contact (an e-mail address or phone number, checked loosely but never
guessed), a summary, and the conversation it came from; the owner reads and
closes them in the admin UI.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from assistant.models import Conversation, Ticket, utcnow

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
PHONE = re.compile(r"\+?[\d\s().-]{6,20}")
MAX_SUMMARY = 4000


class TicketError(ValueError):
    """Bad ticket input; str() says what to ask the visitor for."""


def create(*, session: Session, contact: str, summary: str, name: str = "", conversation_id: str | None = None) -> Ticket:
    contact, summary, name = (contact or "").strip(), (summary or "").strip(), (name or "").strip()
    if not (EMAIL.fullmatch(contact) or (PHONE.fullmatch(contact) and sum(c.isdigit() for c in contact) >= 6)):
        raise TicketError("a ticket needs the visitor's e-mail address or phone number; ask them for it")
    if not summary:
        raise TicketError("a ticket needs a short summary of what the visitor needs")
    if len(summary) > MAX_SUMMARY:
        raise TicketError(f"the summary is too long (at most {MAX_SUMMARY} characters)")
    if conversation_id and session.get(Conversation, conversation_id) is None:
        conversation_id = None  # the link is a convenience; never fail a hand-off over it
    ticket = Ticket(contact=contact, summary=summary, name=name[:200], conversation_id=conversation_id)
    session.add(ticket)
    session.flush()
    return ticket


def list_all(*, session: Session, status: str | None = None, limit: int = 500) -> list[Ticket]:
    query = select(Ticket).order_by(Ticket.created_at.desc()).limit(limit)
    if status:
        query = query.where(Ticket.status == status)
    return list(session.scalars(query))


def close(ticket_id: int, *, session: Session) -> Ticket:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise TicketError(f"no ticket {ticket_id}")
    if ticket.status != "closed":
        ticket.status, ticket.closed_at = "closed", utcnow()
    return ticket


def as_dict(ticket: Ticket) -> dict[str, Any]:
    return {
        "id": ticket.id,
        "conversation_id": ticket.conversation_id,
        "name": ticket.name,
        "contact": ticket.contact,
        "summary": ticket.summary,
        "status": ticket.status,
        "created_at": ticket.created_at.isoformat(),
        "closed_at": ticket.closed_at.isoformat() if ticket.closed_at else None,
    }
