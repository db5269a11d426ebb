// The first screen: each host and how it answers, containers by state across hosts, and
// what is happening right now (the live event feed).
import { api } from "../api/client";
import { loadAllContainers } from "../api/loadAllContainers";
import { paths } from "../api/paths";
import type { AuditPage, ContainerList } from "../api/types";
import { Link } from "../components/Link";
import { Empty } from "../components/Empty";
import { ErrorBanner } from "../components/ErrorBanner";
import { PageHeader } from "../components/PageHeader";
import { StatusBadge } from "../components/StatusBadge";
import { formatAgo, formatTime } from "../format";
import { useQuery } from "../hooks/useQuery";
import { HostWarnings } from "../components/HostWarnings";
import { can, useRole } from "../stores/auth";
import { useHostList } from "../stores/hosts";
import { useEvents, type EventEnvelope } from "../stores/events";

const COUNTED_STATES = ["running", "paused", "restarting", "created", "exited", "dead"] as const;

interface Counts {
  total: number;
  byState: Record<string, number>;
  hosts: ContainerList["hosts"];
}

/** Counts per state, from the same list the containers page loads (one request per
 *  1,000 containers, each host asked once). */
async function loadCounts(signal: AbortSignal): Promise<Counts> {
  const list = await loadAllContainers(signal);
  const byState: Record<string, number> = Object.fromEntries(COUNTED_STATES.map((state) => [state, 0]));
  for (const container of list.items) byState[container.state] = (byState[container.state] ?? 0) + 1;
  return { total: list.items.length, byState, hosts: list.hosts };
}

export function DashboardPage() {
  const hosts = useHostList();
  const counts = useQuery(loadCounts, [], { liveTypes: ["container"], pollMs: 15_000 });
  const events = useEvents((s) => s.events);
  const isAdmin = can(useRole(), "admin");

  return (
    <div>
      <PageHeader title="Dashboard" />
      <ErrorBanner error={counts.error} onRetry={counts.reload} />
      <HostWarnings hosts={counts.data?.hosts} />
      <div className="cards" data-testid="container-counts">
        <Link href="/containers" className="card">
          <div className="figure">{counts.data?.total ?? "…"}</div>
          <div className="label">containers</div>
        </Link>
        {COUNTED_STATES.map((state) => (
          <Link key={state} href={`/containers?state=${state}`} className="card" data-testid={`count-${state}`}>
            <div className="figure">{counts.data?.byState[state] ?? "…"}</div>
            <div className="label">{state}</div>
          </Link>
        ))}
      </div>

      <section className="panel">
        <h2>Hosts</h2>
        <ErrorBanner error={hosts.error} onRetry={hosts.reload} />
        <table>
          <thead>
            <tr>
              <th>Host</th>
              <th>Status</th>
              <th>Engine</th>
              <th>Last answer</th>
            </tr>
          </thead>
          <tbody>
            {(hosts.data ?? []).map((host) => (
              <tr key={host.id} data-testid="dashboard-host">
                <td>
                  <Link href="/hosts">{host.name}</Link> <span className="muted">{host.kind}</span>
                </td>
                <td>
                  <StatusBadge status={host.status} />
                </td>
                <td>{host.engine_version ?? "—"}</td>
                <td className="muted">{formatAgo(host.liveness?.last_seen)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>

      <section className="panel">
        <h2>
          Recent events <Link href="/events" className="small">all events</Link>
        </h2>
        {events.length === 0 ? <Empty>Nothing has happened since this page opened.</Empty> : <EventList events={events.slice(0, 15)} />}
      </section>

      {isAdmin && <RecentActivity />}
    </div>
  );
}

/** The newest audit entries (admins): what happened before this page opened. */
function RecentActivity() {
  const audit = useQuery((signal) => api.get<AuditPage>(paths.auditLogs.list(), { limit: 10 }, signal), [], { liveTypes: ["container", "user", "host", "image", "volume", "network", "session"] });
  return (
    <section className="panel">
      <h2>
        Recent activity <Link href="/audit" className="small">audit log</Link>
      </h2>
      <ErrorBanner error={audit.error} onRetry={audit.reload} />
      <table data-testid="recent-activity">
        <tbody>
          {(audit.data?.items ?? []).map((entry) => (
            <tr key={entry.id}>
              <td className="muted" title={formatTime(entry.created_at)}>
                {formatAgo(entry.created_at)}
              </td>
              <td className="mono">{entry.action}</td>
              <td className="mono ellipsis">
                {entry.resource_type} {(entry.resource_id ?? "").slice(0, 24)}
              </td>
              <td>{entry.username ?? "—"}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function EventList({ events }: { events: EventEnvelope[] }) {
  return (
    <table data-testid="recent-events">
      <tbody>
        {events.map((event) => (
          <tr key={event.event_id}>
            <td className="muted" title={formatTime(event.time)}>
              {formatAgo(event.time)}
            </td>
            <td>{event.type}</td>
            <td className="mono ellipsis">
              {event.aggregate.type} {event.aggregate.id.slice(0, 24)}
            </td>
            <td>{event.actor.username ?? event.actor.kind ?? "—"}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
