// The authentication step's form: a key dcp generates, a private key pasted in, or a
// password; the step data each submits, credentials the server already holds, and what is
// still missing.
import type { components } from "../../api/schema";

export type GeneratedKey = components["schemas"]["GeneratedKey"];

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

export function isAuthMethod(value: unknown): value is AuthMethod {
  return value === "generated_key" || value === "imported_key" || value === "password";
}
