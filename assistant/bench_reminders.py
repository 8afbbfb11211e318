"""``python app.py bench reminders``: how late, and how fast, reminders go out.

Builds a throwaway SQLite database, schedules N reminders (10,000 by
default) due uniformly within a window (60 s), runs the real scheduler and
firer, and reports lateness (inbox row written minus due time) at p50/p99/max
and the delivery throughput. In the same run it measures two references:
bare APScheduler date jobs with a no-op callback (the scheduler's own
lateness), and a burst where every reminder is already due (the firer's
maximum drain rate). Figures are printed as ratios against those. Only the
in-app channel is exercised; webhook and e-mail speed is the network's.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import func, insert, select

from assistant.config import Settings
from assistant.models import Notification, Reminder, new_id, utcnow
from assistant.services import Lingxi


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _insert(lingxi: Lingxi, dues: list[datetime]) -> None:
    now = utcnow()
    rows = [
        {"id": new_id(), "text": f"bench {i}", "timezone": "UTC", "due_at": due, "channels": ["inapp"],
         "status": "scheduled", "lead_minutes": 0, "fire_count": 0, "created_at": now, "updated_at": now}
        for i, due in enumerate(dues)
    ]
    with lingxi.db.session() as session:
        for start in range(0, len(rows), 1000):
            session.execute(insert(Reminder), rows[start : start + 1000])


def _lateness(lingxi: Lingxi) -> list[float]:
    with lingxi.db.session() as session:
        rows = session.execute(select(Notification.created_at, Notification.due_at)).all()
    return [(created - due).total_seconds() for created, due in rows]


def _wait_for(lingxi: Lingxi, count: int, deadline: float) -> int:
    done = 0
    while time.monotonic() < deadline:
        with lingxi.db.session() as session:
            done = session.scalar(select(func.count()).select_from(Notification)) or 0
        if done >= count:
            break
        time.sleep(0.25)
    return done


def scheduled_run(count: int, window: float, poll: float, data: Path) -> dict:
    lingxi = Lingxi.create(Settings(data_dir=data, reminder_poll_seconds=poll), start_engine=False)
    start = utcnow() + timedelta(seconds=3)
    _insert(lingxi, [start + timedelta(seconds=window * i / count) for i in range(count)])
    lingxi.scheduler.start()
    done = _wait_for(lingxi, count, time.monotonic() + 3 + window + 120)
    lingxi.scheduler.shutdown()
    late = _lateness(lingxi)
    lingxi.close()
    return {"delivered": done, "p50": _percentile(late, 0.5), "p99": _percentile(late, 0.99), "max": max(late),
            "throughput": done / (window + max(late))}


def burst_run(count: int, data: Path) -> dict:
    lingxi = Lingxi.create(Settings(data_dir=data), start_engine=False)
    _insert(lingxi, [utcnow() - timedelta(seconds=1)] * count)
    t0 = time.perf_counter()
    fired = lingxi.firer.fire_due()
    elapsed = time.perf_counter() - t0
    lingxi.close()
    return {"delivered": fired, "seconds": elapsed, "throughput": fired / elapsed}


def apscheduler_reference(count: int, window: float) -> dict:
    """Lateness of bare APScheduler date jobs: the floor any job-based design starts from."""
    late: list[float] = []
    lock = threading.Lock()
    scheduler = BackgroundScheduler(timezone=timezone.utc, job_defaults={"misfire_grace_time": None})
    start = datetime.now(timezone.utc) + timedelta(seconds=2)

    def record(due: datetime) -> None:
        with lock:
            late.append((datetime.now(timezone.utc) - due).total_seconds())

    for i in range(count):
        due = start + timedelta(seconds=window * i / count)
        scheduler.add_job(record, "date", run_date=due, args=[due])
    scheduler.start()
    deadline = time.monotonic() + 2 + window + 60
    while len(late) < count and time.monotonic() < deadline:
        time.sleep(0.25)
    scheduler.shutdown(wait=False)
    return {"p50": _percentile(late, 0.5), "p99": _percentile(late, 0.99)}


def run(count: int = 10_000, window: float = 60.0, poll: float = 1.0, as_json: bool = False) -> int:
    with tempfile.TemporaryDirectory(prefix="lingxi-bench-") as tmp:
        ours = scheduled_run(count, window, poll, Path(tmp) / "scheduled")
        burst = burst_run(count, Path(tmp) / "burst")
    ref = apscheduler_reference(count, window)
    ok = ours["delivered"] == count and ours["p99"] <= 2.0
    result = {"count": count, "window_s": window, "poll_s": poll, "lingxi": ours, "burst": burst,
              "apscheduler_reference": ref, "within_2s_p99": ok}
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        print(f"reminders: {count} due within {window:.0f} s, sweep every {poll} s (SQLite, in-app channel)")
        print(f"  delivered      {ours['delivered']}/{count}")
        print(f"  lateness p50   {ours['p50'] * 1000:8.1f} ms   (bare APScheduler jobs: {ref['p50'] * 1000:.1f} ms)")
        print(f"  lateness p99   {ours['p99'] * 1000:8.1f} ms   (bare APScheduler jobs: {ref['p99'] * 1000:.1f} ms)")
        print(f"  lateness max   {ours['max'] * 1000:8.1f} ms")
        print(f"  throughput     {ours['throughput']:8.1f} /s while due (offered load {count / window:.1f} /s)")
        print(f"  burst drain    {burst['throughput']:8.1f} /s ({count} already due: {burst['seconds']:.1f} s), "
              f"{burst['throughput'] / (count / window):.1f}x the offered load")
        print(f"  p99 within 2 s: {'yes' if ok else 'NO'}")
    return 0 if ok else 1
