// The SSH host setup wizard's data, without React: its steps' titles, the confirmation's
// tags, the steps' data and tests as the server's state has them, and reading that state
// back to prefill the forms when a wizard is resumed (secrets are never returned: only
// whether some are stored). The connection and authentication forms, with the step data
// they submit (`PUT /api/v1/wizards/{id}/step`) and the checks made before submitting
// (the server checks again and has the last word), are in connectionForm.ts and
// authForm.ts.
import type { components } from "../../api/schema";
import type { WizardState } from "../../api/types";
import { EMPTY_AUTH, isAuthMethod, type AuthForm, type StoredCredentials } from "./authForm";
import { EMPTY_CONNECTION, parseHostUrl, type ConnectionForm } from "./connectionForm";

export type CheckResult = components["schemas"]["CheckResult"];
export type CompletionView = components["schemas"]["CompletionView"];
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
  if (authData && isAuthMethod(authData.method) && secretId) {
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
