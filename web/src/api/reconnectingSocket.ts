// A socket to one of the server's streams (`/ws/events`, a container's logs, stats or
// terminal, a task) that gets a single-use ticket for each connection, reconnects with
// exponential back-off, and reports the server's structured errors
// (`{"type":"error","code","message","reconnect","fatal"}`) instead of failing silently:
// `useWebSocket`'s engine, usable without React.
import { api, ApiError, errorMessage } from "./client";
import { paths, type Query } from "./paths";
import type { TicketPurpose } from "./types";

export type SocketStatus = "idle" | "connecting" | "open" | "closed";

export interface SocketError {
  code: string;
  message: string;
  /** The server says the client may try again. */
  reconnect: boolean;
  fatal: boolean;
}

export interface SocketTarget {
  /** `/ws/events`, `/ws/containers/{id}/logs`, … */
  path: string;
  purpose: TicketPurpose;
  /** The container (as written in the path) or task the ticket is for. */
  resourceId?: string | null;
  /** Query parameters; a function is asked again at each (re)connect (e.g. `after`). */
  query?: Query | (() => Query);
}

export interface SocketOptions {
  onOpen?: (send: (data: string | ArrayBuffer | Uint8Array | object) => void) => void;
  /** JSON text frames other than errors. */
  onMessage?: (message: Record<string, unknown>) => void;
  /** Binary frames (terminal output). */
  onBinary?: (data: Uint8Array) => void;
  onClose?: (event: { code: number; reason: string }) => void;
  autoReconnect?: boolean;
  /** Attempts in a row before giving up (default: unlimited). */
  reconnectAttempts?: number;
  /** First delay in ms (doubles up to `maxDelay`). */
  reconnectDelay?: number;
  maxDelay?: number;
}

/** What a connection needs from the outside world (replaced in unit tests). */
export interface SocketEnvironment {
  ticket(purpose: TicketPurpose, resourceId: string | null): Promise<string>;
  open(url: string, protocols: string[]): WebSocket;
  url(path: string, query: Query): string;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  random(): number;
}

export const browserEnvironment: SocketEnvironment = {
  async ticket(purpose, resourceId) {
    const response = await api.post<{ ticket: string }>(paths.wsTickets(), {
      purpose,
      resource_id: resourceId,
    });
    return response.ticket;
  },
  open: (url, protocols) => new WebSocket(url, protocols),
  url(path, query) {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    return `${scheme}://${window.location.host}${api.url(path, query)}`;
  },
  setTimeout: (fn, ms) => window.setTimeout(fn, ms),
  clearTimeout: (handle) => window.clearTimeout(handle as number),
  random: Math.random,
};

/** Close codes after which reconnecting cannot help. */
const FINAL_CLOSE_CODES = new Set([1000, 1008]);

/** The delay before reconnect attempt `attempt` (1-based): doubling, capped, ±20 % jitter. */
export function backoffDelay(attempt: number, base: number, max: number, random: () => number): number {
  const raw = Math.min(max, base * 2 ** Math.max(0, attempt - 1));
  return Math.round(raw * (0.8 + 0.4 * random()));
}

export interface SocketSnapshot {
  status: SocketStatus;
  error: SocketError | null;
  /** Reconnect attempts since the last successful open. */
  attempt: number;
}

/**
 * One logical connection that survives drops: the hook's engine, usable without React.
 * `onChange` is told every status change.
 */
export class ReconnectingSocket {
  private socket: WebSocket | null = null;
  private timer: unknown = null;
  private stopped = false;
  /** Bumped by each stop: a connect still waiting for its ticket then gives up. */
  private generation = 0;
  private snapshot: SocketSnapshot = { status: "idle", error: null, attempt: 0 };

  constructor(
    private readonly target: SocketTarget,
    private readonly options: SocketOptions,
    private readonly onChange: (snapshot: SocketSnapshot) => void,
    private readonly env: SocketEnvironment = browserEnvironment,
  ) {}

  state(): SocketSnapshot {
    return this.snapshot;
  }

  private update(patch: Partial<SocketSnapshot>): void {
    this.snapshot = { ...this.snapshot, ...patch };
    this.onChange(this.snapshot);
  }

  start(): void {
    this.stopped = false;
    void this.connect();
  }

  /** Reconnect now (resets the attempt count). */
  restart(): void {
    this.stop();
    this.snapshot = { status: "idle", error: null, attempt: 0 };
    this.start();
  }

  stop(): void {
    this.stopped = true;
    this.generation++;
    if (this.timer !== null) this.env.clearTimeout(this.timer);
    this.timer = null;
    const socket = this.socket;
    this.socket = null;
    if (socket && socket.readyState <= 1) socket.close(1000, "closed by the user");
    if (this.snapshot.status !== "closed" && this.snapshot.status !== "idle") this.update({ status: "closed" });
  }

  send = (data: string | ArrayBuffer | Uint8Array | object): boolean => {
    const socket = this.socket;
    if (!socket || socket.readyState !== 1) return false;
    if (typeof data === "string" || data instanceof ArrayBuffer || data instanceof Uint8Array) socket.send(data as string);
    else socket.send(JSON.stringify(data));
    return true;
  };

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const generation = this.generation;
    this.update({ status: "connecting" });
    let ticket: string;
    try {
      ticket = await this.env.ticket(this.target.purpose, this.target.resourceId ?? null);
    } catch (error) {
      if (generation !== this.generation) return;
      // A refused ticket (no access, no such container) will be refused again.
      const final = error instanceof ApiError && error.status >= 400 && error.status < 500 && error.status !== 429;
      const code = error instanceof ApiError ? error.code : "NETWORK_ERROR";
      this.fail({ code, message: errorMessage(error), reconnect: !final, fatal: final });
      return;
    }
    if (this.stopped || generation !== this.generation) return;
    const query = typeof this.target.query === "function" ? this.target.query() : (this.target.query ?? {});
    const socket = this.env.open(this.env.url(this.target.path, query), [`dcp.ticket.${ticket}`]);
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    let serverError: SocketError | null = null;

    socket.onopen = () => {
      if (this.socket !== socket) return;
      this.update({ status: "open", error: null, attempt: 0 });
      this.options.onOpen?.(this.send);
    };
    socket.onmessage = (event: MessageEvent) => {
      if (this.socket !== socket) return;
      if (typeof event.data !== "string") {
        this.options.onBinary?.(new Uint8Array(event.data as ArrayBuffer));
        return;
      }
      let message: Record<string, unknown>;
      try {
        message = JSON.parse(event.data) as Record<string, unknown>;
      } catch {
        return;
      }
      if (message.type === "error") {
        serverError = {
          code: String(message.code ?? "ERROR"),
          message: String(message.message ?? "the server reported an error"),
          reconnect: message.reconnect !== false,
          fatal: message.fatal === true,
        };
        this.update({ error: serverError });
        return;
      }
      this.options.onMessage?.(message);
    };
    socket.onclose = (event: CloseEvent) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.options.onClose?.({ code: event.code, reason: event.reason });
      if (serverError && (serverError.fatal || !serverError.reconnect)) {
        this.update({ status: "closed" });
        return;
      }
      if (event.code === 1008) {
        this.update({
          status: "closed",
          error: { code: "POLICY", message: event.reason || "the server closed the stream: access ended", reconnect: false, fatal: true },
        });
        return;
      }
      if (FINAL_CLOSE_CODES.has(event.code)) {
        this.update({ status: "closed" });
        return;
      }
      this.fail(
        serverError ?? {
          code: "CONNECTION_LOST",
          message: event.reason || "the connection was lost",
          reconnect: true,
          fatal: false,
        },
      );
    };
  }

  /** Schedules the next attempt, or gives up. */
  private fail(error: SocketError): void {
    if (this.stopped) return;
    const attempt = this.snapshot.attempt + 1;
    const limit = this.options.reconnectAttempts ?? Number.POSITIVE_INFINITY;
    if (error.fatal || !error.reconnect || this.options.autoReconnect === false || attempt > limit) {
      this.update({ status: "closed", error });
      return;
    }
    this.update({ status: "connecting", error, attempt });
    const delay = backoffDelay(attempt, this.options.reconnectDelay ?? 1000, this.options.maxDelay ?? 30_000, this.env.random);
    this.timer = this.env.setTimeout(() => {
      this.timer = null;
      void this.connect();
    }, delay);
  }
}
