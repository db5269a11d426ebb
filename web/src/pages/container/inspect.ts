// The parts of Docker's inspect document the detail page shows (the API passes it through
// unchanged, so every field is optional here), and the API calls for one container.
import type { components } from "../../api/schema";

export type HistoryEntry = components["schemas"]["HistoryEntry"];

export interface PortBinding {
  HostIp?: string;
  HostPort?: string;
}

export interface InspectMount {
  Type?: string;
  Name?: string;
  Source?: string;
  Destination?: string;
  Mode?: string;
  RW?: boolean;
  Driver?: string;
}

export interface InspectNetwork {
  IPAddress?: string;
  IPPrefixLen?: number;
  Gateway?: string;
  MacAddress?: string;
  GlobalIPv6Address?: string;
  Aliases?: string[] | null;
  NetworkID?: string;
}

export interface InspectDocument {
  Id?: string;
  Name?: string;
  Created?: string;
  Path?: string;
  Args?: string[];
  Image?: string;
  RestartCount?: number;
  State?: {
    Status?: string;
    Running?: boolean;
    Paused?: boolean;
    Restarting?: boolean;
    OOMKilled?: boolean;
    Dead?: boolean;
    Pid?: number;
    ExitCode?: number;
    Error?: string;
    StartedAt?: string;
    FinishedAt?: string;
    Health?: { Status?: string; FailingStreak?: number } | null;
  };
  Config?: {
    Image?: string;
    Cmd?: string[] | null;
    Entrypoint?: string[] | null;
    Env?: string[] | null;
    Labels?: Record<string, string> | null;
    WorkingDir?: string;
    User?: string;
    Tty?: boolean;
    Hostname?: string;
  };
  HostConfig?: {
    RestartPolicy?: { Name?: string; MaximumRetryCount?: number };
    Memory?: number;
    NanoCpus?: number;
    Privileged?: boolean;
    NetworkMode?: string;
    AutoRemove?: boolean;
  };
  Mounts?: InspectMount[] | null;
  NetworkSettings?: {
    Ports?: Record<string, PortBinding[] | null> | null;
    Networks?: Record<string, InspectNetwork> | null;
  };
}

/** The container's state as the list shows it: running, paused, exited, … */
export function containerState(inspect: InspectDocument): string {
  const state = inspect.State;
  if (!state) return "unknown";
  if (state.Status) return state.Status;
  if (state.Paused) return "paused";
  if (state.Restarting) return "restarting";
  if (state.Running) return "running";
  if (state.Dead) return "dead";
  return "exited";
}

/** A command line from its words, quoting the ones a shell would split. */
export function commandLine(words: readonly string[]): string {
  return words.map((word) => (word === "" || /[\s"'$`\\|&;<>(){}*?]/.test(word) ? JSON.stringify(word) : word)).join(" ");
}

/** What the container runs: the entrypoint path and its arguments. */
export function containerCommand(inspect: InspectDocument): string {
  if (inspect.Path) return commandLine([inspect.Path, ...(inspect.Args ?? [])]);
  const words = [...(inspect.Config?.Entrypoint ?? []), ...(inspect.Config?.Cmd ?? [])];
  return words.length ? commandLine(words) : "—";
}

/** `0.0.0.0:8080 → 80/tcp`, one entry per binding (or the bare port when unpublished). */
export function portList(inspect: InspectDocument): string[] {
  const ports = inspect.NetworkSettings?.Ports ?? {};
  const out: string[] = [];
  for (const [port, bindings] of Object.entries(ports)) {
    if (!bindings || bindings.length === 0) {
      out.push(port);
      continue;
    }
    for (const binding of bindings) {
      const ip = binding.HostIp && binding.HostIp !== "" ? binding.HostIp : "0.0.0.0";
      out.push(`${ip.includes(":") ? `[${ip}]` : ip}:${binding.HostPort ?? "?"} → ${port}`);
    }
  }
  return out;
}

/** The restart policy as Docker's CLI names it. */
export function restartPolicy(inspect: InspectDocument): string {
  const policy = inspect.HostConfig?.RestartPolicy;
  const name = policy?.Name || "no";
  return name === "on-failure" && policy?.MaximumRetryCount ? `${name}:${policy.MaximumRetryCount}` : name;
}
