// A resource's Docker labels as `key=value` chips.

/** The labels, or a dash when there are none. */
export function Labels({ labels }: { labels: Record<string, string> | null | undefined }) {
  const entries = Object.entries(labels ?? {});
  if (entries.length === 0) return <span className="muted">—</span>;
  return (
    <div className="res-labels">
      {entries.map(([key, value]) => (
        <span key={key} className="res-label" title={`${key}=${value}`}>
          {key}
          {value ? `=${value}` : ""}
        </span>
      ))}
    </div>
  );
}
