// The create-container form's model: text fields as a user types them, turned into the
// API's `CreateContainerRequest`, with the same notion of "reaches the host" as the server's
// policy (src/docker/policy.rs), so operators are never offered what they would be refused.
import type { CreateContainerRequest } from "../api/types";

export interface ContainerForm {
  host: string;
  image: string;
  name: string;
  command: string;
  entrypoint: string;
  env: string;
  labels: string;
  ports: string;
  volumes: string;
  network: string;
  restart: "no" | "always" | "unless-stopped" | "on-failure";
  memoryMiB: string;
  cpus: string;
  user: string;
  workingDir: string;
  tty: boolean;
  start: boolean;
  // What reaches the host: admins only, with a reason.
  privileged: boolean;
  capAdd: string;
  devices: string;
  securityOpt: string;
  binds: string;
  pidMode: string;
  ipcMode: string;
  utsMode: string;
  sysctls: string;
  reason: string;
}

export const EMPTY_FORM: ContainerForm = {
  host: "local",
  image: "",
  name: "",
  command: "",
  entrypoint: "",
  env: "",
  labels: "",
  ports: "",
  volumes: "",
  network: "",
  restart: "no",
  memoryMiB: "",
  cpus: "",
  user: "",
  workingDir: "",
  tty: false,
  start: true,
  privileged: false,
  capAdd: "",
  devices: "",
  securityOpt: "",
  binds: "",
  pidMode: "",
  ipcMode: "",
  utsMode: "",
  sysctls: "",
  reason: "",
};

/** A form mistake found before sending, naming the API field it concerns. */
export class FormError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = "FormError";
  }
}

/**
 * Splits a command line into arguments the way a shell would quote them (single and double
 * quotes, backslash escapes) — but runs no shell: the result is exec-form arguments.
 */
export function splitArgs(line: string, field = "command"): string[] {
  const args: string[] = [];
  let current = "";
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = null;
      else if (c === "\\" && quote === '"' && i + 1 < line.length && ['"', "\\"].includes(line[i + 1]!)) current += line[++i];
      else current += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === "\\" && i + 1 < line.length) {
      current += line[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) args.push(current);
      current = "";
      inWord = false;
    } else {
      current += c;
      inWord = true;
    }
  }
  if (quote) throw new FormError(field, `${field}: a ${quote === '"' ? "double" : "single"} quote is not closed`);
  if (inWord) args.push(current);
  return args;
}

function lines(text: string): string[] {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
}

function list(text: string): string[] {
  return text
    .split(/[\n,]/)
    .map((l) => l.trim())
    .filter(Boolean);
}

/** `KEY=value` lines into a map (the value may contain `=`; duplicates are refused). */
export function parsePairs(text: string, field: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of lines(text)) {
    const at = line.indexOf("=");
    const key = (at < 0 ? line : line.slice(0, at)).trim();
    if (!key) throw new FormError(field, `${field}: "${line}" has no name before "="`);
    if (key in out) throw new FormError(field, `${field}: ${key} is given twice`);
    out[key] = at < 0 ? "" : line.slice(at + 1);
  }
  return out;
}

type PortRequest = NonNullable<CreateContainerRequest["ports"]>[number];

/** `[ip:]hostPort:containerPort[/proto]` or `containerPort[/proto]` per line. */
export function parsePorts(text: string): PortRequest[] {
  return lines(text).map((line) => {
    const [spec, protocol] = line.split("/") as [string, string | undefined];
    if (protocol !== undefined && !["tcp", "udp", "sctp"].includes(protocol)) {
      throw new FormError("ports", `ports: "${line}": the protocol is tcp, udp or sctp`);
    }
    const parts = spec.split(":");
    const port = (value: string | undefined) => {
      const n = Number(value);
      if (!value || !Number.isInteger(n) || n < 1 || n > 65535) throw new FormError("ports", `ports: "${line}": a port is 1–65535`);
      return n;
    };
    let request: PortRequest;
    if (parts.length === 1) request = { container_port: port(parts[0]) };
    else if (parts.length === 2) request = { host_port: port(parts[0]), container_port: port(parts[1]) };
    else if (parts.length === 3) request = { host_ip: parts[0], host_port: port(parts[1]), container_port: port(parts[2]) };
    else throw new FormError("ports", `ports: "${line}" is not [ip:]host:container[/protocol]`);
    if (protocol) request.protocol = protocol;
    return request;
  });
}

/** `source:/target[:ro]` per line (named volumes, or host paths for binds). */
export function parseMounts(text: string, field: "volumes" | "binds"): { source: string; target: string; read_only?: boolean }[] {
  return lines(text).map((line) => {
    const parts = line.split(":");
    const mode = parts.length === 3 ? parts[2] : undefined;
    if (parts.length < 2 || parts.length > 3 || (mode !== undefined && mode !== "ro" && mode !== "rw")) {
      throw new FormError(field, `${field}: "${line}" is not source:/path[:ro]`);
    }
    const [source, target] = parts as [string, string];
    if (!target.startsWith("/")) throw new FormError(field, `${field}: "${line}": the path in the container must be absolute`);
    if (field === "binds" && !source.startsWith("/")) throw new FormError(field, `binds: "${line}": the host path must be absolute`);
    if (field === "volumes" && source.startsWith("/")) {
      throw new FormError(field, `volumes: "${line}" names a host path: that is a bind mount (admins, under Host access)`);
    }
    return mode === "ro" ? { source, target, read_only: true } : { source, target };
  });
}

/** The fields of the form that reach the host (the server's policy, by API field name). */
export function hostReaching(form: ContainerForm): string[] {
  const found: string[] = [];
  if (form.privileged) found.push("privileged");
  if (list(form.capAdd).length) found.push("cap_add");
  if (list(form.devices).length) found.push("devices");
  if (list(form.securityOpt).length) found.push("security_opt");
  if (lines(form.binds).length) found.push("binds");
  if (lines(form.sysctls).length) found.push("sysctls");
  if (form.pidMode.trim()) found.push("pid_mode");
  if (form.utsMode.trim()) found.push("uts_mode");
  if (form.ipcMode.trim() && !["private", "shareable", "none"].includes(form.ipcMode.trim())) found.push("ipc_mode");
  const network = form.network.trim();
  if (network === "host" || network.startsWith("container:")) found.push("network");
  return found;
}

/**
 * The request for the form, as `role` may send it. Throws a `FormError` for what the
 * server would refuse anyway (malformed lines, host access without admin or reason).
 */
export function buildCreateRequest(form: ContainerForm, role: string): CreateContainerRequest {
  const image = form.image.trim();
  if (!image) throw new FormError("image", "An image is required.");
  const request: CreateContainerRequest = { image, start: form.start };
  const name = form.name.trim();
  if (name) request.name = name;
  if (form.command.trim()) request.command = splitArgs(form.command, "command");
  if (form.entrypoint.trim()) request.entrypoint = splitArgs(form.entrypoint, "entrypoint");
  const env = parsePairs(form.env, "env");
  if (Object.keys(env).length) request.env = env;
  const labels = parsePairs(form.labels, "labels");
  if (Object.keys(labels).length) request.labels = labels;
  const ports = parsePorts(form.ports);
  if (ports.length) request.ports = ports;
  const volumes = parseMounts(form.volumes, "volumes");
  if (volumes.length) request.volumes = volumes;
  if (form.network.trim()) request.network = form.network.trim();
  if (form.restart !== "no") request.restart_policy = { name: form.restart };
  if (form.memoryMiB.trim()) {
    const mib = Number(form.memoryMiB);
    if (!Number.isFinite(mib) || mib < 6) throw new FormError("memory_bytes", "Memory is at least 6 MiB.");
    request.memory_bytes = Math.round(mib * 1024 * 1024);
  }
  if (form.cpus.trim()) {
    const cpus = Number(form.cpus);
    if (!Number.isFinite(cpus) || cpus <= 0) throw new FormError("cpus", "CPUs is a positive number, e.g. 0.5.");
    request.cpus = cpus;
  }
  if (form.user.trim()) request.user = form.user.trim();
  if (form.workingDir.trim()) request.working_dir = form.workingDir.trim();
  if (form.tty) request.tty = true;
  if (form.ipcMode.trim()) request.ipc_mode = form.ipcMode.trim();

  const reaching = hostReaching(form);
  if (reaching.length === 0) return request;
  if (role !== "admin") {
    throw new FormError(reaching[0]!, `Only admins may use options that reach the host (${reaching.join(", ")}).`);
  }
  if (!form.reason.trim()) throw new FormError("reason", `Say why this container needs ${reaching.join(", ")}: the reason is recorded.`);
  if (form.privileged) request.privileged = true;
  if (list(form.capAdd).length) request.cap_add = list(form.capAdd);
  if (list(form.devices).length) request.devices = list(form.devices);
  if (list(form.securityOpt).length) request.security_opt = list(form.securityOpt);
  const binds = parseMounts(form.binds, "binds");
  if (binds.length) request.binds = binds;
  const sysctls = parsePairs(form.sysctls, "sysctls");
  if (Object.keys(sysctls).length) request.sysctls = sysctls;
  if (form.pidMode.trim()) request.pid_mode = form.pidMode.trim();
  if (form.utsMode.trim()) request.uts_mode = form.utsMode.trim();
  request.allow_privileged = true;
  request.reason = form.reason.trim();
  return request;
}
