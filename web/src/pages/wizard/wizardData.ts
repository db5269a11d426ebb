// The SSH host setup wizard's data, without React: the forms of the steps, the step data
// they submit (`PUT /api/v1/wizards/{id}/step`), the checks made before submitting (the
// server checks again and has the last word), and reading a wizard's state back to prefill
// the forms when it is resumed (secrets are never returned: only whether some are stored).
import type { components } from "../../api/schema";
import type { WizardState } from "../../api/types";

export type CheckResult = components["schemas"]["CheckResult"];
export type CompletionView = components["schemas"]["CompletionView"];
export type GeneratedKey = components["schemas"]["GeneratedKey"];
export type WizardStep = WizardState["steps"][number];

/** The wizard's steps in the server's order, with their titles. */
export const STEP_TITLES: Record<string, string> = {
  connection: "Connection details",
  authentication: "Authentication",
  ssh_test: "SSH test",
  docker_test: "Docker test",
  confirmation: "Confirmation",
};

export function stepTitle(name: string): string {
  return STEP_TITLES[name] ?? name.replace(/_/g, " ");
}

// ---------------------------------------------------------------------------------------
// Connection

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

// ---------------------------------------------------------------------------------------
// Authentication

export type AuthMethod = "generated_key" | "imported_key" | "password";

export const AUTH_METHODS: { value: AuthMethod; label: string; hint: string }[] = [
  {
    value: "generated_key",
    label: "Generate a new key",
    hint: "dcp makes an ED25519 key pair; you add its public key to the host's ~/.ssh/authorized_keys.",
  },
  { value: "imported_key", label: "Import a private key", hint: "Paste an existing private key (OpenSSH or PEM)." },
  { value: "password", label: "Password", hint: "The SSH user's password." },
];

/** Credentials the wizard already holds (sealed on the server; only their id is known). */
export interface StoredCredentials {
  method: AuthMethod;
  secret_id: string;
  public_key: string | null;
}

export interface AuthForm {
  method: AuthMethod;
  /** The generated key's id and public line (from `generate-ssh-key`). */
  key_id: string | null;
  public_key: string | null;
  private_key: string;
  passphrase: string;
  password: string;
  /** What the server holds for this step, if anything. */
  stored: StoredCredentials | null;
}

export const EMPTY_AUTH: AuthForm = {
  method: "generated_key",
  key_id: null,
  public_key: null,
  private_key: "",
  passphrase: "",
  password: "",
  stored: null,
};

export type AuthStepData =
  | { method: "generated_key"; key_id: string }
  | { method: "imported_key"; private_key: string; passphrase?: string }
  | { method: "password"; password: string };

/** The authentication step's data for the chosen method, or null when it lacks what it needs. */
export function authStepData(form: AuthForm): AuthStepData | null {
  switch (form.method) {
    case "generated_key":
      return form.key_id ? { method: "generated_key", key_id: form.key_id } : null;
    case "imported_key":
      if (!form.private_key.trim()) return null;
      return form.passphrase
        ? { method: "imported_key", private_key: form.private_key, passphrase: form.passphrase }
        : { method: "imported_key", private_key: form.private_key };
    case "password":
      return form.password ? { method: "password", password: form.password } : null;
  }
}

/** Whether the credentials the server holds are the ones the form shows (nothing new typed). */
export function usesStoredCredentials(form: AuthForm): boolean {
  const stored = form.stored;
  if (!stored || stored.method !== form.method) return false;
  switch (form.method) {
    case "generated_key":
      return form.key_id === null || form.key_id === stored.secret_id;
    case "imported_key":
      return !form.private_key.trim();
    case "password":
      return !form.password;
  }
}

/** What the step needs before Next, in words; null when it is ready. */
export function authProblem(form: AuthForm): string | null {
  if (usesStoredCredentials(form)) return null;
  if (authStepData(form)) return null;
  switch (form.method) {
    case "generated_key":
      return "Generate a key first.";
    case "imported_key":
      return "Paste the private key.";
    case "password":
      return "Enter the password.";
  }
}

// ---------------------------------------------------------------------------------------
// Confirmation

/** `"a, b,,c "` → `["a", "b", "c"]` (duplicates dropped, order kept). */
export function parseTags(text: string): string[] {
  const tags: string[] = [];
  for (const part of text.split(",")) {
    const tag = part.trim();
    if (tag && !tags.includes(tag)) tags.push(tag);
  }
  return tags;
}

const TAG_RE = /^[A-Za-z0-9._:-]{1,64}$/;

/** What is wrong with the tags, or null. */
export function tagsProblem(tags: string[]): string | null {
  if (tags.length > 32) return "At most 32 tags.";
  const bad = tags.find((tag) => !TAG_RE.test(tag));
  return bad === undefined ? null : `'${bad}': a tag has 1 to 64 letters, digits, '-', '_', '.' or ':'.`;
}

// ---------------------------------------------------------------------------------------
// Tests and their failures

export interface StepTestView {
  passed: boolean;
  details: Record<string, unknown>;
  tested_at?: string;
}

/** A step of the wizard state by name. */
export function stepOf(wizard: WizardState | null | undefined, name: string): WizardStep | undefined {
  return wizard?.steps.find((step) => step.name === name);
}

export function stepData(wizard: WizardState | null | undefined, name: string): Record<string, unknown> | null {
  const data = stepOf(wizard, name)?.data;
  return data && typeof data === "object" ? (data as Record<string, unknown>) : null;
}

export function stepTest(wizard: WizardState | null | undefined, name: string): StepTestView | null {
  const test = stepOf(wizard, name)?.test as Record<string, unknown> | null | undefined;
  if (!test || typeof test !== "object") return null;
  const details = test.details && typeof test.details === "object" ? (test.details as Record<string, unknown>) : {};
  return { passed: test.passed === true, details, tested_at: typeof test.tested_at === "string" ? test.tested_at : undefined };
}

export function text(value: unknown): string | null {
  return typeof value === "string" && value !== "" ? value : null;
}

/** A failure's kind in words, with what to do about it. */
export const ERROR_KINDS: Record<string, string> = {
  unreachable:
    "The host could not be reached: check the host name and port, that sshd runs on it, and that no firewall blocks the dcp server.",
  authentication_failed:
    "The host refused the credentials: check the user name and the password or key (a generated key must be in the user's ~/.ssh/authorized_keys).",
  host_key_changed:
    "The host presented a different host key from the one confirmed. It may have been reinstalled — or someone may be intercepting the connection. Check the key on the host before going on.",
  socket_refused:
    "dcp logged in, but could not open the Docker socket: the SSH user needs access to /var/run/docker.sock (for example membership of the docker group).",
  docker_failed: "The Docker engine did not answer properly: check that Docker is installed and running on the host.",
  ssh_failed: "The SSH connection failed (a protocol error, or the host is backed off after failures).",
  not_configured: "The host is not configured.",
};

export function explainErrorKind(kind: string | null | undefined): string | null {
  if (!kind) return null;
  return ERROR_KINDS[kind] ?? null;
}

// ---------------------------------------------------------------------------------------
// Prefilling from a wizard's state

export interface WizardForms {
  connection: ConnectionForm;
  auth: AuthForm;
  tags: string;
  comment: string;
}

function isMethod(value: unknown): value is AuthMethod {
  return value === "generated_key" || value === "imported_key" || value === "password";
}

/** The forms as the server's state has them (no secrets: only that some are stored). */
export function formsFromWizard(wizard: WizardState): WizardForms {
  const connectionData = stepData(wizard, "connection");
  const url = text(connectionData?.host_url);
  const parsed = url ? parseHostUrl(url) : null;
  const connection: ConnectionForm = {
    ...EMPTY_CONNECTION,
    ...(parsed ?? {}),
    connection_name: text(connectionData?.connection_name) ?? "",
  };

  const authData = stepData(wizard, "authentication");
  let auth: AuthForm = EMPTY_AUTH;
  const secretId = text(authData?.secret_id);
  if (authData && isMethod(authData.method) && secretId) {
    const stored: StoredCredentials = { method: authData.method, secret_id: secretId, public_key: text(authData.public_key) };
    auth = {
      ...EMPTY_AUTH,
      method: stored.method,
      stored,
      key_id: stored.method === "generated_key" ? secretId : null,
      public_key: stored.method === "generated_key" ? stored.public_key : null,
    };
  }

  const tagsData = stepData(wizard, "confirmation")?.tags;
  const tags = Array.isArray(tagsData) ? tagsData.filter((t): t is string => typeof t === "string").join(", ") : "";
  return { connection, auth, tags, comment: "" };
}

/** The key comment suggested for a generated key: `dcp@<host>` (no spaces). */
export function defaultKeyComment(connection: ConnectionForm): string {
  const host = bareHost(connection.hostname).replace(/[^A-Za-z0-9._:-]/g, "");
  return host ? `dcp@${host}` : "dcp";
}
