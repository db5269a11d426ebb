// The logs viewer's connection to `/ws/containers/{id}/logs`: what it asks for (resuming
// after the last line received), following a container that starts again, and the
// stream's status and errors.
import { useCallback, useEffect, useRef, useState, type ReactNode } from "react";
import { paths } from "../../api/paths";
import type { SocketSnapshot } from "../../api/reconnectingSocket";
import { useWebSocket } from "../../hooks/useWebSocket";
import type { LogFeed } from "./logFeed";
import { SocketStatus } from "./SocketStatus";
import "./container.css";

/** How many of the last lines to load first. */
export const TAILS = ["100", "1000", "10000", "all"] as const;
export type Tail = (typeof TAILS)[number];

/** One connection to the log socket (remounted for new settings): its status and errors. */
export function LogConnection({
  id,
  host,
  tail,
  follow,
  runningSince,
  feed,
  counts,
}: {
  id: string;
  host: string;
  tail: Tail;
  follow: boolean;
  runningSince: string | null;
  feed: LogFeed;
  counts: ReactNode;
}) {
  const [ended, setEnded] = useState<string | null>(null);
  const openedRef = useRef(false);
  // A followed stream ends when the container stops; it picks up again (after the last line
  // received) when the container runs again: a start time other than the one it was opened at.
  const runningSinceRef = useRef(runningSince);
  const openedSinceRef = useRef<string | null>(null);
  const statusRef = useRef<SocketSnapshot["status"]>("idle");
  const reconnectRef = useRef<() => void>(() => {});
  useEffect(() => {
    runningSinceRef.current = runningSince;
  });
  const restartedSinceOpen = () =>
    follow && runningSinceRef.current !== null && runningSinceRef.current !== openedSinceRef.current;

  const socket = useWebSocket(
    {
      path: paths.ws.logs(id),
      purpose: "container.logs",
      resourceId: id,
      // Timestamps are always asked for (shown or not): a reconnect resumes after the last
      // line received, with no gap and no repeat. Batches: the lines ready at once come in
      // one message (a long history loads about ten times faster than a message a line).
      query: () => {
        if (openedRef.current && feed.lastTimestamp) {
          feed.resume();
          return { host, tail: "all", follow, timestamps: true, batch: true, since: feed.lastTimestamp };
        }
        return { host, tail, follow, timestamps: true, batch: true };
      },
    },
    {
      onOpen: () => {
        openedRef.current = true;
        openedSinceRef.current = runningSinceRef.current;
        setEnded(null);
      },
      onMessage: (message) => {
        if (feed.message(message)) return;
        if (message.type === "end") {
          feed.endOfStream();
          setEnded(typeof message.reason === "string" ? message.reason : "the stream ended");
        }
      },
      onClose: () => {
        feed.endOfStream();
        // The page already knows of a new start: follow it at once.
        setTimeout(() => {
          if (statusRef.current === "closed" && restartedSinceOpen()) reconnectRef.current();
        }, 500);
      },
    },
  );
  const { reconnect } = socket;
  useEffect(() => {
    statusRef.current = socket.status;
    reconnectRef.current = reconnect;
  });
  useEffect(() => {
    if (openedRef.current && statusRef.current === "closed" && follow && runningSince !== null && runningSince !== openedSinceRef.current) {
      reconnect();
    }
  }, [runningSince, follow, reconnect]);

  const retry = useCallback(() => reconnect(), [reconnect]);

  return (
    <div className="cd-stream-status">
      <SocketStatus snapshot={socket} ended={ended} testId="log-status" />
      {counts}
      {socket.status === "closed" && (
        <button type="button" className="link" onClick={retry}>
          Reconnect
        </button>
      )}
      {socket.error && socket.status !== "open" && (
        <span className="cd-stream-error" role="alert" data-testid="log-error">
          {socket.error.message}
        </span>
      )}
    </div>
  );
}
