"""Errors of the telemetry contract and of replaying recorded telemetry."""

from __future__ import annotations

from app.exceptions import ForewarnError


class DetectionError(ForewarnError):
    """Root of the errors raised in `app/detection/`."""


class DecodeError(DetectionError):
    """A message that is not what its topic's contract says; it goes to the DLQ."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


class RecordingUnavailableError(DetectionError):
    """Recorded telemetry cannot be read (its broker cannot be reached)."""

    retriable = True
