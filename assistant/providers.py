"""Model providers: an OpenAI-compatible client, retries and error messages.

Every provider speaks the chat-completions protocol through the ``openai``
SDK: the DeepSeek API, any OpenAI-compatible server, and later the bundled
local engine. This module opens a streamed completion with our own retry
policy (the SDK's retries are off so that ours, which honours
``Retry-After``, is the only one), and turns protocol failures into
``ProviderError``s that carry a code and a message a user can act on. It does
not interpret the stream; ``agent.py`` does.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import openai

from assistant.config import Settings

RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}
RETRY_AFTER_CAP = 60.0

# code -> what the user is told. Codes are stable; the UI translates them.
MESSAGES = {
    "bad_request": "The model provider rejected the request (400): {detail}",
    "auth": "The model provider rejected the API key (401). Check LINGXI_LLM_API_KEY.",
    "balance": "The model provider account has no balance left (402). Top it up and retry.",
    "forbidden": "The model provider refused access (403): {detail}",
    "not_found": "The model or endpoint was not found (404). Check LINGXI_LLM_MODEL and LINGXI_LLM_BASE_URL.",
    "invalid_params": "The model provider found invalid parameters (422): {detail}",
    "rate_limited": "The model provider is rate-limiting us (429) and retries ran out. Try again shortly.",
    "unavailable": "The model provider failed ({detail}) and retries ran out. Try again shortly.",
    "timeout": "The model provider did not answer in time. Try again.",
    "connection": "Cannot reach the model provider at {detail}. Check the network or LINGXI_LLM_BASE_URL.",
    "no_key": "No API key is set. Set LINGXI_LLM_API_KEY (or DEEPSEEK_API_KEY) and restart.",
    "protocol": "The model provider sent a reply Lingxi could not read: {detail}",
}


class ProviderError(Exception):
    def __init__(self, code: str, detail: str = "", *, status: int | None = None):
        self.code = code
        self.status = status
        self.detail = detail
        super().__init__(MESSAGES[code].format(detail=detail))


@dataclass(frozen=True)
class ModelChoice:
    """Per-request overrides the UI's settings panel can make."""

    base_url: str
    model: str
    temperature: float
    api_key: str | None


def default_choice(settings: Settings, profile: str = "owner") -> ModelChoice:
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    # Customer service answers facts from the knowledge base: a low temperature keeps it there.
    temperature = settings.customer_service_temperature if profile == "customer_service" else settings.llm_temperature
    return ModelChoice(settings.llm_base_url, settings.llm_model, temperature, key)


KEYED_HOSTS = ("api.deepseek.com", "api.openai.com")


def missing_key(choice: ModelChoice) -> bool:
    """True when the provider is a hosted API that needs a key and none is set.

    Self-hosted OpenAI-compatible servers (vLLM, the local engine) often need
    none, so only known hosted APIs are checked before a request is made.
    """
    from urllib.parse import urlsplit

    return not choice.api_key and (urlsplit(choice.base_url).hostname or "") in KEYED_HOSTS


def make_client(choice: ModelChoice, settings: Settings) -> openai.AsyncOpenAI:
    # Read timeout bounds the wait for the first byte and between chunks;
    # connecting should be quick on any healthy network.
    timeout = httpx.Timeout(settings.llm_timeout, connect=min(10.0, settings.llm_timeout))
    return openai.AsyncOpenAI(
        base_url=choice.base_url, api_key=choice.api_key or "none", timeout=timeout, max_retries=0
    )


def _detail(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:300]
    return str(exc.message)[:300]


def classify(exc: BaseException, base_url: str) -> ProviderError:
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, openai.APITimeoutError):
        return ProviderError("timeout")
    if isinstance(exc, openai.APIConnectionError):
        return ProviderError("connection", base_url)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        code = {
            400: "bad_request", 401: "auth", 402: "balance", 403: "forbidden", 404: "not_found",
            422: "invalid_params", 429: "rate_limited",
        }.get(status, "unavailable")
        detail = _detail(exc) if code != "unavailable" else f"HTTP {status}"
        return ProviderError(code, detail, status=status)
    return ProviderError("protocol", f"{type(exc).__name__}: {exc}")


def retryable(exc: BaseException) -> bool:
    if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError)):
        return True
    return isinstance(exc, openai.APIStatusError) and (exc.status_code in RETRYABLE_STATUS or exc.status_code >= 500)


def retry_after(exc: BaseException) -> float | None:
    """Seconds the server asked us to wait, from Retry-After (seconds form)."""
    response = getattr(exc, "response", None)
    if response is None:
        return None
    value = response.headers.get("retry-after-ms")
    if value:
        try:
            return float(value) / 1000
        except ValueError:
            pass
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # HTTP-date form: fall back to our own backoff


def backoff_delay(attempt: int, settings: Settings, exc: BaseException) -> float:
    """Full-jitter exponential backoff, but never sooner than Retry-After.

    A Retry-After beyond ``RETRY_AFTER_CAP`` seconds is not waited for in full:
    a chat user is better served by an error they can retry by hand.
    """
    ceiling = min(settings.llm_retry_max_delay, settings.llm_retry_base_delay * 2**attempt)
    delay = random.uniform(0, ceiling)
    asked = retry_after(exc)
    if asked is not None:
        delay = max(delay, min(asked, RETRY_AFTER_CAP))
    return delay


async def with_retries(
    start: Callable[[], Awaitable[Any]],
    settings: Settings,
    base_url: str,
    on_retry: Callable[[int, float, ProviderError], None] | None = None,
) -> Any:
    """Await ``start()``, retrying transient failures; raise ProviderError otherwise."""
    attempt = 0
    while True:
        try:
            return await start()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not retryable(exc) or attempt >= settings.llm_max_retries:
                raise classify(exc, base_url) from exc
            delay = backoff_delay(attempt, settings, exc)
            if on_retry:
                on_retry(attempt + 1, delay, classify(exc, base_url))
            attempt += 1
            await asyncio.sleep(delay)
