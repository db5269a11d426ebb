// The events page's rows: live envelopes (`/ws/events`) and stored events
// (`GET /api/v1/events`) in one shape, their filters, and loading the most recent history
// from a log that pages forward only (`after` / `next_after`).
import { ApiError } from "../../api/client";
import type { EventPage, EventView } from "../../api/types";
import type { EventEnvelope } from "../../stores/events";
import { containerHref } from "../../pageLinks";

export interface FeedRow {
  position: number;
  eventId: string;
  time: string;
  type: string;
  aggregateType: string;
  aggregateId: string;
  actor: { id: string | null; username: string | null; kind: string | null };
  data: Record<string, unknown>;
  /** The container's page, when the event names a container and its host. */
  link: string | null;
  raw: unknown;
}

export const AGGREGATE_TYPES = ["container", "image", "volume", "network", "host", "user", "session", "wizard", "access_attempt"];

function str(value: unknown): string | null {
  return typeof value === "string" && value !== "" ? value : null;
}

/** The container's page when a container event's data names it (and its host). */
export function containerLink(aggregateType: string, data: Record<string, unknown>): string | null {
  if (aggregateType !== "container") return null;
  const id = str(data.docker_id) ?? str(data.container_id);
  if (!id) return null;
  return containerHref(id, str(data.host));
}

export function fromEnvelope(event: EventEnvelope): FeedRow {
  const data = event.data && typeof event.data === "object" ? event.data : {};
  return {
    position: event.global_position,
    eventId: event.event_id,
    time: event.time,
    type: event.type,
    aggregateType: event.aggregate.type,
    aggregateId: event.aggregate.id,
    actor: { id: event.actor?.id ?? null, username: event.actor?.username ?? null, kind: event.actor?.kind ?? null },
    data,
    link: containerLink(event.aggregate.type, data),
    raw: event,
  };
}

export function fromStored(event: EventView): FeedRow {
  const payload = (event.payload ?? {}) as Record<string, unknown>;
  const inner = payload[event.event_type];
  const data = (inner && typeof inner === "object" ? inner : payload) as Record<string, unknown>;
  const meta = (event.metadata ?? {}) as Record<string, unknown>;
  return {
    position: event.global_position,
    eventId: event.event_id,
    time: event.recorded_at,
    type: event.event_type,
    aggregateType: event.aggregate_type,
    aggregateId: event.aggregate_id,
    actor: { id: str(meta.actor_id), username: str(meta.actor_username), kind: str(meta.actor_kind) },
    data,
    link: containerLink(event.aggregate_type, data),
    raw: event,
  };
}

export function actorLabel(actor: FeedRow["actor"]): string {
  return actor.username ?? actor.kind ?? actor.id ?? "—";
}

export interface FeedFilters {
  aggregateType: string;
  type: string;
  actor: string;
}

export function matches(row: FeedRow, filters: FeedFilters): boolean {
  if (filters.aggregateType && row.aggregateType !== filters.aggregateType) return false;
  const type = filters.type.trim().toLowerCase();
  if (type && !row.type.toLowerCase().includes(type)) return false;
  const actor = filters.actor.trim().toLowerCase();
  if (actor) {
    const names = [row.actor.username, row.actor.id, row.actor.kind].filter((v): v is string => !!v).map((v) => v.toLowerCase());
    if (!names.some((name) => name.includes(actor))) return false;
  }
  return true;
}

/** Rows from both sources, one per position, newest first. */
export function mergeRows(...lists: FeedRow[][]): FeedRow[] {
  const byPosition = new Map<number, FeedRow>();
  for (const list of lists) for (const row of list) if (!byPosition.has(row.position)) byPosition.set(row.position, row);
  return [...byPosition.values()].sort((a, b) => b.position - a.position);
}

export type PageLoader = (after: number, limit: number) => Promise<EventPage>;

const PAGE = 1000;

function refusedAfter(error: unknown): boolean {
  return error instanceof ApiError && error.status === 400 && error.field === "after";
}

/**
 * The events with `from < position < to`, read forward from `from` (a position with no
 * event is refused by the server: a few earlier ones are tried, then the log's start),
 * keeping the last `keep` of them; at most `maxPages` pages are read.
 */
export async function loadRange(
  load: PageLoader,
  from: number,
  to: number,
  { keep = 1000, maxPages = 20 }: { keep?: number; maxPages?: number } = {},
): Promise<{ events: EventView[]; complete: boolean }> {
  let after = Math.max(0, from);
  let page: EventPage | null = null;
  for (let attempt = 0; page === null; attempt++) {
    try {
      page = await load(after, PAGE);
    } catch (error) {
      if (!refusedAfter(error) || after === 0) throw error;
      after = attempt < 3 ? Math.max(0, after - 1) : 0;
    }
  }
  let kept: EventView[] = [];
  let pages = 1;
  for (;;) {
    const inRange = page.events.filter((e) => e.global_position > from && e.global_position < to);
    kept = [...kept, ...inRange].slice(-keep);
    const last = page.events[page.events.length - 1];
    const reachedEnd = page.events.length < PAGE || (last !== undefined && last.global_position >= to - 1) || page.next_after === after;
    if (reachedEnd) return { events: kept, complete: true };
    if (pages >= maxPages) return { events: kept, complete: false };
    after = page.next_after;
    page = await load(after, PAGE);
    pages++;
  }
}
