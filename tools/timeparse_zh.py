"""Chinese rules for ``tools.timeparse``: numerals, token patterns, messages.

This module only recognizes pieces of a Chinese time phrase; it decides
nothing about dates, policies or errors, which all live in ``tools.timeparse``.
It is a leaf (imports nothing from ``tools``), so the contract is plain data:

* ``RULES`` is an ordered tuple of ``(pattern, build)``; ``build(match)``
  returns a dict of phrase fields, or None when the match is not a token after
  all. Field names: freq, interval, byday, year, year_offset, month,
  month_offset, day, day_offset, weekday (0=Monday), week_offset, hour,
  minute, h24, period, delta_minutes, delta_days, delta_months. Periods:
  dawn, morning, noon, afternoon, evening, late.
* ``FILLER`` matches text with no meaning of its own (spaces, 在, 的, ...).
* ``MESSAGES`` holds the question or complaint for each error key, and
  ``clock``/``day`` write times and dates the way the questions need them.

Not covered: lunar dates and festivals (春节, 端午), 上旬/中旬/下旬, 周末 as a
one-off date, ranges ("三点到五点"), durations that are not relative times.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date
from types import MappingProxyType

Fields = dict[str, object]
Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], Fields | None]]

_DIGITS = MappingProxyType({"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
                            "六": 6, "七": 7, "八": 8, "九": 9})
_UNITS = MappingProxyType({"十": 10, "百": 100, "千": 1000})
NUM = r"[0-9零〇一二两三四五六七八九十百千]+"
_DAY = r"[一二三四五六七日天1-7]"
_WEEKDAY = MappingProxyType({"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "七": 6,
                             "1": 0, "2": 1, "3": 2, "4": 3, "5": 4, "6": 5, "7": 6})
_PERIODS = MappingProxyType({
    "凌晨": "dawn", "清晨": "morning", "早上": "morning", "早晨": "morning", "一早": "morning", "早": "morning",
    "上午": "morning", "中午": "noon", "正午": "noon", "午间": "noon", "下午": "afternoon", "午后": "afternoon",
    "傍晚": "evening", "黄昏": "evening", "晚上": "evening", "晚间": "evening", "夜里": "evening",
    "夜间": "evening", "夜晚": "evening", "晚": "evening", "半夜": "late", "深夜": "late",
})
# Longest first, so 早上 wins over 早.
_PERIOD_RE = "|".join(sorted(_PERIODS, key=len, reverse=True))
_RELATIVE_DAYS = MappingProxyType({
    "大大后天": (3, None), "大后天": (3, None), "后天": (2, None), "明天": (1, None), "明日": (1, None),
    "明儿": (1, None), "今天": (0, None), "今日": (0, None), "今儿": (0, None), "昨天": (-1, None),
    "昨日": (-1, None), "大前天": (-3, None), "前天": (-2, None), "今晚": (0, "evening"), "今夜": (0, "evening"),
    "今早": (0, "morning"), "今晨": (0, "morning"), "明早": (1, "morning"), "明晨": (1, "morning"),
    "明晚": (1, "evening"), "明夜": (1, "evening"), "昨晚": (-1, "evening"),
})
_WEEK_MODS = MappingProxyType({"上上": -2, "上": -1, "这": 0, "本": 0, "下下": 2, "下": 1})
_MONTH_MODS = MappingProxyType({"这个月": 0, "本月": 0, "下下个月": 2, "下下月": 2, "下个月": 1, "下月": 1,
                                "上个月": -1, "上月": -1})
_YEAR_MODS = MappingProxyType({"今年": 0, "明年": 1, "后年": 2, "去年": -1})
_DELTA_UNITS = MappingProxyType({"小时": ("minutes", 60), "钟头": ("minutes", 60), "分钟": ("minutes", 1),
                                 "分": ("minutes", 1), "天": ("days", 1), "日": ("days", 1), "周": ("days", 7),
                                 "星期": ("days", 7), "礼拜": ("days", 7), "个月": ("months", 1),
                                 "月": ("months", 1), "年": ("months", 12)})
_DELTA_CHUNK = (r"(?P<n{i}>" + NUM + r")?个?(?P<half{i}>半)?个?(?P<u{i}>小时|钟头|分钟|分|天|日|周|星期|礼拜|个月|月|年)"
                r"(?P<tail{i}>半)?")


def cn_int(text: str) -> int | None:
    """Arabic or Chinese numerals (三, 十二, 二十三, 两, 二〇二六, 一百零五) as an int; None if not a number."""
    if text.isdigit():
        return int(text)
    if not text or any(c not in _DIGITS and c not in _UNITS for c in text):
        return None
    if not any(c in _UNITS for c in text):
        # Digit by digit, as years are read: 二〇二六.
        return int("".join(str(_DIGITS[c]) for c in text))
    total, digit = 0, None
    for char in text:
        if char in _DIGITS:
            digit = _DIGITS[char]
        else:
            total += (1 if digit is None else digit) * _UNITS[char]
            digit = None
    return total + (digit or 0)


def _rec(freq: str, m: re.Match[str], **extra: object) -> Fields | None:
    n = cn_int(m.group("n")) if m.groupdict().get("n") else 1
    if not n:
        return None
    # 每隔一天 means every other day; 每隔两天 is read like 每两天, as people mostly mean it.
    if m.groupdict().get("skip") and n == 1:
        n = 2
    return {"freq": freq, "interval": n, **extra}


def _weekly(m: re.Match[str]) -> Fields | None:
    days: list[int] = []
    for sep, char in re.findall(r"(到|至|-|~)?(?:周|星期|礼拜)?(" + _DAY + ")", m.group("days") or ""):
        day = _WEEKDAY[char]
        if sep and days:
            # A range 周一到周五 takes every day between.
            days.extend(range(days[-1] + 1, day + 1) if day > days[-1] else [])
        if day not in days:
            days.append(day)
    return _rec("WEEKLY", m, **({"byday": tuple(sorted(days))} if days else {}))


def _hourly(m: re.Match[str]) -> Fields | None:
    if m.group("n") == "半":
        return {"freq": "MINUTELY", "interval": 30}
    return _rec("HOURLY", m)


def _delta(m: re.Match[str]) -> Fields | None:
    if not (m.group("pre") or m.group("post")):
        return None
    totals = {"minutes": 0.0, "days": 0.0, "months": 0.0}
    seen: set[str] = set()
    for i in (1, 2):
        unit = m.group(f"u{i}")
        if unit is None:
            continue
        count = cn_int(m.group(f"n{i}")) if m.group(f"n{i}") else 0
        if count is None or (not count and not m.group(f"half{i}")):
            return None
        count += 0.5 if (m.group(f"half{i}") or m.group(f"tail{i}")) else 0
        kind, factor = _DELTA_UNITS[unit]
        if kind in seen and kind != "minutes":
            return None
        seen.add(kind)
        totals[kind] += count * factor
    if any(v != int(v) for k, v in totals.items() if k != "minutes") or sum(1 for v in totals.values() if v) != 1:
        # Half a day or "两天三小时" are not offered: ask instead of guessing.
        return None
    kind = next(k for k, v in totals.items() if v)
    return {f"delta_{kind}": int(round(totals[kind]))}


def _clock(m: re.Match[str]) -> Fields | None:
    hour = cn_int(m.group("h"))
    if hour is None:
        return None
    if m.group("half"):
        minute: int | None = 30
    elif m.group("q"):
        minute = 15 * (cn_int(m.group("q")) or 0)
    elif m.group("m"):
        minute = cn_int(m.group("m"))
    else:
        minute = 0
    if minute is None:
        return None
    return {"hour": hour, "minute": minute, "h24": m.group("h").startswith("0") or hour == 0 or hour >= 13}


def _date(m: re.Match[str]) -> Fields | None:
    fields: Fields = {}
    for key in ("y", "m", "d"):
        if m.groupdict().get(key):
            value = cn_int(m.group(key))
            if value is None:
                return None
            fields[{"y": "year", "m": "month", "d": "day"}[key]] = value
    return fields


def _weekday(m: re.Match[str]) -> Fields | None:
    mod = m.group("mod")
    return {"weekday": _WEEKDAY[m.group("d")], "week_offset": _WEEK_MODS[mod] if mod else None}


def _relative_day(m: re.Match[str]) -> Fields:
    offset, period = _RELATIVE_DAYS[m.group(0)]
    return {"day_offset": offset, **({"period": period} if period else {})}


_REC_N = r"(?P<skip>隔)?(?P<n>" + NUM + ")?个?"
# Order matters, the first rule that matches at a position wins: recurrences (每...) first, relative
# times (3天后) before dates and clock times, whose digits they share.
RULES: tuple[Rule, ...] = (
    # Before the weekly rule, which would stop at 每周 and leave 末.
    (re.compile(r"每个?周末"), lambda m: {"freq": "WEEKLY", "interval": 1, "byday": (5, 6)}),
    (re.compile(r"每" + _REC_N + r"(?:周|星期|礼拜)(?P<days>" + _DAY + r"(?:(?:[、,，和及与跟]|到|至|-|~)?"
                r"(?:周|星期|礼拜)?" + _DAY + r")*)?"), _weekly),
    (re.compile(r"(?:每个?|每逢)?工作日"), lambda m: {"freq": "WEEKLY", "interval": 1, "byday": (0, 1, 2, 3, 4)}),
    (re.compile(r"每" + _REC_N + r"(?:天|日)|天天"), lambda m: _rec("DAILY", m)),
    (re.compile(r"每(?P<p>晚|夜|早)(?:上|晨)?"),
     lambda m: {"freq": "DAILY", "interval": 1, "period": "morning" if m.group("p") == "早" else "evening"}),
    (re.compile(r"每(?P<skip>隔)?(?P<n>" + NUM + r"|半)?个?(?:小时|钟头)"), _hourly),
    (re.compile(r"每" + _REC_N + r"分钟"), lambda m: _rec("MINUTELY", m)),
    (re.compile(r"每" + _REC_N + r"月"), lambda m: _rec("MONTHLY", m)),
    (re.compile(r"每" + _REC_N + r"年"), lambda m: _rec("YEARLY", m)),
    (re.compile(r"(?P<pre>过)?" + _DELTA_CHUNK.format(i=1) + "(?:" + _DELTA_CHUNK.format(i=2) + r")?"
                r"(?P<post>以后|之后|后)?"), _delta),
    (re.compile("|".join(sorted(_RELATIVE_DAYS, key=len, reverse=True))), _relative_day),
    (re.compile("|".join(_YEAR_MODS)), lambda m: {"year_offset": _YEAR_MODS[m.group(0)]}),
    (re.compile("|".join(_MONTH_MODS)), lambda m: {"month_offset": _MONTH_MODS[m.group(0)]}),
    (re.compile(r"(?P<mod>上上|上|这|本|下下|下)?个?(?:周|星期|礼拜)(?P<d>" + _DAY + ")"), _weekday),
    (re.compile(r"(?:(?P<y>\d{4}|[零〇一二三四五六七八九]{4})年)?(?P<m>" + NUM + r")月份?(?P<d>" + NUM + r")(?:日|号)?"),
     _date),
    (re.compile(r"(?P<d>" + NUM + r")(?:日|号)"), _date),
    (re.compile(r"(?:最后一天|月底)"), lambda m: {"day": -1}),
    (re.compile(r"(?P<h>" + NUM + r")(?:点|點|时|時)钟?(?:(?P<half>半)|(?P<q>[一1三3])刻|(?P<m>" + NUM + r")分?|整)?"),
     _clock),
    (re.compile(_PERIOD_RE), lambda m: {"period": _PERIODS[m.group(0)]}),
)
FILLER = re.compile(r"[\s,，、。.!！]+|在|于|的|到时候?")

MESSAGES: Mapping[str, str] = MappingProxyType({
    "unparsed": "没看懂“{text}”指的是什么时间，能换个说法吗？例如“明天下午3点”。",
    "ambiguous_hour": "“{text}”是{am}还是{pm}？",
    "morning_passed": "今天{am}已经过了，“{text}”是指{pm}吗？",
    "late_hour": "“{text}”是指次日{am}吗？请说清楚是哪天几点。",
    "need_hour": "“{text}”具体是几点？",
    "date_conflict": "“{text}”里的日期对不上（{a}和{b}），是哪一天？",
    "midnight_day": "“{text}”的0点算前一天还是后一天？请说“凌晨0点”并写明是周几或几号。",
    "past_tomorrow": "今天{clock}已经过了，是指明天{clock}吗？",
    "past": "{when}已经过去了，请给一个将来的时间。",
    "impossible_date": "{what}不存在，请检查一下日期。",
    "impossible_time": "“{text}”不是一个有效的时间，请检查一下。",
    "too_frequent": "提醒最多每5分钟一次，“{text}”太频繁了。",
    "never": "“{text}”永远不会发生（{what}不存在），请换一个日期。",
    "bad_timezone": "不认识时区“{tz}”，请用 IANA 名称，例如 Asia/Shanghai。",
})


def clock(hour: int, minute: int) -> str:
    """早上8点, 下午3点半, 晚上9点05分, 凌晨0点."""
    label = ("凌晨" if hour < 6 else "早上" if hour < 9 else "上午" if hour < 12 else "中午" if hour < 13
             else "下午" if hour < 18 else "晚上")
    shown = hour - 12 if hour > 12 else hour
    tail = "" if minute == 0 else "半" if minute == 30 else f"{minute:02d}分"
    return f"{label}{shown}点{tail}"


def day(value: date, *, today: date, with_year: bool = True) -> str:
    """今天 / 明天 / 2026年12月1日 (or 12月1日)."""
    if value == today:
        return "今天"
    if (value - today).days == 1:
        return "明天"
    return f"{value.year}年{value.month}月{value.day}日" if with_year else f"{value.month}月{value.day}日"
