"""The command line: `app.py when` (single and --jsonl) and `app.py bench reminders` on a small load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def app(*args: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINGXI_")}
    env["LINGXI_DATA_DIR"] = os.environ["LINGXI_DATA_DIR"]
    return subprocess.run([sys.executable, str(ROOT / "app.py"), *args], input=stdin, capture_output=True,
                          text=True, timeout=timeout, cwd=os.getcwd(), env=env)


@pytest.mark.parametrize("text,expected", [
    ("明天下午三点半", "2026-11-23T15:30:00+08:00"),
    ("next Friday 9am", "2026-11-27T09:00:00+08:00"),
    ("2026-12-01 15:00", "2026-12-01T15:00:00+08:00"),
])
def test_when_prints_iso(text, expected):
    result = app("when", text, "--now", "2026-11-22T10:00:00", "--tz", "Asia/Shanghai")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_when_recurring_prints_rrule_and_first_occurrence():
    result = app("when", "每周一早上9点", "--now", "2026-11-22T10:00:00+08:00", "--tz", "Asia/Shanghai")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["RRULE:FREQ=WEEKLY;BYDAY=MO", "first: 2026-11-23T09:00:00+08:00"]


@pytest.mark.parametrize("args,words", [
    (("when", "blah blah", "--now", "2026-11-22T10:00:00"), "cannot resolve"),
    (("when", "2月30日", "--now", "2026-11-22T10:00:00"), "cannot resolve"),
])
def test_when_says_clearly_when_it_cannot(args, words):
    result = app(*args, "--tz", "Asia/Shanghai")
    assert result.returncode == 1 and words in result.stderr and "Traceback" not in result.stderr


def test_when_rejects_bad_zone_and_bad_now():
    result = app("when", "明天", "--tz", "Mars/Olympus")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    result = app("when", "明天", "--now", "yesterday-ish", "--tz", "Asia/Shanghai")
    assert result.returncode == 2 and "--now" in result.stderr


def test_when_jsonl():
    lines = [
        {"text": "后天晚上8点", "now": "2026-11-22T10:00:00", "tz": "Asia/Shanghai"},
        {"text": "every weekday at 8am", "now": "2026-11-22T10:00:00", "tz": "America/New_York"},
        {"text": "2月30日", "now": "2026-11-22T10:00:00", "tz": "Asia/Shanghai"},
        {"text": "明天", "now": "2026-11-22T10:00:00", "tz": "Nowhere/City"},
        {"oops": 1},
    ]
    result = app("when", "--jsonl", stdin="\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n")
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert out[0] == {"when": "2026-11-24T20:00:00+08:00", "rrule": None, "error": None}
    assert out[1]["rrule"] == "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR" and out[1]["when"] == "2026-11-23T08:00:00-05:00"
    assert out[2]["when"] is None and out[2]["error"]
    assert out[3]["when"] is None and out[3]["error"]
    assert out[4]["error"].startswith("bad input line")


def test_bench_reminders_small_run_reports_figures():
    result = app("bench", "reminders", "--count", "200", "--window", "2", "--json", timeout=240)
    assert result.returncode == 0, result.stderr + result.stdout
    report = json.loads(result.stdout)
    assert report["lingxi"]["delivered"] == 200 and report["burst"]["delivered"] == 200
    assert 0 <= report["lingxi"]["p50"] <= report["lingxi"]["p99"] < 2.0
    assert report["burst"]["throughput"] > 0 and "p50" in report["apscheduler_reference"]
