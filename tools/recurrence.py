"""RFC 5545 RRULE helpers that keep local wall-clock time across DST switches.

A rule is an RRULE body without the ``RRULE:`` prefix, e.g.
``FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR``; its time of day comes from ``dtstart``.

How occurrences are computed:

* Expansion happens in local wall time: ``dtstart`` (zone-aware) is made naive
  in its own zone, dateutil expands the rule, and the zone is attached to each
  result. "Every day 09:00 Europe/Berlin" therefore stays 09:00 local on both
  sides of a DST switch while its UTC instant moves by an hour. HOURLY and
  MINUTELY rules are expanded in wall time too, so "every hour" has a
  two-hour gap in real time on the fall-back night and a collapsed hour in spring.
* A wall time that does not exist (the spring-forward gap, e.g. 02:30 on the
  switch day in Europe/Berlin) is read with the offset in force before the
  switch (PEP 495 ``fold=0``) and normalized, which moves it forward by the
  length of the gap: 02:30 becomes 03:30 summer time. Two occurrences that
  land on the same instant this way are reported once.
* A wall time that occurs twice (fall-back) means its first occurrence, the one
  in summer time (``fold=0``).
* Comparisons are made on UTC instants: Python compares two datetimes that share
  a tzinfo by wall time alone, which is wrong around a fall-back.
* As in dateutil (and unlike RFC 5545), ``dtstart`` is an occurrence only if it
  matches the rule. COUNT counts occurrences from ``dtstart``.
* UNTIL may be UTC (``...Z``), a floating local date-time, or a date (meaning
  the end of that local day); :func:`validate_rrule` writes it back in UTC.

What is refused (ValueError): SECONDLY rules and BYSECOND, anything that fires
more often than once every 5 minutes (so MINUTELY needs INTERVAL>=5), ordinal
BYDAY values outside MONTHLY/YEARLY, both COUNT and UNTIL, unknown parts.
Rules that never occur raise a ValueError whose message says "never occurs";
a rule whose first occurrence lies beyond a search horizon (400 years for
YEARLY and MONTHLY, down to 2 years for MINUTELY) counts as never occurring.

Not handled: RDATE/EXDATE, VTIMEZONE, recurrence sets; iteration always starts
at ``dtstart``, so a years-old HOURLY rule is slower to query than a fresh one.
"""

from __future__ import annotations

import re
from calendar import monthrange
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo

from dateutil import rrule as du

MIN_SPACING = timedelta(minutes=5)
# Wall time and real time differ by at most a DST shift (2 h anywhere today);
# searches start this much earlier in wall time so nothing is skipped.
_SLACK = timedelta(hours=3)
_FREQS = {"YEARLY": du.YEARLY, "MONTHLY": du.MONTHLY, "WEEKLY": du.WEEKLY, "DAILY": du.DAILY,
          "HOURLY": du.HOURLY, "MINUTELY": du.MINUTELY}
_HORIZON_YEARS = {"YEARLY": 400, "MONTHLY": 400, "WEEKLY": 100, "DAILY": 50, "HOURLY": 10, "MINUTELY": 2}
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
# Canonical order of parts in a normalized rule; also the set of parts accepted.
_ORDER = ("FREQ", "INTERVAL", "COUNT", "UNTIL", "BYMONTH", "BYWEEKNO", "BYYEARDAY", "BYMONTHDAY",
          "BYDAY", "BYHOUR", "BYMINUTE", "BYSETPOS", "WKST")
_INT_PARTS = {"BYMONTH": (1, 12, False), "BYWEEKNO": (1, 53, True), "BYYEARDAY": (1, 366, True),
              "BYMONTHDAY": (1, 31, True), "BYHOUR": (0, 23, False), "BYMINUTE": (0, 59, False),
              "BYSETPOS": (1, 366, True)}
_BYDAY = re.compile(r"([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)")
_UNTIL = re.compile(r"(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})(Z?))?")


@dataclass(frozen=True)
class _Rule:
    parts: dict[str, str]  # normalized text of each part, for validate_rrule's answer
    kwargs: dict[str, object]  # arguments for dateutil.rrule.rrule, without dtstart
    until: datetime | None  # naive local wall time


def localize(wall: datetime, zone: tzinfo) -> datetime:
    """Attach ``zone`` to a naive wall time: gap times move forward, repeated times take fold=0."""
    aware = wall.replace(tzinfo=zone, fold=0)
    # The UTC round trip normalizes a gap time to the real instant it names.
    return aware.astimezone(timezone.utc).astimezone(zone)


def validate_rrule(rule: str, *, dtstart: datetime) -> str:
    """Check ``rule`` against ``dtstart`` and return it normalized; ValueError if malformed or never occurring."""
    zone = _zone_of(dtstart)
    parsed = _parse(rule, zone)
    start = _wall(dtstart, zone)
    if parsed.kwargs.get("count") == 0:
        raise ValueError("rule never occurs: COUNT=0")
    _check_month_days(parsed)
    _check_dates_exist(parsed, start)
    horizon = start.replace(year=min(start.year + _HORIZON_YEARS[parsed.parts["FREQ"]], 9999))
    first = next(iter(_build(parsed, start, cap=horizon)), None)
    if first is None:
        raise ValueError("rule never occurs after dtstart (or not within the search horizon)")
    # Any too-dense pattern shows within a year of the first occurrence.
    _check_spacing(_build(parsed, start, cap=first + timedelta(days=366)))
    return ";".join(f"{key}={parsed.parts[key]}" for key in _ORDER if key in parsed.parts)


def next_occurrence(rule: str, *, dtstart: datetime, after: datetime, inclusive: bool = False) -> datetime | None:
    """The first occurrence after ``after`` (or at it, when inclusive), in dtstart's zone; None when none is left."""
    zone = _zone_of(dtstart)
    if after.tzinfo is None:
        raise ValueError("after must be zone-aware")
    limit = after.astimezone(timezone.utc)
    for occurrence in _walk(_parse(rule, zone), dtstart, zone, after):
        instant = occurrence.astimezone(timezone.utc)
        if instant > limit or (inclusive and instant == limit):
            return occurrence
    return None


def occurrences(rule: str, *, dtstart: datetime, start: datetime, end: datetime, limit: int = 1000) -> list[datetime]:
    """Occurrences with ``start <= t < end`` (any zones), at most ``limit``, in dtstart's zone."""
    zone = _zone_of(dtstart)
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be zone-aware")
    found: list[datetime] = []
    first, stop = start.astimezone(timezone.utc), end.astimezone(timezone.utc)
    for occurrence in _walk(_parse(rule, zone), dtstart, zone, start):
        instant = occurrence.astimezone(timezone.utc)
        if instant >= stop or len(found) >= limit:
            break
        if instant >= first:
            found.append(occurrence)
    return found


def _walk(parsed: _Rule, dtstart: datetime, zone: tzinfo, from_: datetime) -> Iterator[datetime]:
    """Aware occurrences in time order from a little before ``from_``, each instant once."""
    wall_from = from_.astimezone(zone).replace(tzinfo=None) - _SLACK
    previous: datetime | None = None
    for wall in _build(parsed, _wall(dtstart, zone)).xafter(wall_from, inc=True):
        # localize() never reorders wall times, so this stream stays sorted.
        aware = localize(wall, zone)
        instant = aware.astimezone(timezone.utc)
        if instant != previous:
            yield aware
        previous = instant


def _zone_of(dtstart: datetime) -> tzinfo:
    if dtstart.tzinfo is None:
        raise ValueError("dtstart must be zone-aware")
    return dtstart.tzinfo


def _wall(moment: datetime, zone: tzinfo) -> datetime:
    return moment.astimezone(zone).replace(tzinfo=None, fold=0)


def _build(parsed: _Rule, start: datetime, cap: datetime | None = None) -> du.rrule:
    kwargs = dict(parsed.kwargs)
    until = parsed.until
    if cap is not None:
        # dateutil takes COUNT or UNTIL, not both; a positive COUNT cannot remove the first
        # occurrences, and the spacing check reads at most 60 of them, so the cap may replace it.
        kwargs.pop("count", None)
        until = cap if until is None else min(until, cap)
    try:
        return du.rrule(dtstart=start, until=until, **kwargs)  # type: ignore[arg-type]
    except (ValueError, TypeError) as exc:
        raise ValueError(f"malformed rule: {exc}") from None


def _parse(rule: str, zone: tzinfo) -> _Rule:
    body = rule.strip().upper()
    body = body.removeprefix("RRULE:")
    parts: dict[str, str] = {}
    for chunk in filter(None, (c.strip() for c in body.split(";"))):
        key, sep, value = chunk.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not value:
            raise ValueError(f"malformed rule part {chunk!r}")
        if key in parts:
            raise ValueError(f"rule part {key} given twice")
        if key in ("BYSECOND",) or (key == "FREQ" and value == "SECONDLY"):
            raise ValueError("rules more frequent than once every 5 minutes are not supported")
        if key not in _ORDER:
            raise ValueError(f"unsupported rule part {key}")
        parts[key] = value
    freq = parts.get("FREQ")
    if freq not in _FREQS:
        raise ValueError(f"rule needs FREQ=YEARLY|MONTHLY|WEEKLY|DAILY|HOURLY|MINUTELY, got {freq!r}")
    kwargs: dict[str, object] = {"freq": _FREQS[freq]}
    interval = _positive(parts.get("INTERVAL", "1"), "INTERVAL")
    if freq == "MINUTELY" and interval * 60 < MIN_SPACING.total_seconds():
        raise ValueError("rules more frequent than once every 5 minutes are not supported (MINUTELY needs INTERVAL>=5)")
    kwargs["interval"] = interval
    if interval == 1:
        parts.pop("INTERVAL", None)
    else:
        parts["INTERVAL"] = str(interval)
    if "COUNT" in parts and "UNTIL" in parts:
        raise ValueError("a rule may not have both COUNT and UNTIL")
    if "COUNT" in parts:
        if not parts["COUNT"].isdigit():
            raise ValueError("COUNT must be a non-negative integer")
        kwargs["count"] = int(parts["COUNT"])
        parts["COUNT"] = str(kwargs["count"])
    until = None
    if "UNTIL" in parts:
        until = _until(parts["UNTIL"], zone)
        parts["UNTIL"] = localize(until, zone).astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for key, (low, high, signed) in _INT_PARTS.items():
        if key in parts:
            values = _int_list(parts[key], key, low, high, signed)
            kwargs[key.lower()] = values
            parts[key] = ",".join(str(v) for v in values)
    if "BYDAY" in parts:
        days = _byday(parts["BYDAY"], freq)
        kwargs["byweekday"] = [du.weekdays[_WEEKDAYS.index(d)](n) if n else du.weekdays[_WEEKDAYS.index(d)]
                               for n, d in days]
        parts["BYDAY"] = ",".join(f"{n or ''}{d}" for n, d in days)
    if "WKST" in parts:
        if parts["WKST"] not in _WEEKDAYS:
            raise ValueError(f"bad WKST {parts['WKST']!r}")
        kwargs["wkst"] = _WEEKDAYS.index(parts["WKST"])
        if parts["WKST"] == "MO":
            del parts["WKST"]
    return _Rule(parts=parts, kwargs=kwargs, until=until)


def _positive(text: str, key: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{key} must be a positive integer")
    return int(text)


def _int_list(text: str, key: str, low: int, high: int, signed: bool) -> list[int]:
    values: list[int] = []
    for item in text.split(","):
        try:
            value = int(item)
        except ValueError:
            raise ValueError(f"{key} needs integers, got {item!r}") from None
        if not (low <= value <= high or (signed and low <= -value <= high)):
            raise ValueError(f"{key} value {value} out of range")
        if value not in values:
            values.append(value)
    return sorted(values)


def _byday(text: str, freq: str) -> list[tuple[int, str]]:
    days: list[tuple[int, str]] = []
    for item in text.split(","):
        match = _BYDAY.fullmatch(item.strip())
        if not match:
            raise ValueError(f"bad BYDAY value {item!r}")
        n = int(match.group(1) or 0)
        if n and (freq not in ("MONTHLY", "YEARLY") or not 1 <= abs(n) <= 53):
            raise ValueError(f"BYDAY ordinal {item!r} is only allowed in MONTHLY or YEARLY rules (1..53)")
        if (n, match.group(2)) not in days:
            days.append((n, match.group(2)))
    return sorted(days, key=lambda nd: (_WEEKDAYS.index(nd[1]), nd[0]))


def _until(text: str, zone: tzinfo) -> datetime:
    match = _UNTIL.fullmatch(text)
    if not match:
        raise ValueError(f"bad UNTIL {text!r}; use YYYYMMDD or YYYYMMDDTHHMMSS[Z]")
    y, mo, d, h, mi, s, utc = match.groups()
    try:
        if h is None:
            # A bare date keeps the whole local day.
            return datetime.combine(date(int(y), int(mo), int(d)), time(23, 59, 59))
        moment = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s))
    except ValueError:
        raise ValueError(f"UNTIL {text!r} is not a real date") from None
    return moment.replace(tzinfo=timezone.utc).astimezone(zone).replace(tzinfo=None) if utc else moment


def _check_month_days(parsed: _Rule) -> None:
    """Cheap exact check of BYMONTH x BYMONTHDAY, the common way to write a rule that never happens."""
    months = parsed.kwargs.get("bymonth")
    days = parsed.kwargs.get("bymonthday")
    if not isinstance(months, list) or not isinstance(days, list):
        return
    # February is taken at its leap-year length: Feb 29 does happen.
    if not any(abs(day) <= monthrange(2000, month)[1] for month in months for day in days):
        raise ValueError("rule never occurs: no such day in the given months")


def _check_dates_exist(parsed: _Rule, start: datetime) -> None:
    """Some date must pass the date filters; checked as a YEARLY rule, which dateutil walks quickly."""
    keys = ("bymonth", "byweekno", "byyearday", "bymonthday")
    filters = {k: parsed.kwargs[k] for k in keys if k in parsed.kwargs}
    weekdays = parsed.kwargs.get("byweekday")
    if isinstance(weekdays, list):
        # Ordinals (the 5th Friday) only narrow the set further, so plain weekdays make a sound test.
        filters["byweekday"] = sorted({du.weekdays[w.weekday] for w in weekdays}, key=lambda w: w.weekday)
    if not filters:
        return
    first_day = datetime(start.year, 1, 1)
    probe = du.rrule(du.YEARLY, dtstart=first_day, until=first_day.replace(year=min(start.year + 400, 9999)),
                     **filters)  # type: ignore[arg-type]
    if next(iter(probe), None) is None:
        raise ValueError("rule never occurs: no date matches its BY* parts")


def _check_spacing(expanded: du.rrule) -> None:
    previous: datetime | None = None
    for index, wall in enumerate(expanded):
        if previous is not None and wall - previous < MIN_SPACING:
            raise ValueError("rules more frequent than once every 5 minutes are not supported")
        previous = wall
        if index >= 60:
            return
