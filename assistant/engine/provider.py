"""``LINGXI_LLM_PROVIDER=local``: the engine inside the app, behind its own OpenAI-compatible server.

``LocalProvider.start(settings)`` loads ``LINGXI_LOCAL_MODEL`` into an
``LLMEngine`` and serves ``create_server(engine)`` with uvicorn on a free
127.0.0.1 port in a daemon thread. The agent then talks to it exactly as it
talks to DeepSeek, through the ``openai`` SDK over real HTTP, so streaming,
tool calls, cancellation and errors take the same path. It does not pick a
model for you, download anything, or expose the port beyond loopback.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from assistant.config import Settings

START_TIMEOUT = 30.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalProvider:
    engine: object  # assistant.engine.LLMEngine (kept untyped so importing this module stays light)
    server: object  # uvicorn.Server
    thread: threading.Thread
    base_url: str

    @classmethod
    def start(cls, settings: Settings) -> LocalProvider:
        import uvicorn

        from assistant.engine.engine import LLMEngine
        from assistant.engine.server import create_server

        model = Path(settings.local_model or "")
        engine = LLMEngine(model, max_batch=settings.local_max_batch, threads=settings.local_threads)
        port = _free_port()
        app = create_server(engine, default_max_tokens=settings.local_max_tokens)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
        server.install_signal_handlers = lambda: None  # the app's own server owns the signals
        thread = threading.Thread(target=server.run, name="lingxi-local-engine", daemon=True)
        thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                engine.close()
                raise RuntimeError(f"the local engine's server did not start on 127.0.0.1:{port}")
            time.sleep(0.02)
        return cls(engine=engine, server=server, thread=thread, base_url=f"http://127.0.0.1:{port}/v1")

    @property
    def model_name(self) -> str:
        return self.engine.model_name

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.engine.close()
