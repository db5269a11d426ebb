// Links to the UI's own pages that carry parameters, built in one place (the routes they
// lead to are in App.tsx).
import { withQuery } from "./api/paths";

/** A container's page: `/containers/{id}?host={host}&tab={tab}`, leaving out a missing host
 * or tab. */
export function containerHref(id: string, host?: string | null, tab?: string): string {
  return withQuery(`/containers/${encodeURIComponent(id)}`, { host, tab });
}
