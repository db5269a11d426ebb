// A container's resource use, live: `/ws/containers/{id}/stats` (one sample a second), the
// last 300 samples drawn with uPlot (CPU, memory, network and block I/O rates), and the
// current figures as text.
import { useEffect, useMemo, useRef, useState } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { paths } from "../../api/paths";
import { useWebSocket } from "../../hooks/useWebSocket";
import { formatBytes } from "../../format";
import { SocketStatus } from "./SocketStatus";
import { appendSample, buildSeries, lastValue, MAX_SAMPLES, parseSample, type StatsSample } from "./statsSeries";
import "./container.css";

const COLORS = { cpu: "#3d8bfd", memory: "#2fb67c", limit: "#e5534b", rx: "#5b8def", tx: "#e0a526", read: "#2fb67c", write: "#d46fd4" };

function rate(value: number | null | undefined): string {
  return value === null || value === undefined ? "—" : `${formatBytes(value)}/s`;
}

/** `512 KiB`, `1.5 MiB`: no needless decimals on an axis. */
function axisBytes(value: number): string {
  return formatBytes(value, 1).replace(/\.0 /, " ");
}

function percent(value: number | null | undefined): string {
  return value === null || value === undefined ? "—" : `${value.toFixed(2)} %`;
}

export function StatsCharts({ id, host, memoryLimited }: { id: string; host: string; memoryLimited?: boolean }) {
  const [samples, setSamples] = useState<StatsSample[]>([]);
  const [received, setReceived] = useState(0);
  const [ended, setEnded] = useState<string | null>(null);

  const socket = useWebSocket(
    { path: paths.ws.stats(id), purpose: "container.stats", resourceId: id, query: { host } },
    {
      onOpen: () => setEnded(null),
      onMessage: (message) => {
        const sample = parseSample(message);
        if (sample) {
          setSamples((current) => appendSample(current, sample, MAX_SAMPLES));
          setReceived((n) => n + 1);
        } else if (message.type === "end") {
          setEnded(typeof message.reason === "string" ? message.reason : "the stream ended");
        }
      },
    },
  );

  const series = useMemo(() => buildSeries(samples), [samples]);
  const latest = samples[samples.length - 1];

  const cpuData = useMemo<uPlot.AlignedData>(() => [series.time, series.cpu], [series]);
  const memoryData = useMemo<uPlot.AlignedData>(() => [series.time, series.memory, series.memoryLimit], [series]);
  const networkData = useMemo<uPlot.AlignedData>(() => [series.time, series.rx, series.tx], [series]);
  const blockData = useMemo<uPlot.AlignedData>(() => [series.time, series.read, series.write], [series]);

  const bytesAxis = (_: uPlot, splits: number[]) => splits.map((v) => axisBytes(v));
  const rateAxis = (_: uPlot, splits: number[]) => splits.map((v) => `${axisBytes(v)}/s`);

  return (
    <div className="cd-stats">
      <div className="cd-stream-status">
        <SocketStatus snapshot={socket} ended={ended} testId="stats-status" />
        {socket.status === "closed" && (
          <button type="button" className="link" onClick={() => socket.reconnect()}>
            Reconnect
          </button>
        )}
        {socket.error && socket.status !== "open" && (
          <span className="cd-stream-error" role="alert" data-testid="stats-error">
            {socket.error.message}
          </span>
        )}
      </div>

      <div className="cd-figures">
        <Figure label="Samples" testId="stats-samples" value={String(received)} />
        <Figure
          label="CPU"
          testId="stats-cpu"
          value={percent(latest?.cpu_percent)}
          hint={latest ? `${latest.online_cpus} CPU${latest.online_cpus === 1 ? "" : "s"}` : undefined}
        />
        <Figure
          label="Memory"
          testId="stats-memory"
          value={latest ? formatBytes(latest.memory.usage) : "—"}
          hint={latest ? `of ${formatBytes(latest.memory.limit)}${memoryLimited ? "" : " (host)"} · ${latest.memory.percent.toFixed(2)} %` : undefined}
        />
        <Figure label="Network" testId="stats-network" value={`↓ ${rate(lastValue(series.rx))}`} hint={`↑ ${rate(lastValue(series.tx))}`} />
        <Figure label="Block I/O" testId="stats-block" value={`R ${rate(lastValue(series.read))}`} hint={`W ${rate(lastValue(series.write))}`} />
        <Figure label="PIDs" testId="stats-pids" value={latest ? String(latest.pids) : "—"} />
      </div>

      {samples.length === 0 ? (
        <div className="empty">{socket.status === "open" ? "Waiting for the first sample…" : "No samples yet."}</div>
      ) : null}
      <div className="cd-charts" hidden={samples.length === 0}>
        <Chart
          title="CPU %"
          data={cpuData}
          series={[{ label: "CPU", stroke: COLORS.cpu, fill: `${COLORS.cpu}22`, value: (_, v) => percent(v) }]}
          axisValues={(_, splits) => splits.map((v) => `${v} %`)}
          minTop={5}
        />
        <Chart
          title="Memory"
          data={memoryData}
          series={[
            { label: "used", stroke: COLORS.memory, fill: `${COLORS.memory}22`, value: (_, v) => formatBytes(v) },
            { label: "limit", stroke: COLORS.limit, dash: [6, 4], show: memoryLimited === true, value: (_, v) => formatBytes(v) },
          ]}
          axisValues={bytesAxis}
          minTop={1024 * 1024}
        />
        <Chart
          title="Network"
          data={networkData}
          series={[
            { label: "rx", stroke: COLORS.rx, value: (_, v) => rate(v) },
            { label: "tx", stroke: COLORS.tx, value: (_, v) => rate(v) },
          ]}
          axisValues={rateAxis}
          minTop={1024}
        />
        <Chart
          title="Block I/O"
          data={blockData}
          series={[
            { label: "read", stroke: COLORS.read, value: (_, v) => rate(v) },
            { label: "write", stroke: COLORS.write, value: (_, v) => rate(v) },
          ]}
          axisValues={rateAxis}
          minTop={1024}
        />
      </div>
    </div>
  );
}

function Figure({ label, value, hint, testId }: { label: string; value: string; hint?: string; testId: string }) {
  return (
    <div className="card cd-figure">
      <div className="label">{label}</div>
      <div className="cd-figure-value" data-testid={testId}>
        {value}
      </div>
      {hint && <div className="muted small">{hint}</div>}
    </div>
  );
}

const CHART_HEIGHT = 160;

/** One uPlot chart that follows its container's width; new data is drawn in place. */
function Chart({
  title,
  data,
  series,
  axisValues,
  minTop,
}: {
  title: string;
  data: uPlot.AlignedData;
  series: uPlot.Series[];
  axisValues: uPlot.Axis.DynamicValues;
  /** The y scale reaches at least this high (it grows past it). */
  minTop?: number;
}) {
  const elementRef = useRef<HTMLDivElement>(null);
  const plotRef = useRef<uPlot | null>(null);
  // The chart is built once; later renders only hand it new data.
  const setupRef = useRef({ title, series, axisValues, minTop, data });
  useEffect(() => {
    setupRef.current.data = data;
  });

  useEffect(() => {
    const element = elementRef.current;
    if (!element) return;
    const setup = setupRef.current;
    const axis: uPlot.Axis = { stroke: "#8a96a6", grid: { stroke: "#2a3543", width: 1 }, ticks: { stroke: "#2a3543", width: 1 } };
    const options: uPlot.Options = {
      title: setup.title,
      width: Math.max(200, element.clientWidth),
      height: CHART_HEIGHT,
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: { time: true },
        y: { range: (_u, _min, max) => [0, Math.max(setup.minTop ?? 1, (max ?? 0) * 1.1)] },
      },
      axes: [axis, { ...axis, values: setup.axisValues, size: 84 }],
      series: [{}, ...setup.series.map((s) => ({ width: 1.5, points: { show: false }, ...s }))],
    };
    const plot = new uPlot(options, setup.data, element);
    plotRef.current = plot;
    let frame = 0;
    const observer = new ResizeObserver(() => {
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(() => {
        const width = element.clientWidth;
        if (width > 0 && width !== plot.width) plot.setSize({ width, height: CHART_HEIGHT });
      });
    });
    observer.observe(element);
    return () => {
      cancelAnimationFrame(frame);
      observer.disconnect();
      plot.destroy();
      plotRef.current = null;
    };
  }, []);

  useEffect(() => {
    plotRef.current?.setData(data);
  }, [data]);

  return <div className="cd-chart" ref={elementRef} />;
}
