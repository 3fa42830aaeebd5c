"""``/api/v1`` board routes: boards, members, labels and the event log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, MediaType, Response, delete, get, patch, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT, HTTP_304_NOT_MODIFIED

from persistence.boards.shapes import BoardDetail, BoardOut, LabelOut, MemberOut
from persistence.eventlog import events_after
from server.auth.controller import mail_limits
from server.auth.deps import CurrentPrincipal
from server.boards import schemas as s
from server.boards.boards_service import BoardService
from server.boards.deps import DEPENDENCIES
from server.boards.occ import etag, none_match
from server.boards.policy import Action
from server.errors import FieldError, ValidationFailed
from server.pagination import page_limit

Limit = Annotated[int | None, Parameter(query="limit", required=False)]
Cursor = Annotated[str | None, Parameter(query="cursor", required=False, max_length=200)]


class EventOut(msgspec.Struct):
    """The SPEC §3 envelope (for the schema; the route sends the stored events as they are)."""

    seq: int
    type: str
    board_id: UUID
    actor_id: UUID | None
    at: datetime
    data: dict[str, Any]


class EventPage(msgspec.Struct):
    items: list[EventOut]
    next_cursor: str | None


# The largest seq a board can have (the column is a 32-bit integer on both databases).
MAX_SEQ = 2**31 - 1


def _seq_cursor(cursor: str) -> int:
    """The ``after_seq`` a ``next_cursor`` of the event log names."""
    if not cursor.isascii() or not cursor.isdigit() or len(cursor) > 10 or int(cursor) > MAX_SEQ:
        raise ValidationFailed([FieldError("cursor", "is not a cursor this server gave out")])
    return int(cursor)


def _board_headers(tag: str) -> dict[str, str]:
    # The caller's cache keeps the board and asks again with If-None-Match every time (no-cache);
    # shared caches keep nothing (private: the answer depends on who may see the board).
    return {"ETag": tag, "Cache-Control": "private, no-cache", "Vary": "Accept-Encoding"}


def versioned(body: Any, status_code: int = 200) -> Response[Any]:
    return Response(body, status_code=status_code, headers=etag(body.version))


class BoardController(Controller):
    path = "/api/v1/boards"
    tags = ["boards"]
    dependencies = DEPENDENCIES

    @get("/", summary="My boards")
    async def list_boards(
        self, principal: CurrentPrincipal, boards: BoardService, limit: Limit = None, cursor: Cursor = None
    ) -> s.BoardPage:
        """The boards the caller is a member of, each with the caller's role and its seq."""
        return await boards.list_mine(limit, cursor)

    @post("/", status_code=HTTP_201_CREATED, summary="Create a board (the caller becomes owner)")
    async def create_board(
        self, principal: CurrentPrincipal, boards: BoardService, data: s.BoardIn
    ) -> Response[BoardOut]:
        return versioned(await boards.create(data), HTTP_201_CREATED)

    @get(
        "/{board_id:uuid}",
        summary="The whole board at its seq",
        responses={
            200: ResponseSpec(data_container=BoardDetail, description="The board at `seq`"),
            304: ResponseSpec(None, description="Not modified: `If-None-Match` named the current `ETag`"),
        },
    )
    async def get_board(
        self,
        principal: CurrentPrincipal,
        boards: BoardService,
        board_id: UUID,
        if_none_match: Annotated[str | None, Parameter(header="If-None-Match", required=False)] = None,
    ) -> Response[bytes]:
        """The board with ``lists``, ``cards`` (flat, with ``list_id``), ``labels``, ``members`` and
        ``seq``: the number of the last event it reflects.

        Its ``ETag`` changes with every change to the board (and to its members' names); with
        ``If-None-Match`` naming the current one the answer is 304 without a body, and the board
        is not read."""
        if if_none_match is not None:
            current = await boards.current_etag(board_id)
            if none_match(if_none_match, current):
                return Response(b"", status_code=HTTP_304_NOT_MODIFIED, headers=_board_headers(current))
        tag, body = await boards.snapshot(board_id)
        return Response(body, media_type=MediaType.JSON, headers=_board_headers(tag))

    @patch("/{board_id:uuid}", summary="Rename or describe a board (admin)")
    async def update_board(
        self,
        principal: CurrentPrincipal,
        boards: BoardService,
        board_id: UUID,
        data: s.BoardPatch,
        if_match: int | None,
    ) -> Response[BoardOut]:
        return versioned(await boards.update(board_id, data, if_match))

    @delete("/{board_id:uuid}", status_code=HTTP_204_NO_CONTENT, summary="Delete a board (owner)")
    async def delete_board(
        self, principal: CurrentPrincipal, boards: BoardService, board_id: UUID, if_match: int | None
    ) -> None:
        await boards.delete(board_id, if_match)

    @get("/{board_id:uuid}/members", summary="Members of a board")
    async def list_members(
        self,
        principal: CurrentPrincipal,
        boards: BoardService,
        board_id: UUID,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> s.MemberPage:
        return await boards.list_members(board_id, limit, cursor)

    @post("/{board_id:uuid}/members", status_code=HTTP_201_CREATED, summary="Add a member (admin)")
    async def add_member(
        self,
        principal: CurrentPrincipal,
        boards: BoardService,
        board_id: UUID,
        data: s.MemberIn,
        state: State,
    ) -> Response[MemberOut]:
        """By ``email``, the answer tells whether the address has an active account (that is the
        point); at most ``EMAIL_LOOKUPS_PER_HOUR`` such requests per account (429 beyond)."""
        if data.email is not None:
            await mail_limits(state).email_lookup(principal.user_id)
        return versioned(await boards.add_member(board_id, data), HTTP_201_CREATED)

    @get("/{board_id:uuid}/members/{user_id:uuid}", summary="One member")
    async def get_member(
        self, principal: CurrentPrincipal, boards: BoardService, board_id: UUID, user_id: UUID
    ) -> Response[MemberOut]:
        return versioned(await boards.get_member(board_id, user_id))

    @patch(
        "/{board_id:uuid}/members/{user_id:uuid}", summary="Change a role; role owner hands the board over"
    )
    async def update_member(
        self,
        principal: CurrentPrincipal,
        boards: BoardService,
        board_id: UUID,
        user_id: UUID,
        data: s.MemberPatch,
        if_match: int | None,
    ) -> Response[MemberOut]:
        return versioned(await boards.update_member(board_id, user_id, data, if_match))

    @delete(
        "/{board_id:uuid}/members/{user_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Remove a member (admin), or leave",
    )
    async def remove_member(
        self,
        principal: CurrentPrincipal,
        boards: BoardService,
        board_id: UUID,
        user_id: UUID,
        if_match: int | None,
    ) -> None:
        await boards.remove_member(board_id, user_id, if_match)

    @get("/{board_id:uuid}/labels", summary="Labels of a board")
    async def list_labels(
        self,
        principal: CurrentPrincipal,
        boards: BoardService,
        board_id: UUID,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> s.LabelPage:
        return await boards.list_labels(board_id, limit, cursor)

    @post("/{board_id:uuid}/labels", status_code=HTTP_201_CREATED, summary="Create a label (admin)")
    async def create_label(
        self, principal: CurrentPrincipal, boards: BoardService, board_id: UUID, data: s.LabelIn
    ) -> Response[LabelOut]:
        return versioned(await boards.create_label(board_id, data), HTTP_201_CREATED)

    @get(
        "/{board_id:uuid}/events",
        summary="The board's event log, ascending",
        responses={200: ResponseSpec(data_container=EventPage, description="Events after `after_seq`")},
    )
    async def list_events(
        self,
        principal: CurrentPrincipal,
        boards: BoardService,
        board_id: UUID,
        after_seq: Annotated[int, Parameter(query="after_seq", ge=0, le=MAX_SEQ)] = 0,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> Response[bytes]:
        """Events with ``seq > after_seq`` (same envelope as the socket), a page at a time.

        ``next_cursor`` is the next ``after_seq`` as a string, null at the end. A client may send
        it back as ``cursor`` like on every other collection (it then replaces ``after_seq``) or
        as ``after_seq``."""
        size = page_limit(limit)
        start = _seq_cursor(cursor) if cursor else after_seq
        await boards.authorize(board_id, Action.READ)
        events = await events_after(boards.session, board_id, start, size + 1)
        page = events[:size]
        next_cursor = str(page[-1].seq) if len(events) > size else None
        body = msgspec.json.encode({"items": page, "next_cursor": next_cursor})
        return Response(body, media_type=MediaType.JSON)


class LabelController(Controller):
    path = "/api/v1/labels"
    tags = ["boards"]
    dependencies = DEPENDENCIES

    @patch("/{label_id:uuid}", summary="Edit a label (admin)")
    async def update_label(
        self,
        principal: CurrentPrincipal,
        boards: BoardService,
        label_id: UUID,
        data: s.LabelPatch,
        if_match: int | None,
    ) -> Response[LabelOut]:
        return versioned(await boards.update_label(label_id, data, if_match))

    @delete("/{label_id:uuid}", status_code=HTTP_204_NO_CONTENT, summary="Delete a label (admin)")
    async def delete_label(
        self, principal: CurrentPrincipal, boards: BoardService, label_id: UUID, if_match: int | None
    ) -> None:
        await boards.delete_label(label_id, if_match)
