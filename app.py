"""Lingxi's entry point and command line.

    python app.py serve      # migrate, then serve the UI and API (default)
    python app.py migrate    # apply database migrations and exit

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

    from assistant.services import Lingxi
    from assistant.web import create_app

    host = args.host or settings.host
    port = args.port or settings.port
    lingxi = Lingxi.create(settings)
    if settings.llm_provider == "openai" and not settings.llm_api_key:
        log.warning("no API key set (LINGXI_LLM_API_KEY or DEEPSEEK_API_KEY): replies will fail until one is")
    print(f"Lingxi is serving on http://{host}:{port}  (model {settings.llm_model} at {settings.llm_base_url})")
    try:
        uvicorn.run(create_app(lingxi), host=host, port=port, log_level="warning")
    finally:
        lingxi.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="app.py", description="Lingxi (灵犀) AI assistant")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="serve the chat UI and API")
    serve.add_argument("--host", help="listen address (default LINGXI_HOST)")
    serve.add_argument("--port", type=int, help="port (default LINGXI_PORT)")
    serve.set_defaults(func=cmd_serve)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        args = parser.parse_args(["serve", *(argv or [])])
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"lingxi: {exc}", file=sys.stderr)
        return 2
    return args.func(settings, args)


if __name__ == "__main__":
    sys.exit(main())
