"""Find the event or reminder a user names in their own words.

"Delete the dentist", 「把给王总回电话的提醒取消」: the owner names a record by its title or
text, not by its id. ``named`` matches such a name against the records' labels: an exact
match (ignoring case, spaces, quotes and punctuation) wins; without one, a label that holds
the name or is held by it ("dentist" for "Dentist appointment"). Matching is deliberately
literal: no fuzzy scores, so a tool never acts on a record the user did not name. When
several records match, callers ask the user which one instead of guessing.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")

# Shortest name or label a containment match accepts: a single character would match half
# the calendar.
MIN_CONTAINED = 2


def normal(text: str) -> str:
    """Casefolded, NFKC, with whitespace, quotes and punctuation removed: 「 Dentist 」 -> dentist."""
    text = unicodedata.normalize("NFKC", text or "").casefold()
    return "".join(c for c in text if not (c.isspace() or unicodedata.category(c)[0] in "PS"))


def named(name: str, rows: Iterable[T], label: Callable[[T], str],
          prefer: Callable[[T], bool] | None = None) -> list[T]:
    """The rows whose ``label`` the user's ``name`` designates: exact matches if any, else containment.
    When several match and some of them are ``prefer``red (an event still to come), only those."""
    want = normal(name)
    if not want:
        return []
    labelled = [(r, normal(label(r))) for r in rows]
    found = [r for r, have in labelled if have == want] or [
        r for r, have in labelled
        if have and ((want in have and len(want) >= MIN_CONTAINED) or (have in want and len(have) >= MIN_CONTAINED))
    ]
    preferred = [r for r in found if prefer(r)] if prefer and len(found) > 1 else []
    return preferred or found
