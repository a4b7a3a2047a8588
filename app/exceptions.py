"""Forewarn's error root; each package's exceptions derive from `ForewarnError`."""

from __future__ import annotations


class ForewarnError(Exception):
    """Root of every error Forewarn raises on purpose.

    `retriable` tells a loop whether trying again later can help; `http_status` is the status
    the API answers with when such an error reaches it.
    """

    retriable: bool = False
    http_status: int = 500


class NotFoundError(ForewarnError):
    http_status = 404


class ConflictError(ForewarnError):
    http_status = 409


class InvalidInputError(ForewarnError):
    """Input that passed the schema but breaks a rule only the service can check."""

    http_status = 422

    def __init__(self, errors: list[dict[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e['field']}: {e['reason']}" for e in errors))


class PreviewUnavailableError(ForewarnError):
    """This API process was started without a renderer for previews (not worth a retry)."""

    http_status = 501
