"""tools.recurrence: wall-time expansion across DST, gaps and folds, validation, normalization."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from tools.recurrence import localize, next_occurrence, occurrences, validate_rrule

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
UTC = timezone.utc

# 2026 switches: Berlin Mar 29 / Oct 25, New York Mar 8 / Nov 1.
# (zone, first day, end, offset before, offset after, hours between the 09:00s around the switch)
DST_SPANS = [
    (BERLIN, datetime(2026, 3, 27), datetime(2026, 3, 31), "+01:00", "+02:00", 23),
    (BERLIN, datetime(2026, 10, 23), datetime(2026, 10, 27), "+02:00", "+01:00", 25),
    (NEW_YORK, datetime(2026, 3, 6), datetime(2026, 3, 10), "-05:00", "-04:00", 23),
    (NEW_YORK, datetime(2026, 10, 30), datetime(2026, 11, 3), "-04:00", "-05:00", 25),
]


@pytest.mark.parametrize(("zone", "first", "last", "before", "after", "switch_hours"), DST_SPANS,
                         ids=["berlin-spring", "berlin-fall", "ny-spring", "ny-fall"])
def test_daily_nine_am_keeps_local_time_across_switch(zone, first, last, before, after, switch_hours):
    dtstart = first.replace(hour=9, tzinfo=zone)
    found = occurrences("FREQ=DAILY", dtstart=dtstart, start=dtstart, end=last.replace(tzinfo=zone))
    assert [t.isoformat()[:10] for t in found] == [(first + timedelta(days=i)).isoformat()[:10] for i in range(4)]
    assert {(t.hour, t.minute) for t in found} == {(9, 0)}
    assert all(t.tzinfo is zone for t in found)
    offsets = [t.isoformat()[-6:] for t in found]
    assert offsets == [before, before, after, after]
    # The UTC instant moves with the switch: once, consecutive 09:00s are 23 or 25 hours apart.
    # (Subtract in UTC: Python subtracts datetimes sharing a tzinfo by wall time.)
    instants = [t.astimezone(UTC) for t in found]
    gaps = [(b - a) / timedelta(hours=1) for a, b in zip(instants, instants[1:], strict=False)]
    assert gaps == [24, switch_hours, 24]


@pytest.mark.parametrize(("zone", "day", "expected"), [
    (BERLIN, datetime(2026, 3, 29), "2026-03-29T03:30:00+02:00"),
    (NEW_YORK, datetime(2026, 3, 8), "2026-03-08T03:30:00-04:00"),
])
def test_spring_forward_gap_moves_forward_by_the_gap(zone, day, expected):
    dtstart = datetime(2026, 3, 1, 2, 30, tzinfo=zone)
    nxt = next_occurrence("FREQ=DAILY", dtstart=dtstart, after=day.replace(hour=0, tzinfo=zone))
    assert nxt is not None and nxt.isoformat() == expected
    following = next_occurrence("FREQ=DAILY", dtstart=dtstart, after=nxt)
    assert following is not None and (following.hour, following.minute) == (2, 30)


@pytest.mark.parametrize(("zone", "day", "expected"), [
    (BERLIN, datetime(2026, 10, 25), "2026-10-25T02:30:00+02:00"),
    (NEW_YORK, datetime(2026, 11, 1), "2026-11-01T01:30:00-04:00"),
])
def test_fall_back_takes_the_first_of_a_repeated_time(zone, day, expected):
    hour = 2 if zone is BERLIN else 1
    dtstart = datetime(2026, 10, 1, hour, 30, tzinfo=zone)
    found = occurrences("FREQ=DAILY", dtstart=dtstart, start=day.replace(tzinfo=zone),
                        end=(day + timedelta(days=1)).replace(tzinfo=zone))
    assert [t.isoformat() for t in found] == [expected]
    assert found[0].fold == 0


def test_hourly_across_spring_forward_reports_each_instant_once():
    dtstart = datetime(2026, 3, 29, 0, 0, tzinfo=BERLIN)
    found = occurrences("FREQ=HOURLY", dtstart=dtstart, start=dtstart, end=datetime(2026, 3, 29, 5, tzinfo=BERLIN))
    assert [t.isoformat()[11:] for t in found] == ["00:00:00+01:00", "01:00:00+01:00", "03:00:00+02:00",
                                                     "04:00:00+02:00"]
    assert found == sorted(set(found))


def test_monthly_on_the_31st_skips_short_months():
    dtstart = datetime(2026, 1, 31, 9, tzinfo=BERLIN)
    found = occurrences("FREQ=MONTHLY;BYMONTHDAY=31", dtstart=dtstart, start=dtstart,
                        end=datetime(2027, 1, 1, tzinfo=BERLIN))
    assert [t.month for t in found] == [1, 3, 5, 7, 8, 10, 12]
    assert {t.day for t in found} == {31}


def test_after_may_be_in_utc_and_inclusive_matters():
    dtstart = datetime(2026, 11, 23, 9, tzinfo=ZoneInfo("Asia/Shanghai"))
    rule = "FREQ=WEEKLY;BYDAY=MO,TH"
    at_first = datetime(2026, 11, 23, 1, tzinfo=UTC)  # = 09:00 in Shanghai
    assert next_occurrence(rule, dtstart=dtstart, after=at_first, inclusive=True) == dtstart
    nxt = next_occurrence(rule, dtstart=dtstart, after=at_first)
    assert nxt is not None and nxt.isoformat() == "2026-11-26T09:00:00+08:00"
    assert nxt.tzinfo == ZoneInfo("Asia/Shanghai")


def test_after_in_another_zone_near_a_dst_switch():
    dtstart = datetime(2026, 3, 1, 9, tzinfo=BERLIN)
    # 07:30 UTC on Mar 29 is 09:30 Berlin summer time: that day's 09:00 (07:00 UTC) is gone.
    nxt = next_occurrence("FREQ=DAILY", dtstart=dtstart, after=datetime(2026, 3, 29, 7, 30, tzinfo=UTC))
    assert nxt is not None and nxt.isoformat() == "2026-03-30T09:00:00+02:00"


def test_inclusive_after_on_the_repeated_hour_compares_instants():
    dtstart = datetime(2026, 10, 1, 1, 30, tzinfo=NEW_YORK)
    second = datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=NEW_YORK)  # EST: an hour after that day's 01:30 EDT
    nxt = next_occurrence("FREQ=DAILY", dtstart=dtstart, after=second, inclusive=True)
    assert nxt is not None and nxt.isoformat() == "2026-11-02T01:30:00-05:00"


def test_count_and_until_end_the_rule():
    dtstart = datetime(2026, 1, 1, 9, tzinfo=BERLIN)
    assert len(occurrences("FREQ=DAILY;COUNT=3", dtstart=dtstart, start=dtstart,
                           end=datetime(2027, 1, 1, tzinfo=BERLIN))) == 3
    assert next_occurrence("FREQ=DAILY;COUNT=3", dtstart=dtstart, after=datetime(2026, 1, 3, 12, tzinfo=BERLIN)) is None
    until = occurrences("FREQ=DAILY;UNTIL=20260105T080000Z", dtstart=dtstart, start=dtstart,
                        end=datetime(2027, 1, 1, tzinfo=BERLIN))
    assert until[-1].isoformat() == "2026-01-05T09:00:00+01:00"


def test_occurrences_window_is_half_open_and_limited():
    dtstart = datetime(2026, 1, 1, 9, tzinfo=BERLIN)
    found = occurrences("FREQ=DAILY", dtstart=dtstart, start=datetime(2026, 1, 2, 9, tzinfo=BERLIN),
                        end=datetime(2026, 1, 5, 9, tzinfo=BERLIN))
    assert [t.day for t in found] == [2, 3, 4]
    assert len(occurrences("FREQ=DAILY", dtstart=dtstart, start=dtstart, end=datetime(2030, 1, 1, tzinfo=UTC),
                           limit=10)) == 10


@pytest.mark.parametrize("rule", [
    "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=MONTHLY;BYMONTH=4,6;BYMONTHDAY=31",
    "FREQ=DAILY;COUNT=0",
    "FREQ=DAILY;UNTIL=20200101T000000Z",
    "FREQ=WEEKLY;UNTIL=20260101",
])
def test_never_occurring_rules_raise(rule):
    with pytest.raises(ValueError, match="never occurs"):
        validate_rrule(rule, dtstart=datetime(2026, 3, 1, 9, tzinfo=BERLIN))


@pytest.mark.parametrize("rule", [
    "", "FREQ=FORTNIGHTLY", "BYDAY=MO", "FREQ=WEEKLY;BYDAY=XX", "FREQ=DAILY;INTERVAL=0", "FREQ=DAILY;FOO=1",
    "FREQ=DAILY;COUNT=2;UNTIL=20270101T000000Z", "FREQ=WEEKLY;BYDAY=1MO", "FREQ=MONTHLY;BYMONTHDAY=32",
    "FREQ=DAILY;BYHOUR=24", "FREQ=DAILY;UNTIL=2027-01-01", "FREQ=DAILY;FREQ=WEEKLY", "FREQ=DAILY;COUNT=x",
])
def test_malformed_rules_raise(rule):
    with pytest.raises(ValueError) as caught:
        validate_rrule(rule, dtstart=datetime(2026, 3, 1, 9, tzinfo=BERLIN))
    assert "never occurs" not in str(caught.value)


@pytest.mark.parametrize("rule", [
    "FREQ=SECONDLY", "FREQ=MINUTELY", "FREQ=MINUTELY;INTERVAL=4", "FREQ=HOURLY;BYMINUTE=0,2",
    "FREQ=DAILY;BYSECOND=0,30",
])
def test_too_frequent_rules_are_refused(rule):
    with pytest.raises(ValueError, match="5 minutes"):
        validate_rrule(rule, dtstart=datetime(2026, 3, 1, 9, tzinfo=BERLIN))


@pytest.mark.parametrize(("rule", "normalized"), [
    ("rrule:freq=weekly;byday=fr,mo;interval=1", "FREQ=WEEKLY;BYDAY=MO,FR"),
    ("FREQ=MINUTELY;INTERVAL=5", "FREQ=MINUTELY;INTERVAL=5"),
    ("FREQ=YEARLY;BYMONTHDAY=8;BYMONTH=3", "FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=8"),
    ("FREQ=MONTHLY;BYDAY=-1FR;WKST=MO", "FREQ=MONTHLY;BYDAY=-1FR"),
    ("FREQ=DAILY;UNTIL=20270101T090000", "FREQ=DAILY;UNTIL=20270101T080000Z"),  # floating local time -> UTC
    ("FREQ=DAILY;UNTIL=20270101", "FREQ=DAILY;UNTIL=20270101T225959Z"),  # a date keeps the whole local day
    ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29"),
])
def test_validate_normalizes(rule, normalized):
    assert validate_rrule(rule, dtstart=datetime(2026, 3, 1, 9, tzinfo=BERLIN)) == normalized


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="zone-aware"):
        validate_rrule("FREQ=DAILY", dtstart=datetime(2026, 3, 1, 9))
    with pytest.raises(ValueError, match="zone-aware"):
        next_occurrence("FREQ=DAILY", dtstart=datetime(2026, 3, 1, 9, tzinfo=BERLIN), after=datetime(2026, 3, 2))


def test_localize_gap_and_fold():
    assert localize(datetime(2026, 3, 29, 2, 30), BERLIN).isoformat() == "2026-03-29T03:30:00+02:00"
    assert localize(datetime(2026, 10, 25, 2, 30), BERLIN).isoformat() == "2026-10-25T02:30:00+02:00"
    assert localize(datetime(2026, 7, 1, 12), BERLIN).isoformat() == "2026-07-01T12:00:00+02:00"
