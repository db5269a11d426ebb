// Choosing a host: the hosts to offer (the configured ones, plus any a list answered from)
// and the select showing them.
import type { HostView } from "../api/types";

/** Host ids to offer: the configured hosts, plus any a list answered from. */
export function hostOptions(hosts: HostView[], answered: { host: string }[] = []): { value: string; label: string }[] {
  const seen = new Map<string, string>();
  for (const host of hosts) seen.set(host.id, host.name && host.name !== host.id ? `${host.name} (${host.id})` : host.id);
  for (const answer of answered) if (!seen.has(answer.host)) seen.set(answer.host, answer.host);
  return [...seen].map(([value, label]) => ({ value, label }));
}

export function HostSelect({
  value,
  onChange,
  options,
  allLabel,
  label = "Host",
  id,
}: {
  value: string;
  onChange: (value: string) => void;
  options: { value: string; label: string }[];
  /** When given, an empty choice with this text (e.g. "All hosts"). */
  allLabel?: string;
  label?: string;
  id?: string;
}) {
  const values = options.some((o) => o.value === value) || !value ? options : [...options, { value, label: value }];
  return (
    <select aria-label={label} value={value} onChange={(e) => onChange(e.target.value)} id={id}>
      {allLabel !== undefined && <option value="">{allLabel}</option>}
      {allLabel === undefined && values.length === 0 && <option value="">local</option>}
      {values.map((o) => (
        <option key={o.value} value={o.value}>
          {o.label}
        </option>
      ))}
    </select>
  );
}
