// One container: `/containers/:id?host=<host>&tab=<tab>`. Its header (name, state, image,
// host, and the operations for those who may run them) over five tabs: overview, logs,
// terminal, stats and history. A tab stays mounted once opened, so switching back to the
// logs or the terminal finds them as they were. A container the platform protects says
// so: operators and viewers get neither its operations, its logs nor a terminal; admins
// give a reason for each operation and before a terminal opens.
import { lazy, Suspense, useCallback, useEffect, useRef, useState } from "react";
import { api, ApiError } from "../../api/client";
import { paths } from "../../api/paths";
import type { ContainerDetail as Detail } from "../../api/types";
import { Link } from "../../components/Link";
import { ErrorBanner } from "../../components/ErrorBanner";
import { ReasonField } from "../../components/ReasonDialog";
import { Spinner } from "../../components/Spinner";
import { StatusBadge } from "../../components/StatusBadge";
import { shortId } from "../../format";
import { useQuery } from "../../hooks/useQuery";
import { navigate, useSearchParams } from "../../router";
import { containerHref } from "../../pageLinks";
import { can, useRole } from "../../stores/auth";
import { ContainerActions } from "./ContainerActions";
import { HistoryTimeline } from "./HistoryTimeline";
import { containerState, type InspectDocument } from "./inspect";
import { LogViewer } from "./LogViewer";
import { Overview } from "./Overview";
import "./container.css";

// uPlot and xterm.js are loaded when their tab is first opened (and never in unit tests of
// pages that only import this one: uPlot needs a real browser as soon as it is imported).
const StatsCharts = lazy(() => import("./StatsCharts").then((module) => ({ default: module.StatsCharts })));
const Terminal = lazy(() => import("./Terminal").then((module) => ({ default: module.Terminal })));

const TABS = [
  { key: "overview", label: "Overview" },
  { key: "logs", label: "Logs", guarded: true },
  { key: "terminal", label: "Terminal", mutate: true, guarded: true },
  { key: "stats", label: "Stats" },
  { key: "history", label: "History" },
] as const;

type TabKey = (typeof TABS)[number]["key"];

/** The page of `id` on `host` showing `tab` (the overview needs no `tab`). */
function detailHref(id: string, host: string, tab: string): string {
  return containerHref(id, host, tab === "overview" ? undefined : tab);
}

export function ContainerDetailPage({ id }: { id: string }) {
  const host = useSearchParams().get("host") || "local";
  // Another container is another page: nothing of the previous one is kept.
  // Keyed: another container gets fresh logs, terminal and stats, nothing of this one.
  return <ContainerDetail key={`${host}/${id}`} id={id} host={host} />;
}

function ContainerDetail({ id, host }: { id: string; host: string }) {
  const params = useSearchParams();
  const role = useRole();
  const admin = can(role, "admin");

  const aggregateRef = useRef<string | null>(null);
  const detail = useQuery(
    (signal) => api.get<Detail>(paths.containers.get(id), { host }, signal),
    [id, host],
    {
      liveTypes: ["container"],
      // Only this container's events, once dcp knows which aggregate it is.
      liveFilter: (event) => !aggregateRef.current || event.aggregate.id === aggregateRef.current,
    },
  );
  const data = detail.data;
  useEffect(() => {
    aggregateRef.current = data?.platform?.aggregate_id ?? null;
  }, [data]);

  const protection = data?.protection ?? null;
  // What the platform protects is for admins only (the server refuses the others).
  const mayMutate = can(role, "mutate") && (admin || !protection);
  const tabs = TABS.filter((tab) => (!("mutate" in tab) || mayMutate) && (!("guarded" in tab) || admin || !protection));
  const asked = params.get("tab");
  const tab: TabKey = tabs.find((t) => t.key === asked)?.key ?? "overview";

  // A tab is mounted the first time it is shown and kept afterwards.
  const [visited, setVisited] = useState<ReadonlySet<TabKey>>(() => new Set([tab]));
  if (!visited.has(tab)) setVisited(new Set([...visited, tab]));
  /** An admin's reason for a terminal in a protected container, asked before it opens. */
  const [terminalReason, setTerminalReason] = useState("");
  const [terminalAsked, setTerminalAsked] = useState(false);

  const selectTab = (key: TabKey) => navigate(detailHref(id, host, key), { replace: true });
  const { reload } = detail;
  const currentName = data?.name;
  const onRenamed = useCallback(
    (name: string) => {
      // The address names the container by its old name: follow it to the new one.
      if (id === currentName) navigate(detailHref(name, host, tab), { replace: true });
      else reload();
    },
    [id, currentName, host, tab, reload],
  );
  const onRemoved = useCallback(() => navigate("/containers"), []);

  const inspect = data ? (data.inspect as unknown as InspectDocument) : null;
  const state = inspect ? containerState(inspect) : null;
  const name = data?.name ?? id;
  const notFound = detail.error instanceof ApiError && detail.error.status === 404;

  return (
    <div className="cd-page">
      <div className="cd-breadcrumb">
        <Link href="/containers">Containers</Link> <span className="muted">/</span> {name}
      </div>
      <div className="page-header">
        <div className="cd-title">
          <h1>{name}</h1>
          {state && (
            <span data-testid="container-state">
              <StatusBadge status={state} />
            </span>
          )}
        </div>
        {mayMutate && data && state && (
          <div className="page-actions">
            <ContainerActions
              id={id}
              host={host}
              name={name}
              state={state}
              protection={protection}
              onChanged={reload}
              onRenamed={onRenamed}
              onRemoved={onRemoved}
            />
          </div>
        )}
      </div>
      {protection && (
        <p className="warning" data-testid="container-protection">
          Protected: {protection}.{" "}
          {admin ? "Each operation asks for a reason, kept in the audit log." : "Only admins act on it, read its logs or open a terminal in it."}
        </p>
      )}
      {data && inspect && (
        <div className="cd-meta">
          <span>
            <span className="muted">image</span> <span data-testid="container-image">{inspect.Config?.Image ?? "—"}</span>
          </span>
          <span>
            <span className="muted">host</span> <span data-testid="container-host">{data.host}</span>
          </span>
          <span>
            <span className="muted">id</span> <code title={data.id}>{shortId(data.id)}</code>
          </span>
        </div>
      )}

      <ErrorBanner error={detail.error} onRetry={reload} />
      {!data ? (
        notFound ? (
          <>
            <p className="muted">
              No container “{id}” on host {host}. If it was removed, its history is below when dcp knows it (look it up by its id).
            </p>
            <HistoryTimeline id={id} host={host} quietWhenUnknown />
          </>
        ) : detail.error ? null : (
          <Spinner />
        )
      ) : (
        <>
          <div className="tabs" role="tablist" aria-label="Container">
            {tabs.map((t) => (
              <button
                key={t.key}
                type="button"
                role="tab"
                id={`cd-tab-${t.key}`}
                aria-selected={t.key === tab}
                aria-controls={`cd-panel-${t.key}`}
                className={`tab${t.key === tab ? " active" : ""}`}
                onClick={() => selectTab(t.key)}
              >
                {t.label}
              </button>
            ))}
          </div>
          {tabs.map((t) =>
            visited.has(t.key) ? (
              <div
                key={t.key}
                role="tabpanel"
                id={`cd-panel-${t.key}`}
                aria-labelledby={`cd-tab-${t.key}`}
                hidden={t.key !== tab}
                className="cd-panel"
              >
                <Suspense fallback={<Spinner />}>
                  {t.key === "overview" && <Overview detail={data} />}
                  {t.key === "logs" && <LogViewer id={id} host={host} name={name} runningSince={state === "running" ? (inspect?.State?.StartedAt ?? null) : null} />}
                  {t.key === "terminal" &&
                    mayMutate &&
                    (protection && !terminalAsked ? (
                      <form
                        className="cd-reason-gate"
                        onSubmit={(event) => {
                          event.preventDefault();
                          if (terminalReason.trim()) setTerminalAsked(true);
                        }}
                      >
                        <ReasonField value={terminalReason} onChange={setTerminalReason} />
                        <button type="submit" className="primary" disabled={!terminalReason.trim()}>
                          Open terminal
                        </button>
                      </form>
                    ) : (
                      <Terminal id={id} host={host} active={tab === "terminal"} reason={protection ? terminalReason.trim() : undefined} />
                    ))}
                  {t.key === "stats" && (
                    <StatsCharts id={id} host={host} memoryLimited={Boolean(inspect?.HostConfig?.Memory)} />
                  )}
                  {t.key === "history" && (
                    <HistoryTimeline id={id} host={host} aggregateId={data.platform?.aggregate_id} />
                  )}
                </Suspense>
              </div>
            ) : null,
          )}
        </>
      )}
    </div>
  );
}
