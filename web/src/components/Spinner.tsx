// What a page shows while its data loads.

export function Spinner({ label = "Loading…" }: { label?: string }) {
  return (
    <div className="spinner" role="status">
      {label}
    </div>
  );
}
