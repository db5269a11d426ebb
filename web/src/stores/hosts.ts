// The Docker hosts, loaded once for the whole UI: every page that names, lists or picks a
// host reads this one list, which reloads when a host event arrives and every 15 s (a
// host's status changes by itself) while any component uses it.
import { useCallback, useEffect, useMemo } from "react";
import { create } from "zustand";
import { api } from "../api/client";
import { paths } from "../api/paths";
import type { HostView } from "../api/types";
import { onEvent } from "./events";

const POLL_MS = 15_000;

interface HostsState {
  data: HostView[] | undefined;
  error: unknown;
  loading: boolean;
}

const useHostsStore = create<HostsState>()(() => ({ data: undefined, error: null, loading: false }));

let inFlight: Promise<void> | null = null;
let users = 0;
let stopWatching: (() => void) | null = null;

/** Loads the list again (one request at a time, however many ask). */
export function reloadHosts(): Promise<void> {
  inFlight ??= (async () => {
    useHostsStore.setState({ loading: true });
    try {
      const data = await api.get<HostView[]>(paths.hosts.list());
      useHostsStore.setState({ data, error: null });
    } catch (error) {
      useHostsStore.setState({ error });
    } finally {
      useHostsStore.setState({ loading: false });
      inFlight = null;
    }
  })();
  return inFlight;
}

function watch(): () => void {
  void reloadHosts();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const off = onEvent((event) => {
    if (event.aggregate.type !== "host") return;
    clearTimeout(timer);
    timer = setTimeout(() => void reloadHosts(), 250);
  });
  const poll = setInterval(() => void reloadHosts(), POLL_MS);
  return () => {
    off();
    clearTimeout(timer);
    clearInterval(poll);
  };
}

/** The hosts list with its state, kept fresh while the component is mounted. */
export function useHostList(): HostsState & { reload: () => void } {
  useEffect(() => {
    if (users++ === 0) stopWatching = watch();
    return () => {
      if (--users === 0) {
        stopWatching?.();
        stopWatching = null;
      }
    };
  }, []);
  const state = useHostsStore();
  const reload = useCallback(() => void reloadHosts(), []);
  return { ...state, reload };
}

/** The hosts (empty until loaded, or when the list is refused). */
export function useHosts(): HostView[] {
  return useHostList().data ?? [];
}

/**
 * Lists and events name a host by its id (`local`, or an SSH host's id); people know hosts
 * by name. This maps one to the other.
 */
export function useHostNames(): (id: string) => string {
  const { data } = useHostList();
  const names = useMemo(() => new Map((data ?? []).map((h) => [h.id, h.name])), [data]);
  return useCallback((id: string) => names.get(id) ?? id, [names]);
}

/** Forgets the list (signing out). */
export function resetHosts(): void {
  useHostsStore.setState({ data: undefined, error: null, loading: false });
}
