// The live event feed: every event the user may see, from one `/ws/events` socket for the
// whole UI (see `LiveEvents` in the layout). Pages read the recent events, and subscribe to
// refresh themselves when a resource they show changes.
import { create } from "zustand";

/** An event as the bus carries it (the envelope of `{"type":"event","event":…}`). */
export interface EventEnvelope {
  event_id: string;
  global_position: number;
  type: string;
  event_version: string;
  aggregate: { type: string; id: string; sequence: number };
  time: string;
  actor: { id?: string | null; username?: string | null; role?: string | null; kind?: string | null };
  operation_id?: string | null;
  request_id?: string | null;
  data: Record<string, unknown>;
}

/** How many recent events the feed keeps. */
export const FEED_SIZE = 500;

type Listener = (event: EventEnvelope) => void;

interface EventsState {
  events: EventEnvelope[];
  /** The last position received: a reconnect resumes after it, with no gap. */
  position: number;
  connected: boolean;
  receive(event: EventEnvelope): void;
  setConnected(connected: boolean): void;
  reset(): void;
}

const listeners = new Set<Listener>();

export const useEvents = create<EventsState>()((set, get) => ({
  events: [],
  position: 0,
  connected: false,
  receive(event) {
    if (event.global_position <= get().position) return; // already seen (replay overlap)
    set((state) => ({
      events: [event, ...state.events].slice(0, FEED_SIZE),
      position: event.global_position,
    }));
    listeners.forEach((listener) => listener(event));
  },
  setConnected(connected) {
    set({ connected });
  },
  reset() {
    set({ events: [], position: 0, connected: false });
  },
}));

/** Calls `listener` for each new event; returns the unsubscribe function. */
export function onEvent(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}
