"""``POST|DELETE /api/v1/cards/{id}/watch``: follow a card's comments without being assigned."""

from __future__ import annotations

from uuid import UUID

import msgspec
from litestar import Controller, delete, get, post
from litestar.di import Provide
from litestar.status_codes import HTTP_200_OK
from sqlalchemy import delete as sql_delete
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.access import board_and_role_of
from persistence.models import Card, CardWatch
from server.auth.deps import CurrentPrincipal, provide_principal
from server.errors import Gone


class Watching(msgspec.Struct):
    card_id: UUID
    watching: bool


async def _visible_card(session: AsyncSession, card_id: UUID, principal: CurrentPrincipal) -> None:
    board_id, role = await board_and_role_of(session, Card, card_id, principal.user.id)
    if board_id is None or role is None:
        raise Gone.not_found("card")


async def _watching(session: AsyncSession, card_id: UUID, user_id: UUID) -> bool:
    found = await session.scalar(
        select(CardWatch.id).where(CardWatch.card_id == card_id, CardWatch.user_id == user_id)
    )
    return found is not None


class CardWatchController(Controller):
    path = "/api/v1/cards/{card_id:uuid}/watch"
    tags = ["notifications"]
    dependencies = {"principal": Provide(provide_principal)}

    @get("/", summary="Am I watching this card?")
    async def get_watch(
        self, card_id: UUID, principal: CurrentPrincipal, db_session: AsyncSession
    ) -> Watching:
        await _visible_card(db_session, card_id, principal)
        return Watching(card_id=card_id, watching=await _watching(db_session, card_id, principal.user.id))

    @post("/", status_code=HTTP_200_OK, summary="Watch a card (notified of its comments)")
    async def watch(self, card_id: UUID, principal: CurrentPrincipal, db_session: AsyncSession) -> Watching:
        """Any member of the card's board, observers included. Idempotent."""
        await _visible_card(db_session, card_id, principal)
        if not await _watching(db_session, card_id, principal.user.id):
            db_session.add(CardWatch(card_id=card_id, user_id=principal.user.id))
            await db_session.commit()
        return Watching(card_id=card_id, watching=True)

    @delete("/", status_code=HTTP_200_OK, summary="Stop watching a card")
    async def unwatch(self, card_id: UUID, principal: CurrentPrincipal, db_session: AsyncSession) -> Watching:
        await _visible_card(db_session, card_id, principal)
        await db_session.execute(
            sql_delete(CardWatch).where(CardWatch.card_id == card_id, CardWatch.user_id == principal.user.id)
        )
        await db_session.commit()
        return Watching(card_id=card_id, watching=False)
