// The state of an image pull as `/ws/tasks/{operation_id}` reports it: each `progress`
// message carries the whole snapshot so far (`{status, layers: {id: {status, current,
// total}}}`), and a final `complete` message the outcome (`succeeded` or `failed`, with the
// API's error code and message).

export interface LayerState {
  id: string;
  status: string;
  current: number | null;
  total: number | null;
}

export type PullStatus = "pending" | "succeeded" | "failed";

export interface PullState {
  status: PullStatus;
  /** The pull's overall status line (`Pulling from …`, `Digest: …`, `Status: …`). */
  message: string | null;
  /** Layers in the order they first appeared. */
  layers: LayerState[];
  errorCode: string | null;
  errorMessage: string | null;
  done: boolean;
}

export const initialPullState: PullState = {
  status: "pending",
  message: null,
  layers: [],
  errorCode: null,
  errorMessage: null,
  done: false,
};

export type PullAction =
  | { kind: "message"; message: Record<string, unknown> }
  /** The stream itself failed (ticket refused, no such task, connection given up). */
  | { kind: "stream-error"; code: string; message: string };

function num(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

function applyProgress(state: PullState, progress: unknown): PullState {
  if (!progress || typeof progress !== "object") return state;
  const { status, layers } = progress as { status?: unknown; layers?: unknown };
  let next = state;
  if (typeof status === "string" && status !== state.message) next = { ...next, message: status };
  if (layers && typeof layers === "object") {
    const byId = new Map(next.layers.map((layer) => [layer.id, layer]));
    const order = next.layers.map((layer) => layer.id);
    let changed = false;
    for (const [id, raw] of Object.entries(layers as Record<string, unknown>)) {
      const value = (raw ?? {}) as { status?: unknown; current?: unknown; total?: unknown };
      const previous = byId.get(id);
      const layer: LayerState = {
        id,
        status: typeof value.status === "string" ? value.status : (previous?.status ?? ""),
        current: num(value.current),
        total: num(value.total),
      };
      if (!previous) order.push(id);
      if (!previous || previous.status !== layer.status || previous.current !== layer.current || previous.total !== layer.total) {
        byId.set(id, layer);
        changed = true;
      }
    }
    if (changed) next = { ...next, layers: order.map((id) => byId.get(id)!) };
  }
  return next;
}

export function pullReducer(state: PullState, action: PullAction): PullState {
  if (action.kind === "stream-error") {
    if (state.done) return state;
    return { ...state, status: "failed", done: true, errorCode: action.code, errorMessage: action.message };
  }
  const message = action.message;
  if (message.type === "progress") {
    if (state.done) return state;
    return applyProgress(state, message.progress);
  }
  if (message.type === "complete") {
    const next = applyProgress(state, message.progress);
    const failed = message.status !== "succeeded";
    return {
      ...next,
      status: failed ? "failed" : "succeeded",
      done: true,
      errorCode: failed ? (typeof message.error_code === "string" ? message.error_code : "FAILED") : null,
      errorMessage: failed ? (typeof message.error_message === "string" ? message.error_message : `the pull ended: ${String(message.status)}`) : null,
    };
  }
  return state;
}

/** Layers Docker reports as finished without bytes to count. */
const FINISHED = /^(pull complete|already exists|download complete)$/i;

/** The layer's progress in percent (null when Docker gave no total). */
export function layerPercent(layer: LayerState): number | null {
  if (FINISHED.test(layer.status)) return 100;
  if (layer.total && layer.total > 0 && layer.current !== null) {
    return Math.max(0, Math.min(100, (layer.current / layer.total) * 100));
  }
  return null;
}
