// Filtering the container list in the browser (the whole list is loaded once, so typing
// in the search box costs no request).
import type { ContainerView } from "../api/types";

export const STATES = ["running", "paused", "restarting", "created", "exited", "dead", "removing"] as const;

export interface ContainerFilter {
  /** Case-insensitive words; every word must match the name, image, id, host or a label. */
  text: string;
  state: string;
  host: string;
}

/** `hostName` gives a host's name from its id, so a search can name the host. */
export function filterContainers(items: ContainerView[], filter: ContainerFilter, hostName: (id: string) => string = (id) => id): ContainerView[] {
  const words = filter.text.toLowerCase().split(/\s+/).filter(Boolean);
  const sorted = items.filter((c) => {
    if (filter.state && c.state !== filter.state) return false;
    if (filter.host && c.host !== filter.host) return false;
    if (words.length === 0) return true;
    const haystack = [c.name, c.image, c.id, c.host, hostName(c.host), c.status, ...Object.entries(c.labels).map(([k, v]) => `${k}=${v}`)].join(" ").toLowerCase();
    return words.every((w) => haystack.includes(w));
  });
  // Running first, then by name: what a user looks for is usually alive.
  return sorted.sort((a, b) => Number(b.state === "running") - Number(a.state === "running") || a.name.localeCompare(b.name) || a.host.localeCompare(b.host));
}
