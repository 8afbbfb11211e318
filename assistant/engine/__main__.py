"""``python -m assistant.engine ...``: the engine's command line without the app.

The same commands as ``python app.py engine ...`` (``cli``), without loading the app's settings, so
they run where only torch, tokenizers and safetensors are installed, as on a lent GPU machine:
``generate``, ``bench`` and ``train --data FILE`` need nothing else (``serve`` needs uvicorn and
FastAPI; ``eval-assistant`` and ``train`` without ``--data`` generate conversations through the
app's tools, so they need the app's packages too).

Does not: read ``.env`` or any ``LINGXI_*`` setting (the engine's commands take flags only).
"""

from __future__ import annotations

import argparse
import sys

from . import cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m assistant.engine")
    # The app's parser has "engine" as a subcommand; here it is the only one, taken as read.
    cli.add_parser(parser.add_subparsers(dest="command", required=True), prog=parser.prog)
    return cli.run(None, parser.parse_args(["engine", *(sys.argv[1:] if argv is None else argv)]))


if __name__ == "__main__":
    sys.exit(main())
