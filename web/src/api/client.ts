// The HTTP client: JSON requests with the access token (kept in memory only), one refresh
// and retry when the token has expired, read-your-writes through the event position, and
// every failure as an `ApiError` carrying the API's code and message.
import { withQuery, type Query } from "./paths";
import type { ErrorBody } from "./types";

/** An API error as the server described it (`{"error":{code,message,details,field}}`). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly field: string | null;
  readonly details: Record<string, unknown>;
  readonly requestId: string | null;

  constructor(
    status: number,
    code: string,
    message: string,
    field: string | null = null,
    details: Record<string, unknown> = {},
    requestId: string | null = null,
  ) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.field = field;
    this.details = details;
    this.requestId = requestId;
  }
}

/** The message to show a user for any thrown value. */
export function errorMessage(error: unknown): string {
  if (error instanceof ApiError) {
    return error.field && !error.message.includes(error.field)
      ? `${error.message} (${error.field})`
      : error.message;
  }
  if (error instanceof Error) return error.message;
  return String(error);
}

/** Parses an error response; a body that is not the API's format still gives a message. */
export async function readError(response: Response): Promise<ApiError> {
  const requestId = response.headers.get("x-request-id");
  let text = "";
  try {
    text = await response.text();
    const body = JSON.parse(text) as Partial<ErrorBody>;
    if (body.error && typeof body.error.code === "string") {
      return new ApiError(
        response.status,
        body.error.code,
        body.error.message,
        body.error.field ?? null,
        (body.error.details as Record<string, unknown>) ?? {},
        body.request_id ?? requestId,
      );
    }
  } catch {
    // not JSON: fall through
  }
  const message = text.trim() || response.statusText || `HTTP ${response.status}`;
  return new ApiError(response.status, response.status >= 500 ? "SERVER_ERROR" : "HTTP_ERROR", message, null, {}, requestId);
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  query?: Query;
  signal?: AbortSignal;
  /** Skip the bearer token (login, refresh). */
  anonymous?: boolean;
  /** Return the raw response (downloads). */
  raw?: boolean;
  /** Extra request headers. */
  headers?: Record<string, string>;
}

/** What the client needs from the session: the token and a way to renew it. */
export interface TokenSource {
  accessToken(): string | null;
  /** Renews the access token; resolves false when the session is over. */
  renew(): Promise<boolean>;
  /** The session ended (refresh refused): sign the user out. */
  expired(): void;
}

const POSITION_HEADER = "x-dcp-position";
const MIN_POSITION_HEADER = "x-dcp-min-position";

export class ApiClient {
  private tokens: TokenSource | null = null;
  /** The highest event position this tab's commands produced: reads wait for it. */
  private position = 0;

  constructor(private readonly base = "") {}

  useTokens(tokens: TokenSource): void {
    this.tokens = tokens;
  }

  /** Position of the last command this tab ran (0 before any). */
  lastPosition(): number {
    return this.position;
  }

  notePosition(value: number | null | undefined): void {
    if (typeof value === "number" && value > this.position) this.position = value;
  }

  url(path: string, query?: Query): string {
    return `${this.base}${withQuery(path, query)}`;
  }

  async request<T>(path: string, options: RequestOptions = {}): Promise<T> {
    const response = await this.send(path, options, true);
    if (options.raw) return response as unknown as T;
    if (response.status === 204) return undefined as T;
    const text = await response.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  get<T>(path: string, query?: Query, signal?: AbortSignal): Promise<T> {
    return this.request<T>(path, { query, signal });
  }

  post<T>(path: string, body?: unknown, query?: Query): Promise<T> {
    return this.request<T>(path, { method: "POST", body: body ?? {}, query });
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>(path, { method: "PUT", body });
  }

  patch<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>(path, { method: "PATCH", body });
  }

  delete<T>(path: string, query?: Query): Promise<T> {
    return this.request<T>(path, { method: "DELETE", query });
  }

  private async send(path: string, options: RequestOptions, mayRenew: boolean): Promise<Response> {
    const method = options.method ?? "GET";
    const headers: Record<string, string> = { accept: "application/json", ...options.headers };
    if (options.body !== undefined) headers["content-type"] = "application/json";
    const token = options.anonymous ? null : (this.tokens?.accessToken() ?? null);
    if (token) headers.authorization = `Bearer ${token}`;
    if (method === "GET" && this.position > 0) headers[MIN_POSITION_HEADER] = String(this.position);
    const response = await fetch(this.url(path, options.query), {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: options.signal,
      credentials: "same-origin",
    });
    const position = Number(response.headers.get(POSITION_HEADER));
    if (Number.isFinite(position) && position > 0) this.notePosition(position);
    if (response.ok) return response;
    const error = await readError(response);
    const tokenRefused = error.code === "TOKEN_EXPIRED" || error.code === "TOKEN_INVALID";
    if (error.status === 401 && tokenRefused && !options.anonymous && this.tokens) {
      // A refused renewal signs the user out (the session store does); an unavailable
      // server does not, and the error goes to the caller.
      if (mayRenew) {
        if (await this.tokens.renew()) return this.send(path, options, false);
      } else {
        this.tokens.expired();
      }
    }
    throw error;
  }
}

/** The client the whole UI shares. */
export const api = new ApiClient();
