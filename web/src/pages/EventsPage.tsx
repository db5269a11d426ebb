// The live event feed (newest first) with filters and pause; admins can load the recent
// history from the stored log (`GET /api/v1/events`) and page further back.
import { useMemo, useRef, useState } from "react";
import { useVirtualizer } from "@tanstack/react-virtual";
import { api, errorMessage } from "../api/client";
import { paths } from "../api/paths";
import type { AuditPage, EventPage } from "../api/types";
import { Link } from "../components/Link";
import { ErrorBanner } from "../components/ErrorBanner";
import { Modal } from "../components/Modal";
import { PageHeader } from "../components/PageHeader";
import { formatTime } from "../format";
import { can, useRole } from "../stores/auth";
import { useEvents, type EventEnvelope } from "../stores/events";
import {
  actorLabel,
  AGGREGATE_TYPES,
  fromEnvelope,
  fromStored,
  loadRange,
  matches,
  mergeRows,
  type FeedFilters,
  type FeedRow,
  type PageLoader,
} from "./resources/eventFeed";
import "./resources/resources.css";

const ROW_HEIGHT = 38;
/** Positions read per history window. */
const WINDOW = 1000;

export function EventsPage() {
  const role = useRole();
  const isAdmin = can(role, "admin");
  const live = useEvents((s) => s.events);
  const connected = useEvents((s) => s.connected);
  const [frozen, setFrozen] = useState<EventEnvelope[] | null>(null);
  const [filters, setFilters] = useState<FeedFilters>({ aggregateType: "", type: "", actor: "" });
  const [history, setHistory] = useState<FeedRow[]>([]);
  // `oldest`: the first position of the loaded history window (older ones are before it).
  const [historyState, setHistoryState] = useState<{ busy: boolean; error: unknown; oldest: number | null; more: boolean }>({
    busy: false,
    error: null,
    oldest: null,
    more: false,
  });
  const [detail, setDetail] = useState<FeedRow | null>(null);

  const shown = frozen ?? live;
  const newSincePause = frozen ? live.filter((e) => e.global_position > (frozen[0]?.global_position ?? 0)).length : 0;
  const rows = useMemo(() => mergeRows(shown.map(fromEnvelope), history), [shown, history]);
  const visible = useMemo(() => rows.filter((row) => matches(row, filters)), [rows, filters]);
  const types = useMemo(() => [...new Set([...AGGREGATE_TYPES, ...rows.map((r) => r.aggregateType)])].sort(), [rows]);

  const loader: PageLoader = (after, limit) =>
    api.get<EventPage>(paths.events.list(), { after, limit, aggregate_type: filters.aggregateType || undefined });

  const loadHistory = async (older: boolean) => {
    setHistoryState((s) => ({ ...s, busy: true, error: null }));
    try {
      let from: number;
      let to: number;
      if (older && historyState.oldest !== null) {
        to = historyState.oldest;
        from = Math.max(0, to - 1 - WINDOW);
      } else {
        // The head of the log: the newest event seen live, or the newest audit entry's.
        let head = useEvents.getState().position;
        try {
          const audit = await api.get<AuditPage>(paths.auditLogs.list(), { limit: 1 });
          head = Math.max(head, audit.items[0]?.global_position ?? 0);
        } catch {
          // Without it, the log is read from its start.
        }
        from = Math.max(0, head - WINDOW);
        to = Number.POSITIVE_INFINITY;
      }
      const { events } = await loadRange(loader, from, to, { keep: WINDOW });
      const loaded = events.map(fromStored);
      setHistory((current) => mergeRows(current, loaded));
      // Everything after `from` is loaded now; older windows end there.
      setHistoryState({ busy: false, error: null, oldest: from + 1, more: from > 0 });
    } catch (error) {
      setHistoryState((s) => ({ ...s, busy: false, error }));
    }
  };

  const parentRef = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({
    count: visible.length,
    getScrollElement: () => parentRef.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 12,
  });

  const setFilter = (key: keyof FeedFilters, value: string) => setFilters((f) => ({ ...f, [key]: value }));

  return (
    <div>
      <PageHeader title="Events">
        <span className={`live live-${connected ? "on" : "off"}`}>
          <span className="dot" /> {connected ? "live" : "offline"}
        </span>
        <button type="button" aria-pressed={frozen !== null} onClick={() => setFrozen(frozen ? null : live)}>
          {frozen ? `Resume${newSincePause ? ` (${newSincePause} new)` : ""}` : "Pause"}
        </button>
        {isAdmin && (
          <>
            <button type="button" disabled={historyState.busy} onClick={() => void loadHistory(false)}>
              {historyState.busy ? "Loading…" : "Load history"}
            </button>
            {historyState.more && (
              <button type="button" disabled={historyState.busy} onClick={() => void loadHistory(true)}>
                Load older
              </button>
            )}
          </>
        )}
      </PageHeader>
      <div className="toolbar">
        <select aria-label="Aggregate type" value={filters.aggregateType} onChange={(e) => setFilter("aggregateType", e.target.value)}>
          <option value="">All aggregate types</option>
          {types.map((t) => (
            <option key={t} value={t}>
              {t}
            </option>
          ))}
        </select>
        <input type="search" aria-label="Event type" placeholder="Event type…" value={filters.type} onChange={(e) => setFilter("type", e.target.value)} />
        <input type="search" aria-label="Actor" placeholder="Actor…" value={filters.actor} onChange={(e) => setFilter("actor", e.target.value)} />
        <span className="muted small" data-testid="event-count">
          {visible.length} of {rows.length} events{frozen ? " (paused)" : ""}
        </span>
      </div>
      {historyState.error != null && (
        <ErrorBanner error={historyState.error} onRetry={() => void loadHistory(false)} />
      )}
      {frozen && (
        <div className="notice" role="status">
          Paused: new events are kept but not shown{newSincePause ? ` (${newSincePause} so far)` : ""}.
        </div>
      )}
      <div className="vhead res-event-grid" role="row">
        <span>Time</span>
        <span>Type</span>
        <span>Aggregate</span>
        <span>Actor</span>
        <span />
      </div>
      <div ref={parentRef} className="vlist res-events" role="list" aria-label="Events">
        {visible.length === 0 ? (
          <div className="empty">
            {rows.length === 0 ? (isAdmin ? "No events yet. New ones appear here live; “Load history” shows earlier ones." : "No events yet. New ones appear here live.") : "No event matches the filters."}
          </div>
        ) : (
          <div style={{ height: virtualizer.getTotalSize(), position: "relative" }}>
            {virtualizer.getVirtualItems().map((item) => {
              const row = visible[item.index];
              if (!row) return null;
              return (
                <div
                  key={row.position}
                  role="listitem"
                  className="vrow res-event-grid"
                  data-testid="event-row"
                  data-position={row.position}
                  style={{ top: item.start, height: ROW_HEIGHT }}
                >
                  <span className="small ellipsis" title={row.time}>
                    {formatTime(row.time)}
                  </span>
                  <span className="mono ellipsis" title={row.type}>
                    {row.type}
                  </span>
                  <span className="ellipsis" title={`${row.aggregateType} ${row.aggregateId}`}>
                    <span className="muted">{row.aggregateType}</span>{" "}
                    {row.link ? (
                      <Link href={row.link} className="mono small">
                        {shortAggregate(row)}
                      </Link>
                    ) : (
                      <span className="mono small">{shortAggregate(row)}</span>
                    )}
                  </span>
                  <span className="ellipsis" title={row.actor.id ?? undefined}>
                    {actorLabel(row.actor)}
                  </span>
                  <span>
                    <button type="button" className="link" aria-label={`Details of event ${row.position}`} onClick={() => setDetail(row)}>
                      Details
                    </button>
                  </span>
                </div>
              );
            })}
          </div>
        )}
      </div>
      {detail && (
        <Modal title={`${detail.type} (#${detail.position})`} wide onClose={() => setDetail(null)}>
          <pre className="res-json">{safeJson(detail.raw)}</pre>
        </Modal>
      )}
    </div>
  );
}

/** A container's name or short docker id when the event has one, else the aggregate id. */
function shortAggregate(row: FeedRow): string {
  const name = typeof row.data.name === "string" ? row.data.name : null;
  if (name) return name;
  const docker = typeof row.data.docker_id === "string" ? row.data.docker_id : null;
  if (docker) return docker.slice(0, 12);
  return row.aggregateId;
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, null, 2);
  } catch (error) {
    return errorMessage(error);
  }
}
