"""Outbound reminder delivery: a signed webhook POST and a plain-text e-mail.

``send_webhook`` and ``send_email`` take a ``Notice`` and return a
``DeliveryResult`` recording every attempt; network trouble never raises, only
bad configuration does (``DeliveryConfigError``, before anything is sent).
``sign``/``verify`` are the HMAC scheme a receiver checks ``X-Lingxi-Signature`` with.

Not here: the in-app inbox (database work), scheduling, and retrying failed
e-mail (the scheduler retries failed reminders). Secrets (webhook secret, SMTP
password) and webhook URL paths, which often carry tokens, never reach logs or errors.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import random
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from urllib.parse import urlsplit

import httpx

log = logging.getLogger(__name__)

USER_AGENT = "Lingxi-Webhook/1"
MAX_RETRY_AFTER = 60.0  # a receiver may ask us to wait, but not hold a reminder back indefinitely
SUBJECT_MAX = 80


@dataclass(frozen=True)
class Notice:
    """One reminder occurrence to deliver."""

    reminder_id: str
    text: str
    due_at: datetime
    fired_at: datetime
    late: bool
    event_title: str | None = None

    def __post_init__(self) -> None:
        # Naive times would serialise without an offset and be misread by receivers.
        if self.due_at.utcoffset() is None or self.fired_at.utcoffset() is None:
            raise ValueError("Notice.due_at and Notice.fired_at must be zone-aware")

    def payload(self) -> dict:
        return {"type": "reminder", "reminder_id": self.reminder_id, "text": self.text,
                "due_at": self.due_at.isoformat(), "fired_at": self.fired_at.isoformat(),
                "late": self.late, "event_title": self.event_title}

    @property
    def delivery_id(self) -> str:
        # Same for every retry and re-fire of one occurrence, so receivers can dedupe on it.
        return f"{self.reminder_id}:{self.due_at.isoformat()}"


@dataclass
class Attempt:
    channel: str  # "webhook" | "email"
    number: int  # 1-based
    ok: bool
    detail: str  # "HTTP 500", "connection refused", "SMTP 550 ..." - never a secret
    at: datetime


@dataclass
class DeliveryResult:
    channel: str
    ok: bool
    attempts: list[Attempt] = field(default_factory=list)
    error: str | None = None  # final, user-readable reason when not ok


class DeliveryConfigError(ValueError):
    """Delivery is misconfigured; nothing was sent. The message is safe to show."""


def _redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def validate_webhook_url(url: str) -> str:
    """Return ``url`` if it is http(s) with a host. The URL is not echoed: it may hold a token."""
    try:
        parts = urlsplit(url or "")
        host = parts.hostname
    except ValueError:
        raise DeliveryConfigError("webhook URL must be http(s): it could not be parsed") from None
    if parts.scheme not in ("http", "https"):
        got = f"scheme {parts.scheme!r}" if parts.scheme else "no scheme"
        raise DeliveryConfigError(f"webhook URL must be http(s): got {got}")
    if not host or any(c.isspace() for c in url):
        raise DeliveryConfigError("webhook URL must be http(s): it needs a host and no spaces")
    return url


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Hex HMAC-SHA256 over ``"<timestamp>." + body``; signing the time stops replays."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature_header: str, *,
           now: float, tolerance: float = 300) -> bool:
    """Check an ``X-Lingxi-Signature: sha256=<hex>`` header as a receiver should."""
    try:
        sent_at = float(timestamp)
    except (TypeError, ValueError):
        return False
    if not math.isfinite(sent_at) or abs(now - sent_at) > tolerance:
        return False
    scheme, _, given = (signature_header or "").partition("=")
    return scheme == "sha256" and hmac.compare_digest(given.encode(), sign(secret, timestamp, body).encode())


def _retry_after(value: str | None) -> float | None:
    """Delta-seconds Retry-After, capped; an HTTP date falls back to our own backoff."""
    try:
        seconds = float(value) if value is not None else math.nan
    except ValueError:
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER) if math.isfinite(seconds) else None


def send_webhook(notice: Notice, *, url: str, secret: str | None, max_attempts: int = 4,
                 base_delay: float = 0.5, timeout: float = 10.0,
                 sleep: Callable[[float], None] = time.sleep,
                 client: httpx.Client | None = None) -> DeliveryResult:
    """POST the notice as JSON; retry network errors, 429 and 5xx with backoff."""
    validate_webhook_url(url)
    if max_attempts < 1:
        raise DeliveryConfigError("webhook max attempts must be at least 1")
    parts = urlsplit(url)
    where = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"  # no userinfo, path or query
    body = json.dumps(notice.payload(), ensure_ascii=False).encode("utf-8")
    result = DeliveryResult(channel="webhook", ok=False)
    http = client or httpx.Client(timeout=timeout, follow_redirects=False)
    try:
        for number in range(1, max_attempts + 1):
            # Re-signed per attempt: after a long backoff the first timestamp could look stale.
            stamp = str(int(time.time()))
            headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
                       "X-Lingxi-Timestamp": stamp, "X-Lingxi-Delivery": notice.delivery_id}
            if secret:
                headers["X-Lingxi-Signature"] = "sha256=" + sign(secret, stamp, body)
            at, wait = datetime.now(timezone.utc), None
            try:
                # Streamed and never read: the reply body is of no use and may be large.
                with http.stream("POST", url, content=body, headers=headers, timeout=timeout,
                                 follow_redirects=False) as response:
                    status = response.status_code
                ok, retryable = 200 <= status < 300, status == 429 or status >= 500
                detail = f"HTTP {status}" + (" redirect not followed" if 300 <= status < 400 else "")
                wait = _retry_after(response.headers.get("Retry-After")) if retryable else None
            except httpx.TransportError as exc:
                # The POST may have arrived anyway; X-Lingxi-Delivery lets the receiver drop the repeat.
                ok, retryable = False, True
                detail = ("connection refused" if "refused" in str(exc).lower()
                          else f"timed out after {timeout:g}s" if isinstance(exc, httpx.TimeoutException)
                          else _redact(f"{type(exc).__name__}: {exc}", secret))
            result.attempts.append(Attempt("webhook", number, ok, detail, at))
            if ok:
                result.ok = True
                log.info("webhook %s delivered to %s (attempt %d)", notice.delivery_id, where, number)
                return result
            log.warning("webhook %s to %s attempt %d/%d: %s", notice.delivery_id, where, number,
                        max_attempts, detail)
            if not retryable:
                result.error = f"webhook to {where} failed: {detail} (not retried)"
                return result
            if number < max_attempts:
                # Full jitter keeps many senders from retrying in lockstep.
                sleep(wait if wait is not None else random.uniform(0, base_delay * 2 ** (number - 1)))
        result.error = f"webhook to {where} failed after {max_attempts} attempts: {result.attempts[-1].detail}"
        return result
    finally:
        if client is None:
            http.close()


def _check_address(value: str, what: str) -> None:
    # CR/LF (or any control character) would let the value add headers such as Bcc:.
    bad = not isinstance(value, str) or value.count("@") != 1 or not all(value.split("@"))
    if bad or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise DeliveryConfigError(f"{what} address must look like name@example.com, got {value!r}")


def _human(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M (%A) ") + (when.tzname() or "")


def build_email(notice: Notice, *, to: str, sender: str) -> EmailMessage:
    """The message ``send_email`` sends: UTF-8 subject and plain-text body."""
    subject = "⏰ 提醒 Reminder: " + " ".join(notice.text.split())  # a header can't hold newlines
    if len(subject) > SUBJECT_MAX:
        subject = subject[: SUBJECT_MAX - 1] + "…"
    lines = [f"提醒 Reminder: {notice.text}"]
    if notice.event_title:
        lines.append(f"日程 Event: {notice.event_title}")
    lines.append(f"时间 Due: {_human(notice.due_at)}  [{notice.due_at.isoformat()}]")
    if notice.late:
        lines.append(f"⚠ 迟到 Late: Lingxi was not running at the due time; sent {_human(notice.fired_at)}.")
    lines += ["", f"— Lingxi 灵犀 (reminder {notice.reminder_id})"]
    msg = EmailMessage()
    msg["Subject"], msg["From"], msg["To"] = subject, sender, to
    msg["Date"] = format_datetime(notice.fired_at)
    # make_msgid's default domain costs a DNS lookup; the sender's domain will do.
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].strip("<> ") or "lingxi.local")
    msg["X-Lingxi-Delivery"] = notice.delivery_id
    msg.set_content("\n".join(lines) + "\n", charset="utf-8")
    return msg


def send_email(notice: Notice, *, to: str, host: str, port: int, sender: str,
               user: str | None = None, password: str | None = None,
               starttls: bool = True, timeout: float = 10.0) -> DeliveryResult:
    """Send one e-mail in one attempt; failures come back as ``ok=False`` with a readable error."""
    _check_address(to, "recipient")
    _check_address(sender, "sender")
    if user and not password:
        raise DeliveryConfigError("SMTP user is set but the SMTP password is not")
    msg = build_email(notice, to=to, sender=sender)
    where = f"{host}:{port}"
    at, detail, error = datetime.now(timezone.utc), "SMTP accepted", None
    try:
        with smtplib.SMTP(host, port, timeout=timeout) as smtp:
            smtp.ehlo()
            if starttls and smtp.has_extn("starttls"):
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            elif starttls and user:
                # A stripped STARTTLS offer must not trick us into sending the password in clear.
                raise smtplib.SMTPNotSupportedError(
                    "server offers no STARTTLS; not logging in without TLS (LINGXI_SMTP_STARTTLS=false allows it)")
            if user:
                smtp.login(user, password or "")
            smtp.send_message(msg, from_addr=sender, to_addrs=[to])
    except smtplib.SMTPException as exc:  # before OSError, which SMTPException subclasses
        code, raw = getattr(exc, "smtp_code", None), getattr(exc, "smtp_error", str(exc))
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            code, raw = next(iter(exc.recipients.values()), (None, str(exc)))
        reason = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
        detail = f"SMTP {code} {reason}" if code else f"SMTP {reason}"
        error = f"SMTP error {code}: {reason}" if code else f"SMTP error from {where}: {reason}"
    except OSError as exc:  # refused, timed out, DNS failure, TLS handshake
        detail = ("connection refused" if isinstance(exc, ConnectionRefusedError)
                  else f"timed out after {timeout:g}s" if isinstance(exc, TimeoutError)
                  else f"{type(exc).__name__}: {exc}")
        error = f"SMTP server {where} unreachable: {detail}"
    detail, error = _redact(detail, password), (_redact(error, password) if error else None)
    ok = error is None
    log.log(logging.INFO if ok else logging.WARNING, "e-mail for %s via %s: %s", notice.delivery_id, where,
            error or detail)
    return DeliveryResult(channel="email", ok=ok, attempts=[Attempt("email", 1, ok, detail, at)], error=error)
