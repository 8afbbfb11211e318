"""The clock tool: the current date and time in a given or the owner's zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tools.registry import ToolContext


def current_time(context: ToolContext, timezone: str | None = None) -> dict:
    """Get the current date, time and weekday, in the owner's time zone unless another is named.

    Args:
        timezone: IANA time zone name such as "Asia/Shanghai" or "Europe/London"; omit for the owner's own.
    """
    name = timezone or context.settings.timezone
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}; use an IANA name like Asia/Shanghai") from None
    now = datetime.now(zone)
    return {"timezone": name, "iso": now.isoformat(timespec="seconds"), "weekday": now.strftime("%A")}
