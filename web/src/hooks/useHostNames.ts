// Lists and events name a Docker host by its id (`local`, or the id of an SSH host); people
// know hosts by name. This maps one to the other from the hosts list, kept live.
import { useCallback, useMemo } from "react";
import { api } from "../api/client";
import type { HostView } from "../api/types";
import { useQuery } from "./useQuery";

export function useHostNames(): (id: string) => string {
  const hosts = useQuery((signal) => api.get<HostView[]>("/api/v1/hosts", undefined, signal), [], { liveTypes: ["host"] });
  const names = useMemo(() => new Map((hosts.data ?? []).map((h) => [h.id, h.name])), [hosts.data]);
  return useCallback((id: string) => names.get(id) ?? id, [names]);
}
