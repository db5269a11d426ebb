// The stats charts' data, without React: the last samples of `/ws/containers/{id}/stats`
// turned into uPlot's column arrays, with rates (bytes/s) from successive cumulative
// counters. A counter that goes down (the container restarted) starts afresh: no rate for
// that step rather than a huge negative one.

export interface StatsSample {
  type: "stats";
  timestamp: string;
  /** Of one CPU: 200 means two CPUs fully used. */
  cpu_percent: number;
  online_cpus: number;
  memory: { usage: number; limit: number; percent: number };
  network: { rx_bytes: number; tx_bytes: number };
  block_io: { read_bytes: number; write_bytes: number };
  pids: number;
}

/** The charts show this many samples (5 minutes at one a second). */
export const MAX_SAMPLES = 300;

/** A message from the stats socket, when it is a well-formed sample. */
export function parseSample(message: Record<string, unknown>): StatsSample | null {
  if (message.type !== "stats") return null;
  const memory = message.memory as Record<string, unknown> | undefined;
  const network = message.network as Record<string, unknown> | undefined;
  const block = message.block_io as Record<string, unknown> | undefined;
  const num = (value: unknown) => (typeof value === "number" && Number.isFinite(value) ? value : 0);
  return {
    type: "stats",
    timestamp: typeof message.timestamp === "string" ? message.timestamp : new Date().toISOString(),
    cpu_percent: num(message.cpu_percent),
    online_cpus: num(message.online_cpus),
    memory: { usage: num(memory?.usage), limit: num(memory?.limit), percent: num(memory?.percent) },
    network: { rx_bytes: num(network?.rx_bytes), tx_bytes: num(network?.tx_bytes) },
    block_io: { read_bytes: num(block?.read_bytes), write_bytes: num(block?.write_bytes) },
    pids: num(message.pids),
  };
}

/** `samples` with `sample` added, keeping the last `cap` (a new array). */
export function appendSample(samples: readonly StatsSample[], sample: StatsSample, cap = MAX_SAMPLES): StatsSample[] {
  const next = samples.length >= cap ? samples.slice(samples.length - cap + 1) : samples.slice();
  next.push(sample);
  return next;
}

/** The per-second rate between two readings of a cumulative counter; null when unknown. */
export function counterRate(previous: number, current: number, seconds: number): number | null {
  if (!(seconds > 0)) return null;
  // The counter restarted (container restart, interface gone): no rate for this step.
  if (current < previous) return null;
  return (current - previous) / seconds;
}

export interface StatsSeries {
  /** Unix seconds (uPlot's x axis). */
  time: number[];
  cpu: number[];
  memory: number[];
  memoryLimit: number[];
  rx: (number | null)[];
  tx: (number | null)[];
  read: (number | null)[];
  write: (number | null)[];
}

function seconds(sample: StatsSample): number {
  const ms = Date.parse(sample.timestamp);
  return Number.isNaN(ms) ? 0 : ms / 1000;
}

/** The chart columns for `samples` (oldest first); the first point has no rates. */
export function buildSeries(samples: readonly StatsSample[]): StatsSeries {
  const series: StatsSeries = { time: [], cpu: [], memory: [], memoryLimit: [], rx: [], tx: [], read: [], write: [] };
  let previous: StatsSample | null = null;
  let previousTime = 0;
  for (const sample of samples) {
    let time = seconds(sample);
    // uPlot wants increasing x values: a clock that stepped back is nudged forward.
    if (previous && time <= previousTime) time = previousTime + 0.001;
    series.time.push(time);
    series.cpu.push(sample.cpu_percent);
    series.memory.push(sample.memory.usage);
    series.memoryLimit.push(sample.memory.limit);
    if (previous) {
      const dt = time - previousTime;
      series.rx.push(counterRate(previous.network.rx_bytes, sample.network.rx_bytes, dt));
      series.tx.push(counterRate(previous.network.tx_bytes, sample.network.tx_bytes, dt));
      series.read.push(counterRate(previous.block_io.read_bytes, sample.block_io.read_bytes, dt));
      series.write.push(counterRate(previous.block_io.write_bytes, sample.block_io.write_bytes, dt));
    } else {
      series.rx.push(null);
      series.tx.push(null);
      series.read.push(null);
      series.write.push(null);
    }
    previous = sample;
    previousTime = time;
  }
  return series;
}

/** The last non-null value of a column. */
export function lastValue(values: readonly (number | null)[]): number | null {
  for (let i = values.length - 1; i >= 0; i--) {
    const value = values[i];
    if (value !== null && value !== undefined) return value;
  }
  return null;
}
