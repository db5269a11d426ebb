import { act, renderHook } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError } from "../api/client";
import { backoffDelay, ReconnectingSocket, type SocketEnvironment, type SocketSnapshot } from "../api/reconnectingSocket";
import { useWebSocket } from "./useWebSocket";

/** A WebSocket double the tests drive by hand (the browser tests use the real one). */
class FakeSocket {
  static instances: FakeSocket[] = [];
  readyState = 0;
  binaryType = "blob";
  sent: unknown[] = [];
  closedWith: number | null = null;
  onopen: (() => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  constructor(
    readonly url: string,
    readonly protocols: string[],
  ) {
    FakeSocket.instances.push(this);
  }
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  receive(data: unknown) {
    this.onmessage?.({ data: typeof data === "string" || data instanceof ArrayBuffer ? data : JSON.stringify(data) });
  }
  drop(code: number, reason = "") {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  send(data: unknown) {
    this.sent.push(data);
  }
  close(code: number) {
    this.closedWith = code;
    this.readyState = 3;
  }
}

function environment(overrides: Partial<SocketEnvironment> = {}) {
  const timers: { fn: () => void; ms: number }[] = [];
  let tickets = 0;
  const env: SocketEnvironment = {
    ticket: vi.fn(async () => `t${++tickets}`),
    open: (url, protocols) => new FakeSocket(url, protocols) as unknown as WebSocket,
    url: (path, query) => `ws://test${path}?${new URLSearchParams(query as Record<string, string>).toString()}`,
    setTimeout: (fn, ms) => {
      timers.push({ fn, ms });
      return timers.length;
    },
    clearTimeout: () => {},
    random: () => 0.5,
    ...overrides,
  };
  return { env, timers };
}

const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

afterEach(() => {
  FakeSocket.instances = [];
});

describe("backoffDelay", () => {
  it("doubles from the first delay up to the cap, with jitter of ±20 %", () => {
    const mid = () => 0.5;
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelay(n, 1000, 30_000, mid))).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    expect(backoffDelay(1, 1000, 30_000, () => 0)).toBe(800);
    expect(backoffDelay(1, 1000, 30_000, () => 1)).toBe(1200);
  });
});

describe("ReconnectingSocket", () => {
  it("connects with a fresh ticket in the subprotocol and resumes with the query asked at each connect", async () => {
    const { env, timers } = environment();
    let position = 0;
    const messages: unknown[] = [];
    const socket = new ReconnectingSocket(
      { path: "/ws/events", purpose: "events", query: () => (position ? { after: position } : {}) },
      { onMessage: (m) => messages.push(m) },
      () => {},
      env,
    );
    socket.start();
    await flush();
    const first = FakeSocket.instances[0]!;
    expect(first.protocols).toEqual(["dcp.ticket.t1"]);
    expect(first.url).toBe("ws://test/ws/events?");
    first.open();
    first.receive({ type: "event", event: { global_position: 7 } });
    expect(messages).toEqual([{ type: "event", event: { global_position: 7 } }]);
    position = 7;
    first.drop(1006);
    expect(socket.state()).toMatchObject({ status: "connecting", attempt: 1 });
    expect(timers[0]!.ms).toBe(1000);
    timers[0]!.fn();
    await flush();
    const second = FakeSocket.instances[1]!;
    expect(second.protocols).toEqual(["dcp.ticket.t2"]);
    expect(second.url).toBe("ws://test/ws/events?after=7");
    second.open();
    expect(socket.state()).toEqual({ status: "open", error: null, attempt: 0 });
  });

  it("backs off further on each failed attempt and resets after a successful open", async () => {
    const { env, timers } = environment();
    const socket = new ReconnectingSocket({ path: "/ws/x", purpose: "events" }, {}, () => {}, env);
    socket.start();
    await flush();
    for (let i = 0; i < 3; i++) {
      FakeSocket.instances.at(-1)!.drop(1006);
      timers.at(-1)!.fn();
      await flush();
    }
    expect(timers.map((t) => t.ms)).toEqual([1000, 2000, 4000]);
    FakeSocket.instances.at(-1)!.open();
    FakeSocket.instances.at(-1)!.drop(1001);
    expect(timers.at(-1)!.ms).toBe(1000);
  });

  it("stops on a fatal structured error and shows its message", async () => {
    const { env, timers } = environment();
    const changes: SocketSnapshot[] = [];
    const socket = new ReconnectingSocket({ path: "/ws/x", purpose: "container.logs", resourceId: "web" }, {}, (s) => changes.push(s), env);
    socket.start();
    await flush();
    const ws = FakeSocket.instances[0]!;
    ws.open();
    ws.receive({ type: "error", code: "NOT_FOUND", message: "no container web", reconnect: false, fatal: true, timestamp: "now" });
    ws.drop(1011);
    expect(timers).toHaveLength(0);
    expect(socket.state().status).toBe("closed");
    expect(socket.state().error).toEqual({ code: "NOT_FOUND", message: "no container web", reconnect: false, fatal: true });
    expect(env.ticket).toHaveBeenCalledWith("container.logs", "web");
  });

  it("does not reconnect after the server ended the stream (1000) or revoked access (1008)", async () => {
    for (const code of [1000, 1008]) {
      const { env, timers } = environment();
      const socket = new ReconnectingSocket({ path: "/ws/x", purpose: "events" }, {}, () => {}, env);
      socket.start();
      await flush();
      FakeSocket.instances.at(-1)!.open();
      FakeSocket.instances.at(-1)!.drop(code, "session ended");
      expect(timers).toHaveLength(0);
      expect(socket.state().status).toBe("closed");
      if (code === 1008) expect(socket.state().error?.message).toBe("session ended");
    }
  });

  it("gives up on a refused ticket but retries when the server is unavailable", async () => {
    const refused = environment({ ticket: async () => Promise.reject(new ApiError(403, "FORBIDDEN", "viewers may not open a terminal")) });
    const socket = new ReconnectingSocket({ path: "/ws/x", purpose: "container.exec" }, {}, () => {}, refused.env);
    socket.start();
    await flush();
    expect(refused.timers).toHaveLength(0);
    expect(socket.state()).toMatchObject({ status: "closed", error: { code: "FORBIDDEN", message: "viewers may not open a terminal" } });

    const down = environment({ ticket: async () => Promise.reject(new ApiError(503, "DATABASE_UNAVAILABLE", "try again")) });
    const retrying = new ReconnectingSocket({ path: "/ws/x", purpose: "events" }, {}, () => {}, down.env);
    retrying.start();
    await flush();
    expect(down.timers).toHaveLength(1);
    expect(retrying.state().status).toBe("connecting");
  });

  it("honours the attempt limit and autoReconnect: false", async () => {
    const { env, timers } = environment();
    const socket = new ReconnectingSocket({ path: "/ws/x", purpose: "events" }, { reconnectAttempts: 1 }, () => {}, env);
    socket.start();
    await flush();
    FakeSocket.instances.at(-1)!.drop(1006);
    timers.at(-1)!.fn();
    await flush();
    FakeSocket.instances.at(-1)!.drop(1006);
    expect(timers).toHaveLength(1);
    expect(socket.state().status).toBe("closed");

    const once = environment();
    const exec = new ReconnectingSocket({ path: "/ws/x", purpose: "container.exec" }, { autoReconnect: false }, () => {}, once.env);
    exec.start();
    await flush();
    FakeSocket.instances.at(-1)!.drop(1006);
    expect(once.timers).toHaveLength(0);
  });

  it("opens one socket when restarted while a ticket is being fetched", async () => {
    const { env } = environment();
    const socket = new ReconnectingSocket({ path: "/ws/x", purpose: "events" }, {}, () => {}, env);
    socket.start();
    socket.restart();
    await flush();
    expect(FakeSocket.instances).toHaveLength(1);
    expect(FakeSocket.instances[0]!.protocols).toEqual(["dcp.ticket.t2"]);
    socket.stop();
    await flush();
    expect(FakeSocket.instances).toHaveLength(1);
  });

  it("passes binary frames through and sends objects as JSON", async () => {
    const { env } = environment();
    const binary: Uint8Array[] = [];
    const socket = new ReconnectingSocket({ path: "/ws/x", purpose: "container.exec" }, { onBinary: (b) => binary.push(b) }, () => {}, env);
    expect(socket.send("early")).toBe(false);
    socket.start();
    await flush();
    const ws = FakeSocket.instances[0]!;
    ws.open();
    ws.receive(new Uint8Array([104, 105]).buffer);
    expect(Array.from(binary[0]!)).toEqual([104, 105]);
    expect(socket.send({ type: "resize", cols: 80, rows: 24 })).toBe(true);
    expect(ws.sent).toEqual(['{"type":"resize","cols":80,"rows":24}']);
    socket.stop();
    expect(ws.closedWith).toBe(1000);
  });
});

describe("useWebSocket", () => {
  it("opens while mounted, reports its state, and closes on unmount", async () => {
    const sockets: FakeSocket[] = [];
    vi.stubGlobal(
      "WebSocket",
      class extends FakeSocket {
        constructor(url: string, protocols: string[]) {
          super(url, protocols);
          sockets.push(this);
        }
      },
    );
    vi.stubGlobal(
      "fetch",
      vi.fn(async () => new Response(JSON.stringify({ ticket: "abc", expires_in: 30, purpose: "events" }), { status: 201 })),
    );
    const onMessage = vi.fn();
    const { result, unmount } = renderHook(() => useWebSocket({ path: "/ws/events", purpose: "events" }, { onMessage }));
    await act(flush);
    expect(sockets).toHaveLength(1);
    expect(sockets[0]!.protocols).toEqual(["dcp.ticket.abc"]);
    expect(result.current.status).toBe("connecting");
    act(() => sockets[0]!.open());
    expect(result.current.connected).toBe(true);
    act(() => sockets[0]!.receive({ type: "ready", position: 3 }));
    expect(onMessage).toHaveBeenCalledWith({ type: "ready", position: 3 });
    unmount();
    expect(sockets[0]!.closedWith).toBe(1000);
    vi.unstubAllGlobals();
  });
});
