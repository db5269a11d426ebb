// The dialogs creating a network or a volume against a fake API: the body they send, the
// local checks, and where an API error naming a field shows (under the field when the
// dialog shows it, in the banner otherwise).
import { afterEach, describe, expect, it, vi } from "vitest";
import { fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { generalError } from "../../components/Field";
import { ApiError } from "../../api/client";
import { useAuth } from "../../stores/auth";
import { fakeServer } from "../../test/fakeServer";
import { VolumesPage } from "../VolumesPage";
import { CreateNetworkDialog } from "./CreateNetworkDialog";

afterEach(() => vi.unstubAllGlobals());

const hostOptions = [{ value: "local", label: "local" }];

function apiError(status: number, code: string, message: string, field: string | null) {
  return new Response(JSON.stringify({ error: { code, message, details: {}, field }, status: "error", request_id: "r-1" }), {
    status,
    headers: { "content-type": "application/json" },
  });
}

function openNetworkDialog(props: { onClose?: () => void; onCreated?: () => void } = {}) {
  render(<CreateNetworkDialog admin hostOptions={hostOptions} defaultHost="local" onClose={props.onClose ?? (() => {})} onCreated={props.onCreated ?? (() => {})} />);
  return screen.getByRole("dialog", { name: "Create network" });
}

describe("generalError", () => {
  it("leaves for the banner an error naming no shown field", () => {
    const onSubnet = new ApiError(400, "VALIDATION_ERROR", "bad subnet", "subnet");
    const unfielded = new ApiError(500, "INTERNAL", "boom", null);
    expect(generalError(onSubnet, ["name", "subnet"])).toBeNull();
    expect(generalError(onSubnet, ["name"])).toBe(onSubnet);
    expect(generalError(unfielded, ["name"])).toBe(unfielded);
    expect(generalError(null, ["name"])).toBeNull();
  });
});

describe("CreateNetworkDialog", () => {
  it("checks locally, then sends the network with the privileged reason", async () => {
    const calls = fakeServer({ "POST /api/v1/networks": [{}] });
    const onCreated = vi.fn();
    const onClose = vi.fn();
    const dialog = openNetworkDialog({ onCreated, onClose });
    fireEvent.change(within(dialog).getByLabelText("Gateway"), { target: { value: "10.0.0.1" } });
    fireEvent.click(within(dialog).getByLabelText(/Allow privileged options/));
    fireEvent.click(within(dialog).getByRole("button", { name: "Create" }));
    expect(await within(dialog).findByText("a name is required")).toBeTruthy();
    expect(within(dialog).getByText("a gateway needs a subnet")).toBeTruthy();
    expect(within(dialog).getByText("say why (recorded with the request)")).toBeTruthy();
    expect(calls).toHaveLength(0);

    fireEvent.change(within(dialog).getByLabelText("Name"), { target: { value: " backend " } });
    fireEvent.change(within(dialog).getByLabelText("Subnet"), { target: { value: "10.0.0.0/24" } });
    fireEvent.change(within(dialog).getByLabelText("Labels"), { target: { value: "team=web" } });
    fireEvent.click(within(dialog).getByLabelText("Attachable"));
    fireEvent.change(within(dialog).getByLabelText("Reason"), { target: { value: "routed lab" } });
    fireEvent.click(within(dialog).getByRole("button", { name: "Create" }));
    await waitFor(() => expect(onClose).toHaveBeenCalled());
    expect(onCreated).toHaveBeenCalled();
    expect(calls[0]!.url).toBe("/api/v1/networks?host=local");
    expect(calls[0]!.body).toEqual({
      name: "backend",
      driver: "bridge",
      subnet: "10.0.0.0/24",
      gateway: "10.0.0.1",
      attachable: true,
      labels: { team: "web" },
      allow_privileged: true,
      reason: "routed lab",
    });
  });

  it("shows an error about a shown field under it, and one about a field it does not show in the banner", async () => {
    fakeServer({
      "POST /api/v1/networks": [
        apiError(400, "VALIDATION_ERROR", "the subnet overlaps another network", "subnet"),
        apiError(403, "FORBIDDEN", "privileged options need an admin", "allow_privileged"),
      ],
    });
    const dialog = openNetworkDialog();
    fireEvent.change(within(dialog).getByLabelText("Name"), { target: { value: "backend" } });
    fireEvent.click(within(dialog).getByRole("button", { name: "Create" }));
    expect(await within(dialog).findByText("the subnet overlaps another network")).toBeTruthy();
    expect(within(dialog).queryByRole("alert")).toBeNull();

    fireEvent.click(within(dialog).getByRole("button", { name: "Create" }));
    const banner = await within(dialog).findByRole("alert");
    expect(banner.textContent).toContain("FORBIDDEN");
    expect(banner.textContent).toContain("privileged options need an admin");
  });
});

describe("CreateVolumeDialog", () => {
  it("sends the driver options and shows an error about the volume's privileged flag in the banner", async () => {
    const calls = fakeServer({
      "GET /api/v1/volumes": [{ items: [], hosts: [] }],
      "GET /api/v1/hosts": [[]],
      "POST /api/v1/volumes": [apiError(403, "FORBIDDEN", "tmpfs needs privileged options", "allow_privileged")],
    });
    const user = { id: "u", username: "op", email: "", full_name: "", role: "operator", is_active: true, must_change_password: false, created_at: "", updated_at: "", version: 1 };
    useAuth.setState({ status: "signed-in", accessToken: "t", user });
    render(<VolumesPage />);
    fireEvent.click(await screen.findByRole("button", { name: "Create volume" }));
    const dialog = await screen.findByRole("dialog", { name: "Create volume" });
    fireEvent.change(within(dialog).getByLabelText("Name"), { target: { value: "scratch" } });
    fireEvent.change(within(dialog).getByLabelText("Driver options"), { target: { value: "type" } });
    fireEvent.click(within(dialog).getByRole("button", { name: "Create" }));
    expect(await within(dialog).findByText("line 1: a driver option is key=value")).toBeTruthy();

    fireEvent.change(within(dialog).getByLabelText("Driver options"), { target: { value: "type=tmpfs" } });
    fireEvent.click(within(dialog).getByRole("button", { name: "Create" }));
    const banner = await within(dialog).findByRole("alert");
    expect(banner.textContent).toContain("tmpfs needs privileged options");
    const post = calls.find((c) => c.method === "POST")!;
    expect(post.body).toEqual({ name: "scratch", driver: "local", driver_opts: { type: "tmpfs" } });
  });
});
