// The frame of the resource list pages (images, volumes, networks, users): a header with
// an optional create button and "Refresh", a toolbar (search, host filter, other filters),
// the list's error and the hosts that did not answer, then a spinner, an empty note or
// the table.
import type { ReactNode } from "react";
import type { HostAnswer } from "../api/types";
import type { QueryState } from "../hooks/useQuery";
import { Empty } from "./Empty";
import { ErrorBanner } from "./ErrorBanner";
import { HostSelect } from "./HostSelect";
import { HostWarnings } from "./HostWarnings";
import { PageHeader } from "./PageHeader";
import { Spinner } from "./Spinner";

export function ResourceListPage({
  title,
  create,
  query,
  hosts,
  search,
  hostFilter,
  filters,
  notices,
  count,
  empty,
  children,
  after,
}: {
  title: string;
  /** The create button; leave it out for roles that may not create. */
  create?: { label: string; onClick: () => void };
  /** The list's query: its error, loading state and reload ("Refresh", retry). */
  query: QueryState<unknown>;
  /** The hosts the list answered from (those that did not are warned about). */
  hosts?: HostAnswer[];
  search: { label: string; placeholder: string; value: string; onChange: (value: string) => void };
  /** A host select ("All hosts" or one). */
  hostFilter?: { value: string; onChange: (value: string) => void; options: { value: string; label: string }[] };
  /** More toolbar controls, after the search and host filter. */
  filters?: ReactNode;
  /** Shown between the toolbar and the list's error (e.g. running tasks). */
  notices?: ReactNode;
  /** How many items the list shows: none gives `empty`. */
  count: number;
  empty: ReactNode;
  /** The table, when there are items. */
  children: ReactNode;
  /** Shown after the list (pager, dialogs). */
  after?: ReactNode;
}) {
  return (
    <div>
      <PageHeader title={title}>
        {create && (
          <button type="button" className="primary" onClick={create.onClick}>
            {create.label}
          </button>
        )}
        <button type="button" onClick={query.reload}>
          Refresh
        </button>
      </PageHeader>
      <div className="toolbar">
        <input
          type="search"
          aria-label={search.label}
          placeholder={search.placeholder}
          value={search.value}
          onChange={(e) => search.onChange(e.target.value)}
        />
        {hostFilter && <HostSelect label="Host filter" value={hostFilter.value} onChange={hostFilter.onChange} options={hostFilter.options} allLabel="All hosts" />}
        {filters}
      </div>
      {notices}
      <ErrorBanner error={query.error} onRetry={query.reload} />
      <HostWarnings hosts={hosts} />
      {query.loading && !query.data ? <Spinner /> : count === 0 ? <Empty>{empty}</Empty> : children}
      {after}
    </div>
  );
}
