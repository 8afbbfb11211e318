"""Provider errors: classification, retry policy, Retry-After and backoff."""

from __future__ import annotations

import asyncio
import json

import httpx
import openai
import pytest

from assistant.config import Settings
from assistant.providers import (
    RETRY_AFTER_CAP,
    MESSAGES,
    ProviderError,
    backoff_delay,
    classify,
    default_choice,
    retry_after,
    retryable,
    with_retries,
)

BASE_URL = "https://api.deepseek.com"
REQUEST = httpx.Request("POST", f"{BASE_URL}/chat/completions")

# The same status -> exception class mapping the SDK itself makes.
ERROR_CLASSES = {
    400: openai.BadRequestError,
    401: openai.AuthenticationError,
    403: openai.PermissionDeniedError,
    404: openai.NotFoundError,
    422: openai.UnprocessableEntityError,
    429: openai.RateLimitError,
}


def status_error(status: int, message: str = "", *, headers: dict[str, str] | None = None, body=None):
    """An APIStatusError built as the SDK builds one from a real HTTP response."""
    if body is None:
        body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}
    content = body if isinstance(body, str) else json.dumps(body)
    response = httpx.Response(status, headers=headers or {}, content=content.encode(), request=REQUEST)
    err_msg = f"Error code: {status}" + (f" - {message}" if message else "")
    data = body.get("error", body) if isinstance(body, dict) else body
    cls = ERROR_CLASSES.get(status, openai.InternalServerError if status >= 500 else openai.APIStatusError)
    return cls(err_msg, response=response, body=data)


@pytest.fixture
def cfg() -> Settings:
    return Settings(
        llm_api_key="sk-test",
        llm_max_retries=3,
        llm_retry_base_delay=0.01,
        llm_retry_max_delay=0.05,
    )


# --------------------------------------------------------------------------- classify


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "bad_request"),
        (401, "auth"),
        (402, "balance"),
        (403, "forbidden"),
        (404, "not_found"),
        (422, "invalid_params"),
        (429, "rate_limited"),
        (500, "unavailable"),
        (502, "unavailable"),
        (503, "unavailable"),
    ],
)
def test_classify_status_codes(status, code):
    err = classify(status_error(status, "server says no"), BASE_URL)
    assert isinstance(err, ProviderError)
    assert err.code == code
    assert err.status == status
    assert str(err) == MESSAGES[code].format(detail=err.detail)


def test_classify_includes_server_detail_for_400_and_422():
    err = classify(status_error(400, "Invalid 'messages[2].tool_call_id': missing"), BASE_URL)
    assert err.detail == "Invalid 'messages[2].tool_call_id': missing"
    assert str(err) == "The model provider rejected the request (400): Invalid 'messages[2].tool_call_id': missing"
    err = classify(status_error(422, "temperature must be <= 2"), BASE_URL)
    assert err.code == "invalid_params"
    assert "temperature must be <= 2" in str(err)
    assert "(422)" in str(err)


def test_classify_detail_from_flat_body_and_text_body():
    # DeepSeek-style body without the "error" wrapper.
    err = classify(status_error(400, body={"message": "Model Not Exist"}), BASE_URL)
    assert err.detail == "Model Not Exist"
    # A proxy's HTML page: the SDK's own message is used.
    err = classify(status_error(400, body="<html>Bad Gateway</html>"), BASE_URL)
    assert err.code == "bad_request"
    assert err.detail == "Error code: 400"


def test_classify_detail_truncated():
    err = classify(status_error(400, "x" * 1000), BASE_URL)
    assert err.detail == "x" * 300


def test_classify_server_errors_name_the_status():
    err = classify(status_error(503, "overloaded"), BASE_URL)
    assert err.detail == "HTTP 503"
    assert "HTTP 503" in str(err)


def test_classify_auth_and_balance_messages():
    assert "LINGXI_LLM_API_KEY" in str(classify(status_error(401, "Authentication Fails"), BASE_URL))
    assert "balance" in str(classify(status_error(402, "Insufficient Balance"), BASE_URL))


def test_classify_timeout_connection_and_other():
    assert classify(openai.APITimeoutError(request=REQUEST), BASE_URL).code == "timeout"
    err = classify(openai.APIConnectionError(request=REQUEST), BASE_URL)
    assert err.code == "connection"
    assert BASE_URL in str(err)
    err = classify(KeyError("choices"), BASE_URL)
    assert err.code == "protocol"
    assert "KeyError" in str(err)
    same = ProviderError("no_key")
    assert classify(same, BASE_URL) is same


# --------------------------------------------------------------------------- retryable


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 529])
def test_retryable_statuses(status):
    assert retryable(status_error(status, "x")) is True


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 422])
def test_not_retryable_statuses(status):
    assert retryable(status_error(status, "x")) is False


def test_retryable_transport_errors():
    assert retryable(openai.APITimeoutError(request=REQUEST)) is True
    assert retryable(openai.APIConnectionError(request=REQUEST)) is True
    assert retryable(ValueError("bad json")) is False
    assert retryable(ProviderError("auth")) is False


# --------------------------------------------------------------------------- retry_after and backoff


def test_retry_after_seconds():
    assert retry_after(status_error(429, "slow", headers={"Retry-After": "2"})) == 2.0
    assert retry_after(status_error(429, "slow", headers={"retry-after": "0.5"})) == 0.5


def test_retry_after_ms_preferred():
    exc = status_error(429, "slow", headers={"retry-after-ms": "1500", "Retry-After": "9"})
    assert retry_after(exc) == 1.5


def test_retry_after_absent_or_unreadable():
    assert retry_after(status_error(429, "slow")) is None
    assert retry_after(status_error(429, "slow", headers={"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"})) is None
    assert retry_after(status_error(429, "slow", headers={"retry-after-ms": "soon", "Retry-After": "3"})) == 3.0
    assert retry_after(openai.APITimeoutError(request=REQUEST)) is None
    assert retry_after(ValueError()) is None


def test_backoff_never_below_retry_after():
    s = Settings(llm_retry_base_delay=0.5, llm_retry_max_delay=20)
    exc = status_error(429, "slow", headers={"Retry-After": "2"})
    for attempt in range(6):
        for _ in range(50):
            delay = backoff_delay(attempt, s, exc)
            assert delay >= 2.0
            assert delay <= max(2.0, min(20, 0.5 * 2**attempt))
    exc_ms = status_error(429, "slow", headers={"retry-after-ms": "750"})
    assert all(backoff_delay(0, s, exc_ms) >= 0.75 for _ in range(50))


def test_backoff_full_jitter_bounds():
    s = Settings(llm_retry_base_delay=0.5, llm_retry_max_delay=3)
    exc = status_error(500, "boom")
    for attempt in range(8):
        ceiling = min(3, 0.5 * 2**attempt)
        delays = [backoff_delay(attempt, s, exc) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays), (attempt, max(delays))
        assert len(set(delays)) > 1  # jittered, not fixed
    # The ceiling is reached: late attempts are not stuck at the base delay.
    assert max(backoff_delay(7, s, exc) for _ in range(200)) > 1.5


def test_backoff_zero_base_delay():
    s = Settings(llm_retry_base_delay=0, llm_retry_max_delay=3)
    assert backoff_delay(4, s, status_error(503, "x")) == 0


# --------------------------------------------------------------------------- with_retries


class Script:
    """A coroutine factory that raises the scripted exceptions, then returns."""

    def __init__(self, *outcomes):
        self.outcomes = list(outcomes)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        outcome = self.outcomes.pop(0) if self.outcomes else "ok"

        async def attempt():
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome

        return attempt()


def test_with_retries_recovers_after_two_429s(cfg):
    factory = Script(status_error(429, "slow"), status_error(429, "slow"), "stream")
    retries = []
    result = asyncio.run(with_retries(factory, cfg, BASE_URL, on_retry=lambda *a: retries.append(a)))
    assert result == "stream"
    assert factory.calls == 3
    assert [r[0] for r in retries] == [1, 2]
    assert all(isinstance(r[2], ProviderError) and r[2].code == "rate_limited" for r in retries)
    assert all(0 <= r[1] <= cfg.llm_retry_max_delay for r in retries)


def test_with_retries_gives_up(cfg):
    factory = Script(*[status_error(429, "slow") for _ in range(10)])
    retries = []
    with pytest.raises(ProviderError) as info:
        asyncio.run(with_retries(factory, cfg, BASE_URL, on_retry=lambda *a: retries.append(a)))
    assert info.value.code == "rate_limited"
    assert info.value.status == 429
    assert factory.calls == cfg.llm_max_retries + 1
    assert len(retries) == cfg.llm_max_retries
    assert isinstance(info.value.__cause__, openai.RateLimitError)


def test_with_retries_zero_retries(cfg):
    cfg = cfg.model_copy(update={"llm_max_retries": 0})
    factory = Script(status_error(503, "down"))
    with pytest.raises(ProviderError) as info:
        asyncio.run(with_retries(factory, cfg, BASE_URL))
    assert info.value.code == "unavailable"
    assert factory.calls == 1


@pytest.mark.parametrize(("status", "code"), [(401, "auth"), (400, "bad_request"), (402, "balance"),
                                              (422, "invalid_params")])
def test_with_retries_does_not_retry_client_errors(cfg, status, code):
    factory = Script(status_error(status, "nope"), "never reached")
    retries = []
    with pytest.raises(ProviderError) as info:
        asyncio.run(with_retries(factory, cfg, BASE_URL, on_retry=lambda *a: retries.append(a)))
    assert info.value.code == code
    assert factory.calls == 1
    assert retries == []


def test_with_retries_transport_errors_then_success(cfg):
    factory = Script(openai.APITimeoutError(request=REQUEST), openai.APIConnectionError(request=REQUEST), 42)
    codes = []
    assert asyncio.run(with_retries(factory, cfg, BASE_URL, on_retry=lambda n, d, e: codes.append(e.code))) == 42
    assert codes == ["timeout", "connection"]


def test_with_retries_protocol_error_not_retried(cfg):
    factory = Script(KeyError("choices"))
    with pytest.raises(ProviderError) as info:
        asyncio.run(with_retries(factory, cfg, BASE_URL))
    assert info.value.code == "protocol"
    assert factory.calls == 1


def test_with_retries_against_scripted_server(fake_llm):
    """End to end through the real SDK: a 429 with Retry-After, then a 400."""
    from tests.fakes.openai_server import Reply

    from assistant.providers import make_client

    s = Settings(llm_base_url=fake_llm.base_url, llm_api_key="sk-test", llm_max_retries=2,
                 llm_retry_base_delay=0.01, llm_retry_max_delay=0.05, llm_timeout=5)
    fake_llm.queue(Reply.error(429, "slow down", retry_after="0.1"), Reply.error(400, "Bad tool_call_id"))
    client = make_client(default_choice(s), s)
    delays = []

    async def go():
        try:
            await with_retries(
                lambda: client.chat.completions.create(model="deepseek-chat", messages=[{"role": "user", "content": "hi"}]),
                s, s.llm_base_url, on_retry=lambda n, d, e: delays.append(d),
            )
        finally:
            await client.close()

    with pytest.raises(ProviderError) as info:
        asyncio.run(go())
    assert info.value.code == "bad_request"
    assert info.value.detail == "Bad tool_call_id"
    assert len(delays) == 1 and delays[0] >= 0.1
    assert len(fake_llm.requests) == 2


def test_default_choice(cfg):
    choice = default_choice(cfg)
    assert choice.api_key == "sk-test"
    assert choice.base_url == "https://api.deepseek.com"
    assert choice.model == "deepseek-chat"
    assert default_choice(Settings()).api_key is None


def test_backoff_honours_retry_after_even_with_small_max_delay_but_caps_absurd_waits():
    s = Settings(llm_retry_base_delay=0.01, llm_retry_max_delay=0.05)
    assert backoff_delay(0, s, status_error(429, headers={"retry-after": "2"})) >= 2
    assert backoff_delay(0, s, status_error(429, headers={"retry-after": "86400"})) == RETRY_AFTER_CAP
