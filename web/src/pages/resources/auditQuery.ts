// The audit log's filters: the form's text (times from `datetime-local` inputs, in the
// browser's time zone) and the query of `GET /api/v1/audit-logs` they become.

export interface AuditFilters {
  user_id: string;
  action: string;
  resource_type: string;
  resource_id: string;
  /** `YYYY-MM-DDTHH:mm` (local time), as a datetime-local input gives it. */
  since: string;
  until: string;
}

export const emptyAuditFilters: AuditFilters = { user_id: "", action: "", resource_type: "", resource_id: "", since: "", until: "" };

export type AuditQuery = Partial<Record<keyof AuditFilters | "cursor" | "format" | "limit", string>>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A datetime-local value (local time) as RFC 3339 in UTC; null when it is not a time. */
export function localToRfc3339(value: string): string | null {
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?$/.exec(value.trim());
  if (!match) return null;
  const [, y, mo, d, h, mi, s, ms] = match;
  const date = new Date(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s ?? 0), Number((ms ?? "0").padEnd(3, "0")));
  if (Number.isNaN(date.getTime()) || date.getMonth() !== Number(mo) - 1 || date.getDate() !== Number(d)) return null;
  return date.toISOString();
}

/** Mistakes in the filters by field (empty when they may be sent). */
export function auditFilterErrors(filters: AuditFilters): Partial<Record<keyof AuditFilters, string>> {
  const errors: Partial<Record<keyof AuditFilters, string>> = {};
  if (filters.user_id.trim() && !UUID.test(filters.user_id.trim())) errors.user_id = "a user id is a UUID";
  const since = filters.since.trim() ? localToRfc3339(filters.since) : null;
  const until = filters.until.trim() ? localToRfc3339(filters.until) : null;
  if (filters.since.trim() && !since) errors.since = "not a date and time";
  if (filters.until.trim() && !until) errors.until = "not a date and time";
  if (since && until && since > until) errors.since = "since must not be after until";
  return errors;
}

/** The query for the filters (empty ones left out), with a cursor or export format. */
export function auditQuery(filters: AuditFilters, extra: { cursor?: string | null; format?: "csv" | "ndjson"; limit?: number } = {}): AuditQuery {
  const query: AuditQuery = {};
  for (const key of ["user_id", "action", "resource_type", "resource_id"] as const) {
    const value = filters[key].trim();
    if (value) query[key] = value;
  }
  for (const key of ["since", "until"] as const) {
    const value = filters[key].trim() ? localToRfc3339(filters[key]) : null;
    if (value) query[key] = value;
  }
  if (extra.cursor) query.cursor = extra.cursor;
  if (extra.format) query.format = extra.format;
  if (extra.limit !== undefined) query.limit = String(extra.limit);
  return query;
}

/** `dcp-audit-log-20261126-1504.csv` */
export function exportFilename(format: "csv" | "ndjson", now = new Date()): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  const stamp = `${now.getFullYear()}${pad(now.getMonth() + 1)}${pad(now.getDate())}-${pad(now.getHours())}${pad(now.getMinutes())}`;
  return `dcp-audit-log-${stamp}.${format}`;
}
