"""Pure pieces of the board domain: mentions, If-Match, colours, the role matrix, snippets."""

from __future__ import annotations

import pytest

from server.boards.boards_service import valid_colour
from server.boards.discussion import mentioned_usernames
from server.boards.occ import board_etag, none_match, parse_if_match
from server.boards.policy import ROLES, Action, allows
from server.boards.search import snippet, terms_of
from server.errors import StaleVersion, ValidationFailed


def test_mentions():
    body = "hey @Alice and @bob_2, mail me@example.com, @alice again, end @carol."
    assert mentioned_usernames(body) == ["alice", "bob_2", "carol"]


@pytest.mark.parametrize(
    ("header", "version"),
    [('"3"', 3), ('W/"12"', 12), ("7", 7), (None, None), ("*", None), ('"4.17.2.9"', 4), ('W/"4.17.2.9"', 4)],
)
def test_if_match(header, version):
    assert parse_if_match(header) == version


def test_bad_if_match():
    with pytest.raises(ValidationFailed):
        parse_if_match('"abc"')


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        ('"4.17.2.9"', True),
        ('W/"4.17.2.9"', True),
        ('"x", W/"4.17.2.9"', True),
        ("*", True),
        ('"4.17.2.8"', False),
        ('"4"', False),
        ("4.17.2.9", False),  # not an entity tag: no quotes
        ('"4.17.2.9', False),
        ("", False),
    ],
)
def test_if_none_match(header, matches):
    assert none_match(header, board_etag(4, 17, 2, 9)) is matches


def test_colours():
    assert valid_colour("#A0b1C2") == "#a0b1c2"
    assert valid_colour("green") == "green"
    for bad in ("#abc", "chartreuse", "#gggggg"):
        with pytest.raises(ValidationFailed):
            valid_colour(bad)


def test_role_matrix_is_monotonic():
    expected = {
        "observer": {Action.READ},
        "member": {Action.READ, Action.EDIT_CONTENT},
        "admin": {
            Action.READ,
            Action.EDIT_CONTENT,
            Action.MANAGE_LABELS,
            Action.MANAGE_MEMBERS,
            Action.EDIT_BOARD,
        },
        "owner": set(Action),
    }
    for role in ROLES:
        assert {a for a in Action if allows(role, a)} == expected[role]
    assert not any(allows(None, a) for a in Action)


def test_search_terms_and_snippets():
    assert terms_of('Fix "the" bug*; NOW') == ["fix", "the", "bug", "now"]
    with pytest.raises(ValidationFailed):
        terms_of("!!! ???")
    text = "x" * 100 + " the needle is here " + "y" * 300
    cut = snippet(text, ["needle"])
    assert "needle" in cut
    assert cut.startswith("…")
    assert cut.endswith("…")


def test_stale_version_carries_current():
    from server.boards.occ import check_version

    check_version(3, None, {"v": 3})
    check_version(3, 3, {"v": 3})
    with pytest.raises(StaleVersion) as caught:
        check_version(3, 2, {"v": 3})
    assert caught.value.current == {"v": 3}
