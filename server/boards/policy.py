"""The role matrix, in one place: who may do what on a board.

``owner`` > ``admin`` > ``member`` > ``observer``. Observers read; members edit content (lists,
cards, comments, checklists); admins also manage members and labels and edit the board itself;
the owner alone deletes the board or hands ownership over. A caller who is not a member gets 404,
exactly as for a board that does not exist.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from persistence.access import board_role
from server.errors import Forbidden, Gone

T = TypeVar("T")

RANK = {"observer": 0, "member": 1, "admin": 2, "owner": 3}
ROLES = tuple(RANK)


class Action(StrEnum):
    READ = "read"
    EDIT_CONTENT = "edit_content"
    MANAGE_LABELS = "manage_labels"
    MANAGE_MEMBERS = "manage_members"
    EDIT_BOARD = "edit_board"
    DELETE_BOARD = "delete_board"
    TRANSFER_BOARD = "transfer_board"


REQUIRED_ROLE: dict[Action, str] = {
    Action.READ: "observer",
    Action.EDIT_CONTENT: "member",
    Action.MANAGE_LABELS: "admin",
    Action.MANAGE_MEMBERS: "admin",
    Action.EDIT_BOARD: "admin",
    Action.DELETE_BOARD: "owner",
    Action.TRANSFER_BOARD: "owner",
}


def allows(role: str | None, action: Action) -> bool:
    return role is not None and RANK[role] >= RANK[REQUIRED_ROLE[action]]


def outranks(role: str, other: str) -> bool:
    return RANK[role] > RANK[other]


def not_found(what: str = "board") -> Gone:
    return Gone.not_found(what)


async def authorize(
    session: AsyncSession, board_id: UUID | None, user_id: UUID, action: Action, *, what: str = "board"
) -> str:
    """The caller's role on the board if it allows ``action``.

    Raises:
        Gone: no such board, or the caller is not a member (the two look alike).
        Forbidden: a member whose role does not allow ``action``.
    """
    role = await board_role(session, board_id, user_id) if board_id is not None else None
    return check(role, action, what=what)


def check(role: str | None, action: Action, *, what: str = "board") -> str:
    """``role`` if it allows ``action`` (see :func:`authorize` for what is raised otherwise)."""
    if role is None:
        raise not_found(what)
    if not allows(role, action):
        raise Forbidden(f"Your role on this board ({role}) may not {action.value.replace('_', ' ')}.")
    return role


def check_found(found: T | None, role: str | None, action: Action, *, what: str) -> T:
    """``found`` (an item read with the caller's ``role`` on its board) if it exists and the role
    allows ``action``: a missing item is the same 404 as a board the caller is not a member of."""
    check(role if found is not None else None, action, what=what)
    assert found is not None
    return found
