"""``/api/v1`` content routes: lists, cards, comments, checklist items, card filters and search."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from litestar import Controller, Response, delete, get, patch, post
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.boards.shapes import CardDetail, CardMoved, CardOut, ChecklistItemOut, CommentOut, ListOut
from server.auth.deps import CurrentPrincipal
from server.boards import schemas as s
from server.boards.controllers import Cursor, Limit, versioned
from server.boards.deps import DEPENDENCIES
from server.boards.discussion import DiscussionService
from server.boards.lists_cards import ListCardService
from server.boards.search import search


class ContentController(Controller):
    path = "/api/v1"
    tags = ["content"]
    dependencies = DEPENDENCIES

    @post("/boards/{board_id:uuid}/lists", status_code=HTTP_201_CREATED, summary="Create a list")
    async def create_list(
        self, principal: CurrentPrincipal, content: ListCardService, board_id: UUID, data: s.ListIn
    ) -> Response[ListOut]:
        """A new list placed before ``before_id`` / after ``after_id`` (neither: at the end)."""
        return versioned(await content.create_list(board_id, data), HTTP_201_CREATED)

    @get("/boards/{board_id:uuid}/cards", summary="Cards of a board, filtered and paginated")
    async def filter_cards(
        self,
        principal: CurrentPrincipal,
        content: ListCardService,
        board_id: UUID,
        q: Annotated[str | None, Parameter(query="q", required=False)] = None,
        label: Annotated[UUID | None, Parameter(query="label", required=False)] = None,
        assignee: Annotated[UUID | None, Parameter(query="assignee", required=False)] = None,
        due_before: Annotated[datetime | None, Parameter(query="due_before", required=False)] = None,
        archived: Annotated[bool | None, Parameter(query="archived", required=False)] = None,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> s.CardPage:
        """``q`` (substring of title or description), ``label`` (id), ``assignee`` (user id),
        ``due_before`` (RFC 3339), ``archived`` (default false)."""
        return await content.filter_cards(
            board_id,
            q=q,
            label=label,
            assignee=assignee,
            due_before=due_before,
            archived=archived,
            limit=limit,
            cursor=cursor,
        )

    @get("/lists/{list_id:uuid}", summary="One list")
    async def get_list(
        self, principal: CurrentPrincipal, content: ListCardService, list_id: UUID
    ) -> Response[ListOut]:
        return versioned(await content.get_list(list_id))

    @patch("/lists/{list_id:uuid}", summary="Rename, archive or move a list")
    async def update_list(
        self,
        principal: CurrentPrincipal,
        content: ListCardService,
        list_id: UUID,
        data: s.ListPatch,
        if_match: int | None,
    ) -> Response[ListOut]:
        return versioned(await content.update_list(list_id, data, if_match))

    @delete("/lists/{list_id:uuid}", status_code=HTTP_204_NO_CONTENT, summary="Delete a list and its cards")
    async def delete_list(
        self, principal: CurrentPrincipal, content: ListCardService, list_id: UUID, if_match: int | None
    ) -> None:
        await content.delete_list(list_id, if_match)

    @post("/lists/{list_id:uuid}/cards", status_code=HTTP_201_CREATED, summary="Create a card")
    async def create_card(
        self, principal: CurrentPrincipal, content: ListCardService, list_id: UUID, data: s.CardIn
    ) -> Response[CardOut]:
        return versioned(await content.create_card(list_id, data), HTTP_201_CREATED)

    @get("/cards/{card_id:uuid}", summary="One card with its checklist")
    async def get_card(
        self, principal: CurrentPrincipal, content: ListCardService, card_id: UUID
    ) -> Response[CardDetail]:
        return versioned(await content.get_card(card_id))

    @patch("/cards/{card_id:uuid}", summary="Edit or archive a card")
    async def update_card(
        self,
        principal: CurrentPrincipal,
        content: ListCardService,
        card_id: UUID,
        data: s.CardPatch,
        if_match: int | None,
    ) -> Response[CardOut]:
        return versioned(await content.update_card(card_id, data, if_match))

    @post("/cards/{card_id:uuid}/move", status_code=HTTP_200_OK, summary="Move a card (one row written)")
    async def move_card(
        self,
        principal: CurrentPrincipal,
        content: ListCardService,
        card_id: UUID,
        data: s.CardMove,
        if_match: int | None,
    ) -> Response[CardMoved]:
        return versioned(await content.move_card(card_id, data, if_match))

    @delete("/cards/{card_id:uuid}", status_code=HTTP_204_NO_CONTENT, summary="Delete a card")
    async def delete_card(
        self, principal: CurrentPrincipal, content: ListCardService, card_id: UUID, if_match: int | None
    ) -> None:
        await content.delete_card(card_id, if_match)

    @get("/cards/{card_id:uuid}/comments", summary="Comments of a card, oldest first")
    async def list_comments(
        self,
        principal: CurrentPrincipal,
        discussion: DiscussionService,
        card_id: UUID,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> s.CommentPage:
        return await discussion.list_comments(card_id, limit, cursor)

    @post(
        "/cards/{card_id:uuid}/comments", status_code=HTTP_201_CREATED, summary="Comment (@username mentions)"
    )
    async def create_comment(
        self, principal: CurrentPrincipal, discussion: DiscussionService, card_id: UUID, data: s.CommentIn
    ) -> Response[CommentOut]:
        return versioned(await discussion.create_comment(card_id, data), HTTP_201_CREATED)

    @patch("/comments/{comment_id:uuid}", summary="Edit a comment (its author)")
    async def update_comment(
        self,
        principal: CurrentPrincipal,
        discussion: DiscussionService,
        comment_id: UUID,
        data: s.CommentPatch,
        if_match: int | None,
    ) -> Response[CommentOut]:
        return versioned(await discussion.update_comment(comment_id, data, if_match))

    @delete(
        "/comments/{comment_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Delete a comment (its author or an admin)",
    )
    async def delete_comment(
        self,
        principal: CurrentPrincipal,
        discussion: DiscussionService,
        comment_id: UUID,
        if_match: int | None,
    ) -> None:
        await discussion.delete_comment(comment_id, if_match)

    @post("/cards/{card_id:uuid}/checklist", status_code=HTTP_201_CREATED, summary="Add a checklist item")
    async def create_item(
        self, principal: CurrentPrincipal, discussion: DiscussionService, card_id: UUID, data: s.ChecklistIn
    ) -> Response[ChecklistItemOut]:
        return versioned(await discussion.create_item(card_id, data), HTTP_201_CREATED)

    @patch("/checklist-items/{item_id:uuid}", summary="Edit or tick a checklist item")
    async def update_item(
        self,
        principal: CurrentPrincipal,
        discussion: DiscussionService,
        item_id: UUID,
        data: s.ChecklistPatch,
        if_match: int | None,
    ) -> Response[ChecklistItemOut]:
        return versioned(await discussion.update_item(item_id, data, if_match))

    @delete(
        "/checklist-items/{item_id:uuid}", status_code=HTTP_204_NO_CONTENT, summary="Delete a checklist item"
    )
    async def delete_item(
        self, principal: CurrentPrincipal, discussion: DiscussionService, item_id: UUID, if_match: int | None
    ) -> None:
        await discussion.delete_item(item_id, if_match)

    @get("/search", summary="Full-text search over the cards and comments of my boards")
    async def search(
        self,
        principal: CurrentPrincipal,
        db_session: AsyncSession,
        q: Annotated[str, Parameter(query="q", min_length=1, max_length=200)],
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> s.SearchPage:
        return await search(db_session, principal.user_id, q, limit, cursor)
