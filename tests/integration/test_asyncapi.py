"""The socket's AsyncAPI 3 document (/schema/asyncapi.json): valid, naming every event the server emits."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from tests.e2e.nodeclient import HERE as E2E
from tests.e2e.nodeclient import require_node

ROOT = Path(__file__).resolve().parents[2]


def emitted_event_types() -> tuple[set[str], set[str]]:
    """Board event types and user-topic pushes, read from the code that emits them."""
    board: set[str] = set()
    user: set[str] = set()
    for path in [*ROOT.glob("server/**/*.py"), *ROOT.glob("persistence/**/*.py")]:
        text = path.read_text()
        # commit_event(board_id, seq, "card.moved", …), record_event(…, type="member.updated", …)
        # and the type chosen before the call (kind = "list.archived")
        board |= set(re.findall(r'commit_event\(\s*[\w.]+,\s*\w+,\s*"([a-z]+\.[a-z_]+)"', text))
        board |= set(re.findall(r'\btype="([a-z]+\.[a-z_]+)"', text))
        board |= set(re.findall(r'\bkind = "([a-z]+\.[a-z_]+)"', text))
        user |= set(re.findall(r'UserMessage\([^)]*?event="([a-z]+\.[a-z_]+)"', text, re.S))
        user |= set(re.findall(r'_push\([^)]*?"([a-z]+\.[a-z_]+)"', text, re.S))
    return board, user


async def test_every_emitted_event_is_described(client):
    response = await client.get("/schema/asyncapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["asyncapi"].startswith("3.")
    described = {m["name"] for m in doc["components"]["messages"].values()}
    board, user = emitted_event_types()
    assert len(board) >= 24  # the grep finds them all (SPEC §3 lists 24)
    assert {"notification.created"} <= user
    assert board - described == set()
    assert user - described == set()
    # every board event reaches the board topic; the user topic carries the pushes
    board_topic = {
        doc["components"]["messages"][r["$ref"].rsplit("/", 1)[1]]["name"]
        for r in doc["channels"]["board"]["messages"].values()
    }
    assert board <= board_topic
    user_topic = {
        doc["components"]["messages"][r["$ref"].rsplit("/", 1)[1]]["name"]
        for r in doc["channels"]["user"]["messages"].values()
    }
    assert user <= user_topic
    assert doc["channels"]["card"]["address"] == "card:{card_id}"
    assert {"1008", "4001"} <= set(doc["components"]["x-close-codes"])
    moved = doc["components"]["messages"]["CardMoved"]["payload"]["items"][4]
    assert moved["allOf"][1]["properties"]["data"] == {"$ref": "#/components/schemas/CardMoved"}


async def test_document_is_valid_asyncapi_3(client, tmp_path):
    node = require_node()
    document = tmp_path / "asyncapi.json"
    document.write_bytes((await client.get("/schema/asyncapi.json")).content)
    done = subprocess.run(
        [node, str(E2E / "validate_asyncapi.mjs"), str(document)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=E2E,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "VALID asyncapi 3" in done.stdout
    # the validator does reject: a message with a payload that is not a schema
    broken = json.loads(document.read_text())
    broken["components"]["messages"]["CardMoved"]["payload"] = {"type": "no-such-type"}
    document.write_text(json.dumps(broken))
    failed = subprocess.run(
        [node, str(E2E / "validate_asyncapi.mjs"), str(document)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=E2E,
    )
    assert failed.returncode == 1, failed.stdout
