import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { api } from "../../api/client";
import type { ContainerDetail, UserView } from "../../api/types";
import { useAuth } from "../../stores/auth";
import { ContainerDetailPage } from "./ContainerDetailPage";
import { allowedActions } from "./ContainerActions";
import { actorLabel, eventLabel, eventSummary } from "./HistoryTimeline";

const detail = (status: string): ContainerDetail => ({
  host: "remote-1",
  id: "0b0182242a778b7a0955718b6e94fbd1ab0dfddb6e585b375cfc366c7aef7a62",
  name: "web",
  inspect: {
    Id: "0b0182242a778b7a0955718b6e94fbd1ab0dfddb6e585b375cfc366c7aef7a62",
    Name: "/web",
    Path: "sh",
    Args: ["-c", "echo hi"],
    Created: "2026-01-01T00:00:00Z",
    State: { Status: status, Running: status === "running" },
    Config: { Image: "busybox:latest", Env: ["A=1"], Labels: { tier: "front" } },
    HostConfig: { RestartPolicy: { Name: "always" } },
    NetworkSettings: { Ports: { "80/tcp": [{ HostIp: "0.0.0.0", HostPort: "8080" }] }, Networks: {} },
  } as unknown as ContainerDetail["inspect"],
  protection: null,
  platform: null,
});

const PROTECTED = "this container is labelled dcp.protected=true";
const guarded = (status: string): ContainerDetail => ({ ...detail(status), protection: PROTECTED });

function signIn(role: string) {
  useAuth.setState({ status: "signed-in", user: { username: "u", role } as unknown as UserView });
}

const MUTATING = ["Start", "Stop", "Restart", "Pause", "Unpause", "Kill", "Rename", "Remove"];

beforeEach(() => {
  window.history.replaceState(null, "", "/containers/web?host=remote-1");
});

afterEach(() => {
  cleanup();
  vi.restoreAllMocks();
});

describe("ContainerDetailPage", () => {
  it("shows a viewer no mutating control and no terminal", async () => {
    signIn("viewer");
    const get = vi.spyOn(api, "get").mockResolvedValue(detail("running"));
    render(<ContainerDetailPage id="web" />);
    await screen.findByRole("heading", { name: "web" });
    expect(get).toHaveBeenCalledWith("/api/v1/containers/web", { host: "remote-1" }, expect.anything());
    for (const name of MUTATING) expect(screen.queryByRole("button", { name })).toBeNull();
    expect(screen.queryByRole("tab", { name: "Terminal" })).toBeNull();
    expect(screen.getByRole("tab", { name: "Logs" })).toBeTruthy();
    // The overview's facts.
    expect(screen.getByText("sh -c \"echo hi\"")).toBeTruthy();
    expect(screen.getByText("0.0.0.0:8080 → 80/tcp")).toBeTruthy();
    expect(screen.getByText("A=1")).toBeTruthy();
    expect(screen.getByText("always")).toBeTruthy();
  });

  it("gives an operator the actions for the state, and runs them on the container's host", async () => {
    signIn("operator");
    vi.spyOn(api, "get").mockResolvedValue(detail("running"));
    const post = vi.spyOn(api, "post").mockResolvedValue({ operation_id: "x", operation: "stop", status: "succeeded", host: "remote-1", container_id: "0b01" });
    render(<ContainerDetailPage id="web" />);
    await screen.findByRole("heading", { name: "web" });
    expect(screen.getByRole("tab", { name: "Terminal" })).toBeTruthy();
    const button = (name: string) => screen.getByRole("button", { name }) as HTMLButtonElement;
    expect(button("Start").disabled).toBe(true);
    expect(button("Stop").disabled).toBe(false);
    expect(button("Pause").disabled).toBe(false);
    expect(screen.queryByRole("button", { name: "Unpause" })).toBeNull();
    fireEvent.click(button("Stop"));
    await waitFor(() => expect(post).toHaveBeenCalledWith("/api/v1/containers/web/stop", {}, { host: "remote-1" }));
  });

  it("keeps a protected container's operations, logs and terminal from an operator", async () => {
    signIn("operator");
    vi.spyOn(api, "get").mockResolvedValue(guarded("running"));
    render(<ContainerDetailPage id="web" />);
    await screen.findByRole("heading", { name: "web" });
    expect(screen.getByTestId("container-protection").textContent).toContain(PROTECTED);
    for (const name of MUTATING) expect(screen.queryByRole("button", { name })).toBeNull();
    expect(screen.queryByRole("tab", { name: "Terminal" })).toBeNull();
    expect(screen.queryByRole("tab", { name: "Logs" })).toBeNull();
  });

  it("asks an admin for a reason before an operation on a protected container, and sends it", async () => {
    signIn("admin");
    vi.spyOn(api, "get").mockResolvedValue(guarded("running"));
    const post = vi.spyOn(api, "post").mockResolvedValue({ operation_id: "x", operation: "restart", status: "succeeded", host: "remote-1", container_id: "0b01" });
    render(<ContainerDetailPage id="web" />);
    await screen.findByRole("heading", { name: "web" });
    fireEvent.click(screen.getByRole("button", { name: "Restart" }));
    const dialog = await screen.findByRole("dialog");
    const submit = () => Array.from(dialog.querySelectorAll("button")).find((b) => b.textContent === "Restart") as HTMLButtonElement;
    expect(submit().disabled).toBe(true);
    expect(post).not.toHaveBeenCalled();
    fireEvent.change(screen.getByLabelText("Reason"), { target: { value: "rotating its certificate" } });
    fireEvent.click(submit());
    await waitFor(() =>
      expect(post).toHaveBeenCalledWith("/api/v1/containers/web/restart", { reason: "rotating its certificate" }, { host: "remote-1" }),
    );
  });

  it("removes with the options the API takes", async () => {
    signIn("admin");
    vi.spyOn(api, "get").mockResolvedValue(detail("exited"));
    const del = vi.spyOn(api, "delete").mockResolvedValue({});
    render(<ContainerDetailPage id="web" />);
    await screen.findByRole("heading", { name: "web" });
    fireEvent.click(screen.getByRole("button", { name: "Remove" }));
    const dialog = screen.getByRole("dialog");
    fireEvent.click(screen.getByLabelText(/Force/));
    fireEvent.click(screen.getByLabelText(/anonymous volumes/));
    fireEvent.click(dialog.querySelector(".modal-footer button.danger")!);
    await waitFor(() => expect(del).toHaveBeenCalledWith("/api/v1/containers/web", { host: "remote-1", force: true, volumes: true }));
    await waitFor(() => expect(window.location.pathname).toBe("/containers"));
  });
});

describe("allowedActions", () => {
  it("follows the container's state", () => {
    expect(allowedActions("running")).toEqual({ start: false, stop: true, restart: true, pause: true, unpause: false, kill: true });
    expect(allowedActions("paused")).toMatchObject({ start: false, unpause: true, pause: false, stop: true });
    expect(allowedActions("exited")).toEqual({ start: true, stop: false, restart: true, pause: false, unpause: false, kill: false });
  });
});

describe("history helpers", () => {
  it("names events, actors and their facts", () => {
    expect(eventLabel("ContainerStartRequested")).toBe("Start requested");
    expect(eventLabel("OperationFailed")).toBe("Operation failed");
    expect(actorLabel({ actor_username: null, actor_kind: "docker", actor_id: null })).toBe("docker");
    expect(actorLabel({ actor_username: "ann", actor_kind: null, actor_id: "x" })).toBe("ann");
    expect(eventSummary({ op_id: "1", signal: "SIGKILL", requested_at: "t" })).toEqual(["signal=SIGKILL"]);
    expect(eventSummary({ operation: "stop", code: "CONFLICT", message: "already stopped" })).toEqual([
      "operation=stop",
      "code=CONFLICT",
      "already stopped",
    ]);
    expect(eventSummary({ action: "die", exit_code: 137, attributes: { a: "b" } })).toEqual(["die", "exit_code=137"]);
  });
});
