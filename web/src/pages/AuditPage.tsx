// The audit log (admins only): filters, "Load more" pages, an entry's full JSON, exports
// (CSV, NDJSON) with the same filters, and a check of the log's hash chain.
import { useCallback, useEffect, useRef, useState, type FormEvent } from "react";
import { api } from "../api/client";
import { paths } from "../api/paths";
import type { AuditLogView, AuditPage as AuditPageBody } from "../api/types";
import { Empty } from "../components/Empty";
import { ErrorBanner } from "../components/ErrorBanner";
import { Field, fieldError } from "../components/Field";
import { Modal } from "../components/Modal";
import { PageHeader } from "../components/PageHeader";
import { Spinner } from "../components/Spinner";
import { useSubmit } from "../hooks/useSubmit";
import { saveBlob } from "./resources/saveBlob";
import { formatTime } from "../format";
import { onEvent } from "../stores/events";
import { toastSuccess } from "../stores/toasts";
import { auditFilterErrors, auditQuery, emptyAuditFilters, exportFilename, type AuditFilters } from "./resources/auditQuery";
import { ChainResult, type ChainReport } from "./resources/ChainResult";
import "./resources/resources.css";


const PAGE = 100;

export function AuditPage() {
  const [form, setForm] = useState<AuditFilters>(emptyAuditFilters);
  const [applied, setApplied] = useState<AuditFilters>(emptyAuditFilters);
  const [formErrors, setFormErrors] = useState<Partial<Record<keyof AuditFilters, string>>>({});
  const [entries, setEntries] = useState<AuditLogView[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<unknown>(null);
  const [tick, setTick] = useState(0);
  const [detail, setDetail] = useState<AuditLogView | null>(null);
  const [report, setReport] = useState<ChainReport | null>(null);
  const request = useRef(0);

  // The first page, again whenever the applied filters change (or on Refresh).
  useEffect(() => {
    const id = ++request.current;
    const controller = new AbortController();
    setLoading(true);
    setError(null);
    api
      .get<AuditPageBody>(paths.auditLogs.list(), auditQuery(applied, { limit: PAGE }), controller.signal)
      .then((page) => {
        if (id !== request.current) return;
        setEntries(page.items);
        setCursor(page.next_cursor ?? null);
      })
      .catch((err: unknown) => {
        if (id !== request.current || controller.signal.aborted) return;
        setEntries([]);
        setCursor(null);
        setError(err);
      })
      .finally(() => {
        if (id === request.current) setLoading(false);
      });
    return () => controller.abort();
  }, [applied, tick]);

  // New entries appear live while only the first page is shown (an event is audited as soon
  // as the audit projection has it; the short delay lets it catch up).
  const firstPageOnly = entries.length <= PAGE;
  useEffect(() => {
    if (!firstPageOnly) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const off = onEvent(() => {
      clearTimeout(timer);
      timer = setTimeout(() => setTick((t) => t + 1), 500);
    });
    return () => {
      off();
      clearTimeout(timer);
    };
  }, [firstPageOnly]);

  const loadMore = async () => {
    if (!cursor) return;
    const id = ++request.current;
    setLoading(true);
    setError(null);
    try {
      const page = await api.get<AuditPageBody>(paths.auditLogs.list(), auditQuery(applied, { cursor, limit: PAGE }));
      if (id !== request.current) return;
      setEntries((all) => {
        const seen = new Set(all.map((e) => e.seq));
        return [...all, ...page.items.filter((e) => !seen.has(e.seq))];
      });
      setCursor(page.next_cursor ?? null);
    } catch (err) {
      if (id === request.current) setError(err);
    } finally {
      if (id === request.current) setLoading(false);
    }
  };

  const apply = (event: FormEvent) => {
    event.preventDefault();
    const errors = auditFilterErrors(form);
    setFormErrors(errors);
    if (Object.keys(errors).length > 0) return;
    setApplied({ ...form });
    setTick((t) => t + 1);
  };
  const clear = () => {
    setForm(emptyAuditFilters);
    setFormErrors({});
    setApplied(emptyAuditFilters);
  };

  const download = useCallback(
    async (format: "csv" | "ndjson") => {
      const response = await api.request<Response>(paths.auditLogs.list(), { query: auditQuery(applied, { format }), raw: true });
      const blob = await response.blob();
      saveBlob(blob, exportFilename(format));
      toastSuccess(`Exported the audit log as ${format.toUpperCase()}`);
    },
    [applied],
  );
  const exporter = useSubmit(download);
  const verify = useCallback(() => api.get<ChainReport>(paths.auditLogs.verify()), []);
  const verifier = useSubmit(verify);

  const set = (key: keyof AuditFilters, value: string) => setForm((f) => ({ ...f, [key]: value }));
  const err = (key: keyof AuditFilters) => formErrors[key] ?? fieldError(error, key);
  const filtered = Object.values(applied).some((v) => v.trim() !== "");

  return (
    <div>
      <PageHeader title="Audit log">
        <button type="button" disabled={exporter.busy} onClick={() => void exporter.run("csv")}>
          Export CSV
        </button>
        <button type="button" disabled={exporter.busy} onClick={() => void exporter.run("ndjson")}>
          Export NDJSON
        </button>
        <button
          type="button"
          disabled={verifier.busy}
          onClick={() =>
            void verifier.run().then((result) => {
              if (result.ok) setReport(result.value);
            })
          }
        >
          {verifier.busy ? "Verifying…" : "Verify chain"}
        </button>
      </PageHeader>
      <ErrorBanner error={exporter.error} />
      <ErrorBanner error={verifier.error} />
      {report && <ChainResult report={report} onClose={() => setReport(null)} />}
      <form className="panel" onSubmit={apply} aria-label="Audit filters">
        <div className="res-filters">
          <Field label="Action" error={err("action")}>
            <input value={form.action} onChange={(e) => set("action", e.target.value)} placeholder="container.start" />
          </Field>
          <Field label="Resource type" error={err("resource_type")}>
            <input value={form.resource_type} onChange={(e) => set("resource_type", e.target.value)} placeholder="container" />
          </Field>
          <Field label="Resource id" error={err("resource_id")}>
            <input value={form.resource_id} onChange={(e) => set("resource_id", e.target.value)} />
          </Field>
          <Field label="User id" error={err("user_id")}>
            <input value={form.user_id} onChange={(e) => set("user_id", e.target.value)} placeholder="UUID" />
          </Field>
          <Field label="Since" error={err("since")}>
            <input type="datetime-local" value={form.since} onChange={(e) => set("since", e.target.value)} />
          </Field>
          <Field label="Until" error={err("until")}>
            <input type="datetime-local" value={form.until} onChange={(e) => set("until", e.target.value)} />
          </Field>
        </div>
        <div className="toolbar" style={{ marginBottom: 0 }}>
          <button type="submit" className="primary">
            Apply filters
          </button>
          <button type="button" onClick={clear}>
            Clear filters
          </button>
          <button type="button" onClick={() => setTick((t) => t + 1)}>
            Refresh
          </button>
        </div>
      </form>
      <ErrorBanner error={error} onRetry={() => setTick((t) => t + 1)} />
      {loading && entries.length === 0 ? (
        <Spinner />
      ) : entries.length === 0 && !error ? (
        <Empty>{filtered ? "No entry matches the filters." : "The audit log is empty."}</Empty>
      ) : (
        entries.length > 0 && (
          <table className="res-table" aria-label="Audit log">
            <thead>
              <tr>
                <th>Time</th>
                <th>Action</th>
                <th>User</th>
                <th>Resource</th>
                <th>IP address</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {entries.map((entry) => (
                <tr key={entry.seq} data-testid="audit-row" className="res-clickable" onClick={() => setDetail(entry)}>
                  <td className="nowrap">{formatTime(entry.created_at)}</td>
                  <td className="mono" data-testid="audit-action">
                    {entry.action}
                  </td>
                  <td>
                    {entry.username ?? <span className="muted">{entry.user_id ? entry.user_id.slice(0, 8) : "system"}</span>}
                    {entry.role && <span className="muted small"> ({entry.role})</span>}
                  </td>
                  <td className="small">
                    {entry.resource_type ?? "—"}
                    {entry.resource_id && (
                      <div className="mono muted ellipsis" style={{ maxWidth: 260 }} title={entry.resource_id}>
                        {entry.resource_id}
                      </div>
                    )}
                  </td>
                  <td className="mono small">{entry.ip_address ?? "—"}</td>
                  <td>
                    <button
                      type="button"
                      className="link"
                      aria-label={`Details of audit entry ${entry.seq}`}
                      onClick={(e) => {
                        e.stopPropagation();
                        setDetail(entry);
                      }}
                    >
                      Details
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )
      )}
      <div className="res-pager">
        {cursor && (
          <button type="button" disabled={loading} onClick={() => void loadMore()}>
            {loading ? "Loading…" : "Load more"}
          </button>
        )}
        {entries.length > 0 && (
          <span className="muted small">
            {entries.length} entr{entries.length === 1 ? "y" : "ies"}
            {cursor ? " shown, more older ones" : ""}
          </span>
        )}
      </div>
      {detail && (
        <Modal title={`Audit entry ${detail.seq}`} wide onClose={() => setDetail(null)}>
          <dl className="kv" style={{ marginBottom: 12 }}>
            <dt>Action</dt>
            <dd className="mono">{detail.action}</dd>
            <dt>Time</dt>
            <dd>{formatTime(detail.created_at)}</dd>
            <dt>User</dt>
            <dd>
              {detail.username ?? "—"} {detail.user_id && <span className="mono muted">{detail.user_id}</span>}
            </dd>
            <dt>Request</dt>
            <dd className="mono">{detail.request_id ?? "—"}</dd>
          </dl>
          <pre className="res-json" data-testid="audit-detail-json">
            {JSON.stringify(detail, null, 2)}
          </pre>
        </Modal>
      )}
    </div>
  );
}
