"""English rules for ``tools.timeparse``: number words, month and day names, token patterns, messages.

Like ``tools.timeparse_zh`` it is plain data (it takes only the ``Rule`` type from there): each
rule maps a regex match to a dict of ``_Phrase`` fields, and ``tools.timeparse`` does all the date
arithmetic. ``SHARED`` holds the numeric forms
(2026-05-01, 15:30) that Chinese phrases use too. It does not resolve anything itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from tools.timeparse_zh import Rule

_WORDS = MappingProxyType({"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
                           "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "other": 2})
_MONTHS = MappingProxyType({name: i for i, names in enumerate(
    ("jan january", "feb february", "mar march", "apr april", "may", "jun june", "jul july", "aug august",
     "sep sept september", "oct october", "nov november", "dec december"), 1) for name in names.split()})
_DAYS = MappingProxyType({name: i for i, names in enumerate(
    ("mon monday", "tue tues tuesday", "wed wednesday", "thu thur thurs thursday", "fri friday",
     "sat saturday", "sun sunday")) for name in names.split()})
MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
               "October", "November", "December")


def _alt(names: Mapping[str, int] | tuple[str, ...]) -> str:
    return "(?:" + "|".join(sorted(names, key=len, reverse=True)) + ")"


_NUMWORD = r"(?:\d+|" + _alt(tuple(w for w in _WORDS if w != "other")) + ")"
# Hours never read "a"/"an": "at a quarter past 3" is not 1 o'clock.
_HOURWORD = r"(?:\d{1,2}|" + _alt(tuple(w for w in _WORDS if len(w) > 2)) + ")"
_DAY_RE = _alt(_DAYS)
_MONTH_RE = _alt(_MONTHS)
_UNITS = MappingProxyType({"minute": ("MINUTELY", "minutes", 1), "min": ("MINUTELY", "minutes", 1),
                           "hour": ("HOURLY", "minutes", 60), "hr": ("HOURLY", "minutes", 60),
                           "day": ("DAILY", "days", 1), "week": ("WEEKLY", "days", 7),
                           "month": ("MONTHLY", "months", 1), "year": ("YEARLY", "months", 12)})
_UNIT_RE = _alt(_UNITS)
_EN_PERIODS = MappingProxyType({"morning": "morning", "afternoon": "afternoon", "evening": "evening",
                                "night": "evening", "a": "am", "p": "pm"})


def _num(word: str) -> int:
    return int(word) if word.isdigit() else _WORDS[word]


def _en_days(m: re.Match[str]) -> dict[str, object]:
    days: list[int] = []
    for sep, name in re.findall(r"(through|thru|to|-)?\s*\b(" + _DAY_RE + r")s?\b", m.group("days")):
        day = _DAYS[name]
        if sep and days and day > days[-1]:
            days.extend(range(days[-1] + 1, day))
        days.append(day)
    return {"freq": "WEEKLY", "byday": tuple(sorted(set(days)))}


def _en_delta(m: re.Match[str]) -> dict[str, object] | None:
    n = m.group("n")
    amount = 0.5 if n.startswith("half") else float(n) if n[0].isdigit() else float(_num(n))
    amount += 0.5 if m.group("half") else 0
    _, kind, factor = _UNITS[m.group("unit")]
    total = amount * factor
    if total <= 0 or (kind != "minutes" and total != int(total)):
        return None
    return {f"delta_{kind}": int(round(total))}


def _en_clock(m: re.Match[str]) -> dict[str, object]:
    hour, minute = int(m.group("h")), int(m.group("m") or 0)
    return {"hour": hour, "minute": minute, "period": _EN_PERIODS[m.group("ap")[0]]}


def _hhmm(m: re.Match[str]) -> dict[str, object]:
    hour = int(m.group("h"))
    return {"hour": hour, "minute": int(m.group("m")), "h24": m.group("h").startswith("0") or hour == 0 or hour >= 13}


def _quarter(m: re.Match[str]) -> dict[str, object]:
    hour, minute = _num(m.group("h")), 30 if m.group("q") == "half" else 15
    if m.group("dir") == "to":
        hour, minute = (hour - 1) or 12, 60 - minute
    return {"hour": hour, "minute": minute, **({"period": _EN_PERIODS[m.group("ap")[0]]} if m.group("ap") else {})}


def _date_fields(m: re.Match[str]) -> dict[str, object]:
    out: dict[str, object] = {"day": int(m.group("d"))}
    groups = m.groupdict()
    if groups.get("mon"):
        out["month"] = _MONTHS[m.group("mon")]
    elif groups.get("m"):
        out["month"] = int(m.group("m"))
    if groups.get("y"):
        out["year"] = int(m.group("y"))
    return out


SHARED: tuple[Rule, ...] = (
    (re.compile(r"(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})(?!\d)"), _date_fields),
    (re.compile(r"(?:at\s+)?(?P<h>\d{1,2}):(?P<m>\d{2})(?::00)?(?![\d:])"), _hhmm),
)
# Order matters, the first rule that matches at a position wins: recurrences before the weekdays and
# units they contain, relative times before bare numbers, am/pm before plain HH:MM, "at N" last.
RULES: tuple[Rule, ...] = (
    (re.compile(r"(?:every|each)\s+(?:week\s?day|work\s?day|working\s+day|business\s+day)s?\b"
                r"|(?:on\s+)?(?:weekdays|workdays)\b"), lambda m: {"freq": "WEEKLY", "byday": (0, 1, 2, 3, 4)}),
    (re.compile(r"(?:every|each)\s+weekend\b|(?:on\s+)?weekends\b"), lambda m: {"freq": "WEEKLY", "byday": (5, 6)}),
    (re.compile(r"(?:(?:every|each)\s+(?P<days>" + _DAY_RE + r"(?:\s*(?:,\s*and|,|and|&|/|through|thru|to|-)\s*"
                + _DAY_RE + r")*)|(?:on\s+)?(?P<plural>" + _DAY_RE + r"s(?:\s*(?:,\s*and|,|and|&)\s*" + _DAY_RE
                + r"s)*))\b"), lambda m: _en_days(m) if m.group("days") else _en_days_plural(m)),
    (re.compile(r"(?:every|each)\s+(?:(?P<n>" + _NUMWORD + r"|other)\s+)?(?P<unit>" + _UNIT_RE + r")s?\b"),
     lambda m: {"freq": _UNITS[m.group("unit")][0], "interval": _num(m.group("n") or "1")}),
    (re.compile(r"(?P<adv>hourly|daily|weekly|monthly|yearly|annually)\b"),
     lambda m: {"freq": {"annually": "YEARLY"}.get(m.group("adv"), m.group("adv").upper())}),
    (re.compile(r"(?:every|each)\s+(?P<p>morning|afternoon|evening|night)\b"),
     lambda m: {"freq": "DAILY", "period": _EN_PERIODS[m.group("p")]}),
    (re.compile(r"(?:every|each)\s+(?=" + _MONTH_RE + r"\b)"), lambda m: {"freq": "YEARLY"}),
    (re.compile(r"(?:every|each)\s+(?=(?:the\s+)?\d{1,2}(?:st|nd|rd|th)\b)"), lambda m: {"freq": "MONTHLY"}),
    (re.compile(r"(?:in\s+(?P<n>half\s+an?|" + _NUMWORD + r"(?:\.\d+)?)\s+(?P<unit>" + _UNIT_RE + r")s?"
                r"(?P<half>\s+and\s+a\s+half)?)\b"), _en_delta),
    (re.compile(r"(?P<n>" + _NUMWORD + r"(?:\.\d+)?)\s+(?P<unit>" + _UNIT_RE + r")s?(?P<half>\s+and\s+a\s+half)?"
                r"\s+(?:from\s+now|later)\b"), _en_delta),
    (re.compile(r"(?:the\s+)?day\s+after\s+tomorrow\b"), lambda m: {"day_offset": 2}),
    (re.compile(r"(?:the\s+)?day\s+before\s+yesterday\b"), lambda m: {"day_offset": -2}),
    (re.compile(r"(?:tomorrow|tmrw|tmr)\b"), lambda m: {"day_offset": 1}),
    (re.compile(r"today\b"), lambda m: {"day_offset": 0}),
    (re.compile(r"tonight\b"), lambda m: {"day_offset": 0, "period": "evening"}),
    (re.compile(r"yesterday\b"), lambda m: {"day_offset": -1}),
    (re.compile(r"this\s+(?P<p>morning|afternoon|evening)\b"),
     lambda m: {"day_offset": 0, "period": _EN_PERIODS[m.group("p")]}),
    (re.compile(r"last\s+night\b"), lambda m: {"day_offset": -1, "period": "evening"}),
    (re.compile(r"(?:(?P<mod>next|this|coming|last)\s+)?(?P<d>" + _DAY_RE + r")\b"),
     lambda m: {"weekday": _DAYS[m.group("d")], "week_offset": {"next": 1, "last": -1}.get(m.group("mod") or "")}),
    (re.compile(r"(?P<mon>" + _MONTH_RE + r")\.?\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?\b(?:,?\s+(?P<y>\d{4})\b)?"),
     _date_fields),
    (re.compile(r"(?:the\s+)?(?P<d>\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<mon>" + _MONTH_RE + r")\b\.?"
                r"(?:,?\s+(?P<y>\d{4})\b)?"), _date_fields),
    (re.compile(r"(?:the\s+)?(?P<d>\d{1,2})(?:st|nd|rd|th)\b(?:\s+of\s+(?:the|each|every)\s+month\b)?"),
     _date_fields),
    (re.compile(r"(?:the\s+)?last\s+day(?:\s+of\s+(?:the|each|every)\s+month)?\b"), lambda m: {"day": -1}),
    (re.compile(r"(?:at\s+)?(?P<h>\d{1,2})(?::(?P<m>\d{2}))?\s*(?P<ap>a\.?m\.?|p\.?m\.?)(?![a-z0-9])"), _en_clock),
    *SHARED,
    (re.compile(r"(?:at\s+)?(?:noon|midday)\b"), lambda m: {"hour": 12, "h24": True}),
    (re.compile(r"(?:at\s+)?midnight\b"), lambda m: {"hour": 24, "h24": True}),
    (re.compile(r"(?:at\s+)?(?:a\s+)?(?P<q>half|quarter)\s+(?P<dir>past|to)\s+(?P<h>" + _HOURWORD + r")\b"
                r"(?:\s*(?P<ap>a\.?m\.?|p\.?m\.?)(?![a-z0-9]))?"), _quarter),
    (re.compile(r"(?:at\s+)?(?P<h>\d{1,2})\s*o'?clock\b"), lambda m: {"hour": int(m.group("h"))}),
    (re.compile(r"at\s+(?P<h>" + _HOURWORD + r")\b(?![:.]\d)"), lambda m: {"hour": _num(m.group("h"))}),
    (re.compile(r"(?:in\s+the\s+|at\s+)?(?P<p>morning|afternoon|evening|night)\b"),
     lambda m: {"period": _EN_PERIODS[m.group("p")]}),
)
FILLER = re.compile(r"[\s,.]+|(?:at|on|the)\b")


def _en_days_plural(m: re.Match[str]) -> dict[str, object]:
    days = sorted({_DAYS[d] for d in re.findall(r"\b(" + _DAY_RE + r")s\b", m.group("plural"))})
    return {"freq": "WEEKLY", "byday": tuple(days)}


MESSAGES: Mapping[str, str] = MappingProxyType({
    "unparsed": "I couldn't read “{text}” as a time. Could you say it another way, e.g. “tomorrow at 3pm”?",
    "ambiguous_hour": "Is that {am} or {pm}?",
    "morning_passed": "{am} today has already passed — did you mean {pm}?",
    "late_hour": "Do you mean {am} after midnight? Please say which day and time.",
    "need_hour": "What time exactly for “{text}”?",
    "date_conflict": "“{text}” names two different days ({a} and {b}) — which one?",
    "midnight_day": "For “{text}”, which day's midnight do you mean? Please say 12 am and the day.",
    "past_tomorrow": "{clock} today has already passed — did you mean tomorrow at {clock}?",
    "past": "{when} is in the past — please give a future time.",
    "impossible_date": "{what} doesn't exist — please check the date.",
    "impossible_time": "“{text}” isn't a valid time — please check it.",
    "too_frequent": "Reminders can repeat at most every 5 minutes; “{text}” is too often.",
    "never": "“{text}” never happens ({what} doesn't exist) — please pick another date.",
    "bad_timezone": "Unknown time zone “{tz}”; use an IANA name such as Asia/Shanghai.",
})
