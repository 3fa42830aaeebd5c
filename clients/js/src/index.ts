// Corkboard client: sign-in with token refresh, live board stores over the board's phoenix channel,
// optimistic changes with `version`, and REST types generated from the served OpenAPI document.
import { Socket, Presence, type Channel } from "phoenix";
import { BoardCopy, cardOf, type BoardBody, type BoardEvent, type Card } from "./fold.js";
import type { components, paths } from "./schema.js";

export { BoardCopy, FOLD } from "./fold.js";
export type { BoardBody, BoardEvent, Card, List, Label, Member, Comment, ChecklistItem } from "./fold.js";
export type { components, paths } from "./schema.js";

export type Problem = components["schemas"]["Problem"];
export type TokenOut = components["schemas"]["TokenOut"];

/** A non-2xx answer: the RFC 9457 problem body (a 409 carries `current`). */
export class ProblemError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem,
  ) {
    super(`${status} ${problem.title}: ${problem.detail}`);
  }
}

export type ClientOptions = {
  /** The server, e.g. "http://127.0.0.1:8000" (the API is under /api/v1, the socket at /socket). */
  url: string;
  /** A WebSocket constructor. Default: the global one (browsers), else the `ws` package (Node). */
  transport?: unknown;
  /** Extra phoenix Socket options (reconnectAfterMs, heartbeatIntervalMs, ...). */
  socketOptions?: Record<string, unknown>;
  /** Seconds before the access token's `exp` at which it is refreshed (default: 60, or a fifth of its life when shorter). */
  refreshMargin?: number;
};

type Listener<T> = (value: T) => void;

function jwtExp(token: string): number {
  const part = token.split(".")[1] ?? "";
  const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
  return Number(JSON.parse(json).exp);
}

export class CorkboardClient {
  readonly url: string;
  accessToken: string | null = null;
  private refreshToken: string | null = null;
  private refreshTimer: ReturnType<typeof setTimeout> | null = null;
  private refreshing: Promise<void> | null = null;
  private socket: Socket | null = null;
  private signedOutListeners: Listener<{ reason: string }>[] = [];
  private signedOut = false;

  constructor(private readonly options: ClientOptions) {
    this.url = options.url.replace(/\/$/, "");
  }

  /** Signs in (username or email, password); the access token is refreshed before it expires. */
  async login(login: string, password: string): Promise<components["schemas"]["UserOut"]> {
    const tokens = await this.fetchJson<TokenOut>("POST", "/auth/login", { login, password }, { auth: false });
    this.setTokens(tokens);
    this.signedOut = false;
    return this.request<components["schemas"]["UserOut"]>("GET", "/auth/me");
  }

  /** Called once when the session ends: revoked (socket close 4001, a 401 the refresh cannot cure) or logout. */
  onSignedOut(listener: Listener<{ reason: string }>): () => void {
    this.signedOutListeners.push(listener);
    return () => (this.signedOutListeners = this.signedOutListeners.filter((l) => l !== listener));
  }

  /** Rotates the refresh token for a new pair. Serialized: a refresh token spent twice ends the session. */
  refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        if (!this.refreshToken) throw new Error("not signed in");
        const tokens = await this.fetchJson<TokenOut>(
          "POST",
          "/auth/refresh",
          { refresh_token: this.refreshToken },
          { auth: false },
        );
        this.setTokens(tokens);
      } catch (err) {
        if (err instanceof ProblemError && err.status === 401) this.endSession("refresh_rejected");
        throw err;
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  /** Ends this session on the server, then locally (onSignedOut fires with reason "logout"). */
  async logout(all = false): Promise<void> {
    try {
      await this.request("POST", "/auth/logout", { all });
    } finally {
      this.endSession("logout");
    }
  }

  /** A REST call under /api/v1 with the access token; throws ProblemError on an error answer. */
  async request<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<T> {
    if (this.refreshing) await this.refreshing.catch(() => undefined);
    try {
      return await this.fetchJson<T>(method, path, body, { headers });
    } catch (err) {
      // an access token that expired while the machine slept: one refresh, one retry
      if (err instanceof ProblemError && err.status === 401 && this.refreshToken && !this.signedOut) {
        await this.refresh();
        return this.fetchJson<T>(method, path, body, { headers });
      }
      throw err;
    }
  }

  /** Opens the live store of a board (joins `board:{id}`); resolves once it holds the board. */
  async openBoard(boardId: string): Promise<BoardStore> {
    const store = new BoardStore(this, await this.connect(), boardId);
    await store.ready;
    return store;
  }

  /** Closes the socket and stops refreshing, keeping the session (login state) on the server. */
  close(): void {
    this.stopRefresh();
    this.socket?.disconnect();
    this.socket = null;
  }

  private async connect(): Promise<Socket> {
    if (this.socket) return this.socket;
    let transport = this.options.transport ?? (globalThis as any).WebSocket;
    if (!transport) transport = (await import("ws")).default; // Node 20 has no global WebSocket
    const socket = new Socket(this.url.replace(/^http/, "ws") + "/socket", {
      ...this.options.socketOptions,
      transport: transport as any,
      // phoenix.js >= 1.8 sends it in the subprotocol (never the URL); a function, so every
      // reconnect carries the token current at that moment
      authToken: (() => this.accessToken ?? "") as any,
    });
    socket.onClose((event: any) => {
      if (event?.code === 4001) this.endSession("revoked"); // a clear stop, not a reconnect loop
    });
    socket.connect();
    this.socket = socket;
    return socket;
  }

  private endSession(reason: string): void {
    if (this.signedOut) return;
    this.signedOut = true;
    this.stopRefresh();
    this.accessToken = this.refreshToken = null;
    const socket = this.socket;
    this.socket = null;
    socket?.disconnect();
    for (const l of this.signedOutListeners) l({ reason });
  }

  private setTokens(tokens: TokenOut): void {
    this.accessToken = tokens.access_token;
    this.refreshToken = tokens.refresh_token;
    this.stopRefresh();
    const life = jwtExp(tokens.access_token) * 1000 - Date.now();
    const margin = this.options.refreshMargin !== undefined ? this.options.refreshMargin * 1000 : Math.min(60_000, life / 5);
    this.refreshTimer = setTimeout(() => void this.refresh().catch(() => undefined), Math.max(0, life - margin));
    // a pending refresh must not keep Node alive on its own
    (this.refreshTimer as any).unref?.();
  }

  private stopRefresh(): void {
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
  }

  private async fetchJson<T>(
    method: string,
    path: string,
    body: unknown,
    { auth = true, headers = {} }: { auth?: boolean; headers?: Record<string, string> },
  ): Promise<T> {
    const h: Record<string, string> = { accept: "application/json", ...headers };
    if (body !== undefined) h["content-type"] = "application/json";
    if (auth && this.accessToken) h.authorization = `Bearer ${this.accessToken}`;
    const res = await fetch(`${this.url}/api/v1${path}`, {
      method,
      headers: h,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const data = text ? JSON.parse(text) : undefined;
    if (!res.ok) throw new ProblemError(res.status, data ?? { type: "about:blank", title: res.statusText, status: res.status, detail: "" });
    return data as T;
  }
}

export type PresenceEntry = { user_id: string; name: string; metas: Record<string, unknown>[] };
export type Ephemeral = { user_id: string; kind: string; data: unknown };
export type MoveTo = Omit<components["schemas"]["CardMove"], "version">;
export type CardPatch = Omit<components["schemas"]["CardPatch"], "version">;

/**
 * One board, live: `board` is GET /boards/{id} kept current by the fold, with optimistic changes
 * laid over it until the server confirms or refuses them. Subscribe to be told of every change.
 */
export class BoardStore {
  /** The confirmed copy: after the event with seq n it equals GET /boards/{id} at seq n. */
  copy: BoardCopy | null = null;
  presence: PresenceEntry[] = [];
  /** Each seq folded, in order. */
  readonly seen: number[] = [];
  /** Each event seq the channel delivered, before any check (a duplicate would show here). */
  readonly received: number[] = [];
  readonly ready: Promise<void>;
  private pending = new Map<string, Card>(); // card id -> the card as this client expects it
  private buffer: BoardEvent[] | null = null; // events held while the board reloads
  private listeners: Listener<BoardStore>[] = [];
  private ephemeralListeners: Listener<Ephemeral>[] = [];
  private readonly channel: Channel;
  private readonly phxPresence: Presence;

  constructor(
    private readonly client: CorkboardClient,
    socket: Socket,
    readonly boardId: string,
  ) {
    // params as a function: the first join asks for a snapshot, every rejoin (phoenix.js rejoins
    // by itself after a reconnect) for exactly the events after the copy's current seq
    this.channel = socket.channel(`board:${boardId}`, () =>
      this.copy ? { last_seq: this.copy.seq } : { snapshot: true },
    );
    const original = this.channel.onMessage.bind(this.channel);
    this.channel.onMessage = (event: string, payload: any, ref: any) => {
      if (event.includes(".") && payload && typeof payload.seq === "number") {
        this.received.push(payload.seq);
        this.receive(payload);
      }
      return original(event, payload, ref);
    };
    this.channel.on("ephemeral", (p: any) => this.ephemeralListeners.forEach((l) => l(p)));
    this.phxPresence = new Presence(this.channel);
    this.phxPresence.onSync(() => this.syncPresence());
    this.ready = new Promise((resolve, reject) => {
      this.channel
        .join()
        .receive("ok", (reply: any) => {
          void this.joined(reply).then(resolve, reject);
        })
        .receive("error", (reply: any) => reject(new Error(`join board:${boardId}: ${JSON.stringify(reply)}`)));
    });
  }

  /** The board as this client shows it: the confirmed copy with pending optimistic changes. */
  get board(): BoardBody {
    if (!this.copy) throw new Error("board not loaded");
    const body = this.copy.body();
    if (this.pending.size === 0) return body;
    const cards = body.cards.map((c) => this.pending.get(c.id) ?? c);
    cards.sort((a, b) => (a.list_id < b.list_id ? -1 : a.list_id > b.list_id ? 1 : a.position < b.position ? -1 : a.position > b.position ? 1 : 0));
    return { ...body, cards };
  }

  subscribe(listener: Listener<BoardStore>): () => void {
    this.listeners.push(listener);
    return () => (this.listeners = this.listeners.filter((l) => l !== listener));
  }

  onEphemeral(listener: Listener<Ephemeral>): () => void {
    this.ephemeralListeners.push(listener);
    return () => (this.ephemeralListeners = this.ephemeralListeners.filter((l) => l !== listener));
  }

  /** Tells the others on the board (not stored): `ephemeral` `{kind, data}`. */
  sendEphemeral(kind: string, data: unknown): void {
    this.channel.push("ephemeral", { kind, data });
  }

  typing(cardId: string, typing = true): void {
    this.sendEphemeral("typing", { card_id: cardId, typing });
  }

  cursor(x: number, y: number): void {
    this.sendEphemeral("cursor", { x, y });
  }

  /** Moves a card now, then on the server with the card's version; a 409 rolls back to `current`. */
  moveCard(cardId: string, to: MoveTo): Promise<Card> {
    return this.optimistic(cardId, `/cards/${cardId}/move`, "POST", to, (card) => ({
      ...card,
      list_id: to.list_id,
      position: this.guessPosition(to) ?? card.position,
    }));
  }

  /** Changes a card's fields now, then on the server with the card's version; a 409 rolls back. */
  updateCard(cardId: string, patch: CardPatch): Promise<Card> {
    return this.optimistic(cardId, `/cards/${cardId}`, "PATCH", patch, (card) => ({ ...card, ...patch }) as Card);
  }

  /** Leaves the board's channel. */
  close(): void {
    this.channel.leave();
  }

  private async optimistic(
    cardId: string,
    path: string,
    method: string,
    body: object,
    change: (card: Card) => Card,
  ): Promise<Card> {
    const before = this.pending.get(cardId) ?? this.copy?.cards.get(cardId);
    if (!before) throw new Error(`no card ${cardId} on the board`);
    this.pending.set(cardId, change(before));
    this.emit();
    try {
      const card = cardOf(await this.client.request<Card>(method, path, { ...body, version: before.version }));
      this.settle(cardId, card);
      return card;
    } catch (err) {
      const current = err instanceof ProblemError && err.status === 409 ? (err.problem.current as Card | null) : null;
      // rolled back: to the server's current card (its event may not have arrived yet), or to the copy's
      if (current) this.settle(cardId, cardOf(current));
      else this.pending.delete(cardId);
      this.emit();
      throw err;
    }
  }

  /** Shows `card` until the confirmed copy has caught up with its version. */
  private settle(cardId: string, card: Card): void {
    const confirmed = this.copy?.cards.get(cardId);
    if (confirmed && confirmed.version >= card.version) this.pending.delete(cardId);
    else this.pending.set(cardId, card);
    this.emit();
  }

  private guessPosition(to: MoveTo): string | null {
    const after = to.after_id ? this.copy?.cards.get(to.after_id) : undefined;
    return after ? after.position + "\u0000" : null; // just after it until the server's answer
  }

  private async joined(reply: { seq: number; resync: boolean; board?: BoardBody }): Promise<void> {
    if (reply.board) this.load(reply.board);
    else if (reply.resync || !this.copy) await this.reload();
  }

  /** Loads GET /boards/{id}; events arriving meanwhile are held and the newer ones folded after. */
  private async reload(): Promise<void> {
    this.buffer = [];
    try {
      this.load(await this.client.request<BoardBody>("GET", `/boards/${this.boardId}`));
    } finally {
      const held = this.buffer ?? [];
      this.buffer = null;
      for (const e of held) this.receive(e);
    }
  }

  private load(body: BoardBody): void {
    this.copy = new BoardCopy(body);
    for (const [id, card] of this.pending) this.settle(id, card);
    this.syncPresence();
    this.emit();
  }

  private receive(event: BoardEvent): void {
    if (this.buffer) return void this.buffer.push(event);
    const copy = this.copy;
    if (!copy || event.seq <= copy.seq) return; // already in the copy (a snapshot or reload past it)
    if (event.seq !== copy.seq + 1) return void this.reload(); // never sent by the server; be safe
    copy.apply(event);
    this.seen.push(event.seq);
    const id = event.data?.id;
    const pending = this.pending.get(id);
    const confirmed = this.copy?.cards.get(id);
    if (pending && (!confirmed || confirmed.version >= pending.version)) this.pending.delete(id);
    if (event.type === "member.added" || event.type === "member.updated" || event.type === "member.removed") {
      this.syncPresence();
    }
    this.emit();
  }

  private syncPresence(): void {
    this.presence = this.phxPresence.list((userId: string, { metas }: any) => {
      const m = this.copy?.members.get(userId);
      return { user_id: userId, name: m ? m.display_name || m.username : userId, metas };
    });
    this.emit();
  }

  private emit(): void {
    if (!this.copy) return;
    for (const l of this.listeners) l(this);
  }
}
