"""API tokens as the API takes and shows them; the clear token appears once, at creation."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.settings import Role

# A letter first, then letters, digits, `.`, `_`, `-`: never a phone number or an e-mail
# address, since token names end up in the audit log as actors.
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9._-]{0,63}$"

TokenName = Annotated[str, Field(min_length=1, max_length=64, pattern=NAME_PATTERN)]


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: TokenName
    role: Role


class TokenOut(BaseModel):
    name: str
    role: Role
    source: Literal["settings", "stored"] = Field(
        description="settings: seeded from FOREWARN_API_TOKENS; stored: created by API or CLI."
    )
    created_at: datetime
    created_by: str
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="The token itself. Shown this once; only its digest is kept.")
