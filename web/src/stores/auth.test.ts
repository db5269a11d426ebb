import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiClient, ApiError } from "../api/client";
import { createAuthStore } from "./auth";
import { fakeServer } from "../test/fakeServer";
import { useEvents } from "./events";

const user = { id: "u1", username: "admin", email: "admin@localhost", full_name: "", role: "admin", is_active: true, must_change_password: false, created_at: "", updated_at: "", version: 1 };

function tokens(access: string) {
  return { access_token: access, refresh_token: "opaque", token_type: "Bearer", expires_in: 600, user };
}

function json(status: number, body: unknown, headers: Record<string, string> = {}) {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
}

function apiError(status: number, code: string, message: string) {
  return json(status, { error: { code, message, details: {}, field: null }, status: "error", request_id: "req-1" });
}

beforeEach(() => vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] }));
afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe("auth store", () => {
  it("keeps the access token in memory only and sends it as a bearer token", async () => {
    const calls = fakeServer((call) => (call.url.endsWith("/auth/login") ? json(200, tokens("A1")) : json(200, { items: [] })));
    const client = new ApiClient();
    const auth = createAuthStore(client);
    await auth.getState().login("admin", "secret-pass");
    expect(auth.getState()).toMatchObject({ status: "signed-in", accessToken: "A1", user: { username: "admin" } });
    expect(calls[0]!.body).toEqual({ username: "admin", password: "secret-pass" });
    expect(calls[0]!.headers.authorization).toBeUndefined();
    await client.get("/api/v1/containers");
    expect(calls[1]!.headers.authorization).toBe("Bearer A1");
    expect(window.localStorage.length).toBe(0);
    expect(window.sessionStorage.length).toBe(0);
  });

  it("restores a session from the refresh cookie, or shows the login page", async () => {
    fakeServer(() => json(200, tokens("R1")));
    const restored = createAuthStore(new ApiClient());
    await restored.getState().restore();
    expect(restored.getState()).toMatchObject({ status: "signed-in", accessToken: "R1" });

    fakeServer(() => apiError(401, "TOKEN_INVALID", "a refresh token is required"));
    const fresh = createAuthStore(new ApiClient());
    await fresh.getState().restore();
    expect(fresh.getState()).toMatchObject({ status: "signed-out", notice: null });
  });

  it("renews an expired access token once and retries the request", async () => {
    let access = "old";
    const calls = fakeServer((call) => {
      if (call.url.endsWith("/auth/refresh")) {
        access = "new";
        return json(200, tokens("new"));
      }
      if (call.url.endsWith("/auth/login")) return json(200, tokens("old"));
      return call.headers.authorization === `Bearer ${access}` && access === "new" ? json(200, { ok: true }) : apiError(401, "TOKEN_EXPIRED", "the access token has expired");
    });
    const client = new ApiClient();
    const auth = createAuthStore(client);
    await auth.getState().login("admin", "pw");
    await expect(client.get("/api/v1/hosts")).resolves.toEqual({ ok: true });
    expect(calls.map((c) => c.url)).toEqual(["/api/v1/auth/login", "/api/v1/hosts", "/api/v1/auth/refresh", "/api/v1/hosts"]);
    expect(auth.getState().accessToken).toBe("new");
  });

  it("signs out with a notice when the refresh token is refused", async () => {
    fakeServer((call) => {
      if (call.url.endsWith("/auth/login")) return json(200, tokens("A"));
      if (call.url.endsWith("/auth/refresh")) return apiError(401, "TOKEN_INVALID", "the refresh token is invalid or expired");
      return apiError(401, "TOKEN_EXPIRED", "expired");
    });
    const client = new ApiClient();
    const auth = createAuthStore(client);
    await auth.getState().login("admin", "pw");
    useEvents.getState().receive({ event_id: "e1", global_position: 1, type: "UserCreated", event_version: "1", aggregate: { type: "user", id: "u", sequence: 1 }, time: "", actor: {}, data: {} });
    await expect(client.get("/api/v1/hosts")).rejects.toMatchObject({ code: "TOKEN_EXPIRED" });
    expect(auth.getState()).toMatchObject({ status: "signed-out", accessToken: null, notice: "Your session has ended. Please sign in again." });
    // What this user could see is not left for the next one in the tab.
    expect(useEvents.getState()).toMatchObject({ events: [], position: 0 });
  });

  it("asks for the refresh token in the HttpOnly cookie only", async () => {
    const calls = fakeServer(() => json(200, tokens("A")));
    const auth = createAuthStore(new ApiClient());
    await auth.getState().login("admin", "pw");
    await auth.getState().renew();
    expect(calls.map((c) => c.headers["x-dcp-refresh-cookie-only"])).toEqual(["1", "1"]);
  });

  it("keeps the session when the server is unavailable during a renewal", async () => {
    fakeServer((call) => {
      if (call.url.endsWith("/auth/login")) return json(200, tokens("A"));
      if (call.url.endsWith("/auth/refresh")) return apiError(503, "DATABASE_UNAVAILABLE", "the database is unavailable");
      return apiError(401, "TOKEN_EXPIRED", "expired");
    });
    const auth = createAuthStore(new ApiClient());
    await auth.getState().login("admin", "pw");
    await expect(auth.getState().renew()).resolves.toBe(false);
    expect(auth.getState().status).toBe("signed-in");
  });

  it("stays signed out when a refresh answers after the logout", async () => {
    let answer: (r: Response) => void = () => {};
    fakeServer((call) => {
      if (call.url.endsWith("/auth/login")) return json(200, tokens("A"));
      if (call.url.endsWith("/auth/logout")) return new Response(null, { status: 204 });
      return new Promise<Response>((resolve) => (answer = resolve));
    });
    const auth = createAuthStore(new ApiClient());
    await auth.getState().login("admin", "pw");
    const renewal = auth.getState().renew();
    auth.getState().expire("gone");
    answer(json(200, tokens("late")));
    await expect(renewal).resolves.toBe(false);
    expect(auth.getState()).toMatchObject({ status: "signed-out", accessToken: null });
  });

  it("does not sign out for a wrong current password", async () => {
    fakeServer((call) => (call.url.endsWith("/auth/login") ? json(200, tokens("A")) : apiError(401, "AUTHENTICATION_FAILED", "the current password is wrong")));
    const auth = createAuthStore(new ApiClient());
    await auth.getState().login("admin", "pw");
    await expect(auth.getState().changePassword("wrong", "a-new-password")).rejects.toBeInstanceOf(ApiError);
    expect(auth.getState().status).toBe("signed-in");
  });

  it("renews shortly before the access token expires, once for concurrent callers", async () => {
    let refreshes = 0;
    fakeServer((call) => {
      if (call.url.endsWith("/auth/refresh")) {
        refreshes++;
        return json(200, tokens(`R${refreshes}`));
      }
      return json(200, tokens("A"));
    });
    const auth = createAuthStore(new ApiClient());
    await auth.getState().login("admin", "pw");
    const [a, b] = await Promise.all([auth.getState().renew(), auth.getState().renew()]);
    expect([a, b, refreshes]).toEqual([true, true, 1]);
    await vi.advanceTimersByTimeAsync(450_000);
    expect(refreshes).toBe(2);
    expect(auth.getState().accessToken).toBe("R2");
  });

  it("sends the last command's position with later reads (read-your-writes)", async () => {
    const calls = fakeServer((call) => (call.method === "POST" ? json(200, { ok: 1 }, { "x-dcp-position": "42" }) : json(200, [])));
    const client = new ApiClient();
    await client.get("/api/v1/users");
    await client.post("/api/v1/users", { username: "x" });
    await client.get("/api/v1/users");
    expect(calls[0]!.headers["x-dcp-min-position"]).toBeUndefined();
    expect(calls[2]!.headers["x-dcp-min-position"]).toBe("42");
  });

  it("turns the API's error format into an ApiError with code, field and request id", async () => {
    fakeServer(() => json(400, { error: { code: "VALIDATION_ERROR", message: "image is required", details: {}, field: "image" }, status: "error", request_id: "r-9" }));
    await expect(new ApiClient().post("/api/v1/containers", {})).rejects.toMatchObject({
      status: 400,
      code: "VALIDATION_ERROR",
      message: "image is required",
      field: "image",
      requestId: "r-9",
    });
  });
});
