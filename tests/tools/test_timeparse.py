"""Table-driven tests of tools.timeparse: Chinese and English phrases, ISO-8601, errors, zones."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tools.recurrence import next_occurrence
from tools.timeparse import Resolved, TimeParseError, resolve, when_result

SH = "Asia/Shanghai"
NY = "America/New_York"
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=ZoneInfo(SH))  # a Sunday
NOW_WED = datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo(SH))
NOW_NY = datetime(2026, 11, 22, 10, 0, tzinfo=ZoneInfo(NY))  # a Sunday in New York
# The second 01:30 of New York's fall-back night (EST), an hour after the first (EDT).
NOW_REPEATED = datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=ZoneInfo(NY))
CJK = re.compile(r"[\u4e00-\u9fff]")

WEEKDAYS = "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"

# (text, when, rrule, all_day), all against NOW in Asia/Shanghai.
ZH_CASES = [
    ("明天", "2026-11-23T00:00:00+08:00", None, True),
    ("今天", "2026-11-22T00:00:00+08:00", None, True),
    ("后天", "2026-11-24T00:00:00+08:00", None, True),
    ("大后天", "2026-11-25T00:00:00+08:00", None, True),
    ("下午三点半", "2026-11-22T15:30:00+08:00", None, False),
    ("2026年12月1日", "2026-12-01T00:00:00+08:00", None, True),
    ("二〇二六年十二月一日", "2026-12-01T00:00:00+08:00", None, True),
    ("12月1日下午3点", "2026-12-01T15:00:00+08:00", None, False),
    ("2026-12-01 下午3点", "2026-12-01T15:00:00+08:00", None, False),
    ("3月1日", "2027-03-01T00:00:00+08:00", None, True),  # passed this year
    ("明年3月1日", "2027-03-01T00:00:00+08:00", None, True),
    ("2月29日", "2028-02-29T00:00:00+08:00", None, True),  # next leap year
    ("下周三", "2026-11-25T00:00:00+08:00", None, True),
    ("周五", "2026-11-27T00:00:00+08:00", None, True),
    ("星期五", "2026-11-27T00:00:00+08:00", None, True),
    ("礼拜五下午2点", "2026-11-27T14:00:00+08:00", None, False),
    ("周日", "2026-11-22T00:00:00+08:00", None, True),  # today is Sunday
    ("星期天下午3点", "2026-11-22T15:00:00+08:00", None, False),
    ("下下周一", "2026-11-30T00:00:00+08:00", None, True),
    ("12月1日周二", "2026-12-01T00:00:00+08:00", None, True),
    ("下个月5号", "2026-12-05T00:00:00+08:00", None, True),
    ("31号", "2026-12-31T00:00:00+08:00", None, True),  # November has no 31st
    ("晚上8点", "2026-11-22T20:00:00+08:00", None, False),
    ("上午十点一刻", "2026-11-22T10:15:00+08:00", None, False),
    ("中午12点", "2026-11-22T12:00:00+08:00", None, False),
    ("中午1点", "2026-11-22T13:00:00+08:00", None, False),
    ("十二点", "2026-11-22T12:00:00+08:00", None, False),
    ("明天凌晨2点", "2026-11-23T02:00:00+08:00", None, False),
    ("下午3点45分", "2026-11-22T15:45:00+08:00", None, False),
    ("15点30分", "2026-11-22T15:30:00+08:00", None, False),
    ("二十三点", "2026-11-22T23:00:00+08:00", None, False),
    ("晚上12点", "2026-11-23T00:00:00+08:00", None, False),
    ("明晚8点", "2026-11-23T20:00:00+08:00", None, False),
    ("今晚七点半", "2026-11-22T19:30:00+08:00", None, False),
    ("傍晚6点", "2026-11-22T18:00:00+08:00", None, False),
    ("后天上午10点", "2026-11-24T10:00:00+08:00", None, False),
    ("在明天的下午3点", "2026-11-23T15:00:00+08:00", None, False),
    ("明天8点", "2026-11-23T08:00:00+08:00", None, False),  # bare 7-11 is the morning
    ("2小时后", "2026-11-22T12:00:00+08:00", None, False),
    ("半小时后", "2026-11-22T10:30:00+08:00", None, False),
    ("一个半小时后", "2026-11-22T11:30:00+08:00", None, False),
    ("1小时30分钟后", "2026-11-22T11:30:00+08:00", None, False),
    ("过两个小时", "2026-11-22T12:00:00+08:00", None, False),
    ("十分钟后", "2026-11-22T10:10:00+08:00", None, False),
    ("3天后", "2026-11-25T00:00:00+08:00", None, True),
    ("3天后下午3点", "2026-11-25T15:00:00+08:00", None, False),
    ("两周后", "2026-12-06T00:00:00+08:00", None, True),
    ("一个月后", "2026-12-22T00:00:00+08:00", None, True),
    ("每周一早上9点", "2026-11-23T09:00:00+08:00", "FREQ=WEEKLY;BYDAY=MO", False),
    ("每天晚上10点", "2026-11-22T22:00:00+08:00", "FREQ=DAILY", False),
    ("天天早上7点", "2026-11-23T07:00:00+08:00", "FREQ=DAILY", False),  # today's 07:00 is gone
    ("每晚9点", "2026-11-22T21:00:00+08:00", "FREQ=DAILY", False),
    ("每个工作日", "2026-11-23T00:00:00+08:00", WEEKDAYS, True),
    ("工作日 8:30", "2026-11-23T08:30:00+08:00", WEEKDAYS, False),
    ("每周一到周五下午6点", "2026-11-23T18:00:00+08:00", WEEKDAYS, False),
    ("每周一三五", "2026-11-23T00:00:00+08:00", "FREQ=WEEKLY;BYDAY=MO,WE,FR", True),
    ("每周末上午10点", "2026-11-22T10:00:00+08:00", "FREQ=WEEKLY;BYDAY=SA,SU", False),  # now itself counts
    ("每两周周一", "2026-11-23T00:00:00+08:00", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO", True),
    ("每月1号", "2026-12-01T00:00:00+08:00", "FREQ=MONTHLY;BYMONTHDAY=1", True),
    ("每月最后一天", "2026-11-30T00:00:00+08:00", "FREQ=MONTHLY;BYMONTHDAY=-1", True),
    ("每两个月1号上午9点", "2026-12-01T09:00:00+08:00", "FREQ=MONTHLY;INTERVAL=2;BYMONTHDAY=1", False),
    ("每年3月8日", "2027-03-08T00:00:00+08:00", "FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=8", True),
    ("每隔一天", "2026-11-22T00:00:00+08:00", "FREQ=DAILY;INTERVAL=2", True),
    ("每小时", "2026-11-22T11:00:00+08:00", "FREQ=HOURLY", False),
    ("每半小时", "2026-11-22T10:30:00+08:00", "FREQ=MINUTELY;INTERVAL=30", False),
]

EN_CASES = [
    ("tomorrow", "2026-11-23T00:00:00+08:00", None, True),
    ("today", "2026-11-22T00:00:00+08:00", None, True),
    ("the day after tomorrow", "2026-11-24T00:00:00+08:00", None, True),
    ("Dec 1 2026 3pm", "2026-12-01T15:00:00+08:00", None, False),
    ("1 December", "2026-12-01T00:00:00+08:00", None, True),
    ("December 1, 2026", "2026-12-01T00:00:00+08:00", None, True),
    ("Dec 1st at 3:30pm", "2026-12-01T15:30:00+08:00", None, False),
    ("May 3", "2027-05-03T00:00:00+08:00", None, True),
    ("the 5th", "2026-12-05T00:00:00+08:00", None, True),
    ("next Friday", "2026-11-27T00:00:00+08:00", None, True),
    ("this Friday", "2026-11-27T00:00:00+08:00", None, True),
    ("Friday 3pm", "2026-11-27T15:00:00+08:00", None, False),
    ("on Friday at 10am", "2026-11-27T10:00:00+08:00", None, False),
    ("Sunday", "2026-11-22T00:00:00+08:00", None, True),
    ("in 2 hours", "2026-11-22T12:00:00+08:00", None, False),
    ("in 30 minutes", "2026-11-22T10:30:00+08:00", None, False),
    ("in half an hour", "2026-11-22T10:30:00+08:00", None, False),
    ("in an hour and a half", "2026-11-22T11:30:00+08:00", None, False),
    ("2 hours from now", "2026-11-22T12:00:00+08:00", None, False),
    ("in 3 days", "2026-11-25T00:00:00+08:00", None, True),
    ("noon", "2026-11-22T12:00:00+08:00", None, False),
    ("midnight", "2026-11-23T00:00:00+08:00", None, False),
    ("3pm", "2026-11-22T15:00:00+08:00", None, False),
    ("3:30 pm", "2026-11-22T15:30:00+08:00", None, False),
    ("15:30", "2026-11-22T15:30:00+08:00", None, False),
    ("１５：３０", "2026-11-22T15:30:00+08:00", None, False),  # full-width
    ("  at 8pm ", "2026-11-22T20:00:00+08:00", None, False),
    ("tomorrow at 8", "2026-11-23T08:00:00+08:00", None, False),
    ("at eight tomorrow", "2026-11-23T08:00:00+08:00", None, False),
    ("at noon tomorrow", "2026-11-23T12:00:00+08:00", None, False),
    ("3 pm tomorrow", "2026-11-23T15:00:00+08:00", None, False),
    ("tonight at 8pm", "2026-11-22T20:00:00+08:00", None, False),
    ("tomorrow night at 11", "2026-11-23T23:00:00+08:00", None, False),
    ("half past 3 pm", "2026-11-22T15:30:00+08:00", None, False),
    ("quarter past 10", "2026-11-22T10:15:00+08:00", None, False),
    ("at a quarter past 3 pm", "2026-11-22T15:15:00+08:00", None, False),
    ("quarter to eight tomorrow", "2026-11-23T07:45:00+08:00", None, False),
    ("in a week", "2026-11-29T00:00:00+08:00", None, True),
    ("2026-12-01", "2026-12-01T00:00:00+08:00", None, True),
    ("2026-12-01T15:00", "2026-12-01T15:00:00+08:00", None, False),
    ("2026-12-01 15:00+08:00", "2026-12-01T15:00:00+08:00", None, False),
    ("2026-12-01T07:00Z", "2026-12-01T15:00:00+08:00", None, False),
    ("2026-12-01T15:00-05:00", "2026-12-02T04:00:00+08:00", None, False),
    ("every weekday at 8am", "2026-11-23T08:00:00+08:00", WEEKDAYS, False),
    ("every month on the 1st", "2026-12-01T00:00:00+08:00", "FREQ=MONTHLY;BYMONTHDAY=1", True),
    ("every Monday and Thursday at 9", "2026-11-23T09:00:00+08:00", "FREQ=WEEKLY;BYDAY=MO,TH", False),
    ("every mon, wed and fri at 7:30", "2026-11-23T07:30:00+08:00", "FREQ=WEEKLY;BYDAY=MO,WE,FR", False),
    ("every monday through friday at 9", "2026-11-23T09:00:00+08:00", WEEKDAYS, False),
    ("mondays at 9", "2026-11-23T09:00:00+08:00", "FREQ=WEEKLY;BYDAY=MO", False),
    ("every weekend", "2026-11-22T00:00:00+08:00", "FREQ=WEEKLY;BYDAY=SA,SU", True),
    ("every 2 weeks", "2026-11-22T00:00:00+08:00", "FREQ=WEEKLY;INTERVAL=2", True),
    ("every other week on Monday", "2026-11-23T00:00:00+08:00", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO", True),
    ("every hour", "2026-11-22T11:00:00+08:00", "FREQ=HOURLY", False),
    ("every 5 minutes", "2026-11-22T10:05:00+08:00", "FREQ=MINUTELY;INTERVAL=5", False),
    ("every day at 9pm", "2026-11-22T21:00:00+08:00", "FREQ=DAILY", False),
    ("daily at 7", "2026-11-23T07:00:00+08:00", "FREQ=DAILY", False),
    ("every year on March 8", "2027-03-08T00:00:00+08:00", "FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=8", True),
    ("every year on Feb 29", "2028-02-29T00:00:00+08:00", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", True),
]

# (text, now, tz, when, rrule): other "now"s and zones.
OTHER_CASES = [
    # On a Wednesday: 这周五 is this week's, next Friday / 下周五 next week's.
    ("这周五", NOW_WED, SH, "2026-11-27T00:00:00+08:00", None),
    ("本周五", NOW_WED, SH, "2026-11-27T00:00:00+08:00", None),
    ("下周五", NOW_WED, SH, "2026-12-04T00:00:00+08:00", None),
    ("周五", NOW_WED, SH, "2026-11-27T00:00:00+08:00", None),
    ("this Friday", NOW_WED, SH, "2026-11-27T00:00:00+08:00", None),
    ("next Friday", NOW_WED, SH, "2026-12-04T00:00:00+08:00", None),
    # now in New York, resolved in New York.
    ("tomorrow 3pm", NOW_NY, NY, "2026-11-23T15:00:00-05:00", None),
    ("明天上午9点", NOW_NY, NY, "2026-11-23T09:00:00-05:00", None),
    ("in 2 hours", NOW_NY, NY, "2026-11-22T12:00:00-05:00", None),
    ("every weekday at 8am", NOW_NY, NY, "2026-11-23T08:00:00-05:00", WEEKDAYS),
    # tz differs from now's zone: 10:00 Sunday in Shanghai is 21:00 Saturday in New York.
    ("tomorrow 9am", NOW, NY, "2026-11-22T09:00:00-05:00", None),
    ("明天上午9点", NOW, NY, "2026-11-22T09:00:00-05:00", None),
    ("today", NOW, NY, "2026-11-21T00:00:00-05:00", None),
    ("at 10pm", NOW, NY, "2026-11-21T22:00:00-05:00", None),
    ("in 2 hours", NOW_NY, SH, "2026-11-23T01:00:00+08:00", None),
    ("明天", NOW_NY, SH, "2026-11-23T00:00:00+08:00", None),
    # DST in New York: 02:30 on 2026-03-08 does not exist (moves forward), 01:30 on 2026-11-01 is the first one.
    ("2026-03-08 02:30", datetime(2026, 3, 1, tzinfo=ZoneInfo(NY)), NY, "2026-03-08T03:30:00-04:00", None),
    ("Mar 8 2:30 am", datetime(2026, 3, 1, tzinfo=ZoneInfo(NY)), NY, "2026-03-08T03:30:00-04:00", None),
    ("2026-11-01 01:30", datetime(2026, 3, 1, tzinfo=ZoneInfo(NY)), NY, "2026-11-01T01:30:00-04:00", None),
    ("every day at 9am", datetime(2026, 3, 7, 10, tzinfo=ZoneInfo(NY)), NY, "2026-03-08T09:00:00-04:00", "FREQ=DAILY"),
    # Elapsed time is real time: 30 minutes after 01:45 EDT is 01:15 EST.
    ("in 30 minutes", datetime(2026, 11, 1, 1, 45, tzinfo=ZoneInfo(NY)), NY, "2026-11-01T01:15:00-05:00", None),
    ("2026-11-01 02:15", NOW_REPEATED, NY, "2026-11-01T02:15:00-05:00", None),
]

# (text, now, tz, code, text the message must contain)
ERROR_CASES = [
    ("随便什么时候", NOW, SH, "unparsed", "没看懂"),
    ("明天后天", NOW, SH, "unparsed", "没看懂"),
    ("blah", NOW, SH, "unparsed", "couldn't read"),
    ("next week", NOW, SH, "unparsed", "couldn't read"),
    ("in 0 minutes", NOW, SH, "unparsed", "couldn't read"),
    ("三点", NOW, SH, "ambiguous", "“三点”是凌晨3点还是下午3点？"),
    ("3点45分", NOW, SH, "ambiguous", "凌晨3点45分还是下午3点45分"),
    ("明天3点", NOW, SH, "ambiguous", "凌晨3点还是下午3点"),
    ("每天3点", NOW, SH, "ambiguous", "凌晨3点还是下午3点"),
    ("8点", NOW, SH, "ambiguous", "是指晚上8点吗"),  # 08:00 has passed, 20:00 has not
    ("今天8点整", NOW, SH, "ambiguous", "是指晚上8点吗"),
    ("明天下午", NOW, SH, "ambiguous", "具体是几点"),
    ("每周一晚上12点", NOW, SH, "ambiguous", "0点"),
    ("晚上1点", NOW, SH, "ambiguous", "凌晨1点"),
    ("12月1日周三", NOW, SH, "ambiguous", "对不上"),
    ("at 3", NOW, SH, "ambiguous", "Is that 3 am or 3 pm?"),
    ("3:45", NOW, SH, "ambiguous", "3:45 am or 3:45 pm"),
    ("at 8", NOW, SH, "ambiguous", "did you mean 8 pm"),
    ("this morning", NOW, SH, "ambiguous", "What time"),
    ("tonight at 1", NOW, SH, "ambiguous", "after midnight"),
    ("every monday at 3", NOW, SH, "ambiguous", "3 am or 3 pm"),
    ("Dec 1 Wednesday", NOW, SH, "ambiguous", "two different days"),
    ("下午三点", NOW.replace(hour=16), SH, "past", "今天下午3点已经过了，是指明天下午3点吗？"),
    ("凌晨2点", NOW, SH, "past", "是指明天凌晨2点吗"),
    ("今天早上8点", NOW, SH, "past", "今天早上8点已经过去了"),
    ("这周五", NOW, SH, "past", "2026年11月20日"),  # on a Sunday this week's Friday is gone
    ("上周五", NOW, SH, "past", "已经过去了"),
    ("昨天", NOW, SH, "past", "已经过去了"),
    ("yesterday 3pm", NOW, SH, "past", "3 pm on Nov 21, 2026 is in the past"),
    ("2020-01-01", NOW, SH, "past", "Jan 1, 2020 is in the past"),
    ("08:00", NOW, SH, "past", "did you mean tomorrow at 8 am"),
    ("2026-11-22T09:59", NOW, SH, "past", "in the past"),
    ("2026-11-01 01:45", NOW_REPEATED, NY, "past", "in the past"),  # 01:45 EDT came before 01:30 EST
    ("2月30日", NOW, SH, "impossible", "2月30日不存在"),
    ("13月1日", NOW, SH, "impossible", "13月1日不存在"),
    ("2026年2月29日", NOW, SH, "impossible", "2026年2月29日不存在"),
    ("25点", NOW, SH, "impossible", "不是一个有效的时间"),
    ("上午15点", NOW, SH, "impossible", "不是一个有效的时间"),
    ("每月32号", NOW, SH, "impossible", "32日不存在"),
    ("每分钟", NOW, SH, "impossible", "每5分钟"),
    ("2026-02-30", NOW, SH, "impossible", "February 30, 2026 doesn't exist"),
    ("Feb 29 2027", NOW, SH, "impossible", "February 29, 2027 doesn't exist"),
    ("13pm", NOW, SH, "impossible", "isn't a valid time"),
    ("tomorrow 25:00", NOW, SH, "impossible", "isn't a valid time"),
    ("2026-12-01T24:30", NOW, SH, "impossible", "isn't a valid time"),
    ("every minute", NOW, SH, "impossible", "every 5 minutes"),
    ("in 99999999 days", NOW, SH, "impossible", "isn't a valid time"),
    ("tomorrow " * 20, NOW, SH, "unparsed", "couldn't read"),
    ("", NOW, SH, "unparsed", "couldn't read"),
    ("每年2月30日", NOW, SH, "never", "永远不会发生"),
    ("every February 30", NOW, SH, "never", "never happens"),
    ("every year on April 31", NOW, SH, "never", "April 31"),
    ("明天", NOW, "Mars/Olympus", "bad_timezone", "不认识时区“Mars/Olympus”"),
    ("tomorrow", NOW, "Mars/Olympus", "bad_timezone", "Unknown time zone “Mars/Olympus”"),
    ("tomorrow", NOW, "", "bad_timezone", "Unknown time zone"),
]


def test_fixed_now_is_a_sunday():
    assert NOW.strftime("%A") == "Sunday" and NOW_NY.strftime("%A") == "Sunday"
    assert NOW_WED.strftime("%A") == "Wednesday"


def check(result: Resolved, text: str, tz: str, when: str, rrule: str | None) -> None:
    assert (result.when.isoformat(), result.rrule) == (when, rrule)
    assert result.when.tzinfo == ZoneInfo(tz)
    assert result.text == text


@pytest.mark.parametrize(("text", "when", "rrule", "all_day"), ZH_CASES, ids=[c[0] for c in ZH_CASES])
def test_chinese(text, when, rrule, all_day):
    result = resolve(text, now=NOW, tz=SH)
    check(result, text, SH, when, rrule)
    assert result.all_day is all_day


@pytest.mark.parametrize(("text", "when", "rrule", "all_day"), EN_CASES, ids=[c[0] for c in EN_CASES])
def test_english(text, when, rrule, all_day):
    result = resolve(text, now=NOW, tz=SH)
    check(result, text, SH, when, rrule)
    assert result.all_day is all_day


@pytest.mark.parametrize(("text", "now", "tz", "when", "rrule"), OTHER_CASES, ids=[c[0] for c in OTHER_CASES])
def test_other_now_and_zones(text, now, tz, when, rrule):
    check(resolve(text, now=now, tz=tz), text, tz, when, rrule)


@pytest.mark.parametrize(("text", "now", "tz", "code", "fragment"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_errors(text, now, tz, code, fragment):
    with pytest.raises(TimeParseError) as caught:
        resolve(text, now=now, tz=tz)
    assert caught.value.code == code
    assert fragment in str(caught.value)
    # The message is in the input's language.
    assert bool(CJK.search(str(caught.value))) == bool(CJK.search(text))


def test_every_error_code_is_covered():
    assert {case[3] for case in ERROR_CASES} == {"unparsed", "ambiguous", "past", "impossible", "bad_timezone", "never"}


@pytest.mark.parametrize("case", [c for c in ZH_CASES + EN_CASES if c[2]], ids=lambda c: c[0])
def test_recurrence_when_is_its_first_occurrence_at_or_after_now(case):
    text, _, _, all_day = case
    result = resolve(text, now=NOW, tz=SH)
    start_of_today = NOW.replace(hour=0)
    after = start_of_today if all_day else NOW
    assert result.rrule is not None
    assert next_occurrence(result.rrule, dtstart=result.when, after=after, inclusive=True) == result.when
    assert result.when >= after


def test_daily_rule_keeps_local_time_across_dst():
    now = datetime(2026, 3, 7, 8, tzinfo=ZoneInfo(NY))
    result = resolve("every day at 9am", now=now, tz=NY)
    assert result.when.isoformat() == "2026-03-07T09:00:00-05:00"
    after_switch = next_occurrence(result.rrule, dtstart=result.when, after=result.when)
    assert after_switch is not None and after_switch.isoformat() == "2026-03-08T09:00:00-04:00"


def test_naive_now_is_a_programming_error():
    with pytest.raises(ValueError) as caught:
        resolve("明天", now=datetime(2026, 11, 22, 10), tz=SH)
    assert not isinstance(caught.value, TimeParseError)


def test_when_result_success_and_recurrence():
    assert when_result("明天下午3点", now=NOW, tz=SH) == {"when": "2026-11-23T15:00:00+08:00", "rrule": None, "error": None}
    assert when_result("每周一早上9点", now=NOW, tz=SH) == {
        "when": "2026-11-23T09:00:00+08:00", "rrule": "FREQ=WEEKLY;BYDAY=MO", "error": None}


def test_when_result_reports_errors_without_raising():
    assert when_result("三点", now=NOW, tz=SH) == {"when": None, "rrule": None, "error": "“三点”是凌晨3点还是下午3点？"}
    bad_zone = when_result("tomorrow", now=None, tz="Nowhere/Zone")
    assert bad_zone["when"] is None and "Unknown time zone" in bad_zone["error"]
    naive = when_result("tomorrow", now=datetime(2026, 11, 22), tz=SH)
    assert naive["when"] is None and "zone-aware" in naive["error"]


def test_when_result_defaults_now_to_the_clock():
    out = when_result("in 2 hours", now=None, tz=SH)
    assert out["error"] is None
    when = datetime.fromisoformat(out["when"])
    assert 7100 < (when - datetime.now(ZoneInfo(SH))).total_seconds() <= 7200
