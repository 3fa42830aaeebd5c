"""The served OpenAPI document is a contract generators can use (SPEC §6 "OpenAPI")."""

from __future__ import annotations

import re
from typing import Any

from tests.support.boards import make_card, make_list, make_world
from tests.support.factories import make_account

PUBLIC = {
    "register",
    "login",
    "refresh",
    "forgotPassword",
    "resetPassword",
    "verifyEmail",
    "unsubscribeByLink",
    "unsubscribeOneClick",
    "getHealth",
    "getReadiness",
    "getMetrics",
}


async def served(client: Any) -> dict[str, Any]:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    doc: dict[str, Any] = response.json()
    return doc


def operations(doc: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """operationId -> (METHOD, path, operation)."""
    ops: dict[str, tuple[str, str, dict[str, Any]]] = {}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if isinstance(op, dict) and "responses" in op:
                assert op["operationId"] not in ops, f"duplicate operationId {op['operationId']}"
                ops[op["operationId"]] = (method.upper(), path, op)
    return ops


def success(op: dict[str, Any]) -> int:
    codes = [int(c) for c in op["responses"] if 200 <= int(c) < 300]
    assert len(codes) == 1, f"{op['operationId']} documents {codes}"
    return codes[0]


async def test_operation_ids_and_schema_names_are_readable(client):
    doc = await served(client)
    ops = operations(doc)
    for name in ("moveCard", "listBoards", "getBoard", "createCard", "updateCard", "listEvents"):
        assert name in ops
    assert all(re.fullmatch(r"[a-z][A-Za-z]*", name) for name in ops), sorted(ops)
    schemas = doc["components"]["schemas"]
    assert all(re.fullmatch(r"[A-Z][A-Za-z0-9]*", name) for name in schemas), sorted(schemas)
    assert schemas["CardPage"]["properties"]["items"]["items"] == {"$ref": "#/components/schemas/CardOut"}


async def test_every_operation_documents_its_problems_and_security(client):
    doc = await served(client)
    assert set(doc["components"]["securitySchemes"]) >= {"BearerToken"}
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    for name, (_method, path, op) in operations(doc).items():
        responses = op["responses"]
        errors = {int(c): r for c, r in responses.items() if int(c) >= 400}
        if not path.startswith("/api/v1"):
            continue
        for code, response in errors.items():
            assert response["content"] == {"application/problem+json": {"schema": problem_ref}}, (name, code)
        assert {400, 429, 503} <= set(errors), name
        if name in PUBLIC:
            assert "security" not in op, name
        else:
            assert op["security"] == [{"BearerToken": []}, {"OAuth2Password": []}], name
            assert 401 in errors, name
        if "{" in path:
            assert 404 in errors, name
        if op.get("requestBody"):
            assert 422 in errors, name
    ops = operations(doc)
    for name in ("updateCard", "moveCard", "deleteCard", "updateList", "updateBoard"):
        assert 409 in {int(c) for c in ops[name][2]["responses"]}, name
    assert 403 in {int(c) for c in ops["createCard"][2]["responses"]}  # an observer may not write


async def test_happy_paths_answer_the_documented_status(client):
    """Each operation called the way a client would, by operationId; its status is the documented one."""
    doc = await served(client)
    ops = operations(doc)
    world = await make_world(client)
    owner = world.accounts["owner"]
    lst = await make_list(client, world.id, owner)
    card = await make_card(client, lst["id"], owner)
    other = await make_list(client, world.id, owner, name="Done")
    guest = await make_account(client)

    async def call(name: str, path_params: dict[str, str] | None = None, **kwargs: Any) -> Any:
        method, path, op = ops[name]
        url = path.format(**(path_params or {}))
        response = await client.request(method, url, headers=owner.headers, **kwargs)
        assert response.status_code == success(op), f"{name}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    b, c = {"board_id": world.id}, {"card_id": card["id"]}
    await call("listBoards")
    await call("getBoard", b)
    await call("updateBoard", b, json={"name": "Renamed"})
    await call("listMembers", b)
    await call("addMember", b, json={"user_id": guest.id, "role": "member"})
    label = await call("createLabel", b, json={"name": "bug", "color": "red"})
    await call("listLabels", b)
    await call("updateLabel", {"label_id": label["id"]}, json={"name": "bugs"})
    await call("listEvents", b)
    await call("filterCards", b)
    await call("getList", {"list_id": lst["id"]})
    await call("updateList", {"list_id": lst["id"]}, json={"name": "Doing"})
    made = await call("createCard", {"list_id": lst["id"]}, json={"title": "T"})
    await call("getCard", c)
    await call("updateCard", c, json={"title": "Edited"})
    await call("moveCard", c, json={"list_id": other["id"]})
    comment = await call("createComment", c, json={"body": "hi"})
    await call("listComments", c)
    await call("updateComment", {"comment_id": comment["id"]}, json={"body": "hello"})
    item = await call("createChecklistItem", c, json={"text": "step"})
    await call("updateChecklistItem", {"item_id": item["id"]}, json={"done": True})
    await call("watchCard", c)
    await call("getCardWatch", c)
    await call("unwatchCard", c)
    await call("searchBoards", params={"q": "Edited"})
    await call("listNotifications")
    await call("countUnreadNotifications")
    await call("markAllNotificationsRead")
    await call("listSessions")
    await call("listTokens")
    await call("getCurrentUser")
    await call("getMyAccount")
    await call("deleteChecklistItem", {"item_id": item["id"]})
    await call("deleteComment", {"comment_id": comment["id"]})
    await call("deleteLabel", {"label_id": label["id"]})
    await call("deleteCard", {"card_id": made["id"]})
    await call("deleteList", {"list_id": lst["id"]})
    await call("removeMember", {"board_id": world.id, "user_id": guest.id})
    await call("createBoard", json={"name": "Another"})
    await call("deleteBoard", b)


async def test_api_docs_load_only_local_assets(client):
    """/schema and /schema/swagger render with no internet: every script, style and icon is served here."""
    for page in ("/schema", "/schema/swagger"):
        response = await client.get(page)
        assert response.status_code == 200
        refs = re.findall(r"""(?:src|href)=["']([^"']+)["']""", response.text)
        assert len(refs) >= 3, refs
        assert not re.search(r"https?://", " ".join(refs)), refs
        for ref in refs:
            asset = await client.get(ref)
            assert asset.status_code == 200, ref
            assert len(asset.content) > 0, ref
    script = await client.get("/schema/static/swagger-ui-bundle.js")
    assert script.headers["content-type"].startswith("text/javascript")
