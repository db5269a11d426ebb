// The audit and users pages against a stubbed API: filters become the query, "Load more"
// follows the cursor, exports download with the same filters, and a 409 shows its message.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { AuditPage } from "../AuditPage";
import { UsersPage } from "../UsersPage";

type Handler = (url: URL, init: RequestInit) => Response | Promise<Response>;

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

let handler: Handler;
const calls: { url: URL; init: RequestInit }[] = [];

beforeEach(() => {
  calls.length = 0;
  vi.stubGlobal(
    "fetch",
    vi.fn(async (input: string, init: RequestInit = {}) => {
      const url = new URL(input, "http://dcp.test");
      calls.push({ url, init });
      return handler(url, init);
    }),
  );
});

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

function entry(seq: number, action: string) {
  return {
    seq,
    id: `00000000-0000-0000-0000-${String(seq).padStart(12, "0")}`,
    global_position: seq * 2,
    user_id: null,
    username: "admin",
    role: "admin",
    action,
    resource_type: "container",
    resource_id: `c${seq}`,
    details: { seq },
    ip_address: "127.0.0.1",
    user_agent: "test",
    request_id: `r${seq}`,
    created_at: "2026-11-26T10:00:00Z",
  };
}

describe("AuditPage", () => {
  it("filters, pages with the cursor, shows an entry and exports with the filters", async () => {
    handler = (url) => {
      if (url.pathname === "/api/v1/audit-logs" && url.searchParams.get("format") === "csv") {
        return new Response("seq,action\n2,container.start\n", { headers: { "content-type": "text/csv" } });
      }
      if (url.pathname === "/api/v1/audit-logs" && url.searchParams.get("cursor") === "2") {
        return json({ items: [entry(1, "container.start")], next_cursor: null });
      }
      if (url.pathname === "/api/v1/audit-logs") {
        const action = url.searchParams.get("action");
        return json({ items: action ? [entry(2, action)] : [entry(3, "auth.login")], next_cursor: action ? "2" : null });
      }
      return json({ error: { code: "NOT_FOUND", message: "no route" } }, 404);
    };
    const created = vi.fn(() => "blob:audit");
    URL.createObjectURL = created;
    URL.revokeObjectURL = vi.fn();
    const clicked = vi.spyOn(HTMLAnchorElement.prototype, "click").mockImplementation(() => {});

    render(<AuditPage />);
    expect(await screen.findByText("auth.login")).toBeTruthy();

    fireEvent.change(screen.getByLabelText("Action"), { target: { value: "container.start" } });
    fireEvent.change(screen.getByLabelText("Since"), { target: { value: "2026-11-26T15:04" } });
    fireEvent.click(screen.getByRole("button", { name: "Apply filters" }));
    // The filtered page replaces the first one (both have one row).
    await waitFor(() => expect(screen.getAllByTestId("audit-row").map((row) => row.textContent).join()).toContain("container.start"));
    expect(screen.getAllByTestId("audit-row")).toHaveLength(1);
    const first = calls.filter((c) => c.url.searchParams.get("action") === "container.start")[0]!;
    expect(first.url.searchParams.get("since")).toBe(new Date(2026, 10, 26, 15, 4).toISOString());

    fireEvent.click(screen.getByRole("button", { name: "Load more" }));
    await waitFor(() => expect(screen.getAllByTestId("audit-row")).toHaveLength(2));
    expect(screen.queryByRole("button", { name: "Load more" })).toBeNull();
    const more = calls.find((c) => c.url.searchParams.get("cursor") === "2")!;
    expect(more.url.searchParams.get("action")).toBe("container.start");

    fireEvent.click(screen.getAllByTestId("audit-row")[0]!);
    const dialog = await screen.findByRole("dialog", { name: "Audit entry 2" });
    expect(within(dialog).getByTestId("audit-detail-json").textContent).toContain('"request_id": "r2"');
    fireEvent.click(within(dialog).getByRole("button", { name: "Close" }));

    fireEvent.click(screen.getByRole("button", { name: "Export CSV" }));
    await waitFor(() => expect(clicked).toHaveBeenCalled());
    const exported = calls.find((c) => c.url.searchParams.get("format") === "csv")!;
    expect(exported.url.searchParams.get("action")).toBe("container.start");
    expect(exported.url.searchParams.get("cursor")).toBeNull();
    const blob = (created.mock.calls[0] as unknown as [Blob])[0];
    expect(await blob.text()).toContain("container.start");
    const anchor = clicked.mock.instances[0] as unknown as HTMLAnchorElement;
    expect(anchor.download).toMatch(/^dcp-audit-log-\d{8}-\d{4}\.csv$/);
  });

  it("refuses a user id that is not a UUID without asking the server", async () => {
    handler = () => json({ items: [], next_cursor: null });
    render(<AuditPage />);
    await screen.findByText("The audit log is empty.");
    const before = calls.length;
    fireEvent.change(screen.getByLabelText("User id"), { target: { value: "alice" } });
    fireEvent.click(screen.getByRole("button", { name: "Apply filters" }));
    expect(await screen.findByText("a user id is a UUID")).toBeTruthy();
    expect(calls.length).toBe(before);
  });

  it("shows the chain check's result", async () => {
    handler = (url) =>
      url.pathname === "/api/v1/audit-logs/verify"
        ? json({ valid: true, checked: 12, last_hash: "abc", first_invalid: null })
        : json({ items: [], next_cursor: null });
    render(<AuditPage />);
    fireEvent.click(screen.getByRole("button", { name: "Verify chain" }));
    const result = await screen.findByTestId("chain-result");
    expect(result.textContent).toContain("intact");
    expect(result.textContent).toContain("12 entries checked");
  });
});

describe("UsersPage", () => {
  const user = {
    id: "01a219dd-7e73-71af-a602-0c544c36c948",
    username: "alice",
    email: "alice@example.com",
    full_name: "Alice",
    role: "operator",
    is_active: true,
    must_change_password: false,
    created_at: "2026-11-26T10:00:00Z",
    updated_at: "2026-11-26T10:00:00Z",
    last_login_at: null,
    version: 2,
  };

  it("shows a 409 on create under the field it names, and sends a valid body", async () => {
    handler = (url, init) => {
      if (url.pathname === "/api/v1/users" && init.method === "POST") {
        return json({ error: { code: "CONFLICT", message: "the username is taken", field: "username" } }, 409);
      }
      return json({ items: [user], total: 1, limit: 50, offset: 0 });
    };
    render(<UsersPage />);
    expect(await screen.findByText("alice")).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Create user" }));
    const dialog = await screen.findByRole("dialog", { name: "Create user" });
    fireEvent.change(within(dialog).getByLabelText("Username"), { target: { value: "alice" } });
    fireEvent.change(within(dialog).getByLabelText("Email"), { target: { value: "a2@example.com" } });
    fireEvent.change(within(dialog).getByLabelText("Full name"), { target: { value: "Alice Two" } });
    fireEvent.change(within(dialog).getByLabelText("Role"), { target: { value: "viewer" } });
    fireEvent.change(within(dialog).getByLabelText(/^Password/), { target: { value: "long-enough-1" } });
    fireEvent.click(within(dialog).getByRole("button", { name: "Create" }));
    await waitFor(() => expect(within(dialog).getAllByText(/the username is taken/).length).toBeGreaterThan(0));
    expect(within(dialog).getByRole("alert").textContent).toContain("CONFLICT");
    const post = calls.find((c) => c.init.method === "POST")!;
    expect(JSON.parse(String(post.init.body))).toEqual({
      username: "alice",
      email: "a2@example.com",
      full_name: "Alice Two",
      role: "viewer",
      password: "long-enough-1",
      must_change_password: true,
    });
  });

  it("edits with a PATCH of what changed, and searches with q", async () => {
    handler = (_url, init) => {
      if (init.method === "PATCH") return json({ ...user, role: "viewer", version: 3 });
      return json({ items: [user], total: 1, limit: 50, offset: 0 });
    };
    render(<UsersPage />);
    fireEvent.click(await screen.findByRole("button", { name: "Edit user alice" }));
    const dialog = await screen.findByRole("dialog", { name: "Edit user alice" });
    fireEvent.change(within(dialog).getByLabelText("Role"), { target: { value: "viewer" } });
    fireEvent.click(within(dialog).getByRole("button", { name: "Save" }));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    const patch = calls.find((c) => c.init.method === "PATCH")!;
    expect(patch.url.pathname).toBe(`/api/v1/users/${user.id}`);
    expect(JSON.parse(String(patch.init.body))).toEqual({ role: "viewer" });

    fireEvent.change(screen.getByLabelText("Search users"), { target: { value: "ali" } });
    await waitFor(() => expect(calls.some((c) => c.url.searchParams.get("q") === "ali")).toBe(true));
  });
});
