// A container's logs, live: `/ws/containers/{id}/logs`, split into lines, kept in a capped
// buffer (100,000 lines) outside React state, added at most once per frame, and shown in a
// virtual list so that a hundred thousand lines scroll as smoothly as ten.
import { useEffect, useLayoutEffect, useRef, useState } from "react";
import { useVirtualizer } from "@tanstack/react-virtual";
import { highlightRuns, type LogFilter, type LogLine, logText } from "./logBuffer";
import { LogFeed } from "./logFeed";
import { LogConnection, TAILS, type Tail } from "./LogConnection";
import "./container.css";

/** Every line is this tall (px): the list is virtual, rows are not measured. */
export const ROW_HEIGHT = 18;

export function LogViewer({
  id,
  host,
  name,
  runningSince,
}: {
  id: string;
  host: string;
  name?: string;
  /** When the container last started, while it runs (a followed stream resumes on a new start). */
  runningSince?: string | null;
}) {
  const feedRef = useRef<LogFeed | null>(null);
  feedRef.current ??= new LogFeed();
  const feed = feedRef.current;

  const [follow, setFollow] = useState(true);
  const [tail, setTail] = useState<Tail>("1000");
  const [timestamps, setTimestamps] = useState(false);
  const [filter, setFilterState] = useState<LogFilter>({ stdout: true, stderr: true, search: "", onlyMatches: true });
  const [, setVersion] = useState(0);
  const [atBottom, setAtBottom] = useState(true);
  /** A new connection (new settings, or asked for) is a new `LogConnection`. */
  const [generation, setGeneration] = useState(0);

  const scrollRef = useRef<HTMLDivElement>(null);
  const atBottomRef = useRef(true);
  const removedRef = useRef(0);

  useEffect(() => {
    feed.onFlush = (removed) => {
      removedRef.current += removed;
      setVersion((v) => v + 1);
    };
    return () => {
      feed.onFlush = null;
      feed.dispose();
    };
  }, [feed]);

  const setFilter = (patch: Partial<LogFilter>) => {
    const next = { ...filter, ...patch };
    feed.buffer.setFilter(next);
    setFilterState(next);
  };

  /** New server-side settings: start again from an empty buffer. */
  const restart = (change: () => void) => {
    change();
    feed.reset();
    atBottomRef.current = true;
    setAtBottom(true);
    setGeneration((g) => g + 1);
  };

  const view = feed.buffer.view;
  const virtualizer = useVirtualizer({
    count: view.length,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 30,
  });

  // After each flush: stay at the bottom while the user is there; otherwise keep the lines
  // they look at in place when the oldest are dropped.
  useLayoutEffect(() => {
    const element = scrollRef.current;
    const removed = removedRef.current;
    removedRef.current = 0;
    if (!element) return;
    if (atBottomRef.current) element.scrollTop = element.scrollHeight;
    else if (removed > 0) element.scrollTop = Math.max(0, element.scrollTop - removed * ROW_HEIGHT);
  });

  const onScroll = () => {
    const element = scrollRef.current;
    if (!element) return;
    const bottom = element.scrollHeight - element.scrollTop - element.clientHeight <= ROW_HEIGHT * 1.5;
    atBottomRef.current = bottom;
    if (bottom !== atBottom) setAtBottom(bottom);
  };

  const toBottom = () => {
    atBottomRef.current = true;
    setAtBottom(true);
    const element = scrollRef.current;
    if (element) element.scrollTop = element.scrollHeight;
  };

  const download = () => {
    const blob = new Blob([logText(feed.buffer.lines, timestamps)], { type: "text/plain;charset=utf-8" });
    const url = URL.createObjectURL(blob);
    const anchor = document.createElement("a");
    anchor.href = url;
    anchor.download = `${name ?? id}-${new Date().toISOString().replace(/[:.]/g, "-")}.log`;
    document.body.appendChild(anchor);
    anchor.click();
    anchor.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };

  const clear = () => {
    feed.clear();
    atBottomRef.current = true;
    setAtBottom(true);
  };

  const needle = filter.search.toLowerCase();
  const total = feed.buffer.lines.length;

  return (
    <div className="cd-logs">
      <div className="toolbar cd-log-toolbar">
        <label className="check">
          <input type="checkbox" checked={follow} onChange={(e) => restart(() => setFollow(e.target.checked))} />
          Follow
        </label>
        <label className="cd-inline">
          Tail
          <select aria-label="Tail" value={tail} onChange={(e) => restart(() => setTail(e.target.value as Tail))}>
            {TAILS.map((value) => (
              <option key={value} value={value}>
                {value === "all" ? "all" : Number(value).toLocaleString("en")}
              </option>
            ))}
          </select>
        </label>
        <label className="check">
          <input type="checkbox" checked={timestamps} onChange={(e) => setTimestamps(e.target.checked)} />
          Timestamps
        </label>
        <label className="check">
          <input type="checkbox" checked={filter.stdout} onChange={(e) => setFilter({ stdout: e.target.checked })} />
          stdout
        </label>
        <label className="check">
          <input type="checkbox" checked={filter.stderr} onChange={(e) => setFilter({ stderr: e.target.checked })} />
          stderr
        </label>
        <input
          type="search"
          className="cd-log-search"
          placeholder="Search"
          aria-label="Search logs"
          value={filter.search}
          onChange={(e) => setFilter({ search: e.target.value })}
        />
        <label className="check">
          <input type="checkbox" checked={filter.onlyMatches} onChange={(e) => setFilter({ onlyMatches: e.target.checked })} />
          Only matching
        </label>
        <button type="button" onClick={download} disabled={total === 0}>
          Download
        </button>
        <button type="button" onClick={clear}>
          Clear
        </button>
      </div>

      <LogConnection
        key={generation}
        id={id}
        host={host}
        tail={tail}
        follow={follow}
        runningSince={runningSince ?? null}
        feed={feed}
        counts={
          <span className="muted small" data-testid="log-count">
            {view.length === total
              ? `${total.toLocaleString("en")} lines`
              : `${view.length.toLocaleString("en")} of ${total.toLocaleString("en")} lines`}
            {feed.buffer.dropped > 0 && ` (${feed.buffer.dropped.toLocaleString("en")} older dropped)`}
          </span>
        }
      />

      <div className="cd-log-frame">
        <div className="cd-log-scroll" ref={scrollRef} onScroll={onScroll} data-testid="log-lines" role="log" aria-live="off" aria-label="Log lines">
          <div style={{ height: virtualizer.getTotalSize(), position: "relative", minWidth: "100%" }}>
            {virtualizer.getVirtualItems().map((item) => {
              const line = view[item.index];
              if (!line) return null;
              return (
                <LogRow key={line.seq} line={line} top={item.start} timestamps={timestamps} needle={needle} />
              );
            })}
          </div>
        </div>
        {!atBottom && view.length > 0 && (
          <button type="button" className="cd-log-bottom" onClick={toBottom}>
            Jump to bottom
          </button>
        )}
        {view.length === 0 && (
          <div className="cd-log-empty muted">{total === 0 ? "No log lines yet." : "No line matches the filter."}</div>
        )}
      </div>
    </div>
  );
}

function shortTimestamp(timestamp: string): string {
  // 2026-11-26T22:02:56.503505571Z → 2026-11-26 22:02:56.503
  const match = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d{1,3})?/.exec(timestamp);
  return match ? `${match[1]} ${match[2]}${(match[3] ?? "").padEnd(4, "0")}` : timestamp;
}

function LogRow({ line, top, timestamps, needle }: { line: LogLine; top: number; timestamps: boolean; needle: string }) {
  return (
    <div
      className={`log-line log-${line.stream}`}
      style={{ transform: `translateY(${top}px)`, height: ROW_HEIGHT, lineHeight: `${ROW_HEIGHT}px` }}
    >
      {timestamps && <span className="log-ts">{line.timestamp ? `${shortTimestamp(line.timestamp)} ` : ""}</span>}
      {needle === ""
        ? line.text
        : highlightRuns(line.text, needle).map((run, i) => (run.match ? <mark key={i}>{run.text}</mark> : run.text))}
    </div>
  );
}
