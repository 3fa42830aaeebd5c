// The client against a live Corkboard server (CORKBOARD_URL; pytest starts one: tests/e2e/test_js_client.py).
// Run: npm run build && CORKBOARD_URL=http://127.0.0.1:8000 node --test test/
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { CorkboardClient, ProblemError } from "../dist/index.js";

const URL_ = process.env.CORKBOARD_URL;
if (!URL_) throw new Error("CORKBOARD_URL is not set");
const PASSWORD = "correct horse battery staple";
const FAST = { reconnectAfterMs: () => 300, rejoinAfterMs: () => 200 };

async function account() {
  const name = "js" + randomUUID().slice(0, 10).replace(/-/g, "");
  const res = await fetch(`${URL_}/api/v1/auth/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: `${name}@example.test`, username: name, password: PASSWORD }),
  });
  assert.equal(res.status, 201, await res.text());
  const client = new CorkboardClient({ url: URL_, socketOptions: FAST });
  const user = await client.login(name, PASSWORD);
  return { client, user, name };
}

/** Resolves when `check()` holds, re-checked on every change of the store (fails after 15 s). */
function until(store, check, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`timed out waiting for ${what}`));
    }, 15000);
    const stop = store.subscribe(() => {
      if (check()) {
        clearTimeout(timer);
        stop();
        resolve();
      }
    });
    if (check()) {
      clearTimeout(timer);
      stop();
      resolve();
    }
  });
}

const converged = async (store, client) => {
  const truth = await client.request("GET", `/boards/${store.boardId}`);
  await until(store, () => store.copy.seq >= truth.seq, `seq ${truth.seq}`);
  assert.deepStrictEqual(store.copy.body(), truth);
  return truth;
};

async function board(client, ...members) {
  const b = await client.request("POST", "/boards", { name: "live" });
  for (const m of members) await client.request("POST", `/boards/${b.id}/members`, { user_id: m.id, role: "member" });
  return b;
}

test("two clients on one board converge to GET /boards/{id} through every kind of change", async () => {
  const alice = await account();
  const bob = await account();
  const carol = await account();
  const b = await board(alice.client, bob.user);
  const a = await alice.client.openBoard(b.id);
  const s = await bob.client.openBoard(b.id);
  const req = (m, p, body) => alice.client.request(m, p, body);
  const todo = await req("POST", `/boards/${b.id}/lists`, { name: "todo" });
  const done = await req("POST", `/boards/${b.id}/lists`, { name: "done" });
  const label = await req("POST", `/boards/${b.id}/labels`, { name: "bug", color: "#ff0000" });
  await req("POST", `/boards/${b.id}/members`, { user_id: carol.user.id, role: "member" });
  const c1 = await req("POST", `/lists/${todo.id}/cards`, { title: "one", label_ids: [label.id], assignee_ids: [carol.user.id] });
  const c2 = await req("POST", `/lists/${todo.id}/cards`, { title: "two" });
  await req("PATCH", `/cards/${c2.id}`, { title: "two!", version: c2.version });
  await req("POST", `/cards/${c2.id}/move`, { list_id: done.id });
  await req("PATCH", `/boards/${b.id}`, { name: "renamed" });
  await req("PATCH", `/lists/${todo.id}`, { name: "to do" });
  await req("POST", `/cards/${c1.id}/comments`, { body: "hi" });
  await req("DELETE", `/boards/${b.id}/members/${carol.user.id}`); // off c1's assignees, no card event
  await req("DELETE", `/labels/${label.id}`); // off c1's labels, no card event
  await converged(a, alice.client);
  await converged(s, bob.client);
  await req("DELETE", `/lists/${done.id}`); // its cards go with it, no card events
  const truth = await converged(a, alice.client);
  await converged(s, bob.client);
  assert.equal(truth.cards.length, 1);
  assert.deepStrictEqual(truth.cards[0].assignee_ids, []);
  assert.deepStrictEqual(truth.cards[0].label_ids, []);
  alice.client.close();
  bob.client.close();
});

test("presence names the people on the board, and ephemerals reach the others", async () => {
  const alice = await account();
  const bob = await account();
  const b = await board(alice.client, bob.user);
  const a = await alice.client.openBoard(b.id);
  await until(a, () => a.presence.length === 1, "alice alone");
  const s = await bob.client.openBoard(b.id);
  await until(a, () => a.presence.length === 2, "both present");
  assert.deepStrictEqual(a.presence.map((p) => p.name).sort(), [alice.name, bob.name].sort());
  const got = new Promise((resolve) => a.onEphemeral(resolve));
  s.typing("card-1");
  assert.deepStrictEqual(await got, { user_id: bob.user.id, kind: "typing", data: { card_id: "card-1", typing: true } });
  alice.client.close();
  bob.client.close();
});

test("a dropped socket reconnects and gets exactly the missed events, once", async () => {
  const alice = await account();
  const b = await board(alice.client);
  const lst = await alice.client.request("POST", `/boards/${b.id}/lists`, { name: "todo" });
  const store = await alice.client.openBoard(b.id);
  const start = store.copy.seq;
  const socket = alice.client["socket"];
  let opened = 0;
  socket.onOpen(() => (opened += 1));
  socket.conn.close(4000, "test drop"); // not clean: phoenix.js reconnects and rejoins
  for (const title of ["a", "b", "c"]) await alice.client.request("POST", `/lists/${lst.id}/cards`, { title });
  await until(store, () => opened > 0, "the reconnect");
  await alice.client.request("POST", `/lists/${lst.id}/cards`, { title: "live" });
  const truth = await converged(store, alice.client);
  const expected = Array.from({ length: truth.seq - start }, (_, i) => start + 1 + i);
  assert.deepStrictEqual(store.seen, expected);
  assert.deepStrictEqual(store.received, expected); // replayed, not duplicated, not skipped by a snapshot
  alice.client.close();
});

test("a revoked session stops the client: onSignedOut, no reconnect", async () => {
  const alice = await account();
  const b = await board(alice.client);
  const store = await alice.client.openBoard(b.id);
  const socket = alice.client["socket"];
  const signedOut = new Promise((resolve) => alice.client.onSignedOut(resolve));
  const other = new CorkboardClient({ url: URL_ });
  await other.login(alice.name, PASSWORD);
  await other.logout(true); // every session of alice's, this client's too: its socket gets 4001
  assert.deepStrictEqual(await signedOut, { reason: "revoked" });
  let attempts = 0; // a reconnect with a revoked token is refused: phoenix.js reports an error
  socket.onError(() => (attempts += 1));
  socket.onOpen(() => (attempts += 1));
  await new Promise((r) => setTimeout(r, 1500)); // five reconnect intervals (FAST)
  assert.equal(attempts, 0);
  assert.equal(socket.isConnected(), false);
  assert.equal(alice.client.accessToken, null);
  assert.ok(store.copy);
});

test("the access token is refreshed before it expires, and the refresh token rotates", async () => {
  const alice = await account();
  const name = alice.name;
  const client = new CorkboardClient({ url: URL_, refreshMargin: 1e6 }); // due at once
  await client.login(name, PASSWORD);
  const first = client.accessToken;
  const firstRefresh = client["refreshToken"];
  while (client.accessToken === first) await new Promise((r) => setTimeout(r, 50));
  assert.notEqual(client["refreshToken"], firstRefresh);
  client.close(); // stops refreshing
  const me = await client.request("GET", "/auth/me");
  assert.equal(me.username, name);
});

test("an optimistic move with a stale version shows at once and rolls back to the 409's current", async () => {
  const alice = await account();
  const bob = await account();
  const b = await board(alice.client, bob.user);
  const todo = await alice.client.request("POST", `/boards/${b.id}/lists`, { name: "todo" });
  const done = await alice.client.request("POST", `/boards/${b.id}/lists`, { name: "done" });
  const card = await alice.client.request("POST", `/lists/${todo.id}/cards`, { title: "x" });
  const store = await alice.client.openBoard(b.id);
  await until(store, () => store.copy.cards.has(card.id), "the card");
  // alice's socket is away (no reconnect for now), so her copy keeps the old version
  const socket = alice.client["socket"];
  socket.reconnectAfterMs = () => 3_600_000;
  socket.conn.close(4000, "test drop");
  const changed = await bob.client.request("PATCH", `/cards/${card.id}`, { title: "bob's", version: card.version });
  const moving = store.moveCard(card.id, { list_id: done.id });
  const shown = store.board.cards.find((c) => c.id === card.id);
  assert.equal(shown.list_id, done.id); // optimistic
  await assert.rejects(moving, (err) => err instanceof ProblemError && err.status === 409);
  const after = store.board.cards.find((c) => c.id === card.id);
  assert.deepStrictEqual(after, changed); // the server's current card, before its event arrives
  assert.equal(store.copy.cards.get(card.id).version, card.version);
  alice.client.close();
  bob.client.close();
});

test("an optimistic change that succeeds is confirmed by its event", async () => {
  const alice = await account();
  const b = await board(alice.client);
  const lst = await alice.client.request("POST", `/boards/${b.id}/lists`, { name: "todo" });
  const card = await alice.client.request("POST", `/lists/${lst.id}/cards`, { title: "x" });
  const store = await alice.client.openBoard(b.id);
  await until(store, () => store.copy.cards.has(card.id), "the card");
  const p = store.updateCard(card.id, { title: "y" });
  assert.equal(store.board.cards[0].title, "y");
  const saved = await p;
  await until(store, () => store.copy.cards.get(card.id).version === saved.version, "the event");
  assert.deepStrictEqual(store.board, await alice.client.request("GET", `/boards/${b.id}`));
  alice.client.close();
});
