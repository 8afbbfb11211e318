"""Lingxi's entry point and command line.

    python app.py serve      # migrate, then serve the UI and API (default)
    python app.py migrate    # apply database migrations and exit
    python app.py when TEXT  # resolve a time expression (zh/en)
    python app.py bench reminders|widget
    python app.py kb ingest|list|delete|search|reindex|eval ...
    python app.py engine serve|generate --model PATH ...

Configuration comes from the environment and ``.env`` (see README). A bad
setting ends the program with one clear line, not a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys

from assistant.config import Settings, SettingsError, load_settings

log = logging.getLogger("lingxi")


def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from assistant.db import migrate

    migrate(settings.db_url)
    print(f"database is up to date ({settings.db_url.split('://', 1)[0]})")
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from assistant.owner_auth import serve_refusal
    from assistant.services import Lingxi
    from assistant.web import create_app

    host = args.host or settings.host
    port = args.port or settings.port
    try:
        lingxi = Lingxi.create(settings)
    except SettingsError as exc:  # e.g. LINGXI_LOCAL_MODEL missing, or a model that does not load
        print(f"lingxi: {exc}", file=sys.stderr)
        return 2
    if refusal := serve_refusal(lingxi, host):
        lingxi.close()
        print(f"lingxi: {refusal}", file=sys.stderr)
        return 2
    if stuck := lingxi.kb.recover_interrupted():
        log.warning("%d knowledge-base file(s) were mid-indexing when the app stopped; marked as errors", stuck)
    lingxi.scheduler.start()
    if lingxi.settings.provider == "openai" and not settings.llm_api_key:
        log.warning("no API key set (LINGXI_LLM_API_KEY or DEEPSEEK_API_KEY): replies will fail until one is")
    elif lingxi.settings.bundled_model_in_use:
        log.warning("no API key set: replying with the small bundled offline model; set LINGXI_LLM_API_KEY "
                    "(or DEEPSEEK_API_KEY) in .env and restart to use DeepSeek")
    print(f"Lingxi is serving on http://{host}:{port}  (model {lingxi.settings.llm_model} at {lingxi.settings.llm_base_url})")
    try:
        uvicorn.run(create_app(lingxi, bind_host=host), host=host, port=port, log_level="warning")
    finally:
        lingxi.close()
    return 0


def cmd_when(settings: Settings, args: argparse.Namespace) -> int:
    import json
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from tools.timeparse import when_result

    def now_of(text: str | None, tz: str):
        if not text:
            return None
        now = datetime.fromisoformat(text)
        return now if now.tzinfo else now.replace(tzinfo=ZoneInfo(tz))

    if args.jsonl:
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                tz = item.get("tz") or settings.timezone
                out = when_result(item["text"], now=now_of(item.get("now"), tz), tz=tz)
            except (ValueError, KeyError, TypeError) as exc:
                out = {"when": None, "rrule": None, "error": f"bad input line: {exc}"}
            print(json.dumps(out, ensure_ascii=False), flush=True)
        return 0
    if not args.text:
        print("lingxi: when needs TEXT (or --jsonl)", file=sys.stderr)
        return 2
    tz = args.tz or settings.timezone
    try:
        now = now_of(args.now, tz)
    except (ValueError, KeyError):
        print(f"lingxi: --now must be ISO-8601 and --tz an IANA zone, got {args.now!r} and {tz!r}", file=sys.stderr)
        return 2
    out = when_result(args.text, now=now, tz=tz)
    if out["error"]:
        print(f"cannot resolve {args.text!r}: {out['error']}", file=sys.stderr)
        return 1
    if out["rrule"]:
        print(f"RRULE:{out['rrule']}")
        print(f"first: {out['when']}")
    else:
        print(out["when"])
    return 0


def cmd_bench(_settings: Settings, args: argparse.Namespace) -> int:
    if args.target == "widget":
        from assistant import bench_widget

        return bench_widget.run(visitors=args.visitors, messages=args.messages, as_json=args.json)
    from assistant import bench_reminders

    return bench_reminders.run(count=args.count, window=args.window, poll=args.poll, as_json=args.json)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="app.py", description="Lingxi (灵犀) AI assistant")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="serve the chat UI and API")
    serve.add_argument("--host", help="listen address (default LINGXI_HOST)")
    serve.add_argument("--port", type=int, help="port (default LINGXI_PORT)")
    serve.set_defaults(func=cmd_serve)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    when = sub.add_parser("when", help="resolve a time expression (zh/en) to ISO-8601 or an RRULE")
    when.add_argument("text", nargs="?", help='e.g. "明天下午三点半" or "every weekday at 8am"')
    when.add_argument("--now", help="ISO-8601 moment to resolve against (default: now)")
    when.add_argument("--tz", help="IANA time zone (default LINGXI_TIMEZONE)")
    when.add_argument("--jsonl", action="store_true", help='read {"text","now","tz"} lines from stdin')
    when.set_defaults(func=cmd_when)
    bench = sub.add_parser("bench", help="benchmarks")
    bench.add_argument("target", choices=["reminders", "widget"])
    bench.add_argument("--count", type=int, default=10_000)
    bench.add_argument("--window", type=float, default=60.0, help="seconds over which reminders fall due")
    bench.add_argument("--poll", type=float, default=1.0, help="scheduler sweep interval in seconds")
    bench.add_argument("--visitors", type=int, default=50, help="widget: concurrent visitors")
    bench.add_argument("--messages", type=int, default=5, help="widget: messages each visitor sends")
    bench.add_argument("--json", action="store_true")
    bench.set_defaults(func=cmd_bench)
    from assistant import owner_cli
    from assistant.engine import cli as engine_cli
    from rag import cli as kb_cli

    kb_cli.add_parser(sub)
    engine_cli.add_parser(sub)
    owner_cli.add_parser(sub)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        args = parser.parse_args(["serve", *(argv or [])])
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("alembic", "apscheduler", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"lingxi: {exc}", file=sys.stderr)
        return 2
    return args.func(settings, args)


if __name__ == "__main__":
    sys.exit(main())
