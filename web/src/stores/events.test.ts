import { beforeEach, describe, expect, it } from "vitest";
import { FEED_SIZE, onEvent, useEvents, type EventEnvelope } from "./events";

function event(position: number, type = "ContainerStarted"): EventEnvelope {
  return {
    event_id: `e${position}`,
    global_position: position,
    type,
    event_version: "1",
    aggregate: { type: "container", id: `c${position}`, sequence: 1 },
    time: new Date(0).toISOString(),
    actor: { username: "admin" },
    data: {},
  };
}

beforeEach(() => useEvents.getState().reset());

describe("events store", () => {
  it("keeps the newest first, remembers the position and tells listeners", () => {
    const heard: number[] = [];
    const off = onEvent((e) => heard.push(e.global_position));
    useEvents.getState().receive(event(1));
    useEvents.getState().receive(event(2));
    off();
    useEvents.getState().receive(event(3));
    expect(useEvents.getState().events.map((e) => e.global_position)).toEqual([3, 2, 1]);
    expect(useEvents.getState().position).toBe(3);
    expect(heard).toEqual([1, 2]);
  });

  it("drops events already seen (a resumed socket's replay overlaps)", () => {
    useEvents.getState().receive(event(5));
    useEvents.getState().receive(event(5));
    useEvents.getState().receive(event(4));
    expect(useEvents.getState().events).toHaveLength(1);
  });

  it(`keeps at most ${FEED_SIZE} events`, () => {
    for (let i = 1; i <= FEED_SIZE + 20; i++) useEvents.getState().receive(event(i));
    const events = useEvents.getState().events;
    expect(events).toHaveLength(FEED_SIZE);
    expect(events[0]!.global_position).toBe(FEED_SIZE + 20);
    expect(events.at(-1)!.global_position).toBe(21);
  });
});
