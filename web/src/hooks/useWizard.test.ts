import { afterEach, describe, expect, it, vi } from "vitest";
import { act, cleanup, renderHook, waitFor } from "@testing-library/react";
import type { WizardState } from "../api/types";
import { fakeServer } from "../test/fakeServer";
import { startWizard, useWizard, useWizardInUrl, wizardPosition, type WizardDefinition } from "./useWizard";

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
  window.history.replaceState(null, "", "/");
});

// A wizard type other than the SSH host setup: the hook knows none of its steps.
const NAMES = ["source", "check", "review"];

function stateAt(current: number, extra: Partial<WizardState> = {}): WizardState {
  return {
    id: "w-9",
    wizard_type: "stack_deploy",
    metadata: {},
    status: "in_progress",
    current_step: current,
    total_steps: 3,
    step_name: NAMES[current]!,
    steps: NAMES.map((name) => ({ name, tested: name === "check", data: name === "source" ? { repo: "git@x:y" } : null, test: null })),
    ...extra,
  } as WizardState;
}

const STACK: WizardDefinition<{ repo: string }> = {
  type: "stack_deploy",
  title: "Deploy a stack",
  stepTitle: (name) => name,
  tests: { check: "compose_config" },
  fields: ["repo"],
  forms: (wizard) => ({ repo: String((wizard.steps[0]?.data as { repo?: string } | null | undefined)?.repo ?? "") }),
  cancelQuestion: "Cancel?",
  resumeHint: "Resume it later.",
};

function conflict(message: string, field: string | null = null): Response {
  return new Response(JSON.stringify({ error: { code: "CONFLICT", message, field, details: {} } }), { status: 409 });
}

function renderWizard(callbacks = { onCompleted: vi.fn(), onCancelled: vi.fn() }) {
  const hook = renderHook(() => useWizard(STACK, "w-9", callbacks));
  return { ...hook, callbacks };
}

describe("useWizard", () => {
  it("loads the wizard, fills the forms from it, and retries a failed load", async () => {
    fakeServer({ "GET /api/v1/wizards/w-9": [new Response("down", { status: 503 }), stateAt(1)] });
    const { result } = renderWizard();
    expect(result.current.state).toBeNull();
    await waitFor(() => expect(result.current.loadError).toBeTruthy());
    act(() => result.current.retryLoad());
    await waitFor(() => expect(result.current.state?.step_name).toBe("check"));
    expect(result.current.loadError).toBeNull();
    expect(result.current.forms).toEqual({ repo: "git@x:y" });
    expect(result.current.position).toEqual({ step: "check", current: 1, total: 3, first: false, last: false, inProgress: true });
    act(() => result.current.updateForms((f) => ({ ...f, repo: "git@x:z" })));
    expect(result.current.forms).toEqual({ repo: "git@x:z" });
  });

  it("moves on only when the step's data is submitted, and is busy meanwhile", async () => {
    const calls = fakeServer({
      "GET /api/v1/wizards/w-9": [stateAt(0)],
      "PUT /api/v1/wizards/w-9/step": [stateAt(0)],
      "POST /api/v1/wizards/w-9/next": [stateAt(1)],
    });
    const { result } = renderWizard();
    await waitFor(() => expect(result.current.state).not.toBeNull());

    await act(() => result.current.next(async () => false));
    expect(calls.map((c) => c.method)).toEqual(["GET"]);

    let release: () => void = () => {};
    const saved = new Promise<void>((resolve) => (release = resolve));
    let moving: Promise<void> = Promise.resolve();
    act(() => {
      moving = result.current.next(async () => {
        await saved;
        await result.current.submitStep({ repo: "git@x:z" });
        return true;
      });
    });
    expect(result.current.busy).toBe("next");
    release();
    await act(() => moving);
    expect(result.current.busy).toBeNull();
    expect(result.current.position?.step).toBe("check");
    expect(calls.slice(1).map((c) => `${c.method} ${c.url}`)).toEqual(["PUT /api/v1/wizards/w-9/step", "POST /api/v1/wizards/w-9/next"]);
    expect(calls[1]!.body).toEqual({ step_data: { repo: "git@x:z" } });
  });

  it("runs the step's own test, goes back, and keeps the last error until the next task", async () => {
    const calls = fakeServer({
      "GET /api/v1/wizards/w-9": [stateAt(1)],
      "POST /api/v1/wizards/w-9/test": [conflict("the compose file is invalid", "repo"), { passed: true, details: {}, wizard: stateAt(1, { updated_at: "2026-05-01T10:00:00Z" }) }],
      "POST /api/v1/wizards/w-9/previous": [stateAt(0)],
    });
    const { result } = renderWizard();
    await waitFor(() => expect(result.current.state).not.toBeNull());

    await act(() => result.current.test());
    expect(result.current.error).toMatchObject({ code: "CONFLICT", field: "repo" });
    expect(calls.at(-1)?.body).toEqual({ test_type: "compose_config" });
    await act(() => result.current.test());
    expect(result.current.error).toBeNull();
    expect(result.current.state?.updated_at).toBe("2026-05-01T10:00:00Z");

    await act(() => result.current.previous());
    expect(result.current.position).toMatchObject({ step: "source", first: true });
  });

  it("finishes with the completion, after what must be submitted first", async () => {
    const completion = { wizard: stateAt(2, { status: "completed" }), result: { host_id: "h", check: { host: "h", reachable: true, latency_ms: 1, ssh_handshakes: 0 } } };
    const calls = fakeServer({ "GET /api/v1/wizards/w-9": [stateAt(2)], "POST /api/v1/wizards/w-9/complete": [completion] });
    const { result, callbacks } = renderWizard();
    await waitFor(() => expect(result.current.position?.last).toBe(true));

    await act(() => result.current.finish(async () => false));
    expect(callbacks.onCompleted).not.toHaveBeenCalled();
    await act(() => result.current.finish());
    expect(callbacks.onCompleted).toHaveBeenCalledWith(completion);
    expect(result.current.position?.inProgress).toBe(false);
    expect(calls.at(-1)?.url).toBe("/api/v1/wizards/w-9/complete");
  });

  it("asks before cancelling, then cancels", async () => {
    const calls = fakeServer({ "GET /api/v1/wizards/w-9": [stateAt(0)], "POST /api/v1/wizards/w-9/cancel": [stateAt(0, { status: "cancelled" })] });
    const { result, callbacks } = renderWizard();
    await waitFor(() => expect(result.current.state).not.toBeNull());

    act(() => result.current.askToCancel());
    expect(result.current.confirmingCancel).toBe(true);
    act(() => result.current.keepGoing());
    expect(result.current.confirmingCancel).toBe(false);
    act(() => result.current.askToCancel());
    await act(() => result.current.cancel());
    expect(callbacks.onCancelled).toHaveBeenCalledTimes(1);
    expect(result.current.confirmingCancel).toBe(false);
    expect(calls.filter((c) => c.url.endsWith("/cancel"))).toHaveLength(1);
  });
});

describe("starting and resuming", () => {
  it("starts a wizard of the definition's type", async () => {
    const calls = fakeServer({ "POST /api/v1/wizards/start": [stateAt(0)] });
    await expect(startWizard(STACK, { opened_from: "stacks_page" })).resolves.toMatchObject({ id: "w-9" });
    expect(calls[0]!.body).toEqual({ wizard_type: "stack_deploy", metadata: { opened_from: "stacks_page" } });
  });

  it("keeps the open wizard in the URL, beside the page's own query", () => {
    window.history.replaceState(null, "", "/stacks?q=web");
    const { result } = renderHook(() => useWizardInUrl());
    expect(result.current.openId).toBeNull();
    act(() => result.current.show("w-9"));
    expect(window.location.search).toBe("?q=web&wizard=w-9");
    expect(result.current.openId).toBe("w-9");
    act(() => result.current.show(null));
    expect(window.location.pathname + window.location.search).toBe("/stacks?q=web");
    expect(result.current.openId).toBeNull();
  });

  it("knows the first and last steps, and a wizard that is over", () => {
    expect(wizardPosition(stateAt(0))).toMatchObject({ first: true, last: false, inProgress: true });
    expect(wizardPosition(stateAt(2, { status: "failed" }))).toMatchObject({ first: false, last: true, inProgress: false });
    expect(wizardPosition(stateAt(1, { total_steps: 0 })).total).toBe(3);
  });
});
