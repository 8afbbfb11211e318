"""Real loopback receivers for outbound delivery tests: a scripted webhook endpoint and an SMTP server.

``Receiver`` is a ThreadingHTTPServer answering POSTs from a script of
replies and recording (headers, body); ``smtp_server`` runs aiosmtpd with a
``Collector`` handler that keeps accepted envelopes or rejects at RCPT/DATA.
Nothing in httpx or smtplib is mocked.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

from tests.server import free_port


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to stall before answering (for timeouts)


class Receiver:
    """A ThreadingHTTPServer answering from a script of replies (200 once the script runs out)."""

    def __init__(self, *script: Reply | int) -> None:
        self.script = deque(r if isinstance(r, Reply) else Reply(r) for r in script)
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests.append((dict(self.headers.items()), body))
                    reply = receiver.script.popleft() if receiver.script else Reply()
                time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the client gave up (timeout test)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/lingxi?token=abc"

    def __enter__(self) -> Receiver:
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


class Collector:
    """aiosmtpd handler keeping what it accepts; ``reject_at`` answers 550 at RCPT or DATA."""

    def __init__(self, reject_at: str | None = None) -> None:
        self.reject_at = reject_at
        self.envelopes: list = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reject_at == "RCPT":
            return "550 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.reject_at == "DATA":
            return "550 mailbox unavailable"
        self.envelopes.append(envelope)
        return "250 Message accepted"


@contextmanager
def smtp_server(handler: Collector, **kwargs):
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **kwargs)
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()
