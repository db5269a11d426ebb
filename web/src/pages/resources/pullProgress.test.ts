import { describe, expect, it } from "vitest";
import { initialPullState, layerPercent, pullReducer, type PullAction, type PullState } from "./pullProgress";

const progress = (status: string | null, layers: Record<string, { status: string; current?: number | null; total?: number | null }>): PullAction => ({
  kind: "message",
  message: { type: "progress", operation_id: "op", action: "image.pull", status: "pending", progress: { status, layers } },
});

function run(...actions: PullAction[]): PullState {
  return actions.reduce(pullReducer, initialPullState);
}

describe("pullReducer", () => {
  it("adds layers in the order they first appear", () => {
    const state = run(
      progress("Pulling from dcp-test/busybox", { b: { status: "Pulling fs layer" } }),
      progress("Pulling from dcp-test/busybox", { a: { status: "Waiting" }, b: { status: "Pulling fs layer" } }),
    );
    expect(state.message).toBe("Pulling from dcp-test/busybox");
    expect(state.layers.map((l) => l.id)).toEqual(["b", "a"]);
    expect(state.layers[1]).toEqual({ id: "a", status: "Waiting", current: null, total: null });
    expect(state.status).toBe("pending");
    expect(state.done).toBe(false);
  });

  it("updates a layer's status and bytes", () => {
    const state = run(
      progress(null, { l1: { status: "Downloading", current: 1000, total: 4000 } }),
      progress(null, { l1: { status: "Downloading", current: 3000, total: 4000 } }),
    );
    expect(state.layers).toEqual([{ id: "l1", status: "Downloading", current: 3000, total: 4000 }]);
    expect(layerPercent(state.layers[0]!)).toBe(75);
    const extracted = pullReducer(state, progress(null, { l1: { status: "Pull complete" } }));
    expect(extracted.layers[0]).toEqual({ id: "l1", status: "Pull complete", current: null, total: null });
    expect(layerPercent(extracted.layers[0]!)).toBe(100);
  });

  it("keeps the same state object when nothing changed", () => {
    const state = run(progress("Pulling", { l1: { status: "Downloading", current: 1, total: 2 } }));
    expect(pullReducer(state, progress("Pulling", { l1: { status: "Downloading", current: 1, total: 2 } }))).toBe(state);
  });

  it("completes with success and the final progress", () => {
    const state = run(
      progress(null, { l1: { status: "Downloading", current: 10, total: 20 } }),
      {
        kind: "message",
        message: {
          type: "complete",
          status: "succeeded",
          error_code: null,
          error_message: null,
          progress: { status: "Status: Downloaded newer image", layers: { l1: { status: "Pull complete" } } },
        },
      },
    );
    expect(state.done).toBe(true);
    expect(state.status).toBe("succeeded");
    expect(state.errorCode).toBeNull();
    expect(state.message).toBe("Status: Downloaded newer image");
    expect(state.layers[0]!.status).toBe("Pull complete");
  });

  it("completes with the API's error", () => {
    const state = run(progress(null, {}), {
      kind: "message",
      message: { type: "complete", status: "failed", error_code: "NOT_FOUND", error_message: "manifest unknown", progress: null },
    });
    expect(state.status).toBe("failed");
    expect(state.done).toBe(true);
    expect(state.errorCode).toBe("NOT_FOUND");
    expect(state.errorMessage).toBe("manifest unknown");
    // Progress arriving after the end changes nothing.
    expect(pullReducer(state, progress("late", { x: { status: "Downloading" } }))).toBe(state);
  });

  it("fails when the stream itself fails, once", () => {
    const failed = run({ kind: "stream-error", code: "FORBIDDEN", message: "no access to this task" });
    expect(failed).toMatchObject({ status: "failed", done: true, errorCode: "FORBIDDEN", errorMessage: "no access to this task" });
    const succeeded = run({ kind: "message", message: { type: "complete", status: "succeeded" } });
    expect(pullReducer(succeeded, { kind: "stream-error", code: "X", message: "y" })).toBe(succeeded);
  });

  it("ignores other messages and malformed progress", () => {
    expect(run({ kind: "message", message: { type: "ready" } })).toBe(initialPullState);
    const state = run({ kind: "message", message: { type: "progress", progress: "nonsense" } });
    expect(state).toBe(initialPullState);
  });

  it("has no percentage without a total", () => {
    expect(layerPercent({ id: "x", status: "Waiting", current: null, total: null })).toBeNull();
    expect(layerPercent({ id: "x", status: "Already exists", current: null, total: null })).toBe(100);
  });
});
