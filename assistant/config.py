"""Settings: the one place configuration is read.

Every value comes from the environment (prefix ``LINGXI_``) or a ``.env`` file
in the working directory, through a single pydantic-settings object. Nothing
else in Lingxi reads ``os.environ`` for configuration. This module does not
validate that a provider is reachable; it only checks that values are well formed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The small offline model shipped with Lingxi: the provider when no API key is set (tests repoint
# config.BUNDLED_MODEL).
from assistant.engine.train import BUNDLED_MODEL

DEFAULT_LLM_BASE_URL = "https://api.deepseek.com"


def _bundled_model_present() -> bool:
    """Whether this checkout ships the offline model (read at call time: tests point BUNDLED_MODEL elsewhere)."""
    return (BUNDLED_MODEL / "config.json").is_file()


def system_timezone() -> str:
    """Best effort IANA name of the machine's zone; UTC when it can't be told."""
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz and _is_zone(tz):
        return tz
    try:
        name = Path("/etc/timezone").read_text().strip()
        if _is_zone(name):
            return name
    except OSError:
        pass
    try:
        target = os.path.realpath("/etc/localtime")
        if "zoneinfo/" in target:
            name = target.split("zoneinfo/", 1)[1]
            if _is_zone(name):
                return name
    except OSError:
        pass
    return "UTC"


def _is_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


class Settings(BaseSettings):
    """Lingxi's configuration. See the README's table for every variable."""

    model_config = SettingsConfigDict(
        env_prefix="LINGXI_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    # The model provider (OpenAI chat-completions protocol). "auto" (unset): an
    # API server when a key or a base URL is configured, else the local engine
    # with LINGXI_LOCAL_MODEL or the bundled offline model. Read the resolved
    # choice from ``provider`` and ``local_model_path``, not from these fields.
    llm_provider: Literal["auto", "openai", "local"] = "auto"
    llm_base_url: str = DEFAULT_LLM_BASE_URL
    llm_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("LINGXI_LLM_API_KEY", "DEEPSEEK_API_KEY")
    )
    llm_model: str = "deepseek-chat"
    llm_temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    # The local engine runs in-process (see assistant/engine/provider.py).
    local_model: Path | None = Field(default=None, description="checkpoint directory for the local engine; "
                                     "default: the bundled offline model")
    local_max_batch: int = Field(default=4, ge=1, le=64)
    local_threads: int | None = Field(default=None, ge=1)
    # A reply's length when the request sets none: a small model that rambles, or opens a tool
    # call and never closes it (the agent cannot run it), stops after this many tokens, well
    # inside ``llm_timeout`` at CPU speed.
    local_max_tokens: int = Field(default=512, ge=16,
                                  description="tokens a local reply may use when the request sets no max_tokens")
    llm_timeout: float = Field(default=60.0, gt=0, description="seconds to wait for a reply to start")
    llm_max_retries: int = Field(default=4, ge=0, le=10)
    llm_retry_base_delay: float = Field(default=0.5, ge=0)
    llm_retry_max_delay: float = Field(default=20.0, ge=0)

    # Prices per million tokens, in llm_price_currency. Defaults: DeepSeek's list prices.
    llm_price_currency: str = "USD"
    llm_price_input_cache_hit: float = Field(default=0.028, ge=0)
    llm_price_input_cache_miss: float = Field(default=0.28, ge=0)
    llm_price_output: float = Field(default=0.42, ge=0)

    # Agent behaviour.
    agent_max_steps: int = Field(default=8, ge=1, le=50)
    context_max_tokens: int = Field(default=32000, ge=256)
    max_message_chars: int = Field(default=16000, ge=1)

    # Reminder delivery.
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_max_attempts: int = Field(default=4, ge=1, le=10)
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    smtp_from: str = "lingxi@localhost"
    notify_email: str | None = None

    reminder_poll_seconds: float = Field(default=1.0, gt=0, le=60)

    # Knowledge base (RAG).
    chroma_url: str | None = Field(default=None, description="http://host:port of a Chroma server; default embedded")
    embedding_provider: Literal["e5", "openai"] = "e5"
    embedding_model: str = "multilingual-e5-small"
    embedding_base_url: str | None = None
    embedding_api_key: SecretStr | None = None
    kb_chunk_tokens: int = Field(default=300, ge=32, le=2000)
    kb_chunk_overlap: int = Field(default=50, ge=0, le=500)
    kb_max_file_mb: float = Field(default=20.0, gt=0)
    kb_relevance_threshold: float = Field(default=0.82, ge=0, le=1)
    kb_collections: str = Field(default="default", description="comma-separated collections the assistant searches")
    customer_service_temperature: float = Field(default=0.2, ge=0.0, le=2.0)

    # Storage and serving.
    data_dir: Path = Path("./data")
    database_url: str | None = None
    timezone: str = Field(default_factory=system_timezone)
    host: str = "127.0.0.1"
    port: int = Field(default=7860, ge=1, le=65535)
    ui_concurrency: int = Field(default=8, ge=1)

    # Security: owner login, signing, the widget's default limits.
    secret_key: SecretStr | None = Field(default=None, description="signing key; default: generated and kept in the database")
    owner_token: SecretStr | None = Field(default=None, description="bearer token for the owner's API")
    require_login: bool = Field(default=False, description="require owner login even on a loopback address")
    owner_session_hours: float = Field(default=168.0, gt=0)
    login_max_failures: int = Field(default=5, ge=1, description="failed logins per address per 15 minutes")
    public_url: str | None = Field(default=None, description="https://host the widget snippet points at")
    widget_visitor_rate_per_minute: int = Field(default=10, ge=1)
    widget_site_rate_per_minute: int = Field(default=120, ge=1)
    widget_daily_token_budget: int = Field(default=200_000, ge=0)
    widget_sessions_per_minute: int = Field(default=20, ge=1, description="new visitor tokens per address per minute")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if not _is_zone(value):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Asia/Shanghai)")
        return value

    @field_validator("llm_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _local_needs_a_model(self) -> Settings:
        if self.llm_provider == "local" and not self.local_model and not _bundled_model_present():
            raise ValueError("LINGXI_LLM_PROVIDER=local needs LINGXI_LOCAL_MODEL (a checkpoint directory); "
                             "this checkout has no bundled offline model")
        return self

    @field_validator("public_url")
    @classmethod
    def _public_http(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/") if value else None

    @field_validator("webhook_url")
    @classmethod
    def _webhook_http(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value or None

    @property
    def provider(self) -> Literal["openai", "local"]:
        """The provider in effect: ``llm_provider`` with "auto" resolved.

        "auto" means an OpenAI-compatible server when an API key is set (DeepSeek
        by default) or ``llm_base_url`` points somewhere else than DeepSeek (a
        self-hosted server that needs no key); otherwise the local engine on
        ``local_model`` or the bundled offline model, if this checkout has it;
        failing all that, DeepSeek without a key (each reply says one is missing).
        """
        if self.llm_provider != "auto":
            return self.llm_provider
        if self.llm_api_key or self.llm_base_url != DEFAULT_LLM_BASE_URL:
            return "openai"
        if self.local_model or _bundled_model_present():
            return "local"
        return "openai"  # a checkout without the offline model: replies say that no key is set

    @property
    def local_model_path(self) -> Path | None:
        """The checkpoint the local engine loads: LINGXI_LOCAL_MODEL, else the bundled model."""
        if self.local_model:
            return self.local_model
        return BUNDLED_MODEL if self.provider == "local" else None

    @property
    def bundled_model_in_use(self) -> bool:
        """True when replies come from the small bundled offline model."""
        path = self.local_model_path
        return self.provider == "local" and path is not None and path.resolve() == BUNDLED_MODEL.resolve()

    def check_local_model(self) -> None:
        """Raise ``SettingsError`` when the local engine is chosen but its checkpoint is missing.

        Called before anything is opened or written, so a missing model costs no data.
        """
        if self.provider != "local":
            return
        path = self.local_model_path
        if path is None or not path.exists():
            raise SettingsError(f"LINGXI_LOCAL_MODEL: no checkpoint at {path}")

    def resolved(self) -> Settings:
        """A copy with the provider choice written out (``llm_provider`` and ``local_model``).

        ``Lingxi.create`` points ``llm_base_url`` at the local engine's loopback
        server afterwards, which must not turn "auto" back into "openai".
        """
        update: dict = {"llm_provider": self.provider, "local_model": self.local_model_path}
        if self.bundled_model_in_use and "llm_temperature" not in self.model_fields_set:
            update["llm_temperature"] = 0.0  # the small offline model is dependable only when decoding greedily
        return self.model_copy(update=update)

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'lingxi.db').resolve()}"

    @property
    def collections(self) -> list[str]:
        return [name.strip() for name in self.kb_collections.split(",") if name.strip()]

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def price_of(self, *, cache_hit: int, cache_miss: int, completion: int) -> float:
        """Cost of one call, from the configured per-million prices."""
        return (
            cache_hit * self.llm_price_input_cache_hit
            + cache_miss * self.llm_price_input_cache_miss
            + completion * self.llm_price_output
        ) / 1_000_000


class SettingsError(Exception):
    """A setting is malformed; the message is one line meant for the user."""


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning pydantic's report into one readable line."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            env = field if field.isupper() else f"LINGXI_{field.upper()}"
            problems.append(f"{env}: {err['msg']}")
        raise SettingsError("invalid setting " + "; ".join(problems)) from None
