// A container's history: every event recorded for it (who asked for what, when, and what
// came of it), newest first, refreshed as new events arrive.
import { api, ApiError } from "../../api/client";
import { paths } from "../../api/paths";
import { Empty } from "../../components/Empty";
import { ErrorBanner } from "../../components/ErrorBanner";
import { Spinner } from "../../components/Spinner";
import { formatAgo, formatTime } from "../../format";
import { useQuery } from "../../hooks/useQuery";
import type { HistoryEntry } from "./inspect";
import { LazyDetails } from "./LazyDetails";
import "./container.css";

/** `ContainerStartRequested` → `Start requested`. */
export function eventLabel(type: string): string {
  const words = type
    .replace(/^Container/, "")
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .trim()
    .toLowerCase();
  return words ? words[0]!.toUpperCase() + words.slice(1) : type;
}

function tone(type: string): string {
  if (/Failed|Died|Dead|Oom|Error|Denied/i.test(type)) return "bad";
  if (/Requested/.test(type)) return "info";
  if (/Removed|Stopped|Killed|Ended|Exited/.test(type)) return "off";
  return "ok";
}

/** Who did it: the user, or what (Docker, the reconciler, the system). */
export function actorLabel(entry: Pick<HistoryEntry, "actor_username" | "actor_kind" | "actor_id">): string {
  if (entry.actor_username) return entry.actor_username;
  if (entry.actor_kind) return entry.actor_kind;
  return entry.actor_id ? `user ${entry.actor_id.slice(0, 8)}` : "system";
}

const SUMMARY_KEYS = [
  "action",
  "operation",
  "name",
  "from",
  "to",
  "image",
  "state",
  "signal",
  "timeout",
  "force",
  "volumes",
  "running",
  "exit_code",
  "duration_ms",
  "code",
  "message",
] as const;

function show(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return JSON.stringify(value);
}

/** The few facts worth a line: `signal=SIGKILL`, `exit_code=0`, an error's message, … */
export function eventSummary(data: Record<string, unknown>): string[] {
  const parts: string[] = [];
  const action = data.action;
  // Actions are `{"Stop":{"timeout":null}}`, `"Start"`, …
  if (typeof action === "string") parts.push(action.toLowerCase());
  else if (action && typeof action === "object") {
    for (const [verb, options] of Object.entries(action as Record<string, unknown>)) {
      const details =
        options && typeof options === "object"
          ? Object.entries(options as Record<string, unknown>)
              .filter(([, v]) => v !== null && v !== undefined && v !== false)
              .map(([k, v]) => `${k}=${show(v)}`)
          : [];
      parts.push([verb.toLowerCase(), ...details].join(" "));
    }
  }
  for (const key of SUMMARY_KEYS) {
    if (key === "action") continue;
    const value = data[key];
    if (value === null || value === undefined || (typeof value === "object" && !Array.isArray(value))) continue;
    parts.push(key === "message" ? show(value) : `${key}=${show(value)}`);
  }
  if (Array.isArray(data.command)) parts.push(`command: ${(data.command as unknown[]).map(show).join(" ")}`);
  return parts;
}

export function HistoryTimeline({
  id,
  host,
  aggregateId,
  quietWhenUnknown,
}: {
  id: string;
  host: string;
  aggregateId?: string | null;
  /** Show nothing (rather than an error) when dcp knows no history for `id`. */
  quietWhenUnknown?: boolean;
}) {
  const { data, error, loading, reload } = useQuery(
    (signal) => api.get<HistoryEntry[]>(paths.containers.history(id), { host }, signal),
    [id, host],
    {
      liveTypes: ["container"],
      liveFilter: aggregateId ? (event) => event.aggregate.id === aggregateId : undefined,
    },
  );
  if (quietWhenUnknown && error instanceof ApiError && error.status === 404) return null;
  const entries = data ? [...data].sort((a, b) => b.sequence - a.sequence || b.global_position - a.global_position) : [];

  return (
    <div data-testid="history" className="cd-history">
      <ErrorBanner error={error} onRetry={reload} />
      {loading && !data && <Spinner />}
      {data && entries.length === 0 && <Empty>No history recorded.</Empty>}
      <ol className="cd-timeline">
        {entries.map((entry) => {
          const summary = eventSummary(entry.data as Record<string, unknown>);
          return (
            <li key={entry.global_position} className={`cd-timeline-item cd-tone-${tone(entry.event_type)}`} data-event-type={entry.event_type}>
              <span className="cd-timeline-dot" />
              <div className="cd-timeline-head">
                <time dateTime={entry.recorded_at} title={entry.recorded_at}>
                  {formatTime(entry.recorded_at)}
                </time>
                <span className="muted small">{formatAgo(entry.recorded_at)}</span>
                <strong className="cd-event-type" title={entry.event_type}>
                  {eventLabel(entry.event_type)}
                </strong>
                <span className="cd-actor">by {actorLabel(entry)}</span>
                <code className="muted small">{entry.event_type}</code>
              </div>
              {summary.length > 0 && <div className="cd-timeline-summary">{summary.join(" · ")}</div>}
              <LazyDetails className="cd-timeline-details" summary="Details">
                {() => (
                  <>
                    <dl className="kv small">
                      <dt>Event</dt>
                      <dd className="mono">{entry.event_type}</dd>
                      <dt>Sequence</dt>
                      <dd>{entry.sequence}</dd>
                      {entry.operation_id && (
                        <>
                          <dt>Operation</dt>
                          <dd className="mono">{entry.operation_id}</dd>
                        </>
                      )}
                      {entry.request_id && (
                        <>
                          <dt>Request</dt>
                          <dd className="mono">{entry.request_id}</dd>
                        </>
                      )}
                    </dl>
                    <pre className="cd-json">{JSON.stringify(entry.data, null, 2)}</pre>
                  </>
                )}
              </LazyDetails>
            </li>
          );
        })}
      </ol>
    </div>
  );
}
