"""What happens to the boards of a user who is deleted.

The rule (docs/auth.md, "Deleting a user"): every board the user owns alone is handed to its
longest-standing admin member; a board with no admin member left is deleted. Boards that have
another owner simply lose this one. Memberships, assignments and the rest go with the user row
(foreign keys with ``ON DELETE CASCADE`` / ``SET NULL``).

The account service calls :func:`release_owned_boards` inside the deleting transaction, before
the user row goes. Boards live in ``persistence/models/boards.py`` (another part of the code);
until that lands this hook has nothing to release and does nothing. The boards part replaces its
body; the signature is the contract.
"""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession


async def release_owned_boards(session: AsyncSession, user_id: UUID) -> None:
    """Transfer or delete the boards ``user_id`` owns alone (no commit: part of the deletion).

    Args:
        session: The transaction deleting the user.
        user_id: The user being deleted.
    """
    del session, user_id  # no boards exist yet: nothing to transfer or delete
