// Loading data for a page: a GET that reloads on demand, on a dependency change, and
// (debounced) when a live event of the given aggregate types arrives.
import { useCallback, useEffect, useRef, useState } from "react";
import { onEvent, type EventEnvelope } from "../stores/events";

export interface QueryState<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

export interface QueryOptions {
  /** Reload when an event of one of these aggregate types (`container`, `image`, …) arrives. */
  liveTypes?: string[];
  /** Further filter on the events that trigger a reload. */
  liveFilter?: (event: EventEnvelope) => boolean;
  /** Also poll at this interval (ms), for what has no events (Docker-side changes). */
  pollMs?: number;
}

export function useQuery<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[], options: QueryOptions = {}): QueryState<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const loadRef = useRef(load);
  useEffect(() => {
    loadRef.current = load;
  });
  // A reload asked for while a load runs waits for it (then loads once more) instead of
  // aborting it: a slow list under a stream of events would otherwise never finish.
  const inFlight = useRef(false);
  const again = useRef(false);

  useEffect(() => {
    const controller = new AbortController();
    inFlight.current = true;
    again.current = false;
    setLoading(true);
    loadRef
      .current(controller.signal)
      .then((value) => {
        if (controller.signal.aborted) return;
        setData(value);
        setError(null);
      })
      .catch((err: unknown) => {
        if (controller.signal.aborted) return;
        setError(err);
      })
      .finally(() => {
        if (controller.signal.aborted) return;
        inFlight.current = false;
        setLoading(false);
        if (again.current) setTick((t) => t + 1);
      });
    return () => {
      controller.abort();
      inFlight.current = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);

  const reload = useCallback(() => {
    if (inFlight.current) again.current = true;
    else setTick((t) => t + 1);
  }, []);

  const liveKey = options.liveTypes?.join(",") ?? "";
  const filterRef = useRef(options.liveFilter);
  useEffect(() => {
    filterRef.current = options.liveFilter;
  });
  useEffect(() => {
    if (!liveKey) return;
    const types = new Set(liveKey.split(","));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const off = onEvent((event) => {
      if (!types.has(event.aggregate.type)) return;
      if (filterRef.current && !filterRef.current(event)) return;
      clearTimeout(timer);
      timer = setTimeout(reload, 250);
    });
    return () => {
      off();
      clearTimeout(timer);
    };
  }, [liveKey, reload]);

  useEffect(() => {
    if (!options.pollMs) return;
    const interval = setInterval(reload, options.pollMs);
    return () => clearInterval(interval);
  }, [options.pollMs, reload]);

  return { data, error, loading, reload };
}
