"""`/v1/tokens`: API tokens, for admins. A new token is shown once, in the creation answer."""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.deps import Admin, SessionDep, TokensDep
from app.exceptions import ConflictError
from app.tokens.schemas import TokenCreated, TokenIn, TokenOut
from app.tokens.service import create_token, get_token, list_tokens, revoke_token, to_out

router = APIRouter(prefix="/v1/tokens", tags=["tokens"])


def _not_from_settings(name: str, registry: TokensDep) -> None:
    if name in registry.names:
        raise ConflictError(
            f"token {name!r} comes from FOREWARN_API_TOKENS; change it there and restart the API"
        )


@router.get("")
async def get_tokens(session: SessionDep, _admin: Admin) -> list[TokenOut]:
    """Every token by name, with its role, origin and last use; never the token itself."""
    return [to_out(row) for row in await list_tokens(session=session)]


@router.post("", status_code=201)
async def post_token(
    body: TokenIn, session: SessionDep, registry: TokensDep, admin: Admin, response: Response
) -> TokenCreated:
    """Create a token and answer with it in clear: the only time it is shown. 409 if taken."""
    _not_from_settings(body.name, registry)
    token = await create_token(session=session, name=body.name, role=body.role, actor=admin.name)
    response.headers["Cache-Control"] = "no-store"
    row = await get_token(session=session, name=body.name)
    return TokenCreated(**to_out(row).model_dump(), token=token)


@router.delete("/{name}")
async def delete_token(
    name: str, session: SessionDep, registry: TokensDep, admin: Admin
) -> TokenOut:
    """Revoke a token: it stops working at once here, within 30 s on other API processes."""
    _not_from_settings(name, registry)
    row = await revoke_token(session=session, name=name, actor=admin.name)
    registry.forget(name)
    return to_out(row)
