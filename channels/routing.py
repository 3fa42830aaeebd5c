"""Which local topics an event of a board reaches: the board's, and the lists and cards it touches.

``list:`` and ``card:`` sockets are served from their board's stream (one broker channel per
board); the event's ``data`` names the resources: list events ``id``; card events ``id``,
``list_id`` and (``card.moved``) ``previous_list_id``; comment and checklist events ``card_id``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from persistence.events import Event


class _Refs(msgspec.Struct):
    id: Any = None
    list_id: Any = None
    previous_list_id: Any = None
    card_id: Any = None


_decoder = msgspec.json.Decoder(_Refs)


def topics_for(event: Event, local_topics: set[str]) -> Iterator[str]:
    """The board topic first, then the list/card topics present in ``local_topics``."""
    board = f"board:{event.board_id}"
    if board in local_topics:
        yield board
    if len(local_topics) == (1 if board in local_topics else 0):
        return  # nobody on lists or cards of this board: skip decoding the data
    yield from (t for t in sorted(set(_resource_topics(event))) if t in local_topics)


def _resource_topics(event: Event) -> Iterator[str]:
    family = event.type.partition(".")[0]
    try:
        refs = _decoder.decode(event.data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return
    if family == "list" and refs.id:
        yield f"list:{refs.id}"
    elif family == "card":
        if refs.id:
            yield f"card:{refs.id}"
        for list_id in (refs.list_id, refs.previous_list_id):
            if list_id:
                yield f"list:{list_id}"
    elif family in ("comment", "checklist") and refs.card_id:
        yield f"card:{refs.card_id}"


def concerns(event: Event, topic: str) -> bool:
    """Whether ``event`` belongs on ``topic`` (for replaying a list/card join from the log)."""
    return topic == f"board:{event.board_id}" or topic in set(_resource_topics(event))
