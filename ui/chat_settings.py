"""The chat page's model settings: the offline-model notice, the model list, and a browser
session's settings (base URL, model, temperature) turned into a ``ModelChoice``.

Pure functions over ``Settings``, tested without a browser; the handlers in ``ui.chat`` call
them. The API key never comes from the browser: it is the server's, and only for its origin.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from assistant.config import Settings
from assistant.providers import ModelChoice, default_choice
from ui.i18n import text

MODEL_CHOICES = ("deepseek-chat", "deepseek-reasoner")


def provider_notice(settings: Settings, lang: str) -> str:
    """Markdown telling the owner that an offline model answers and how to switch; "" otherwise."""
    if settings.provider != "local":
        return ""
    if settings.bundled_model_in_use:
        return text(lang, "offline_bundled")
    return text(lang, "offline_local", model=settings.local_model_path.name)


def model_options(settings: Settings) -> list[str]:
    options = list(MODEL_CHOICES)
    if settings.llm_model not in options:
        options.insert(0, settings.llm_model)
    return options


def default_prefs(settings: Settings) -> dict[str, Any]:
    """A browser session's model settings before it changes any: the server's."""
    return {"base_url": settings.llm_base_url, "model": settings.llm_model, "temperature": settings.llm_temperature}


def valid_base_url(url: str) -> bool:
    parts = urlsplit(url.strip())
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def model_choice(prefs: dict[str, Any] | None, settings: Settings) -> ModelChoice:
    """The ``ModelChoice`` for a session's settings; the API key is the server's.

    The key is only sent to the configured provider's origin: a base URL typed
    into the browser never receives it, so the panel cannot leak the key to
    another server (a local OpenAI-compatible server needs none).
    """
    server = default_choice(settings)
    prefs = prefs or {}
    base_url = str(prefs.get("base_url") or "").strip().rstrip("/")
    if not valid_base_url(base_url):
        base_url = server.base_url
    model = str(prefs.get("model") or "").strip() or server.model
    try:
        temperature = min(2.0, max(0.0, float(prefs.get("temperature", server.temperature))))
    except (TypeError, ValueError):
        temperature = server.temperature
    key = server.api_key if _origin(base_url) == _origin(server.base_url) else None
    return ModelChoice(base_url=base_url, model=model, temperature=temperature, api_key=key)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()
