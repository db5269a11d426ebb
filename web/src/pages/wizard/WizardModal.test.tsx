import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import type { WizardState } from "../../api/types";
import { fakeServer } from "../../test/fakeServer";
import { WizardModal } from "./WizardModal";

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

const FP = "SHA256:2npF6+/Mxp6zNk7/T3JpnYyls8YnQWMALVkbMm5xGoU";
const NAMES = ["connection", "authentication", "ssh_test", "docker_test", "confirmation"];

function wizardAt(current: number, steps: Partial<Record<string, { data?: unknown; test?: unknown }>> = {}): WizardState {
  return {
    id: "w-1",
    wizard_type: "ssh_host_setup",
    metadata: {},
    status: "in_progress",
    current_step: current,
    total_steps: 5,
    step_name: NAMES[current]!,
    steps: NAMES.map((name, i) => ({ name, tested: i === 2 || i === 3, data: steps[name]?.data ?? null, test: steps[name]?.test ?? null })),
  } as WizardState;
}

const noop = () => {};

describe("WizardModal", () => {
  it("submits the connection as host_url, then moves on", async () => {
    const connection = { connection_name: "web-1", host_url: "ssh://ops@web1.internal:2200" };
    const calls = fakeServer({
      "GET /api/v1/wizards/w-1": [wizardAt(0)],
      "PUT /api/v1/wizards/w-1/step": [wizardAt(0, { connection: { data: connection } })],
      "POST /api/v1/wizards/w-1/next": [wizardAt(1, { connection: { data: connection } })],
    });
    render(<WizardModal wizardId="w-1" onClose={noop} onCancelled={noop} onCompleted={noop} />);
    await waitFor(() => expect(screen.getByRole("dialog", { name: "SSH Host Setup" })).toBeTruthy());
    await waitFor(() => expect(screen.getByTestId("wizard-step-indicator").textContent).toContain("Step 1 of 5"));
    const next = screen.getByRole("button", { name: "Next" }) as HTMLButtonElement;
    expect(next.disabled).toBe(true);
    expect((screen.getByRole("button", { name: "Previous" }) as HTMLButtonElement).disabled).toBe(true);

    const set = (name: string, value: string) =>
      fireEvent.change(document.querySelector(`input[name="${name}"]`)!, { target: { value } });
    set("connection_name", "web-1");
    set("hostname", "web1.internal");
    set("port", "2200");
    set("username", "ops");
    expect(next.disabled).toBe(false);
    fireEvent.click(next);

    await waitFor(() => expect(screen.getByTestId("wizard-step-indicator").textContent).toContain("Step 2 of 5"));
    const put = calls.find((c) => c.method === "PUT");
    expect(put?.body).toEqual({ step_data: connection });
    expect(calls.map((c) => `${c.method} ${c.url}`)).toEqual([
      "GET /api/v1/wizards/w-1",
      "PUT /api/v1/wizards/w-1/step",
      "POST /api/v1/wizards/w-1/next",
    ]);
    expect(document.querySelector('input[name="method"][value="generated_key"]')).toBeTruthy();
  });

  it("does not resubmit a stored password, and shows the server's refusal", async () => {
    const base = { connection: { data: { connection_name: "pw", host_url: "ssh://u@h:22" } } };
    const stored = { ...base, authentication: { data: { method: "password", secret_id: "s-1" } } };
    const calls = fakeServer({
      "GET /api/v1/wizards/w-1": [wizardAt(1, stored)],
      "POST /api/v1/wizards/w-1/next": [
        new Response(
          JSON.stringify({ error: { code: "CONFLICT", message: "step 'authentication' is not complete", field: null, details: { step: "authentication" } } }),
          { status: 409 },
        ),
      ],
    });
    render(<WizardModal wizardId="w-1" onClose={noop} onCancelled={noop} onCompleted={noop} />);
    await waitFor(() => expect(screen.getByText(/A password is saved/)).toBeTruthy());
    fireEvent.click(screen.getByRole("button", { name: "Next" }));
    await waitFor(() => expect(screen.getByText("step 'authentication' is not complete")).toBeTruthy());
    expect(calls.some((c) => c.method === "PUT")).toBe(false);
  });

  it("with a password: confirm the fingerprint, run the test again, then Next", async () => {
    const base = {
      connection: { data: { connection_name: "pw", host_url: "ssh://dcp-ssh@127.0.0.1:52222" } },
      authentication: { data: { method: "password", secret_id: "s-1" } },
    };
    const probe = { passed: true, details: { algorithm: "ssh-ed25519", authenticated: false, fingerprint: FP, host_key: "ssh-ed25519 AAAA" } };
    const login = { passed: true, details: { ...probe.details, authenticated: true } };
    const probed = wizardAt(2, { ...base, ssh_test: { test: probe } });
    const confirmed = wizardAt(2, { ...base, ssh_test: { test: probe, data: { confirm_fingerprint: FP } } });
    const loggedIn = wizardAt(2, { ...base, ssh_test: { test: login, data: { confirm_fingerprint: FP } } });
    const calls = fakeServer({
      "GET /api/v1/wizards/w-1": [wizardAt(2, base)],
      "POST /api/v1/wizards/w-1/test": [
        { passed: true, details: probe.details, wizard: probed },
        { passed: true, details: login.details, wizard: loggedIn },
      ],
      "PUT /api/v1/wizards/w-1/step": [confirmed],
      "POST /api/v1/wizards/w-1/next": [wizardAt(3, { ...base, ssh_test: { test: login, data: { confirm_fingerprint: FP } } })],
    });
    render(<WizardModal wizardId="w-1" onClose={noop} onCancelled={noop} onCompleted={noop} />);
    await waitFor(() => expect(screen.getByText(/the test runs twice/)).toBeTruthy());
    fireEvent.click(screen.getByRole("button", { name: "Run test" }));
    await waitFor(() => expect(screen.getByTestId("host-key-fingerprint").textContent).toBe(FP));
    expect(calls.find((c) => c.url.endsWith("/test"))?.body).toEqual({ test_type: "ssh_connection" });
    expect(screen.getByTestId("host-key-type").textContent).toBe("ssh-ed25519");
    expect(screen.getByTestId("ssh-test-again").textContent).toMatch(/run the test again/);
    const next = screen.getByRole("button", { name: "Next" }) as HTMLButtonElement;
    expect(next.disabled).toBe(true);

    fireEvent.click(document.querySelector('input[name="confirm_fingerprint"]')!);
    await waitFor(() => expect((document.querySelector('input[name="confirm_fingerprint"]') as HTMLInputElement).checked).toBe(true));
    // The box is ticked at once; the confirmation is saved by a request that may still run.
    await waitFor(() => expect(calls.find((c) => c.method === "PUT")?.body).toEqual({ step_data: { confirm_fingerprint: FP } }));
    await waitFor(() => expect(screen.getByTestId("ssh-test-again").textContent).toMatch(/Now run the test again/));
    expect(next.disabled).toBe(true);

    fireEvent.click(screen.getByRole("button", { name: "Run test" }));
    await waitFor(() => expect(screen.queryByTestId("ssh-test-again")).toBeNull());
    expect(next.disabled).toBe(false);
    fireEvent.click(next);
    await waitFor(() => expect(screen.getByTestId("wizard-step-indicator").textContent).toContain("Step 4 of 5"));
  });

  it("explains a failed test by its kind", async () => {
    const base = {
      connection: { data: { connection_name: "x", host_url: "ssh://u@h:1" } },
      authentication: { data: { method: "password", secret_id: "s-1" } },
    };
    const failed = { passed: false, details: { error: "connection refused", error_kind: "unreachable" } };
    fakeServer({ "GET /api/v1/wizards/w-1": [wizardAt(2, { ...base, ssh_test: { test: failed } })] });
    render(<WizardModal wizardId="w-1" onClose={noop} onCancelled={noop} onCompleted={noop} />);
    await waitFor(() => expect(screen.getByTestId("test-failure")).toBeTruthy());
    const text = screen.getByTestId("test-failure").textContent ?? "";
    expect(text).toContain("connection refused");
    expect(text).toContain("could not be reached");
  });

  it("Finish submits the tags and completes", async () => {
    const onCompleted = vi.fn();
    const completion = { wizard: { ...wizardAt(4), status: "completed" }, result: { host_id: "w-1", check: { host: "w-1", reachable: true, latency_ms: 3, ssh_handshakes: 1 } } };
    const calls = fakeServer({
      "GET /api/v1/wizards/w-1": [wizardAt(4, { confirmation: { data: { tags: ["old"] } } })],
      "PUT /api/v1/wizards/w-1/step": [wizardAt(4)],
      "POST /api/v1/wizards/w-1/complete": [completion],
    });
    render(<WizardModal wizardId="w-1" onClose={noop} onCancelled={noop} onCompleted={onCompleted} />);
    await waitFor(() => expect((document.querySelector('input[name="tags"]') as HTMLInputElement).value).toBe("old"));
    fireEvent.change(document.querySelector('input[name="tags"]')!, { target: { value: "prod, eu-west" } });
    fireEvent.click(screen.getByRole("button", { name: "Finish" }));
    await waitFor(() => expect(onCompleted).toHaveBeenCalledTimes(1));
    expect(calls.find((c) => c.method === "PUT")?.body).toEqual({ step_data: { tags: ["prod", "eu-west"] } });
    expect(calls.at(-1)?.url).toBe("/api/v1/wizards/w-1/complete");
  });

  it("Cancel asks first, then cancels the wizard", async () => {
    const onCancelled = vi.fn();
    const calls = fakeServer({
      "GET /api/v1/wizards/w-1": [wizardAt(0)],
      "POST /api/v1/wizards/w-1/cancel": [{ ...wizardAt(0), status: "cancelled" }],
    });
    render(<WizardModal wizardId="w-1" onClose={noop} onCancelled={onCancelled} onCompleted={noop} />);
    await waitFor(() => expect(screen.getByRole("button", { name: "Cancel" })).toBeTruthy());
    fireEvent.click(screen.getByRole("button", { name: "Cancel" }));
    expect(calls.some((c) => c.url.endsWith("/cancel"))).toBe(false);
    fireEvent.click(screen.getByRole("button", { name: "Cancel setup" }));
    await waitFor(() => expect(onCancelled).toHaveBeenCalledTimes(1));
  });
});
