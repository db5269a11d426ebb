// The log viewer's data, without React: turning the socket's chunks into lines (a chunk
// may hold several lines or part of one, per stream), a capped buffer of lines, and the
// filtered view the list shows (streams and a case-insensitive search). `LogFeed`
// (logFeed.ts) fills the buffer from the socket.

export type LogStream = "stdout" | "stderr";

export interface LogLine {
  /** Increases by one per line received: identifies a line across trims. */
  seq: number;
  stream: LogStream;
  /** Docker's timestamp (RFC 3339 with nanoseconds), when the stream carries them. */
  timestamp: string | null;
  text: string;
}

/** At most this many lines are kept; the oldest are dropped first. */
export const MAX_LINES = 100_000;

interface Partial {
  text: string;
  timestamp: string | null;
}

// CSI sequences (colours, cursor moves) and OSC sequences (window titles).
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)|\u001b[@-Z\\-_]/g;

/** The text without terminal escape sequences. */
export function stripAnsi(text: string): string {
  return text.includes("\u001b") ? text.replace(ANSI, "") : text;
}

/**
 * Splits chunks into lines. A chunk's last line without its newline is carried until the
 * same stream sends the rest (stdout and stderr each carry their own).
 */
export class LineSplitter {
  private carry: Record<LogStream, Partial | null> = { stdout: null, stderr: null };
  private nextSeq = 1;

  /** The complete lines `data` finishes, in order. */
  push(stream: LogStream, data: string, timestamp: string | null = null): LogLine[] {
    if (data === "") return [];
    const parts = data.split("\n");
    const lines: LogLine[] = [];
    const carried = this.carry[stream];
    // Every part but the last ended with a newline; the last is a partial line (or "").
    for (let i = 0; i < parts.length - 1; i++) {
      let text = parts[i]!;
      let stamp = timestamp;
      if (i === 0 && carried) {
        text = carried.text + text;
        stamp = carried.timestamp ?? timestamp;
      }
      lines.push(this.line(stream, stamp, text));
    }
    const rest = parts[parts.length - 1]!;
    if (parts.length === 1) {
      // No newline at all: the partial line grows.
      this.carry[stream] = carried ? { text: carried.text + rest, timestamp: carried.timestamp ?? timestamp } : { text: rest, timestamp };
    } else {
      this.carry[stream] = rest === "" ? null : { text: rest, timestamp };
    }
    return lines;
  }

  /** The partial lines still carried (when the stream ends), as lines; forgets them. */
  flush(): LogLine[] {
    const lines: LogLine[] = [];
    for (const stream of ["stdout", "stderr"] as const) {
      const carried = this.carry[stream];
      if (carried) lines.push(this.line(stream, carried.timestamp, carried.text));
      this.carry[stream] = null;
    }
    return lines;
  }

  /** Forgets the partial lines (a new connection starts afresh). */
  reset(): void {
    this.carry = { stdout: null, stderr: null };
  }

  /** A partial line is waiting on `stream`. */
  pending(stream: LogStream): string | null {
    return this.carry[stream]?.text ?? null;
  }

  private line(stream: LogStream, timestamp: string | null, text: string): LogLine {
    // Terminals end lines with \r\n: the \r is not part of the text; nor are colour and
    // cursor escape sequences, which would show as raw characters.
    const clean = stripAnsi(text.endsWith("\r") ? text.slice(0, -1) : text);
    return { seq: this.nextSeq++, stream, timestamp, text: clean };
  }
}

export interface LogFilter {
  stdout: boolean;
  stderr: boolean;
  /** Case-insensitive substring; "" matches every line. */
  search: string;
  /** Show only the lines that match the search (otherwise they are only highlighted). */
  onlyMatches: boolean;
}

/** The line matches the search (case-insensitive); `needle` is already lower case. */
export function lineMatches(line: LogLine, needle: string): boolean {
  return needle === "" || line.text.toLowerCase().includes(needle);
}

/** The filter shows `line`. */
export function filterAccepts(filter: LogFilter, line: LogLine, needle = filter.search.toLowerCase()): boolean {
  if (line.stream === "stdout" ? !filter.stdout : !filter.stderr) return false;
  if (filter.onlyMatches && needle !== "" && !lineMatches(line, needle)) return false;
  return true;
}

/** The filter lets every line through (the view is the buffer itself). */
export function filterIsOpen(filter: LogFilter): boolean {
  return filter.stdout && filter.stderr && (!filter.onlyMatches || filter.search === "");
}

/** The lines `filter` shows. */
export function filterLines(lines: readonly LogLine[], filter: LogFilter): LogLine[] {
  const needle = filter.search.toLowerCase();
  return lines.filter((line) => filterAccepts(filter, line, needle));
}

/**
 * The buffered lines (a plain array, capped at `capacity`, oldest dropped first) and the
 * view of them through a filter, kept up to date as lines arrive rather than recomputed.
 */
export class LogBuffer {
  /** Every buffered line, oldest first. */
  readonly lines: LogLine[] = [];
  private filtered: LogLine[] = [];
  private filter: LogFilter = { stdout: true, stderr: true, search: "", onlyMatches: false };
  /** Lines dropped since the buffer was created or cleared. */
  dropped = 0;

  constructor(readonly capacity = MAX_LINES) {}

  /** The lines the filter shows, oldest first. */
  get view(): readonly LogLine[] {
    return filterIsOpen(this.filter) ? this.lines : this.filtered;
  }

  /** Adds lines; returns how many lines left the front of the view (dropped as the oldest). */
  append(incoming: readonly LogLine[]): number {
    if (incoming.length === 0) return 0;
    const open = filterIsOpen(this.filter);
    const needle = this.filter.search.toLowerCase();
    // More than fit: only the newest are kept.
    const start = Math.max(0, incoming.length - this.capacity);
    this.dropped += start;
    for (let i = start; i < incoming.length; i++) {
      const line = incoming[i]!;
      this.lines.push(line);
      if (!open && filterAccepts(this.filter, line, needle)) this.filtered.push(line);
    }
    const excess = this.lines.length - this.capacity;
    if (excess <= 0) return 0;
    this.lines.splice(0, excess);
    this.dropped += excess;
    if (open) return excess;
    const first = this.lines[0]!.seq;
    let gone = 0;
    while (gone < this.filtered.length && this.filtered[gone]!.seq < first) gone++;
    if (gone > 0) this.filtered.splice(0, gone);
    return gone;
  }

  /** Applies a new filter to the buffered lines. */
  setFilter(filter: LogFilter): void {
    this.filter = { ...filter };
    this.filtered = filterIsOpen(filter) ? [] : filterLines(this.lines, filter);
  }

  clear(): void {
    this.lines.length = 0;
    this.filtered = [];
    this.dropped = 0;
  }
}

/** Nanoseconds since the epoch of an RFC 3339 timestamp, as a bigint-free comparable pair. */
function timestampKey(value: string): [number, number] | null {
  const match = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(value);
  if (!match) return null;
  const seconds = Date.parse(`${match[1]}${match[3]}`);
  if (Number.isNaN(seconds)) return null;
  const fraction = Number((match[2] ?? "").padEnd(9, "0").slice(0, 9));
  return [seconds / 1000, fraction];
}

/** Orders two RFC 3339 timestamps with sub-second precision (Docker trims trailing zeros). */
export function compareTimestamps(a: string, b: string): number {
  const ka = timestampKey(a);
  const kb = timestampKey(b);
  if (!ka || !kb) return a < b ? -1 : a > b ? 1 : 0;
  return ka[0] - kb[0] || ka[1] - kb[1];
}

/** The text of a .log download: one line each, with its timestamp when asked for. */
export function logText(lines: readonly LogLine[], timestamps: boolean): string {
  let text = "";
  for (const line of lines) {
    text += timestamps && line.timestamp ? `${line.timestamp} ${line.text}\n` : `${line.text}\n`;
  }
  return text;
}

/** Splits `text` into runs that match `needle` (lower case) or not, for highlighting. */
export function highlightRuns(text: string, needle: string): { text: string; match: boolean }[] {
  if (needle === "") return [{ text, match: false }];
  const lower = text.toLowerCase();
  const runs: { text: string; match: boolean }[] = [];
  let from = 0;
  for (;;) {
    const at = lower.indexOf(needle, from);
    if (at < 0) break;
    if (at > from) runs.push({ text: text.slice(from, at), match: false });
    runs.push({ text: text.slice(at, at + needle.length), match: true });
    from = at + needle.length;
  }
  if (from < text.length) runs.push({ text: text.slice(from), match: false });
  return runs;
}
