"""Resolve a time phrase (Chinese or English, or ISO-8601) to a moment or a recurrence.

``resolve("明天下午三点", now=..., tz="Asia/Shanghai")`` gives a zone-aware
``Resolved``; a recurrence ("每周一早上9点", "every weekday at 8am") gives its
RRULE body and its first occurrence at or after now (via ``tools.recurrence``).
The input is a time phrase, not a sentence: surrounding spaces, a leading
"at"/"on"/"在" and filler such as 的 are tolerated, any other word is not.
The rules live in ``tools.timeparse_zh`` and ``tools.timeparse_en``; the arithmetic is here.

Policy -- never guess; when in doubt raise ``TimeParseError`` with a question:

* A bare hour (no 上午/下午/am/pm/morning..., not written 24-hour style as
  "15:30", "08:00" or "0点"): 1-6 is ambiguous; 7-11 means the morning; 12 means
  noon. When that morning time has already passed today but the evening one has
  not, it is ambiguous again ("today 8 am has passed -- did you mean 8 pm?").
* Periods: 下午/pm add 12 to 1-11; 晚上/evening/tonight add 12 to 5-11, take 12
  as midnight at the end of that day, and ask about 1-4; 中午 is 11-12 or 1-3 pm;
  12 am is 00:00, 12 pm is noon; "midnight" is the end of the named day.
* A time of day alone means today; once passed it is "past" with a question
  offering tomorrow. A one-off date or moment before now is "past"; an all-day
  date is past only from the next day on.
* Dates without a year take the next occurrence from today (Feb 29 the next leap
  year); a bare day of month ("5号", "the 5th") the next month that has it.
* Weekdays: a bare one (周五, Friday, this Friday) is the next such day, today
  included; 这周五/本周五 is the Friday of this Monday-first week (maybe past);
  下周五 and "next Friday" are the Friday of next week.
* Relative times: hours/minutes are exact elapsed time; days, weeks, months move
  the local calendar date and without a time of day give an all-day date.
* A recurrence without a time of day is all-day; every N hours/minutes without one
  starts N hours/minutes after now. INTERVAL counts from the first occurrence.
* Wall times in a DST gap move forward by the gap; repeated ones take the first.
* ISO-8601: a naive value is wall time in ``tz``; one with an offset or Z is
  converted to ``tz``. Past values are "past" like any other.
Error codes: unparsed, ambiguous, past, impossible (2月30日, 25点, 13pm,
too-frequent rules), bad_timezone, never (a recurrence with no occurrence).
Messages are Chinese when the input contains CJK characters, else English.

``now`` must be zone-aware (ValueError otherwise, a caller's bug, not the user's);
inputs over 120 characters are "unparsed".

Not handled: time ranges, durations, deadlines ("by Friday"), lunar dates,
US-style numeric dates ("12/1"), "next week"/"下周" without a day.
"""

from __future__ import annotations

import re
import unicodedata
from calendar import monthrange
from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta, timezone
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.relativedelta import relativedelta

from tools import timeparse_en as en
from tools import timeparse_zh as zh
from tools.recurrence import localize, next_occurrence, validate_rrule

ErrorCode = Literal["unparsed", "ambiguous", "past", "impossible", "bad_timezone", "never"]


@dataclass(frozen=True)
class Resolved:
    when: datetime  # zone-aware in the requested zone; a recurrence's first occurrence at or after now
    rrule: str | None  # RRULE body without "RRULE:"; None for a one-off
    all_day: bool  # a date with no time of day
    text: str  # the input


class TimeParseError(ValueError):
    """A phrase that can't be resolved without the user; str() is a question or complaint for them."""

    def __init__(self, code: ErrorCode, message: str, when: datetime | None = None) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.when = when  # for "past": the moment it resolved to, which ranges ("since Monday") can still use


@dataclass(frozen=True)
class _Phrase:
    """What the tokens of one phrase said, before any date arithmetic."""

    freq: str | None = None
    interval: int = 1
    byday: tuple[int, ...] = ()
    year: int | None = None
    year_offset: int | None = None
    month: int | None = None
    month_offset: int | None = None
    day: int | None = None
    day_offset: int | None = None
    weekday: int | None = None
    week_offset: int | None = None
    hour: int | None = None
    minute: int = 0
    h24: bool = False
    period: str | None = None
    delta_minutes: int | None = None
    delta_days: int | None = None
    delta_months: int | None = None


_FIELDS = frozenset(f.name for f in fields(_Phrase))
_WD = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[t ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?"
                  r"(z|[+-]\d{2}(?::?\d{2})?)?)?")
_MAX_LEN = 120  # a time phrase, not a paragraph
_CJK = re.compile(r"[\u3000-\u9fff\uf900-\ufaff]")


@dataclass(frozen=True)
class _Ctx:
    text: str
    lang: str  # "zh" or "en"
    now: datetime  # in the requested zone
    zone: ZoneInfo

    @property
    def today(self) -> date:
        return self.now.date()

    def fail(self, code: ErrorCode, key: str, at: datetime | None = None, **values: object) -> TimeParseError:
        templates = zh.MESSAGES if self.lang == "zh" else en.MESSAGES
        return TimeParseError(code, templates[key].format(text=self.text.strip(), **values), at)

    def clock(self, hour: int, minute: int) -> str:
        if self.lang == "zh":
            return zh.clock(hour, minute)
        shown = hour % 12 or 12
        return f"{shown}{f':{minute:02d}' if minute else ''} {'am' if hour < 12 else 'pm'}"

    def day(self, value: date) -> str:
        if self.lang == "zh":
            return zh.day(value, today=self.today)
        if value == self.today:
            return "today"
        return f"{en.MONTH_NAMES[value.month - 1][:3]} {value.day}, {value.year}"

    def moment(self, value: datetime) -> str:
        day = self.day(value.date())
        if self.lang == "zh":
            return f"{day}{self.clock(value.hour, value.minute)}"
        clock = self.clock(value.hour, value.minute)
        return f"{clock} today" if day == "today" else f"{clock} on {day}"

    def what(self, year: int | None, month: int | None, day: int | None) -> str:
        """A date that does not exist, as the user wrote it (February 30, 2026年2月30日, 13月)."""
        if self.lang == "zh":
            return (f"{year}年" if year else "") + (f"{month}月" if month else "") + (f"{day}日" if day else "")
        if month is None or not 1 <= month <= 12:
            return f"month {month}" if month else f"day {day}"
        return f"{en.MONTH_NAMES[month - 1]}{f' {day}' if day else ''}{f', {year}' if year else ''}"


def resolve(text: str, *, now: datetime, tz: str) -> Resolved:
    """Resolve a Chinese or English time phrase, or ISO-8601, against ``now`` in zone ``tz``."""
    if now.tzinfo is None:
        raise ValueError("now must be zone-aware")
    lang = "zh" if _CJK.search(text) else "en"
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        probe = _Ctx(text, lang, now, ZoneInfo("UTC"))
        raise probe.fail("bad_timezone", "bad_timezone", tz=tz) from None
    ctx = _Ctx(text, lang, now.astimezone(zone), zone)
    # NFKC folds full-width digits and colons (１５：３０) into ASCII.
    clean = unicodedata.normalize("NFKC", text).strip().lower().replace("’", "'")
    if len(clean) > _MAX_LEN:
        raise ctx.fail("unparsed", "unparsed")
    iso = _ISO.fullmatch(clean)
    if iso:
        return _resolve_iso(iso, ctx)
    phrase = _parse(clean, zh.RULES + en.SHARED if lang == "zh" else en.RULES,
                    zh.FILLER if lang == "zh" else en.FILLER)
    if phrase is None:
        raise ctx.fail("unparsed", "unparsed")
    try:
        return _recurring(phrase, ctx) if phrase.freq else _one_off(phrase, ctx)
    except OverflowError:
        # "in 99999999 days" and the like run off the calendar.
        raise ctx.fail("impossible", "impossible_time") from None


def when_result(text: str, *, now: datetime | None, tz: str) -> dict:
    """For the CLI: {"when": ISO or None, "rrule": str or None, "error": message or None}; never raises."""
    try:
        if now is None:
            try:
                now = datetime.now(ZoneInfo(tz))
            except (ZoneInfoNotFoundError, ValueError, OSError):
                now = datetime.now().astimezone()  # resolve() reports the bad zone in the input's language
        result = resolve(text, now=now, tz=tz)
    except Exception as exc:  # noqa: BLE001 -- the CLI prints this dict; a traceback helps no one there
        return {"when": None, "rrule": None, "error": str(exc) or type(exc).__name__}
    return {"when": result.when.isoformat(), "rrule": result.rrule, "error": None}


def _parse(text: str, rules: tuple[zh.Rule, ...], filler: re.Pattern[str]) -> _Phrase | None:
    """Cut the whole text into known tokens and merge their fields; None when anything is left over."""
    merged: dict[str, object] = {}
    pos = 0
    while pos < len(text):
        for pattern, build in rules:
            match = pattern.match(text, pos)
            found = build(match) if match and match.end() > pos else None
            if found is not None and match is not None:
                if not _merge(merged, found):
                    return None
                pos = match.end()
                break
        else:
            skip = filler.match(text, pos)
            if not skip or skip.end() == pos:
                return None
            pos = skip.end()
    if not merged or set(merged) - _FIELDS:
        return None
    return _Phrase(**merged)  # type: ignore[arg-type]


def _merge(merged: dict[str, object], found: dict[str, object]) -> bool:
    for key, value in found.items():
        old = merged.get(key)
        if key == "period" and old is not None and old != value:
            # "tonight at 8pm": am/pm is the more exact of two agreeing periods.
            pair = {old, value}
            if pair not in ({"pm", "evening"}, {"pm", "afternoon"}, {"am", "morning"}, {"am", "dawn"}):
                return False
            value = "pm" if "pm" in pair else "am"
        elif key in merged and old != value:
            return False
        merged[key] = value
    return True


def _clock(p: _Phrase, ctx: _Ctx) -> tuple[int, int, bool] | None:
    """(hour 0-24, minute, tentative) from the phrase; 24 is the end of the day, tentative a bare 7-11."""
    h, m, period = p.hour, p.minute, p.period
    if h is None:
        return (12, 0, False) if period == "noon" else None
    if m > 59 or h > 24 or (h == 24 and (m or period not in (None, "evening", "late"))):
        raise ctx.fail("impossible", "impossible_time")
    if period is None:
        if p.h24 or h == 0 or h >= 12:
            return h, m, False
        if h >= 7:
            return h, m, True
        raise ctx.fail("ambiguous", "ambiguous_hour", am=ctx.clock(h, m), pm=ctx.clock(h + 12, m))
    if h >= 13:
        if period in ("am", "pm", "morning", "dawn"):
            raise ctx.fail("impossible", "impossible_time")
        return h, m, False
    if period == "am":
        return h % 12, m, False
    if period in ("pm", "afternoon"):
        if h == 0:
            raise ctx.fail("impossible", "impossible_time")
        return (h % 12) + 12, m, False
    if period in ("morning", "dawn"):
        return (0 if period == "dawn" and h == 12 else h), m, False
    if period == "noon":
        if h in (11, 12):
            return h, m, False
        if 0 < h <= 3:
            return h + 12, m, False
        raise ctx.fail("impossible", "impossible_time")
    # evening or late (半夜/深夜)
    if h in (0, 12):
        return 24, m, False
    if h >= (5 if period == "evening" else 9):
        return h + 12, m, False
    raise ctx.fail("ambiguous", "late_hour", am=ctx.clock(h, m))


def _before(a: datetime, b: datetime) -> bool:
    # In UTC: two datetimes sharing a tzinfo compare by wall time alone, wrong around a fall-back.
    return a.astimezone(timezone.utc) < b.astimezone(timezone.utc)


def _later(moment: datetime, elapsed: timedelta, zone: ZoneInfo) -> datetime:
    # In UTC: aware + timedelta is wall-clock arithmetic, an hour off across a DST switch.
    return (moment.astimezone(timezone.utc) + elapsed).astimezone(zone)


def _month_day(p: _Phrase, ctx: _Ctx) -> date | None:
    """The date named by year/month/day fields, or None when the phrase names none."""
    if all(v is None for v in (p.year, p.year_offset, p.month, p.month_offset, p.day)):
        return None
    today = ctx.today
    if p.day is None or p.day == -1 or (p.year is not None and p.year_offset is not None):
        raise ctx.fail("unparsed", "unparsed")
    year = p.year if p.year is not None else today.year + p.year_offset if p.year_offset is not None else None
    if p.month_offset is not None:
        if p.month is not None or year is not None:
            raise ctx.fail("unparsed", "unparsed")
        first = today.replace(day=1) + relativedelta(months=p.month_offset)
        if not 1 <= p.day <= monthrange(first.year, first.month)[1]:
            raise ctx.fail("impossible", "impossible_date", what=ctx.what(first.year, first.month, p.day))
        return first.replace(day=p.day)
    if p.month is None:
        if year is not None:
            raise ctx.fail("unparsed", "unparsed")
        if not 1 <= p.day <= 31:
            raise ctx.fail("impossible", "impossible_date", what=ctx.what(None, None, p.day))
        for ahead in range(13):
            first = today.replace(day=1) + relativedelta(months=ahead)
            if p.day <= monthrange(first.year, first.month)[1] and first.replace(day=p.day) >= today:
                return first.replace(day=p.day)
    if p.month is None or not 1 <= p.month <= 12 or not 1 <= p.day <= monthrange(2000, p.month)[1]:
        raise ctx.fail("impossible", "impossible_date", what=ctx.what(year, p.month, p.day))
    for candidate_year in ([year] if year is not None else range(today.year, today.year + 9)):
        if p.day <= monthrange(candidate_year, p.month)[1]:
            candidate = date(candidate_year, p.month, p.day)
            if year is not None or candidate >= today:
                return candidate
    raise ctx.fail("impossible", "impossible_date", what=ctx.what(year, p.month, p.day))


def _one_off(p: _Phrase, ctx: _Ctx) -> Resolved:
    today = ctx.today
    if p.delta_minutes is not None:
        named = (p.hour, p.period, p.day_offset, p.weekday, p.day, p.month, p.delta_days, p.delta_months)
        if any(v is not None for v in named):
            raise ctx.fail("unparsed", "unparsed")
        return Resolved(_later(ctx.now, timedelta(minutes=p.delta_minutes), ctx.zone), None, False, ctx.text)
    candidates: list[date] = []
    if p.delta_days is not None or p.delta_months is not None:
        candidates.append(today + relativedelta(months=p.delta_months or 0, days=p.delta_days or 0))
    if p.day_offset is not None:
        candidates.append(today + timedelta(days=p.day_offset))
    named_date = _month_day(p, ctx)
    if named_date is not None:
        candidates.append(named_date)
    if p.weekday is not None:
        if p.week_offset is None and candidates:
            # "12月1日周二": the weekday only confirms the date.
            if candidates[0].weekday() != p.weekday:
                wd = today + timedelta(days=(p.weekday - today.weekday()) % 7)
                raise ctx.fail("ambiguous", "date_conflict", a=ctx.day(candidates[0]), b=ctx.day(wd))
        elif p.week_offset is None:
            candidates.append(today + timedelta(days=(p.weekday - today.weekday()) % 7))
        else:
            candidates.append(today + timedelta(days=p.weekday - today.weekday() + 7 * p.week_offset))
    if len(set(candidates)) > 1:
        raise ctx.fail("ambiguous", "date_conflict", a=ctx.day(candidates[0]), b=ctx.day(candidates[1]))
    day = candidates[0] if candidates else today
    clock = _clock(p, ctx)
    if clock is None:
        if p.period is not None:
            raise ctx.fail("ambiguous", "need_hour")
        if not candidates:
            raise ctx.fail("unparsed", "unparsed")
        if day < today:
            raise ctx.fail("past", "past", localize(datetime.combine(day, time()), ctx.zone), when=ctx.day(day))
        return Resolved(localize(datetime.combine(day, time()), ctx.zone), None, True, ctx.text)
    hour, minute, tentative = clock
    when = localize(datetime.combine(day, time()) + timedelta(hours=hour, minutes=minute), ctx.zone)
    if _before(when, ctx.now):
        evening = localize(datetime.combine(day, time(hour + 12, minute)), ctx.zone) if tentative else None
        if evening is not None and not _before(evening, ctx.now):
            raise ctx.fail("ambiguous", "morning_passed", am=ctx.clock(hour, minute), pm=ctx.clock(hour + 12, minute))
        if not candidates and hour < 24:
            raise ctx.fail("past", "past_tomorrow", when, clock=ctx.clock(hour, minute))
        raise ctx.fail("past", "past", when, when=ctx.moment(when))
    return Resolved(when, None, False, ctx.text)


def _recurring(p: _Phrase, ctx: _Ctx) -> Resolved:
    freq = p.freq or ""
    fixed = (p.year, p.year_offset, p.month_offset, p.day_offset, p.week_offset, p.delta_minutes, p.delta_days,
             p.delta_months)
    if any(v is not None for v in fixed):
        raise ctx.fail("unparsed", "unparsed")
    byday = p.byday
    if p.weekday is not None:
        if freq != "WEEKLY" or byday:
            raise ctx.fail("unparsed", "unparsed")
        byday = (p.weekday,)
    parts = [f"FREQ={freq}"]
    if p.day is not None or p.month is not None:
        if p.day is None or freq not in ("MONTHLY", "YEARLY") or (freq == "YEARLY") != (p.month is not None):
            raise ctx.fail("unparsed", "unparsed")
        if (p.month is not None and not 1 <= p.month <= 12) or not (1 <= p.day <= 31 or p.day == -1):
            raise ctx.fail("impossible", "impossible_date", what=ctx.what(None, p.month, p.day))
        parts += [f"BYMONTH={p.month}"] if p.month is not None else []
        parts.append(f"BYMONTHDAY={p.day}")
    if byday:
        parts.append("BYDAY=" + ",".join(_WD[d] for d in byday))
    clock = _clock(p, ctx)
    all_day = False
    if clock is not None:
        hour, minute, _ = clock
        if hour == 24:
            if freq != "DAILY":
                raise ctx.fail("ambiguous", "midnight_day")
            hour = 0
        start = localize(datetime.combine(ctx.today, time(hour, minute)), ctx.zone)
        after = ctx.now
    elif freq in ("HOURLY", "MINUTELY"):
        step = timedelta(hours=p.interval) if freq == "HOURLY" else timedelta(minutes=p.interval)
        start = after = _later(ctx.now.replace(second=0, microsecond=0), step, ctx.zone)
    elif p.period is not None:
        raise ctx.fail("ambiguous", "need_hour")
    else:
        all_day = True
        start = after = localize(datetime.combine(ctx.today, time()), ctx.zone)
    # The first occurrence is the nearest match; an INTERVAL then counts from it.
    first = _first(";".join(parts), start, after, p, ctx)
    rule = ";".join(parts[:1] + ([f"INTERVAL={p.interval}"] if p.interval > 1 else []) + parts[1:])
    return Resolved(first, _validated(rule, first, p, ctx), all_day, ctx.text)


def _validated(rule: str, start: datetime, p: _Phrase, ctx: _Ctx) -> str:
    try:
        return validate_rrule(rule, dtstart=start)
    except ValueError as exc:
        if "never occurs" in str(exc):
            raise ctx.fail("never", "never", what=ctx.what(None, p.month, p.day)) from None
        if "5 minutes" in str(exc):
            raise ctx.fail("impossible", "too_frequent") from None
        raise ctx.fail("impossible", "impossible_date", what=ctx.what(None, p.month, p.day)) from None


def _first(rule: str, start: datetime, after: datetime, p: _Phrase, ctx: _Ctx) -> datetime:
    # MINUTELY without its INTERVAL would be refused as too frequent.
    probe = _validated(f"{rule};INTERVAL={p.interval}" if p.freq == "MINUTELY" else rule, start, p, ctx)
    if p.freq in ("HOURLY", "MINUTELY") and p.hour is None:
        return start
    first = next_occurrence(probe, dtstart=start, after=after, inclusive=True)
    if first is None:
        raise ctx.fail("never", "never", what=ctx.what(None, p.month, p.day))
    return first


def _resolve_iso(m: re.Match[str], ctx: _Ctx) -> Resolved:
    y, mo, d, h, mi, s, frac, offset = m.groups()
    try:
        day = date(int(y), int(mo), int(d))
    except ValueError:
        raise ctx.fail("impossible", "impossible_date", what=ctx.what(int(y), int(mo), int(d))) from None
    if h is None:
        if day < ctx.today:
            raise ctx.fail("past", "past", localize(datetime.combine(day, time()), ctx.zone), when=ctx.day(day))
        return Resolved(localize(datetime.combine(day, time()), ctx.zone), None, True, ctx.text)
    try:
        clock = time(int(h), int(mi), int(s or 0), int((frac or "0").ljust(6, "0")))
    except ValueError:
        raise ctx.fail("impossible", "impossible_time") from None
    wall = datetime.combine(day, clock)
    if offset:
        stamp = wall.isoformat() + ("+00:00" if offset == "z" else offset)
        try:
            when = datetime.fromisoformat(stamp).astimezone(ctx.zone)
        except ValueError:
            raise ctx.fail("impossible", "impossible_time") from None
    else:
        when = localize(wall, ctx.zone)
    if _before(when, ctx.now):
        raise ctx.fail("past", "past", when, when=ctx.moment(when))
    return Resolved(when, None, False, ctx.text)
