"""Dependencies of the board controllers: the services, bound to the request's session and caller."""

from __future__ import annotations

from typing import Annotated

from litestar.di import Provide
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.deps import CurrentPrincipal, provide_principal
from server.boards.boards_service import BoardService
from server.boards.discussion import DiscussionService
from server.boards.lists_cards import ListCardService
from server.boards.occ import parse_if_match


async def provide_board_service(db_session: AsyncSession, principal: CurrentPrincipal) -> BoardService:
    return BoardService(db_session, principal.user)


async def provide_list_card_service(db_session: AsyncSession, principal: CurrentPrincipal) -> ListCardService:
    return ListCardService(db_session, principal.user)


async def provide_discussion_service(
    db_session: AsyncSession, principal: CurrentPrincipal
) -> DiscussionService:
    return DiscussionService(db_session, principal.user)


async def provide_if_match(
    if_match_header: Annotated[str | None, Parameter(header="If-Match", required=False)] = None,
) -> int | None:
    return parse_if_match(if_match_header)


DEPENDENCIES = {
    "principal": Provide(provide_principal),
    "boards": Provide(provide_board_service),
    "content": Provide(provide_list_card_service),
    "discussion": Provide(provide_discussion_service),
    "if_match": Provide(provide_if_match),
}
