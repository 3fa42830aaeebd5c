// The board fold: a copy of a board kept equal to GET /boards/{id} by folding the board's events in
// seq order, exactly as docs/realtime.md "Folding events into a board" documents (bench/fold.py is
// the server side's reference for the same rules). Every event's data is the whole resource after
// the change, so an upsert is a replace of the keyed item, never a merge.
import type { components } from "./schema.js";

type S = components["schemas"];
export type BoardBody = S["BoardDetail"];
export type Card = S["CardOut"];
export type List = S["ListOut"];
export type Label = S["LabelOut"];
export type Member = S["MemberOut"];
export type Comment = S["CommentOut"];
export type ChecklistItem = S["ChecklistItemOut"];
export type BoardEvent = { seq: number; type: string; board_id: string; actor_id: string | null; at: string; data: any };

const HEADER = ["id", "name", "description", "version", "created_at", "updated_at"] as const;
export type BoardHeader = Pick<BoardBody, (typeof HEADER)[number]>;

export class BoardCopy {
  header: BoardHeader;
  seq: number;
  lists = new Map<string, List>();
  cards = new Map<string, Card>();
  labels = new Map<string, Label>();
  members = new Map<string, Member>(); // by user_id
  // Not part of the board body: kept beside it for a client that shows them (loaded from
  // GET /cards/{id}/comments and GET /cards/{id}'s checklist).
  comments = new Map<string, Comment>();
  checklist = new Map<string, ChecklistItem>();
  deleted = false;

  constructor(body: BoardBody) {
    this.header = pickHeader(body);
    this.seq = body.seq;
    for (const x of body.lists) this.lists.set(x.id, { ...x });
    for (const x of body.cards) this.cards.set(x.id, cardOf(x));
    for (const x of body.labels) this.labels.set(x.id, { ...x });
    for (const x of body.members) this.members.set(x.user_id, { ...x });
  }

  /** The copy in the shape of GET /boards/{id}, collections in the server's order. */
  body(): BoardBody {
    return {
      ...this.header,
      seq: this.seq,
      lists: [...this.lists.values()].sort((a, b) => cmp(a.position, b.position)),
      cards: [...this.cards.values()].sort((a, b) => cmp(a.list_id, b.list_id) || cmp(a.position, b.position)),
      labels: [...this.labels.values()].sort((a, b) => cmpTime(a.created_at, b.created_at) || cmp(a.id, b.id)),
      members: [...this.members.values()].sort(
        (a, b) => cmpTime(a.created_at, b.created_at) || cmp(a.user_id, b.user_id),
      ),
    } as BoardBody;
  }

  /** Fold one event envelope (the caller checks that its seq is this copy's seq + 1). */
  apply(event: BoardEvent): void {
    const fold = FOLD[event.type];
    if (fold) fold(this, event.data);
    this.seq = event.seq;
  }

  dropCards(ids: Set<string>): void {
    for (const id of ids) this.cards.delete(id);
    for (const [k, v] of this.comments) if (ids.has(v.card_id)) this.comments.delete(k);
    for (const [k, v] of this.checklist) if (ids.has(v.card_id)) this.checklist.delete(k);
  }
}

function pickHeader(data: any): BoardHeader {
  const out: any = {};
  for (const k of HEADER) out[k] = data[k];
  return out;
}

/** A card as the board body holds it: card.moved's previous_list_id is not a card field. */
export function cardOf(data: any): Card {
  const { previous_list_id: _, ...card } = data;
  return card;
}

/** Byte order of positions and ids (SPEC §2): code points, not locale collation. */
function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function cmpTime(a: string, b: string): number {
  return Date.parse(a) - Date.parse(b) || cmp(a, b);
}

const put =
  <K extends "lists" | "labels" | "comments" | "checklist">(key: K) =>
  (b: BoardCopy, d: any) => {
    (b[key] as Map<string, unknown>).set(d.id, { ...d });
  };
const del =
  <K extends "labels" | "comments" | "checklist">(key: K) =>
  (b: BoardCopy, d: any) => {
    b[key].delete(d.id);
  };

/** One function per event type: what it changes in the copy (d is the event's data). */
export const FOLD: Record<string, (b: BoardCopy, d: any) => void> = {
  "board.updated": (b, d) => {
    b.header = pickHeader(d);
  },
  "board.deleted": (b) => {
    b.deleted = true;
    for (const m of [b.lists, b.cards, b.labels, b.members, b.comments, b.checklist]) m.clear();
  },
  "member.added": (b, d) => void b.members.set(d.user_id, { ...d }),
  "member.updated": (b, d) => void b.members.set(d.user_id, { ...d }),
  "member.removed": (b, d) => {
    b.members.delete(d.user_id);
    for (const c of b.cards.values()) {
      if (c.assignee_ids.includes(d.user_id)) c.assignee_ids = c.assignee_ids.filter((u) => u !== d.user_id);
    }
  },
  "label.created": put("labels"),
  "label.updated": put("labels"),
  "label.deleted": (b, d) => {
    b.labels.delete(d.id);
    for (const c of b.cards.values()) {
      if (c.label_ids.includes(d.id)) c.label_ids = c.label_ids.filter((x) => x !== d.id);
    }
  },
  "list.created": put("lists"),
  "list.updated": put("lists"),
  "list.moved": put("lists"),
  "list.archived": put("lists"), // the list's cards keep their own archived flag
  "list.deleted": (b, d) => {
    b.lists.delete(d.id);
    b.dropCards(new Set([...b.cards.values()].filter((c) => c.list_id === d.id).map((c) => c.id)));
  },
  "card.created": (b, d) => void b.cards.set(d.id, cardOf(d)),
  "card.updated": (b, d) => void b.cards.set(d.id, cardOf(d)),
  "card.moved": (b, d) => void b.cards.set(d.id, cardOf(d)),
  "card.archived": (b, d) => void b.cards.set(d.id, cardOf(d)),
  "card.deleted": (b, d) => b.dropCards(new Set([d.id])),
  "comment.created": put("comments"),
  "comment.updated": put("comments"),
  "comment.deleted": del("comments"),
  "checklist.created": put("checklist"),
  "checklist.updated": put("checklist"),
  "checklist.deleted": del("checklist"),
};
