// One image pull followed live over `/ws/tasks/{operation_id}`: a bar per layer with its
// status and bytes, then the outcome.
import { useEffect, useReducer, useRef } from "react";
import { api, errorMessage } from "../../api/client";
import { paths } from "../../api/paths";
import type { OperationView } from "../../api/types";
import { useWebSocket } from "../../hooks/useWebSocket";
import { formatBytes } from "../../format";
import { StatusBadge } from "../../components/StatusBadge";
import { initialPullState, layerPercent, pullReducer, type LayerState, type PullState } from "./pullProgress";
import "./resources.css";

export interface PullRequestInfo {
  operationId: string;
  reference: string;
  host: string;
}

export function PullTask({ pull, onDone, onDismiss }: { pull: PullRequestInfo; onDone: (state: PullState) => void; onDismiss: () => void }) {
  const [state, dispatch] = useReducer(pullReducer, initialPullState);
  const socket = useWebSocket(
    state.done ? null : { path: paths.ws.task(pull.operationId), purpose: "task", resourceId: pull.operationId },
    {
      onMessage: (message) => dispatch({ kind: "message", message }),
      reconnectAttempts: 8,
    },
  );
  // A stream that gave up (ticket refused, no such task, too many drops) ends the view.
  const socketError = socket.status === "closed" ? socket.error : null;
  useEffect(() => {
    if (socketError && !state.done) dispatch({ kind: "stream-error", code: socketError.code, message: socketError.message });
  }, [socketError, state.done]);

  // Closed without an outcome (the server went away cleanly): ask the operation itself.
  const closedQuietly = socket.status === "closed" && !socket.error && !state.done;
  useEffect(() => {
    if (!closedQuietly) return;
    let cancelled = false;
    api
      .get<OperationView>(paths.operations.get(pull.operationId))
      .then((op) => {
        if (cancelled || op.status === "pending") return;
        dispatch({
          kind: "message",
          message: { type: "complete", status: op.status, error_code: op.error_code, error_message: op.error_message, progress: op.progress },
        });
      })
      .catch((error: unknown) => {
        if (!cancelled) dispatch({ kind: "stream-error", code: "STREAM_CLOSED", message: errorMessage(error) });
      });
    return () => {
      cancelled = true;
    };
  }, [closedQuietly, pull.operationId]);

  const reported = useRef(false);
  const onDoneRef = useRef(onDone);
  useEffect(() => {
    onDoneRef.current = onDone;
  });
  useEffect(() => {
    if (state.done && !reported.current) {
      reported.current = true;
      onDoneRef.current(state);
    }
  }, [state]);

  const label = state.done ? state.status : socket.status === "open" ? "in_progress" : "pending";
  return (
    <section className="panel res-pull" aria-label={`Pull of ${pull.reference}`} data-testid="pull-progress" data-status={state.status}>
      <div className="res-pull-head">
        <div>
          <strong>{state.done ? "Pull of" : "Pulling"} {pull.reference}</strong> <span className="muted">on {pull.host}</span>{" "}
          <StatusBadge status={label} />
        </div>
        {state.done && (
          <button type="button" className="link" onClick={onDismiss}>
            Dismiss
          </button>
        )}
      </div>
      {state.message && (
        <div className="muted small" data-testid="pull-message">
          {state.message}
        </div>
      )}
      {!state.done && socket.error && <div className="muted small">{socket.error.message} — reconnecting…</div>}
      {state.layers.length > 0 && (
        <div className="res-layers" role="list" aria-label="Layers">
          {state.layers.map((layer) => (
            <LayerRow key={layer.id} layer={layer} />
          ))}
        </div>
      )}
      {state.done && state.status === "succeeded" && (
        <div className="notice" role="status" data-testid="pull-outcome" style={{ marginTop: 10, marginBottom: 0 }}>
          Pulled {pull.reference}
          {state.layers.length > 0 ? ` (${state.layers.length} layer${state.layers.length === 1 ? "" : "s"})` : ""}.
        </div>
      )}
      {state.done && state.status === "failed" && (
        <div className="error-banner" role="alert" data-testid="pull-outcome" style={{ marginTop: 10, marginBottom: 0 }}>
          <strong>{state.errorCode ?? "FAILED"}</strong> {state.errorMessage}
        </div>
      )}
    </section>
  );
}

function LayerRow({ layer }: { layer: LayerState }) {
  const percent = layerPercent(layer);
  const bytes =
    layer.total && layer.total > 0
      ? `${formatBytes(layer.current ?? 0)} / ${formatBytes(layer.total)}`
      : layer.current
        ? formatBytes(layer.current)
        : "";
  return (
    <div className={`res-layer${percent === 100 ? " res-layer-done" : ""}`} role="listitem" data-testid="pull-layer" data-layer={layer.id}>
      <span className="mono">{layer.id}</span>
      <span>{layer.status}</span>
      <div
        className={`progress${percent === null ? " indeterminate" : ""}`}
        role="progressbar"
        aria-label={`Layer ${layer.id}`}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={percent === null ? undefined : Math.round(percent)}
      >
        <div style={{ width: `${percent ?? 100}%` }} />
      </div>
      <span className="muted mono">{bytes}</span>
    </div>
  );
}
