import { describe, expect, it } from "vitest";
import { compareTimestamps, filterLines, highlightRuns, LineSplitter, LogBuffer, type LogFilter, type LogLine, logText, MAX_LINES, stripAnsi } from "./logBuffer";
import { LogFeed } from "./logFeed";

const texts = (lines: LogLine[]) => lines.map((l) => l.text);

describe("LineSplitter", () => {
  it("splits a chunk holding several lines", () => {
    const splitter = new LineSplitter();
    const lines = splitter.push("stdout", "one\ntwo\nthree\n", "2026-01-01T00:00:00Z");
    expect(texts(lines)).toEqual(["one", "two", "three"]);
    expect(lines.every((l) => l.stream === "stdout" && l.timestamp === "2026-01-01T00:00:00Z")).toBe(true);
    expect(lines.map((l) => l.seq)).toEqual([1, 2, 3]);
    expect(splitter.pending("stdout")).toBeNull();
  });

  it("carries a partial last line until its newline arrives", () => {
    const splitter = new LineSplitter();
    expect(texts(splitter.push("stdout", "hel"))).toEqual([]);
    expect(splitter.pending("stdout")).toBe("hel");
    expect(texts(splitter.push("stdout", "lo wor"))).toEqual([]);
    expect(texts(splitter.push("stdout", "ld\nnext"))).toEqual(["hello world"]);
    expect(splitter.pending("stdout")).toBe("next");
    expect(texts(splitter.push("stdout", "\n"))).toEqual(["next"]);
    expect(splitter.pending("stdout")).toBeNull();
  });

  it("keeps the timestamp of the chunk a carried line started in", () => {
    const splitter = new LineSplitter();
    splitter.push("stdout", "abc", "2026-01-01T00:00:01Z");
    const [line] = splitter.push("stdout", "def\n", "2026-01-01T00:00:02Z");
    expect(line).toMatchObject({ text: "abcdef", timestamp: "2026-01-01T00:00:01Z" });
  });

  it("carries a partial line per stream", () => {
    const splitter = new LineSplitter();
    expect(splitter.push("stdout", "out-a")).toEqual([]);
    expect(splitter.push("stderr", "err-a")).toEqual([]);
    const err = splitter.push("stderr", "-b\n");
    expect(err).toHaveLength(1);
    expect(err[0]).toMatchObject({ stream: "stderr", text: "err-a-b" });
    const out = splitter.push("stdout", "-b\nout2\n");
    expect(out.map((l) => [l.stream, l.text])).toEqual([
      ["stdout", "out-a-b"],
      ["stdout", "out2"],
    ]);
  });

  it("drops the \\r of \\r\\n endings and keeps empty lines", () => {
    const splitter = new LineSplitter();
    expect(texts(splitter.push("stdout", "a\r\n\r\nb\r"))).toEqual(["a", ""]);
    expect(texts(splitter.push("stdout", "\n"))).toEqual(["b"]);
  });

  it("flushes the carried partial lines at the end of the stream", () => {
    const splitter = new LineSplitter();
    splitter.push("stdout", "tail without newline");
    splitter.push("stderr", "err tail");
    const lines = splitter.flush();
    expect(lines.map((l) => [l.stream, l.text])).toEqual([
      ["stdout", "tail without newline"],
      ["stderr", "err tail"],
    ]);
    expect(splitter.flush()).toEqual([]);
  });

  it("forgets partial lines on reset", () => {
    const splitter = new LineSplitter();
    splitter.push("stdout", "stale");
    splitter.reset();
    expect(texts(splitter.push("stdout", "fresh\n"))).toEqual(["fresh"]);
  });
});

function makeLines(count: number, from = 1, stream: "stdout" | "stderr" = "stdout"): LogLine[] {
  return Array.from({ length: count }, (_, i) => ({ seq: from + i, stream, timestamp: null, text: `line ${from + i}` }));
}

const open: LogFilter = { stdout: true, stderr: true, search: "", onlyMatches: false };

describe("LogBuffer", () => {
  it("keeps lines in arrival order", () => {
    const buffer = new LogBuffer();
    buffer.append(makeLines(3));
    buffer.append(makeLines(2, 4));
    expect(texts(buffer.lines)).toEqual(["line 1", "line 2", "line 3", "line 4", "line 5"]);
    expect(buffer.view).toBe(buffer.lines);
  });

  it("caps at 100,000 lines, dropping the oldest", () => {
    const buffer = new LogBuffer();
    expect(buffer.capacity).toBe(MAX_LINES);
    expect(MAX_LINES).toBe(100_000);
    buffer.append(makeLines(99_990));
    expect(buffer.append(makeLines(30, 99_991))).toBe(20);
    expect(buffer.lines).toHaveLength(100_000);
    expect(buffer.lines[0]!.text).toBe("line 21");
    expect(buffer.lines[99_999]!.text).toBe("line 100020");
    expect(buffer.dropped).toBe(20);
  });

  it("keeps only the newest lines of a batch larger than the cap", () => {
    const buffer = new LogBuffer(10);
    buffer.append(makeLines(5));
    buffer.append(makeLines(25, 6));
    expect(buffer.lines).toHaveLength(10);
    expect(buffer.lines[0]!.seq).toBe(21);
    expect(buffer.lines[9]!.seq).toBe(30);
    expect(buffer.dropped).toBe(20);
  });

  it("filters by stream and by a case-insensitive search", () => {
    const buffer = new LogBuffer();
    buffer.append([
      { seq: 1, stream: "stdout", timestamp: null, text: "Started server" },
      { seq: 2, stream: "stderr", timestamp: null, text: "ERROR: disk full" },
      { seq: 3, stream: "stdout", timestamp: null, text: "request ok" },
      { seq: 4, stream: "stderr", timestamp: null, text: "warning: slow" },
    ]);
    buffer.setFilter({ ...open, search: "error", onlyMatches: true });
    expect(texts([...buffer.view])).toEqual(["ERROR: disk full"]);
    buffer.setFilter({ ...open, stdout: false });
    expect(texts([...buffer.view])).toEqual(["ERROR: disk full", "warning: slow"]);
    buffer.setFilter({ ...open, stderr: false, search: "SERVER", onlyMatches: true });
    expect(texts([...buffer.view])).toEqual(["Started server"]);
    // Highlight-only: every line stays.
    buffer.setFilter({ ...open, search: "error", onlyMatches: false });
    expect(buffer.view).toHaveLength(4);
  });

  it("keeps the filtered view up to date as lines arrive and the oldest drop", () => {
    const buffer = new LogBuffer(6);
    buffer.setFilter({ ...open, search: "even", onlyMatches: true });
    const lines = Array.from({ length: 6 }, (_, i) => ({
      seq: i + 1,
      stream: "stdout" as const,
      timestamp: null,
      text: (i + 1) % 2 === 0 ? `EVEN ${i + 1}` : `odd ${i + 1}`,
    }));
    buffer.append(lines);
    expect(texts([...buffer.view])).toEqual(["EVEN 2", "EVEN 4", "EVEN 6"]);
    // Two more lines push out lines 1 and 2: one matching line leaves the view.
    const gone = buffer.append([
      { seq: 7, stream: "stdout", timestamp: null, text: "odd 7" },
      { seq: 8, stream: "stdout", timestamp: null, text: "even 8" },
    ]);
    expect(gone).toBe(1);
    expect(texts([...buffer.view])).toEqual(["EVEN 4", "EVEN 6", "even 8"]);
    expect(buffer.view).toEqual(filterLines(buffer.lines, { ...open, search: "even", onlyMatches: true }));
  });

  it("clears", () => {
    const buffer = new LogBuffer();
    buffer.append(makeLines(10));
    buffer.clear();
    expect(buffer.lines).toHaveLength(0);
    expect(buffer.view).toHaveLength(0);
  });
});

describe("helpers", () => {
  it("orders Docker timestamps with trimmed nanoseconds", () => {
    expect(compareTimestamps("2026-11-26T22:02:56.50350557Z", "2026-11-26T22:02:56.503505571Z")).toBeLessThan(0);
    expect(compareTimestamps("2026-11-26T22:02:57Z", "2026-11-26T22:02:56.999999999Z")).toBeGreaterThan(0);
    expect(compareTimestamps("2026-11-26T22:02:56.5Z", "2026-11-26T22:02:56.500000000Z")).toBe(0);
  });

  it("writes a download with or without timestamps", () => {
    const lines: LogLine[] = [
      { seq: 1, stream: "stdout", timestamp: "2026-01-01T00:00:00Z", text: "a" },
      { seq: 2, stream: "stderr", timestamp: null, text: "b" },
    ];
    expect(logText(lines, false)).toBe("a\nb\n");
    expect(logText(lines, true)).toBe("2026-01-01T00:00:00Z a\nb\n");
  });

  it("splits text into highlighted runs", () => {
    expect(highlightRuns("Error and error", "error")).toEqual([
      { text: "Error", match: true },
      { text: " and ", match: false },
      { text: "error", match: true },
    ]);
    expect(highlightRuns("nothing", "x")).toEqual([{ text: "nothing", match: false }]);
  });
});

describe("LogFeed", () => {
  function fakeFrames() {
    const callbacks = new Map<number, () => void>();
    let next = 1;
    return {
      scheduler: {
        request(callback: () => void) {
          callbacks.set(next, callback);
          return next++;
        },
        cancel(handle: unknown) {
          callbacks.delete(handle as number);
        },
      },
      get scheduled() {
        return callbacks.size;
      },
      runFrame() {
        const due = [...callbacks.values()];
        callbacks.clear();
        due.forEach((callback) => callback());
      },
    };
  }

  it("batches lines and flushes them once per frame", () => {
    const frames = fakeFrames();
    const feed = new LogFeed(MAX_LINES, frames.scheduler);
    const flushes: number[] = [];
    feed.onFlush = () => flushes.push(feed.buffer.lines.length);
    for (let i = 0; i < 500; i++) feed.message({ type: "log", stream: "stdout", timestamp: null, data: `line ${i}\n` });
    expect(frames.scheduled).toBe(1);
    expect(feed.buffer.lines).toHaveLength(0);
    expect(feed.waiting).toBe(500);
    frames.runFrame();
    expect(flushes).toEqual([500]);
    expect(feed.buffer.lines[499]!.text).toBe("line 499");
    expect(frames.scheduled).toBe(0);
  });

  it("takes a batch of lines as the same lines one by one", () => {
    const frames = fakeFrames();
    const feed = new LogFeed(MAX_LINES, frames.scheduler);
    const lines = [
      { stream: "stdout", timestamp: "2026-01-01T00:00:01Z", data: "one\ntw" },
      { stream: "stderr", timestamp: "2026-01-01T00:00:01Z", data: "warn\n" },
      { stream: "stdout", timestamp: "2026-01-01T00:00:02Z", data: "o\n" },
    ];
    expect(feed.message({ type: "logs", lines })).toBe(true);
    frames.runFrame();
    expect(feed.buffer.lines.map((l) => [l.stream, l.text])).toEqual([
      ["stdout", "one"],
      ["stderr", "warn"],
      ["stdout", "two"],
    ]);
    expect(feed.lastTimestamp).toBe("2026-01-01T00:00:02Z");
    expect(feed.message({ type: "logs", lines: "not a list" })).toBe(true);
  });

  it("ignores other messages and flushes partial lines at the end", () => {
    const frames = fakeFrames();
    const feed = new LogFeed(MAX_LINES, frames.scheduler);
    expect(feed.message({ type: "end", reason: "the container stopped" })).toBe(false);
    feed.message({ type: "log", stream: "stderr", timestamp: null, data: "no newline" });
    frames.runFrame();
    expect(feed.buffer.lines).toHaveLength(0);
    feed.endOfStream();
    frames.runFrame();
    expect(feed.buffer.lines.map((l) => [l.stream, l.text])).toEqual([["stderr", "no newline"]]);
  });

  it("skips replayed lines after resuming from the last timestamp", () => {
    const frames = fakeFrames();
    const feed = new LogFeed(MAX_LINES, frames.scheduler);
    feed.message({ type: "log", stream: "stdout", timestamp: "2026-01-01T00:00:01.5Z", data: "a\n" });
    feed.message({ type: "log", stream: "stdout", timestamp: "2026-01-01T00:00:02.25Z", data: "b\n" });
    feed.resume();
    // The server replays from the start of the second.
    feed.message({ type: "log", stream: "stdout", timestamp: "2026-01-01T00:00:02.1Z", data: "old\n" });
    feed.message({ type: "log", stream: "stdout", timestamp: "2026-01-01T00:00:02.250000000Z", data: "b\n" });
    feed.message({ type: "log", stream: "stdout", timestamp: "2026-01-01T00:00:02.3Z", data: "c\n" });
    frames.runFrame();
    expect(texts(feed.buffer.lines)).toEqual(["a", "b", "c"]);
    expect(feed.lastTimestamp).toBe("2026-01-01T00:00:02.3Z");
  });

  it("never holds more waiting lines than the buffer keeps", () => {
    const frames = fakeFrames();
    const feed = new LogFeed(100, frames.scheduler);
    feed.message({ type: "log", stream: "stdout", timestamp: null, data: "x\n".repeat(250) });
    expect(feed.waiting).toBe(100);
    frames.runFrame();
    expect(feed.buffer.lines).toHaveLength(100);
    expect(feed.buffer.lines[0]!.seq).toBe(151);
  });
});

describe("stripAnsi", () => {
  it("drops colour, cursor and title sequences and keeps the text", () => {
    expect(stripAnsi("\u001b[1;31merror\u001b[0m: disk \u001b[2Kfull")).toBe("error: disk full");
    expect(stripAnsi("\u001b]0;title\u0007prompt")).toBe("prompt");
    expect(stripAnsi("plain [1m text")).toBe("plain [1m text");
  });

  it("is applied to every line the splitter makes", () => {
    const splitter = new LineSplitter();
    expect(splitter.push("stdout", "\u001b[32mok\u001b[0m\n").map((l) => l.text)).toEqual(["ok"]);
  });
});
