// A state (of a container, host, operation, account…) as a coloured badge.

const STATE_CLASS: Record<string, string> = {
  running: "ok",
  active: "ok",
  ok: "ok",
  succeeded: "ok",
  healthy: "ok",
  paused: "warn",
  restarting: "warn",
  created: "info",
  pending: "info",
  setup_pending: "info",
  in_progress: "info",
  exited: "off",
  disabled: "off",
  cancelled: "off",
  completed: "ok",
  dead: "bad",
  failed: "bad",
  unreachable: "bad",
  removing: "warn",
};

export function StatusBadge({ status }: { status: string | null | undefined }) {
  const value = status ?? "unknown";
  return <span className={`badge badge-${STATE_CLASS[value] ?? "info"}`}>{value.replace(/_/g, " ")}</span>;
}
