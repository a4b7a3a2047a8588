"""Structured logging: JSON in production, readable on a terminal, personal data masked."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

# A phone number: `+` and 7-15 digits (spaces or dashes between), or a bare run of 10-15
# digits. Dates and times (`2026-11-24`, `08:44:28`) have too few digits per run to match.
_PHONE = re.compile(r"(?<![\w+])(?:\+\d(?:[ \-]?\d){6,14}|\d{10,15})(?!\w)")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def mask_phone(phone: str) -> str:
    """`+4915112345678` -> `+49•••••••5678`: enough to tell numbers apart, not to dial one."""
    digits = phone.strip()
    if len(digits) <= 7:
        return "•" * len(digits)
    return f"{digits[:3]}{'•' * (len(digits) - 7)}{digits[-4:]}"


def mask_email(address: str) -> str:
    """`anna@example.com` -> `a•••@example.com`."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}•••@{domain}" if domain else "•••"


def mask_text(text: str) -> str:
    """Mask every phone number and e-mail address inside free text."""
    text = _EMAIL.sub(lambda m: mask_email(m.group(0)), text)
    return _PHONE.sub(lambda m: mask_phone(m.group(0)), text)


def redact_text(text: str) -> str:
    """Replace every phone number and e-mail address inside free text with a placeholder."""
    text = _EMAIL.sub("[e-mail]", text)
    return _PHONE.sub("[phone]", text)


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {key: _mask_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_value(item) for item in value]
    return value


def _mask_event(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in event_dict.items():
        event_dict[key] = _mask_value(value)
    return event_dict


def configure_logging(*, fmt: str = "console", level: str = "info") -> None:
    """Configure structlog and the stdlib root logger once, at the entry point."""
    numeric = logging.getLevelNamesMapping()[level.upper()]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        _mask_event,
        renderer,
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr, force=True)
