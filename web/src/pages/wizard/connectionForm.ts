// The connection step's form: the host's name in dcp, and where its SSH server listens
// (host, port, user), which make `host_url` (`ssh://user@host:port`); its checks, and the
// way back from a submitted `host_url`.

export interface ConnectionForm {
  connection_name: string;
  hostname: string;
  /** As typed; 22 by default. */
  port: string;
  username: string;
}

export const EMPTY_CONNECTION: ConnectionForm = { connection_name: "", hostname: "", port: "22", username: "" };

export type ConnectionErrors = Partial<Record<keyof ConnectionForm, string>>;

const USER_RE = /^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/;
const LABEL_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;

/** The host without the brackets an IPv6 address may be typed with. */
function bareHost(hostname: string): string {
  const host = hostname.trim();
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

function isIpv6(host: string): boolean {
  if (!host.includes(":") || !/^[0-9A-Fa-f:.]+$/.test(host)) return false;
  try {
    return new URL(`http://[${host}]/`).hostname.length > 2;
  } catch {
    return false;
  }
}

function isHostName(host: string): boolean {
  return host.length >= 1 && host.length <= 253 && host.split(".").every((label) => LABEL_RE.test(label));
}

/** What is wrong with each field of the connection form (empty when it can be submitted). */
export function validateConnection(form: ConnectionForm): ConnectionErrors {
  const errors: ConnectionErrors = {};
  const name = form.connection_name;
  if (!name.trim()) errors.connection_name = "Enter a name for the host.";
  else if (name !== name.trim()) errors.connection_name = "The name cannot start or end with spaces.";
  else if ([...name].length > 64) errors.connection_name = "At most 64 characters.";
  else if (CONTROL_RE.test(name)) errors.connection_name = "No control characters.";
  else if (name.toLowerCase() === "local") errors.connection_name = "'local' is the name of the local engine.";

  const host = bareHost(form.hostname);
  if (!host) errors.hostname = "Enter the host name or IP address.";
  else if (host.includes(":") ? !isIpv6(host) : !isHostName(host)) errors.hostname = "Not a valid host name or IP address.";

  const port = form.port.trim();
  if (!port) errors.port = "Enter the SSH port (22 by default).";
  else if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535) errors.port = "The port is a number from 1 to 65535.";

  const user = form.username.trim();
  if (!user) errors.username = "Enter the SSH user.";
  else if (!USER_RE.test(user)) errors.username = "Letters, digits, '_', '-' and '.', starting with a letter or '_' (at most 32).";
  return errors;
}

const FIELD_NAMES: Record<keyof ConnectionForm, string> = { connection_name: "name", hostname: "host", port: "port", username: "user" };

/** The fields of the connection form still empty, by name ("name", "host", "port", "user"). */
export function connectionMissing(form: ConnectionForm): string[] {
  return (Object.keys(FIELD_NAMES) as (keyof ConnectionForm)[]).filter((field) => !form[field].trim()).map((field) => FIELD_NAMES[field]);
}

/** `ssh://user@host:port` (an IPv6 address in brackets). */
export function buildHostUrl(form: Pick<ConnectionForm, "hostname" | "port" | "username">): string {
  const host = bareHost(form.hostname);
  const address = host.includes(":") ? `[${host}]` : host;
  const port = form.port.trim() ? Number(form.port.trim()) : 22;
  return `ssh://${form.username.trim()}@${address}:${port}`;
}

/** The connection step's data, or null while the form has errors. */
export function connectionStepData(form: ConnectionForm): { connection_name: string; host_url: string } | null {
  if (Object.keys(validateConnection(form)).length > 0) return null;
  return { connection_name: form.connection_name, host_url: buildHostUrl(form) };
}

/** The form back from a submitted `host_url` (for a resumed wizard). */
export function parseHostUrl(url: string): Pick<ConnectionForm, "hostname" | "port" | "username"> | null {
  const match = /^ssh:\/\/([^@/]+)@(\[[^\]]+\]|[^:/]+)(?::(\d+))?$/.exec(url);
  if (!match) return null;
  return { username: match[1] ?? "", hostname: bareHost(match[2] ?? ""), port: match[3] ?? "22" };
}

/** The key comment suggested for a generated key: `dcp@<host>` (no spaces). */
export function defaultKeyComment(connection: ConnectionForm): string {
  const host = bareHost(connection.hostname).replace(/[^A-Za-z0-9._:-]/g, "");
  return host ? `dcp@${host}` : "dcp";
}
