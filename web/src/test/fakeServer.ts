// A fake API server for unit tests: `fetch` replaced by one answering from a table of routes
// (or a function of the request) and recording every request.
import { vi } from "vitest";

export interface Call {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: unknown;
}

/** Answers a request: a table ("METHOD /path" → JSON bodies or Responses, one per call, the
 * last repeated; a missing route answers 404), or a function of the call. */
export type Routes = Record<string, unknown[]> | ((call: Call) => Response | Promise<Response>);

function fromTable(routes: Record<string, unknown[]>, call: Call): Response {
  const key = `${call.method} ${call.url.split("?")[0]}`;
  const answers = routes[key];
  if (!answers || answers.length === 0) {
    return new Response(JSON.stringify({ error: { code: "NOT_FOUND", message: `no route ${key}`, field: null, details: {} } }), { status: 404 });
  }
  const answer = answers.length > 1 ? answers.shift() : answers[0];
  if (answer instanceof Response) return answer;
  return new Response(JSON.stringify(answer), { status: 200, headers: { "content-type": "application/json" } });
}

/** Replaces `fetch` with one answering from `routes`; returns the calls it records. */
export function fakeServer(routes: Routes) {
  const calls: Call[] = [];
  const fetchMock = vi.fn(async (url: string, init: RequestInit = {}) => {
    const call: Call = {
      method: init.method ?? "GET",
      url,
      headers: { ...(init.headers as Record<string, string> | undefined) },
      body: init.body ? JSON.parse(init.body as string) : undefined,
    };
    calls.push(call);
    return typeof routes === "function" ? routes(call) : fromTable(routes, call);
  });
  vi.stubGlobal("fetch", fetchMock);
  return calls;
}
