"""FastAPI dependencies, as `Annotated` aliases the routes declare."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Path, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import Principal, TokenRegistry
from app.settings import Role, Settings


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request, in one transaction: committed on success, rolled back on error.

    Declared with `scope="function"` (below), so the commit runs when the endpoint returns and
    BEFORE the response is sent: with FastAPI's default request scope the code after `yield`
    runs once the answer is already on the wire, and a commit that then fails (a locked or
    unreachable database) would leave a 200 for a write that never happened. A failing
    commit here is an error the handlers answer (503 with Retry-After when the database is
    unavailable or busy), so the sender retries.
    """
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with sessions() as session, session.begin():
        yield session


def _token_registry(request: Request) -> TokenRegistry:
    registry: TokenRegistry = request.app.state.tokens
    return registry


async def _principal(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    return await _token_registry(request).authenticate(authorization)


def _requires(role: Role) -> object:
    def check(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
        principal.require(role)
        return principal

    return Depends(check)


SettingsDep = Annotated[Settings, Depends(_settings)]
TokensDep = Annotated[TokenRegistry, Depends(_token_registry)]
SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]
Viewer = Annotated[Principal, _requires(Role.VIEWER)]
Engineer = Annotated[Principal, _requires(Role.ENGINEER)]
Admin = Annotated[Principal, _requires(Role.ADMIN)]

# A numeric id in a path: PostgreSQL's integer, so a huge number is a 422, not a 500.
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
