// Every container of every host in one list: virtualized (thousands of rows scroll as one
// screen's worth of DOM), filtered by state, host and text, with bulk start and stop.
import { useVirtualizer } from "@tanstack/react-virtual";
import { useEffect, useMemo, useRef, useState } from "react";
import { api } from "../api/client";
import { loadAllContainers } from "../api/loadAllContainers";
import { paths } from "../api/paths";
import type { ContainerView, OperationOutcome } from "../api/types";
import { Link } from "../components/Link";
import { Empty } from "../components/Empty";
import { ErrorBanner } from "../components/ErrorBanner";
import { PageHeader } from "../components/PageHeader";
import { Spinner } from "../components/Spinner";
import { StatusBadge } from "../components/StatusBadge";
import { formatAgo } from "../format";
import { useAction } from "../hooks/useAction";
import { useQuery } from "../hooks/useQuery";
import { navigate, useSearchParams } from "../router";
import { containerHref } from "../pageLinks";
import { HostWarnings } from "../components/HostWarnings";
import { can, useRole } from "../stores/auth";
import { useHostNames } from "../stores/hosts";
import { filterContainers, STATES, type ContainerFilter } from "./containerFilter";

const ROW_HEIGHT = 40;
/** Bulk actions run this many at a time: a hundred selected containers are not a hundred requests at once. */
const BULK_CONCURRENCY = 4;

/** Runs `task` over `items`, at most `limit` at a time; the results in the items' order. */
export async function inBatches<T, R>(items: T[], limit: number, task: (item: T) => Promise<R>): Promise<PromiseSettledResult<R>[]> {
  const results: PromiseSettledResult<R>[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      try {
        results[index] = { status: "fulfilled", value: await task(items[index]!) };
      } catch (reason) {
        results[index] = { status: "rejected", reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

const key = (c: ContainerView) => `${c.host}/${c.id}`;

export function ContainersPage() {
  const role = useRole();
  const mayMutate = can(role, "mutate");
  const params = useSearchParams();
  const [filter, setFilter] = useState<ContainerFilter>({
    text: params.get("q") ?? "",
    state: params.get("state") ?? "",
    host: params.get("host") ?? "",
  });
  const [selected, setSelected] = useState<Set<string>>(new Set());
  // The filters live in the URL too: a reload or a shared link shows the same list.
  useEffect(() => {
    const query = new URLSearchParams();
    if (filter.text) query.set("q", filter.text);
    if (filter.state) query.set("state", filter.state);
    if (filter.host) query.set("host", filter.host);
    const search = query.toString();
    navigate(`/containers${search ? `?${search}` : ""}`, { replace: true });
  }, [filter]);
  const list = useQuery(loadAllContainers, [], { liveTypes: ["container"], pollMs: 15_000 });
  const hostName = useHostNames();
  const items = useMemo(() => list.data?.items ?? [], [list.data]);
  const shown = useMemo(() => filterContainers(items, filter, hostName), [items, filter, hostName]);
  const hosts = useMemo(() => [...new Set(items.map((c) => c.host))].sort(), [items]);

  const scroller = useRef<HTMLDivElement>(null);
  const virtual = useVirtualizer({
    count: shown.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 12,
  });

  const chosen = shown.filter((c) => selected.has(key(c)));
  const bulk = useAction(
    async (operation: "start" | "stop") => {
      const results = await inBatches(chosen, BULK_CONCURRENCY, (c) =>
        api.post<OperationOutcome>(paths.containers.action(c.id, operation), {}, { host: c.host }),
      );
      const failed = results.flatMap((r, i) => (r.status === "rejected" ? [`${chosen[i]!.name}: ${(r.reason as Error).message}`] : []));
      list.reload();
      if (failed.length) throw new Error(`${failed.length} of ${chosen.length} failed — ${failed.join("; ")}`);
      return results.length;
    },
    { what: "Bulk action", success: (n) => `Done for ${n} container${n === 1 ? "" : "s"}` },
  );

  const toggle = (c: ContainerView) =>
    setSelected((s) => {
      const next = new Set(s);
      if (next.has(key(c))) next.delete(key(c));
      else next.add(key(c));
      return next;
    });
  // What the platform protects is never selected for a bulk action (it needs a reason).
  const selectable = shown.filter((c) => !c.protection);
  const allShownSelected = selectable.length > 0 && selectable.every((c) => selected.has(key(c)));
  const toggleAll = () => setSelected(allShownSelected ? new Set() : new Set(selectable.map(key)));
  const columns = mayMutate ? "32px minmax(160px,2fr) 110px minmax(140px,2fr) 90px minmax(120px,1fr) 110px" : "minmax(160px,2fr) 110px minmax(140px,2fr) 90px minmax(120px,1fr) 110px";

  return (
    <div>
      <PageHeader title="Containers">
        {mayMutate && (
          <>
            <button type="button" disabled={chosen.length === 0 || bulk.busy} onClick={() => void bulk.run("start")}>
              Start selected
            </button>
            <button type="button" disabled={chosen.length === 0 || bulk.busy} onClick={() => void bulk.run("stop")}>
              Stop selected
            </button>
            <button type="button" className="primary" onClick={() => navigate("/containers/new")}>
              Create container
            </button>
          </>
        )}
      </PageHeader>
      <div className="toolbar">
        <input
          type="search"
          name="search"
          placeholder="Search name, image, id, label…"
          aria-label="Search containers"
          value={filter.text}
          onChange={(e) => setFilter((f) => ({ ...f, text: e.target.value }))}
          style={{ minWidth: 280 }}
        />
        <select aria-label="State" value={filter.state} onChange={(e) => setFilter((f) => ({ ...f, state: e.target.value }))}>
          <option value="">All states</option>
          {STATES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
        <select aria-label="Host" value={filter.host} onChange={(e) => setFilter((f) => ({ ...f, host: e.target.value }))}>
          <option value="">All hosts</option>
          {hosts.map((h) => (
            <option key={h} value={h}>
              {hostName(h)}
            </option>
          ))}
        </select>
        <span className="muted" data-testid="container-count">
          {shown.length} of {items.length}
          {chosen.length > 0 && `, ${chosen.length} selected`}
        </span>
      </div>
      <HostWarnings hosts={list.data?.hosts} />
      <ErrorBanner error={list.error} onRetry={list.reload} />
      {list.loading && !list.data ? (
        <Spinner />
      ) : shown.length === 0 ? (
        <Empty>{items.length === 0 ? "No containers yet." : "No container matches the filters."}</Empty>
      ) : (
        <div className="vlist" style={{ height: "calc(100vh - 190px)" }}>
          <div className="vhead" style={{ gridTemplateColumns: columns, position: "sticky", top: 0, background: "var(--bg)", zIndex: 1 }}>
            {mayMutate && <input type="checkbox" aria-label="Select all" checked={allShownSelected} onChange={toggleAll} />}
            <span>Name</span>
            <span>State</span>
            <span>Image</span>
            <span>Host</span>
            <span>Status</span>
            <span>Created</span>
          </div>
          <div ref={scroller} style={{ height: "calc(100% - 32px)", overflow: "auto" }} data-testid="container-list">
            <div style={{ height: virtual.getTotalSize(), position: "relative" }}>
              {virtual.getVirtualItems().map((row) => {
                const c = shown[row.index]!;
                return (
                  <div
                    key={key(c)}
                    className="vrow"
                    data-testid="container-row"
                    style={{ gridTemplateColumns: columns, height: ROW_HEIGHT, transform: `translateY(${row.start}px)` }}
                  >
                    {mayMutate && (
                      <input
                        type="checkbox"
                        aria-label={`Select ${c.name}`}
                        // Bulk actions give no reason: a protected container is acted on from its page.
                        disabled={Boolean(c.protection)}
                        title={c.protection ?? undefined}
                        checked={selected.has(key(c))}
                        onChange={() => toggle(c)}
                      />
                    )}
                    <span className="ellipsis">
                      <Link href={containerHref(c.id, c.host)} title={c.id}>
                        {c.name}
                      </Link>
                      {c.protection && (
                        <span className="badge protected" title={c.protection} data-testid="protected-badge">
                          protected
                        </span>
                      )}
                    </span>
                    <span>
                      <StatusBadge status={c.state} />
                    </span>
                    <span className="ellipsis mono" title={c.image}>
                      {c.image}
                    </span>
                    <span className="ellipsis">{hostName(c.host)}</span>
                    <span className="ellipsis muted">{c.status}</span>
                    <span className="muted">{formatAgo(c.created_at)}</span>
                  </div>
                );
              })}
            </div>
          </div>
        </div>
      )}
    </div>
  );
}
