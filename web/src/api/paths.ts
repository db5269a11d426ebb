// Every path the UI asks the server for, built in one place: the REST paths from the
// templates of the OpenAPI document (`schema.d.ts`, so a template the server no longer has
// fails the type check), the WebSocket paths, each path segment percent-encoded, and the
// one query-string builder (the client's and the sockets').
import type { paths as ApiDocument } from "./schema";

/** A REST path template the server documents, e.g. `/api/v1/containers/{id}`. */
export type ApiTemplate = keyof ApiDocument;

/** The server's WebSocket paths (not part of the OpenAPI document). */
export type SocketTemplate =
  | "/ws/events"
  | "/ws/containers/{id}/logs"
  | "/ws/containers/{id}/stats"
  | "/ws/containers/{id}/exec"
  | "/ws/tasks/{id}";

/** The `{name}` segments of a template. */
type SegmentNames<T extends string> = T extends `${string}{${infer Name}}${infer Rest}` ? Name | SegmentNames<Rest> : never;

/** A template's segment values: none for a fixed path, else one string for each `{name}`. */
type Segments<T extends string> = [SegmentNames<T>] extends [never] ? [] : [values: Record<SegmentNames<T>, string>];

function fill(template: string, values: Record<string, string> = {}): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`no value for {${name}} in ${template}`);
    return encodeURIComponent(value);
  });
}

/** A REST path: `template` with each `{name}` replaced by its percent-encoded value. */
export function apiPath<T extends ApiTemplate>(template: T, ...[values]: Segments<T>): string {
  return fill(template, values);
}

/** A WebSocket path, built as `apiPath` builds REST paths. */
export function socketPath<T extends SocketTemplate>(template: T, ...[values]: Segments<T>): string {
  return fill(template, values);
}

export type QueryValue = string | number | boolean | null | undefined;
export type Query = Record<string, QueryValue>;

/** `path` with `query` appended: undefined, null and empty values are left out; keys and
 * values are form-encoded. */
export function withQuery(path: string, query?: Query): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const search = params.toString();
  if (!search) return path;
  return `${path}${path.includes("?") ? "&" : "?"}${search}`;
}

/** What a container can be asked to do without a body. */
export type ContainerVerb = "start" | "stop" | "restart" | "pause" | "unpause" | "kill";

/** Builders for every path the UI uses, by resource. Queries go to the client beside them. */
export const paths = {
  auth: {
    login: () => apiPath("/api/v1/auth/login"),
    logout: () => apiPath("/api/v1/auth/logout"),
    refresh: () => apiPath("/api/v1/auth/refresh"),
    password: () => apiPath("/api/v1/auth/password"),
  },
  containers: {
    list: () => apiPath("/api/v1/containers"),
    create: () => apiPath("/api/v1/containers"),
    get: (id: string) => apiPath("/api/v1/containers/{id}", { id }),
    remove: (id: string) => apiPath("/api/v1/containers/{id}", { id }),
    history: (id: string) => apiPath("/api/v1/containers/{id}/history", { id }),
    action: (id: string, verb: ContainerVerb) => apiPath(`/api/v1/containers/{id}/${verb}`, { id }),
    rename: (id: string) => apiPath("/api/v1/containers/{id}/rename", { id }),
  },
  images: {
    list: () => apiPath("/api/v1/images"),
    pull: () => apiPath("/api/v1/images/pull"),
    /** `reference` is an image id or one of its tags (`registry:5000/team/app:1.0`). */
    remove: (reference: string) => apiPath("/api/v1/images/{id}", { id: reference }),
  },
  volumes: {
    list: () => apiPath("/api/v1/volumes"),
    create: () => apiPath("/api/v1/volumes"),
    remove: (name: string) => apiPath("/api/v1/volumes/{name}", { name }),
  },
  networks: {
    list: () => apiPath("/api/v1/networks"),
    create: () => apiPath("/api/v1/networks"),
    remove: (id: string) => apiPath("/api/v1/networks/{id}", { id }),
    attach: (id: string, mode: "connect" | "disconnect") => apiPath(`/api/v1/networks/{id}/${mode}`, { id }),
  },
  hosts: {
    list: () => apiPath("/api/v1/hosts"),
    update: (id: string) => apiPath("/api/v1/hosts/{id}", { id }),
    remove: (id: string) => apiPath("/api/v1/hosts/{id}", { id }),
    test: (id: string) => apiPath("/api/v1/hosts/{id}/test", { id }),
  },
  users: {
    list: () => apiPath("/api/v1/users"),
    create: () => apiPath("/api/v1/users"),
    update: (id: string) => apiPath("/api/v1/users/{id}", { id }),
    remove: (id: string) => apiPath("/api/v1/users/{id}", { id }),
  },
  auditLogs: {
    list: () => apiPath("/api/v1/audit-logs"),
    verify: () => apiPath("/api/v1/audit-logs/verify"),
  },
  events: {
    list: () => apiPath("/api/v1/events"),
  },
  operations: {
    get: (id: string) => apiPath("/api/v1/operations/{id}", { id }),
  },
  wizards: {
    list: () => apiPath("/api/v1/wizards"),
    start: () => apiPath("/api/v1/wizards/start"),
    generateSshKey: () => apiPath("/api/v1/wizards/generate-ssh-key"),
    get: (id: string) => apiPath("/api/v1/wizards/{id}", { id }),
    step: (id: string) => apiPath("/api/v1/wizards/{id}/step", { id }),
    next: (id: string) => apiPath("/api/v1/wizards/{id}/next", { id }),
    previous: (id: string) => apiPath("/api/v1/wizards/{id}/previous", { id }),
    test: (id: string) => apiPath("/api/v1/wizards/{id}/test", { id }),
    complete: (id: string) => apiPath("/api/v1/wizards/{id}/complete", { id }),
    cancel: (id: string) => apiPath("/api/v1/wizards/{id}/cancel", { id }),
  },
  wsTickets: () => apiPath("/api/v1/ws-tickets"),
  ws: {
    events: () => socketPath("/ws/events"),
    logs: (id: string) => socketPath("/ws/containers/{id}/logs", { id }),
    stats: (id: string) => socketPath("/ws/containers/{id}/stats", { id }),
    exec: (id: string) => socketPath("/ws/containers/{id}/exec", { id }),
    /** A task's progress: `id` is the operation id. */
    task: (id: string) => socketPath("/ws/tasks/{id}", { id }),
  },
};
