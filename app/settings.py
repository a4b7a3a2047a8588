"""Forewarn's one settings class, read from `FOREWARN_*` environment variables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Role(StrEnum):
    """What a bearer token may do; each role includes the ones below it."""

    VIEWER = "viewer"
    ENGINEER = "engineer"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _ROLE_RANK[self]


_ROLE_RANK = {Role.VIEWER: 0, Role.ENGINEER: 1, Role.ADMIN: 2}
# The largest `max_clock_skew_seconds`: a week (the demo, whose event time runs ahead, uses it).
CLOCK_SKEW_LIMIT_SECONDS = 7 * 86_400.0


@dataclass(frozen=True, slots=True)
class ApiToken:
    """One API token as seeded from `FOREWARN_API_TOKENS` (`name:role:token`)."""

    name: str
    role: Role
    token: SecretStr


def parse_api_tokens(raw: str) -> tuple[ApiToken, ...]:
    """Parse `name:role:token,name:role:token`; raise ValueError naming the bad entry."""
    tokens: list[ApiToken] = []
    for position, entry in enumerate(part.strip() for part in raw.split(",")):
        if not entry:
            continue
        name, sep1, rest = entry.partition(":")
        role, sep2, secret = rest.partition(":")
        if not (sep1 and sep2 and name and secret):
            raise ValueError(f"entry {position + 1} is not name:role:token")
        try:
            parsed_role = Role(role)
        except ValueError:
            allowed = ", ".join(r.value for r in Role)
            raise ValueError(
                f"entry {position + 1} ({name}) has role {role!r}; use one of {allowed}"
            ) from None
        if len(secret) < 16:
            raise ValueError(
                f"entry {position + 1} ({name}) has a token shorter than 16 characters"
            )
        tokens.append(ApiToken(name=name, role=parsed_role, token=SecretStr(secret)))
    return tuple(tokens)


class Settings(BaseSettings):
    """Every knob Forewarn reads; a bad value stops start-up with the variable's name."""

    model_config = SettingsConfigDict(env_prefix="FOREWARN_", extra="ignore", frozen=True)

    database_url: str = "sqlite+aiosqlite:///./forewarn.db"
    kafka_bootstrap_servers: str | None = None
    topic_prefix: str = ""
    topic_partitions: int = Field(default=4, ge=1, le=1024)
    kafka_session_timeout_ms: int = Field(default=30_000, ge=1_000, le=600_000)
    kafka_fetch_max_wait_ms: int = Field(
        default=50,
        ge=1,
        le=10_000,
        description="Longest a fetch waits for data; the embedded broker waits this long "
        "whenever one fetched partition is empty, so keep it short.",
    )

    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=8025, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "Forewarn <noreply@forewarn.invalid>"
    smtp_starttls: bool = False

    sms_gateway_url: str | None = None
    sms_gateway_token: SecretStr | None = None
    sms_from: str = "Forewarn"

    api_tokens: Annotated[tuple[ApiToken, ...], NoDecode] = ()
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    public_base_url: str = "http://127.0.0.1:8000"
    link_secret: SecretStr | None = Field(
        default=None,
        description="Signs the one-click unsubscribe links in notices; unset: no such links.",
    )

    log_format: Literal["console", "json"] = "console"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    next_update_minutes: int = Field(default=30, ge=1, le=24 * 60)
    survey_after_minutes: int = Field(
        default=60, ge=0, le=7 * 24 * 60, description="0 turns the survey off."
    )
    resolve_hold_minutes: int = Field(
        default=10,
        ge=0,
        le=24 * 60,
        description="A resolved notice waits until the clear has lasted this long.",
    )
    max_notices_per_outage: int = Field(default=8, ge=2, le=100)
    fallback_channel: Literal["", "sms", "email"] = "sms"
    sms_max_segments: int = Field(default=3, ge=1, le=10)
    sms_rate_per_second: float = Field(default=100.0, gt=0, le=100_000)
    email_rate_per_second: float = Field(default=50.0, gt=0, le=100_000)
    webhook_rate_per_second: float = Field(default=50.0, gt=0, le=100_000)
    circuit_failure_threshold: int = Field(default=10, ge=1, le=10_000)
    circuit_reset_seconds: float = Field(default=30.0, gt=0, le=3600)
    webhook_signing_secret: SecretStr | None = None
    metrics_port: int = Field(
        default=9100, ge=0, le=65535, description="/metrics of detector, planner, notifier; 0: off"
    )
    dispatch_batch_size: int = Field(default=200, ge=1, le=10_000)
    dispatch_max_attempts: int = Field(default=8, ge=1, le=100)
    dispatch_concurrency: int = Field(default=64, ge=1, le=4096)
    dispatch_lease_seconds: int = Field(
        default=300,
        ge=2,
        le=86_400,
        description="A claim older than this is taken to be a dead notifier's and reconciled.",
    )
    allowed_lateness_seconds: float = Field(default=120.0, ge=0, le=86_400)
    max_clock_skew_seconds: float = Field(
        default=300.0,
        ge=0,
        le=CLOCK_SKEW_LIMIT_SECONDS,
        description="Telemetry and contacts dated later than the detector's clock plus this "
        "are dead-lettered (future_timestamp).",
    )
    correlate_min_children: int = Field(default=2, ge=0, le=1000)

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _parse_tokens(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_api_tokens(value)
        return value

    @field_validator("sms_gateway_url")
    @classmethod
    def _check_gateway_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("sms_gateway_token")
    @classmethod
    def _check_gateway_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            account, sep, token = value.get_secret_value().partition(":")
            if not (sep and account and token):
                raise ValueError("must be account_sid:auth_token")
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @property
    def next_update_interval(self) -> timedelta:
        return timedelta(minutes=self.next_update_minutes)

    def topic(self, name: str) -> str:
        """Return the real topic name: the prefix followed by the name, nothing between."""
        return f"{self.topic_prefix}{name}"

    def group(self, name: str) -> str:
        """Return a consumer group id, namespaced by the same prefix as the topics."""
        return f"{self.topic_prefix}{name}"
