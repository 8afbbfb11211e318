"""Reminder delivery against real servers on 127.0.0.1: a scripted HTTP receiver and aiosmtpd.

Nothing in httpx or smtplib is mocked; only ``sleep`` is replaced by a recorder
so backoff delays can be asserted without waiting for them.
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.smtp import AuthResult

from tests.fakes.receivers import Collector, Receiver, Reply, free_port, smtp_server
from tools.delivery import DeliveryConfigError, Notice, send_email, send_webhook, sign, verify

SHANGHAI = ZoneInfo("Asia/Shanghai")
SECRET = "whsec-Sup3r-S3cret"
PASSWORD = "smtp-pa55-w0rd"
DUE = datetime(2025, 3, 14, 9, 30, tzinfo=SHANGHAI)


def make_notice(**changes) -> Notice:
    fields = dict(reminder_id="r-42", text="给王总回电话", due_at=DUE,
                  fired_at=datetime(2025, 3, 14, 9, 30, 2, tzinfo=SHANGHAI), late=False, event_title="季度复盘")
    fields.update(changes)
    return Notice(**fields)


def deliver(receiver: Receiver, *, secret: str | None = SECRET, **kwargs):
    delays: list[float] = []
    kwargs.setdefault("max_attempts", 4)
    result = send_webhook(make_notice(), url=receiver.url, secret=secret, sleep=delays.append,
                          timeout=kwargs.pop("timeout", 2.0), **kwargs)
    return result, delays


def test_signed_post_verifies_and_tampering_fails():
    with Receiver(200) as rx:
        result, delays = deliver(rx)
    assert result.ok and result.error is None and delays == []
    assert [(a.channel, a.number, a.ok, a.detail) for a in result.attempts] == [("webhook", 1, True, "HTTP 200")]
    headers, body = rx.requests[0]
    stamp, signature = headers["X-Lingxi-Timestamp"], headers["X-Lingxi-Signature"]
    assert abs(int(stamp) - time.time()) < 5
    assert signature == "sha256=" + sign(SECRET, stamp, body)
    assert verify(SECRET, stamp, body, signature, now=time.time()) is True
    tampered = body.replace("王总".encode(), "李总".encode())
    assert tampered != body
    assert verify(SECRET, stamp, tampered, signature, now=time.time()) is False
    assert verify("wrong-secret", stamp, body, signature, now=time.time()) is False
    assert verify(SECRET, str(int(stamp) + 1), body, signature, now=time.time()) is False


def test_headers_and_chinese_payload_round_trip():
    with Receiver(200) as rx:
        deliver(rx)
    headers, body = rx.requests[0]
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "Lingxi-Webhook/1"
    assert headers["X-Lingxi-Delivery"] == "r-42:2025-03-14T09:30:00+08:00"
    assert "给王总回电话".encode() in body  # raw UTF-8, not \\u escapes
    assert json.loads(body.decode("utf-8")) == {
        "type": "reminder", "reminder_id": "r-42", "text": "给王总回电话",
        "due_at": "2025-03-14T09:30:00+08:00", "fired_at": "2025-03-14T09:30:02+08:00",
        "late": False, "event_title": "季度复盘",
    }


def test_no_secret_means_no_signature_header():
    with Receiver(200) as rx:
        result, _ = deliver(rx, secret=None)
    assert result.ok
    headers, _ = rx.requests[0]
    assert "X-Lingxi-Signature" not in headers
    assert headers["X-Lingxi-Timestamp"].isdigit()


def test_server_errors_are_retried_until_success_with_jittered_backoff():
    with Receiver(500, 503, 200) as rx:
        result, delays = deliver(rx, base_delay=0.5)
    assert result.ok and result.error is None
    assert [a.detail for a in result.attempts] == ["HTTP 500", "HTTP 503", "HTTP 200"]
    assert [a.ok for a in result.attempts] == [False, False, True]
    assert len(rx.requests) == 3
    assert len({h["X-Lingxi-Delivery"] for h, _ in rx.requests}) == 1  # one idempotency key
    assert len(delays) == 2 and 0 <= delays[0] <= 0.5 and 0 <= delays[1] <= 1.0


def test_always_failing_gives_up_after_max_attempts(caplog):
    caplog.set_level(logging.DEBUG, logger="tools.delivery")
    with Receiver(*[500] * 10) as rx:
        result, delays = deliver(rx, max_attempts=4, base_delay=0.5)
    assert not result.ok
    assert len(result.attempts) == 4 and len(rx.requests) == 4
    assert "after 4 attempts" in result.error and "HTTP 500" in result.error
    caps = [0.5, 1.0, 2.0]
    assert len(delays) == 3 and all(0 <= d <= cap for d, cap in zip(delays, caps, strict=True))
    # Full jitter: a delay landing exactly on its cap every time would mean no jitter at all.
    assert any(d < cap for d, cap in zip(delays, caps, strict=True))
    # The secret and the URL's path/query token appear in no error and no log line.
    for text in [result.error, *(a.detail for a in result.attempts), caplog.text]:
        assert SECRET not in text and "token=abc" not in text
    assert "HTTP 500" in caplog.text


@pytest.mark.parametrize("status", [400, 401, 404, 410])
def test_client_errors_are_final(status):
    with Receiver(status, 200) as rx:
        result, delays = deliver(rx)
    assert not result.ok and delays == []
    assert len(result.attempts) == 1 and len(rx.requests) == 1
    assert f"HTTP {status}" in result.error and "not retried" in result.error


def test_retry_after_is_honoured_and_capped():
    with Receiver(Reply(429, {"Retry-After": "3"}), Reply(503, {"Retry-After": "3600"}), 200) as rx:
        result, delays = deliver(rx)
    assert result.ok and [a.detail for a in result.attempts] == ["HTTP 429", "HTTP 503", "HTTP 200"]
    assert delays == [3.0, 60.0]


def test_connection_refused_is_retried_then_fails():
    port = free_port()  # bound then closed: nothing listens there
    delays: list[float] = []
    result = send_webhook(make_notice(), url=f"http://127.0.0.1:{port}/hook", secret=SECRET,
                          max_attempts=3, base_delay=0.1, sleep=delays.append, timeout=1.0)
    assert not result.ok and len(result.attempts) == 3 and len(delays) == 2
    assert [a.detail for a in result.attempts] == ["connection refused"] * 3
    assert result.error == f"webhook to http://127.0.0.1:{port} failed after 3 attempts: connection refused"


def test_timeout_is_retried():
    with Receiver(Reply(200, delay=0.6), 200) as rx:
        result, delays = deliver(rx, timeout=0.2)
    assert result.ok and len(delays) == 1
    assert [a.detail for a in result.attempts] == ["timed out after 0.2s", "HTTP 200"]


def test_redirect_is_not_followed():
    with Receiver(Reply(302, {"Location": "/elsewhere"}), 200) as rx:
        result, delays = deliver(rx)
    assert not result.ok and delays == []
    assert len(rx.requests) == 1
    assert result.attempts[0].detail == "HTTP 302 redirect not followed"
    assert "HTTP 302 redirect not followed" in result.error


@pytest.mark.parametrize("url", ["ftp://example.com/hook", "javascript:alert(1)", "", "http://", "https:///x",
                                 "example.com/hook"])
def test_non_http_urls_are_configuration_errors(url):
    with pytest.raises(DeliveryConfigError, match="webhook URL must be http"):
        send_webhook(make_notice(), url=url, secret=SECRET, sleep=lambda _: pytest.fail("slept"))


def test_verify_rejects_stale_and_malformed():
    body = b'{"x": 1}'
    stamp = "1700000000"
    header = "sha256=" + sign(SECRET, stamp, body)
    assert verify(SECRET, stamp, body, header, now=1700000000 + 299) is True
    assert verify(SECRET, stamp, body, header, now=1700000000 + 301) is False
    assert verify(SECRET, stamp, body, header, now=1700000000 - 301) is False  # from the future
    assert verify(SECRET, stamp, body, header, now=1700000000 + 30, tolerance=10) is False
    assert verify(SECRET, stamp, body, header.removeprefix("sha256="), now=1700000000) is False
    assert verify(SECRET, stamp, body, header.replace("sha256=", "sha1="), now=1700000000) is False
    assert verify(SECRET, "not-a-time", body, header, now=1700000000) is False


# --------------------------------------------------------------------------- SMTP


def mail(port: int, notice: Notice | None = None, **kwargs):
    kwargs.setdefault("to", "owner@example.com")
    return send_email(notice or make_notice(), host="127.0.0.1", port=port, sender="lingxi@localhost",
                      timeout=2.0, **kwargs)


def test_email_is_delivered_in_utf8_with_due_time_and_late_note():
    handler = Collector()
    with smtp_server(handler) as port:
        result = mail(port, make_notice(late=True))
    assert result.ok and result.error is None
    assert [(a.channel, a.number, a.ok) for a in result.attempts] == [("email", 1, True)]
    [envelope] = handler.envelopes
    assert envelope.mail_from == "lingxi@localhost" and envelope.rcpt_tos == ["owner@example.com"]
    msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
    assert msg["From"] == "lingxi@localhost" and msg["To"] == "owner@example.com"
    assert str(msg["Subject"]) == "⏰ 提醒 Reminder: 给王总回电话"
    assert msg["X-Lingxi-Delivery"] == "r-42:2025-03-14T09:30:00+08:00"
    body = msg.get_content()
    assert "给王总回电话" in body and "季度复盘" in body
    assert "2025-03-14T09:30:00+08:00" in body and "2025-03-14 09:30 (Friday) CST" in body
    assert "Late:" in body


def test_on_time_email_has_no_late_note_and_long_subject_is_truncated():
    handler = Collector()
    with smtp_server(handler) as port:
        assert mail(port, make_notice(text="提醒" * 60 + "\n第二行")).ok
    msg = email.message_from_bytes(handler.envelopes[0].original_content, policy=email.policy.default)
    subject = str(msg["Subject"])
    assert len(subject) == 80 and subject.endswith("…") and subject.startswith("⏰ 提醒 Reminder: 提醒提醒")
    assert "Late:" not in msg.get_content() and "第二行" in msg.get_content()


def test_email_server_down():
    port = free_port()
    result = mail(port)
    assert not result.ok and len(result.attempts) == 1
    assert result.error == f"SMTP server 127.0.0.1:{port} unreachable: connection refused"


@pytest.mark.parametrize("stage", ["RCPT", "DATA"])
def test_email_rejected_with_550(stage):
    handler = Collector(reject_at=stage)
    with smtp_server(handler) as port:
        result = mail(port)
    assert not result.ok and handler.envelopes == []
    assert result.error == "SMTP error 550: mailbox unavailable"
    assert result.attempts[0].detail == "SMTP 550 mailbox unavailable"


@pytest.mark.parametrize("to", ["owner@example.com\r\nBcc: spy@evil.example", "owner@example.com\nX: y",
                                "no-at-sign", "a@b@c", "@example.com"])
def test_bad_recipient_is_a_configuration_error_and_nothing_is_sent(to):
    handler = Collector()
    with smtp_server(handler) as port:
        with pytest.raises(DeliveryConfigError, match="recipient address"):
            mail(port, to=to)
    assert handler.envelopes == []


def test_login_is_used_and_password_never_leaks(caplog):
    caplog.set_level(logging.DEBUG, logger="tools.delivery")
    seen: list[tuple[bytes, bytes]] = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        seen.append((auth_data.login, auth_data.password))
        # handled=False: aiosmtpd then answers 535 itself instead of leaving the client waiting.
        return AuthResult(success=auth_data.password == PASSWORD.encode(), handled=False, auth_data=auth_data)

    handler = Collector()
    with smtp_server(handler, authenticator=authenticator, auth_require_tls=False,
                     auth_exclude_mechanism=["LOGIN"]) as port:
        good = mail(port, user="lingxi", password=PASSWORD, starttls=False)
        bad = mail(port, user="lingxi", password=PASSWORD + "x", starttls=False)
        # With STARTTLS wanted but not offered, the password is not sent at all.
        stripped = mail(port, user="lingxi", password=PASSWORD, starttls=True)
    assert good.ok and len(handler.envelopes) == 1
    assert seen == [(b"lingxi", PASSWORD.encode()), (b"lingxi", (PASSWORD + "x").encode())]
    assert not bad.ok and bad.error.startswith("SMTP error 535")
    assert not stripped.ok and "STARTTLS" in stripped.error
    for text in [bad.error, stripped.error, bad.attempts[0].detail, caplog.text]:
        assert PASSWORD not in text
