import { render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ContainerView } from "../api/types";
import { useAuth } from "../stores/auth";
import { filterContainers } from "./containerFilter";
import { inBatches } from "./ContainersPage";
import { CreateContainerPage } from "./CreateContainerPage";
import { passwordProblem } from "./PasswordChangePage";

function signInAs(role: string) {
  useAuth.setState({
    status: "signed-in",
    accessToken: "t",
    user: { id: "u", username: role, email: "", full_name: "", role, is_active: true, must_change_password: false, created_at: "", updated_at: "", version: 1 },
  });
}

afterEach(() => vi.unstubAllGlobals());

describe("create container form", () => {
  it("shows host access options to admins only, and nothing to viewers", () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(async (url: string) => new Response(JSON.stringify(url.startsWith("/api/v1/hosts") ? [] : { items: [], hosts: [] }), { status: 200 })),
    );
    signInAs("admin");
    const admin = render(<CreateContainerPage />);
    expect(screen.getByText("Host access (admins only)")).toBeTruthy();
    expect(screen.getByLabelText("Reason")).toBeTruthy();
    admin.unmount();

    signInAs("operator");
    const operator = render(<CreateContainerPage />);
    expect(screen.queryByText("Host access (admins only)")).toBeNull();
    expect(screen.queryByLabelText("Reason")).toBeNull();
    expect(screen.getByRole("button", { name: "Create" })).toBeTruthy();
    operator.unmount();

    signInAs("viewer");
    render(<CreateContainerPage />);
    expect(screen.queryByRole("button", { name: "Create" })).toBeNull();
    expect(screen.getByText("Viewers cannot create containers.")).toBeTruthy();
  });
});

describe("password change", () => {
  it("checks length, change and confirmation before sending", () => {
    expect(passwordProblem("old-password", "short", "short")).toContain("at least 8");
    expect(passwordProblem("same-password", "same-password", "same-password")).toContain("differ from the current");
    expect(passwordProblem("old-password", "new-password", "new-passwort")).toContain("differ");
    expect(passwordProblem("old-password", "new-password", "new-password")).toBeNull();
  });
});

describe("container filter", () => {
  const c = (name: string, state: string, host = "local", labels: Record<string, string> = {}): ContainerView => ({
    host,
    id: `${name}-id`,
    short_id: name,
    name,
    image: `img/${name}`,
    image_id: "",
    command: "",
    state,
    status: "",
    ports: [],
    labels,
  });
  const items = [c("web", "exited"), c("db", "running", "edge"), c("cache", "running", "local", { tier: "backend" })];

  it("puts running containers first and matches every word", () => {
    expect(filterContainers(items, { text: "", state: "", host: "" }).map((x) => x.name)).toEqual(["cache", "db", "web"]);
    expect(filterContainers(items, { text: "TIER=backend", state: "", host: "" }).map((x) => x.name)).toEqual(["cache"]);
    expect(filterContainers(items, { text: "img run", state: "", host: "" })).toHaveLength(0);
    expect(filterContainers(items, { text: "", state: "running", host: "edge" }).map((x) => x.name)).toEqual(["db"]);
  });
});

describe("bulk actions", () => {
  it("run a few at a time and report each outcome in order", async () => {
    let running = 0;
    let most = 0;
    const results = await inBatches([1, 2, 3, 4, 5, 6, 7], 3, async (n) => {
      running++;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, 5));
      running--;
      if (n === 4) throw new Error("four failed");
      return n * 10;
    });
    expect(most).toBe(3);
    expect(results.map((r) => (r.status === "fulfilled" ? r.value : (r.reason as Error).message))).toEqual([10, 20, 30, "four failed", 50, 60, 70]);
  });
});
