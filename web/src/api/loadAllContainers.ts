// The whole containers list of every host, page after page: the containers page shows it,
// the dashboard counts it.
import { api } from "./client";
import { paths } from "./paths";
import type { ContainerList } from "./types";

const PAGE = 1000;

/** Every page of the list (the API pages by 1,000). */
export async function loadAllContainers(signal: AbortSignal): Promise<ContainerList> {
  const first = await api.get<ContainerList>(paths.containers.list(), { all: true, limit: PAGE, offset: 0 }, signal);
  const items = [...first.items];
  while (items.length < first.total) {
    const page = await api.get<ContainerList>(paths.containers.list(), { all: true, limit: PAGE, offset: items.length }, signal);
    if (page.items.length === 0) break;
    items.push(...page.items);
  }
  return { ...first, items };
}
