// A fake API server for unit tests: `fetch` replaced by one answering from a table of routes
// and recording every request.
import { vi } from "vitest";

export interface Call {
  method: string;
  url: string;
  body: unknown;
}

/** A fetch answering from `routes` ("METHOD /path" → JSON bodies, one per call, the last repeated). */
export function fakeServer(routes: Record<string, unknown[]>) {
  const calls: Call[] = [];
  const fetchMock = vi.fn(async (url: string, init: RequestInit = {}) => {
    const method = init.method ?? "GET";
    calls.push({ method, url, body: init.body ? JSON.parse(init.body as string) : undefined });
    const key = `${method} ${url.split("?")[0]}`;
    const answers = routes[key];
    if (!answers || answers.length === 0) {
      return new Response(JSON.stringify({ error: { code: "NOT_FOUND", message: `no route ${key}`, field: null, details: {} } }), { status: 404 });
    }
    const answer = answers.length > 1 ? answers.shift() : answers[0];
    if (answer instanceof Response) return answer;
    return new Response(JSON.stringify(answer), { status: 200, headers: { "content-type": "application/json" } });
  });
  vi.stubGlobal("fetch", fetchMock);
  return calls;
}
