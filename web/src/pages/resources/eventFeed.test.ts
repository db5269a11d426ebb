import { describe, expect, it, vi } from "vitest";
import { ApiError } from "../../api/client";
import type { EventPage, EventView } from "../../api/types";
import type { EventEnvelope } from "../../stores/events";
import { containerLink, fromEnvelope, fromStored, loadRange, matches, mergeRows } from "./eventFeed";

function stored(position: number, type = "UserCreated", aggregate = "user", payload: Record<string, unknown> = {}): EventView {
  return {
    global_position: position,
    event_id: `e${position}`,
    aggregate_type: aggregate,
    aggregate_id: `a${position}`,
    sequence: 1,
    event_type: type,
    event_version: "1",
    payload: { [type]: payload },
    metadata: { actor_username: "admin", actor_id: "u1" },
    recorded_at: "2026-11-26T10:00:00Z",
  };
}

/** A log of positions 1..n where `missing` positions have no event. */
function log(n: number, missing: number[] = []) {
  const events = Array.from({ length: n }, (_, i) => stored(i + 1)).filter((e) => !missing.includes(e.global_position));
  const load = vi.fn(async (after: number, limit: number): Promise<EventPage> => {
    if (after > 0 && !events.some((e) => e.global_position === after)) {
      throw new ApiError(400, "VALIDATION_ERROR", `no event at position ${after}`, "after");
    }
    const page = events.filter((e) => e.global_position > after).slice(0, limit);
    return { events: page, next_after: page[page.length - 1]?.global_position ?? after };
  });
  return { events, load };
}

describe("event rows", () => {
  it("reads stored events like live ones", () => {
    const row = fromStored(stored(7, "ContainerCreated", "container", { docker_id: "abc123", host: "local", name: "web" }));
    expect(row).toMatchObject({
      position: 7,
      type: "ContainerCreated",
      aggregateType: "container",
      actor: { username: "admin", id: "u1", kind: null },
      data: { docker_id: "abc123", host: "local", name: "web" },
      link: "/containers/abc123?host=local",
    });
    const envelope: EventEnvelope = {
      event_id: "x",
      global_position: 8,
      type: "ContainerStarted",
      event_version: "1",
      aggregate: { type: "container", id: "p1", sequence: 2 },
      time: "2026-11-26T10:00:01Z",
      actor: { id: null, username: null, role: null, kind: "docker" },
      data: { op_id: "o" },
    };
    expect(fromEnvelope(envelope)).toMatchObject({ position: 8, aggregateId: "p1", link: null, actor: { kind: "docker" } });
  });

  it("links only container events that name a container", () => {
    expect(containerLink("container", { docker_id: "a/b", host: "ssh 1" })).toBe("/containers/a%2Fb?host=ssh+1");
    expect(containerLink("container", { docker_id: "abc" })).toBe("/containers/abc");
    expect(containerLink("image", { docker_id: "abc", host: "local" })).toBeNull();
  });

  it("filters by aggregate type, event type text and actor", () => {
    const row = fromStored(stored(1, "ContainerStarted", "container"));
    expect(matches(row, { aggregateType: "", type: "", actor: "" })).toBe(true);
    expect(matches(row, { aggregateType: "container", type: "started", actor: "adm" })).toBe(true);
    expect(matches(row, { aggregateType: "user", type: "", actor: "" })).toBe(false);
    expect(matches(row, { aggregateType: "", type: "stopped", actor: "" })).toBe(false);
    expect(matches(row, { aggregateType: "", type: "", actor: "bob" })).toBe(false);
  });

  it("merges sources newest first without duplicates", () => {
    const a = [fromStored(stored(1)), fromStored(stored(3))];
    const b = [fromStored(stored(3)), fromStored(stored(2))];
    expect(mergeRows(a, b).map((r) => r.position)).toEqual([3, 2, 1]);
  });
});

describe("loadRange", () => {
  it("reads forward from a position to the head", async () => {
    const { load } = log(2500);
    const { events, complete } = await loadRange(load, 1500, Number.POSITIVE_INFINITY);
    expect(complete).toBe(true);
    expect(events[0]!.global_position).toBe(1501);
    expect(events[events.length - 1]!.global_position).toBe(2500);
    expect(load.mock.calls.map((c) => c[0])).toEqual([1500, 2500]);
  });

  it("keeps the most recent events", async () => {
    const { load } = log(2500);
    const { events } = await loadRange(load, 0, Number.POSITIVE_INFINITY, { keep: 10 });
    expect(events.map((e) => e.global_position)).toEqual([2491, 2492, 2493, 2494, 2495, 2496, 2497, 2498, 2499, 2500]);
  });

  it("steps back over a position with no event", async () => {
    const { load } = log(50, [20, 19]);
    const { events } = await loadRange(load, 20, 30);
    expect(events.map((e) => e.global_position)).toEqual([21, 22, 23, 24, 25, 26, 27, 28, 29]);
    expect(load.mock.calls.map((c) => c[0])).toEqual([20, 19, 18]);
  });

  it("stops after maxPages and says so", async () => {
    const { load } = log(3500);
    const result = await loadRange(load, 0, Number.POSITIVE_INFINITY, { maxPages: 2 });
    expect(result.complete).toBe(false);
    expect(load).toHaveBeenCalledTimes(2);
  });

  it("passes other errors on", async () => {
    const load = vi.fn(async () => {
      throw new ApiError(403, "FORBIDDEN", "admins only");
    });
    await expect(loadRange(load, 10, 20)).rejects.toThrow("admins only");
  });
});
