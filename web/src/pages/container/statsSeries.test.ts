import { describe, expect, it } from "vitest";
import { appendSample, buildSeries, counterRate, lastValue, MAX_SAMPLES, parseSample, type StatsSample } from "./statsSeries";

function sample(second: number, counters: { rx?: number; tx?: number; read?: number; write?: number } = {}, cpu = 1): StatsSample {
  return {
    type: "stats",
    timestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, second)).toISOString(),
    cpu_percent: cpu,
    online_cpus: 2,
    memory: { usage: 1000 + second, limit: 4096, percent: 1 },
    network: { rx_bytes: counters.rx ?? 0, tx_bytes: counters.tx ?? 0 },
    block_io: { read_bytes: counters.read ?? 0, write_bytes: counters.write ?? 0 },
    pids: 1,
  };
}

describe("counterRate", () => {
  it("is bytes per second between readings", () => {
    expect(counterRate(100, 300, 2)).toBe(100);
    expect(counterRate(5, 5, 1)).toBe(0);
  });
  it("has no value for a reset counter or no elapsed time", () => {
    expect(counterRate(500, 100, 1)).toBeNull();
    expect(counterRate(1, 2, 0)).toBeNull();
  });
});

describe("buildSeries", () => {
  it("computes rates from successive cumulative counters", () => {
    const series = buildSeries([
      sample(0, { rx: 1000, tx: 0, read: 0, write: 0 }),
      sample(1, { rx: 3000, tx: 500, read: 4096, write: 0 }),
      sample(3, { rx: 7000, tx: 500, read: 4096, write: 8192 }),
    ]);
    expect(series.time).toEqual([1767225600, 1767225601, 1767225603]);
    expect(series.rx).toEqual([null, 2000, 2000]);
    expect(series.tx).toEqual([null, 500, 0]);
    expect(series.read).toEqual([null, 4096, 0]);
    expect(series.write).toEqual([null, 0, 4096]);
    expect(series.cpu).toEqual([1, 1, 1]);
    expect(series.memory).toEqual([1000, 1001, 1003]);
    expect(series.memoryLimit).toEqual([4096, 4096, 4096]);
  });

  it("starts afresh after a counter reset", () => {
    const series = buildSeries([
      sample(0, { rx: 10_000, write: 50_000 }),
      sample(1, { rx: 12_000, write: 60_000 }),
      // The container restarted: its counters start again from zero.
      sample(2, { rx: 300, write: 100 }),
      sample(3, { rx: 1300, write: 600 }),
    ]);
    expect(series.rx).toEqual([null, 2000, null, 1000]);
    expect(series.write).toEqual([null, 10_000, null, 500]);
    expect(series.rx.every((v) => v === null || v >= 0)).toBe(true);
    expect(lastValue(series.rx)).toBe(1000);
  });

  it("keeps x increasing when the clock steps back", () => {
    const series = buildSeries([sample(5), sample(4)]);
    expect(series.time[1]!).toBeGreaterThan(series.time[0]!);
  });
});

describe("appendSample", () => {
  it("keeps the last 300 samples", () => {
    let samples: StatsSample[] = [];
    for (let i = 0; i < 350; i++) samples = appendSample(samples, sample(i, { rx: i * 10 }, i));
    expect(MAX_SAMPLES).toBe(300);
    expect(samples).toHaveLength(300);
    expect(samples[0]!.cpu_percent).toBe(50);
    expect(samples[299]!.cpu_percent).toBe(349);
    const series = buildSeries(samples);
    expect(series.cpu).toHaveLength(300);
    expect(series.rx[0]).toBeNull();
    expect(series.rx[299]).toBe(10);
  });

  it("does not change the array it is given", () => {
    const first = [sample(0)];
    const next = appendSample(first, sample(1));
    expect(first).toHaveLength(1);
    expect(next).toHaveLength(2);
  });
});

describe("parseSample", () => {
  it("reads the server's message and ignores others", () => {
    const parsed = parseSample({
      type: "stats",
      timestamp: "2026-11-26T22:03:00.322199947Z",
      cpu_percent: 0.14,
      online_cpus: 2,
      memory: { usage: 1372160, limit: 25276502016, percent: 0.01 },
      network: { rx_bytes: 806, tx_bytes: 0 },
      block_io: { read_bytes: 0, write_bytes: 0 },
      pids: 2,
    });
    expect(parsed?.memory.usage).toBe(1372160);
    expect(parsed?.network.rx_bytes).toBe(806);
    expect(parseSample({ type: "end", reason: "the container stopped" })).toBeNull();
  });
});
