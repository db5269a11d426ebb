// The state of one of the container page's sockets (logs, stats, terminal), in words.
import type { SocketSnapshot } from "../../api/reconnectingSocket";
import "./container.css";

/** A socket's state in words, with a dot. */
export function SocketStatus({ snapshot, ended, testId }: { snapshot: SocketSnapshot; ended?: string | null; testId: string }) {
  let label: string;
  let tone: string;
  if (snapshot.status === "open") {
    label = "live";
    tone = "ok";
  } else if (snapshot.status === "connecting") {
    label = snapshot.attempt > 0 ? `reconnecting (attempt ${snapshot.attempt})…` : "connecting…";
    tone = "warn";
  } else if (snapshot.status === "closed") {
    label = ended ? `ended: ${ended}` : snapshot.error ? "disconnected" : "closed";
    tone = snapshot.error ? "bad" : "off";
  } else {
    label = "idle";
    tone = "off";
  }
  return (
    <span className={`cd-socket cd-socket-${tone}`} data-testid={testId} data-status={snapshot.status}>
      <span className="cd-dot" />
      {label}
    </span>
  );
}
