// The log socket's messages into the log buffer, at most once per frame.
import { compareTimestamps, LineSplitter, LogBuffer, MAX_LINES, type LogLine, type LogStream } from "./logBuffer";

/** Runs a callback before the next paint (requestAnimationFrame in the browser). */
export interface FrameScheduler {
  request(callback: () => void): unknown;
  cancel(handle: unknown): void;
}

export const animationFrames: FrameScheduler = {
  request: (callback) => window.requestAnimationFrame(() => callback()),
  cancel: (handle) => window.cancelAnimationFrame(handle as number),
};

/**
 * The log socket's messages into the buffer: lines are split as they arrive, batched, and
 * added to the buffer at most once per frame (`onFlush` then tells the view). After a
 * reconnect that resumes from the last timestamp, lines already shown are skipped.
 */
export class LogFeed {
  readonly buffer: LogBuffer;
  readonly splitter = new LineSplitter();
  private pending: LogLine[] = [];
  private frame: unknown = null;
  /** The newest timestamp received: where a reconnect resumes. */
  lastTimestamp: string | null = null;
  private skipUntilAfter: string | null = null;
  /** Called after each flush with the number of lines that left the front of the view. */
  onFlush: ((removed: number) => void) | null = null;

  constructor(
    capacity = MAX_LINES,
    private readonly scheduler: FrameScheduler = animationFrames,
  ) {
    this.buffer = new LogBuffer(capacity);
  }

  /** A `{"type":"log",…}` message or a `{"type":"logs","lines":[…]}` batch of them;
   *  returns false for any other message. */
  message(message: Record<string, unknown>): boolean {
    if (message.type === "logs") {
      for (const line of Array.isArray(message.lines) ? (message.lines as Record<string, unknown>[]) : []) this.line(line);
      return true;
    }
    if (message.type !== "log") return false;
    this.line(message);
    return true;
  }

  private line(line: Record<string, unknown>): void {
    const stream = line.stream === "stderr" ? "stderr" : "stdout";
    const timestamp = typeof line.timestamp === "string" ? line.timestamp : null;
    const data = typeof line.data === "string" ? line.data : "";
    this.receive(stream, data, timestamp);
  }

  receive(stream: LogStream, data: string, timestamp: string | null): void {
    if (timestamp) {
      if (this.skipUntilAfter) {
        if (compareTimestamps(timestamp, this.skipUntilAfter) <= 0) return;
        this.skipUntilAfter = null;
      }
      this.lastTimestamp = timestamp;
    }
    this.enqueue(this.splitter.push(stream, data, timestamp));
  }

  /** The stream ended: the partial lines it left are lines. */
  endOfStream(): void {
    this.enqueue(this.splitter.flush());
  }

  /** The next connection replays from `lastTimestamp`: skip what was already received. */
  resume(): void {
    this.splitter.reset();
    this.skipUntilAfter = this.lastTimestamp;
  }

  /** Forgets everything (a new connection with other settings). */
  reset(): void {
    this.clear();
    this.splitter.reset();
    this.lastTimestamp = null;
    this.skipUntilAfter = null;
  }

  /** Empties the buffer (what is still to come keeps coming). */
  clear(): void {
    this.pending = [];
    this.buffer.clear();
    this.onFlush?.(0);
  }

  /** Adds the waiting lines now. */
  flush(): void {
    if (this.frame !== null) this.scheduler.cancel(this.frame);
    this.frame = null;
    const batch = this.pending;
    this.pending = [];
    const removed = this.buffer.append(batch);
    this.onFlush?.(removed);
  }

  /** Lines waiting for the next frame. */
  get waiting(): number {
    return this.pending.length;
  }

  dispose(): void {
    if (this.frame !== null) this.scheduler.cancel(this.frame);
    this.frame = null;
  }

  private enqueue(lines: LogLine[]): void {
    if (lines.length === 0) return;
    for (const line of lines) this.pending.push(line);
    // No frames while the page is in the background: never hold more than the buffer keeps.
    const excess = this.pending.length - this.buffer.capacity;
    if (excess > 0) this.pending.splice(0, excess);
    this.frame ??= this.scheduler.request(() => {
      this.frame = null;
      this.flush();
    });
  }
}
