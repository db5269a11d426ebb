// The user form: what it holds, its checks (the server's rules, so most mistakes are shown
// before a request), and the bodies of `POST /api/v1/users` and `PATCH /api/v1/users/{id}`.
import type { components } from "../../api/schema";
import type { Role, UserView } from "../../api/types";

export type CreateUserBody = components["schemas"]["CreateUserRequest"];
export type UpdateUserBody = components["schemas"]["UpdateUserRequest"];

export const ROLES: Role[] = ["admin", "operator", "viewer"];

export interface UserFormValues {
  username: string;
  email: string;
  full_name: string;
  role: Role;
  /** Create: the initial password. Edit: a new password (reset), empty to keep it. */
  password: string;
  is_active: boolean;
  must_change_password: boolean;
}

export type UserFormErrors = Partial<Record<keyof UserFormValues, string>>;

export function emptyUserForm(): UserFormValues {
  return { username: "", email: "", full_name: "", role: "viewer", password: "", is_active: true, must_change_password: true };
}

export function userFormFrom(user: UserView): UserFormValues {
  return {
    username: user.username,
    email: user.email,
    full_name: user.full_name,
    role: (ROLES as string[]).includes(user.role) ? (user.role as Role) : "viewer",
    password: "",
    is_active: user.is_active,
    must_change_password: user.must_change_password,
  };
}

const USERNAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

function emailError(email: string): string | null {
  const message = "email must be an address like name@example.com";
  if (email.length > 254 || /[\s\p{Cc}]/u.test(email)) return message;
  const at = email.indexOf("@");
  if (at <= 0) return message;
  const local = email.slice(0, at);
  const domain = email.slice(at + 1);
  const domainOk =
    domain.length > 0 &&
    !domain.includes("@") &&
    domain.split(".").every((label) => label.length > 0 && label.length <= 63) &&
    (domain.includes(".") || domain.toLowerCase() === "localhost");
  return local.length > 64 || !domainOk ? message : null;
}

function passwordError(password: string, username: string): string | null {
  const chars = [...password];
  if (chars.length < 8) return "password must be at least 8 characters";
  if (new TextEncoder().encode(password).length > 256) return "password must be at most 256 bytes";
  if (password.toLowerCase() === username.toLowerCase()) return "password must not be the username";
  if (chars.every((c) => c === chars[0])) return "password must not be one repeated character";
  return null;
}

/** The form's mistakes by field (empty when it may be sent). */
export function validateUserForm(values: UserFormValues, mode: "create" | "edit"): UserFormErrors {
  const errors: UserFormErrors = {};
  const username = values.username.trim();
  if (mode === "create") {
    if ([...username].length < 3 || [...username].length > 64) errors.username = "username must be 3 to 64 characters";
    else if (!USERNAME.test(username))
      errors.username = "username may contain letters, digits, '_', '.' and '-', and must start with a letter or digit";
  }
  const email = emailError(values.email.trim());
  if (email) errors.email = email;
  const fullName = values.full_name.trim();
  if (!fullName || [...fullName].length > 200) errors.full_name = "full name must be 1 to 200 characters";
  else if (/\p{Cc}/u.test(fullName)) errors.full_name = "full name must not contain control characters";
  if (!(ROLES as string[]).includes(values.role)) errors.role = "role is admin, operator or viewer";
  if (mode === "create" || values.password !== "") {
    const password = passwordError(values.password, username);
    if (password) errors.password = password;
  }
  return errors;
}

export function buildCreateBody(values: UserFormValues): CreateUserBody {
  return {
    username: values.username.trim(),
    email: values.email.trim(),
    full_name: values.full_name.trim(),
    role: values.role,
    password: values.password,
    must_change_password: values.must_change_password,
  };
}

/** Only what changed (an empty object: nothing to send). */
export function buildUpdateBody(original: UserView, values: UserFormValues): UpdateUserBody {
  const body: UpdateUserBody = {};
  const email = values.email.trim();
  if (email.toLowerCase() !== original.email.toLowerCase()) body.email = email;
  const fullName = values.full_name.trim();
  if (fullName !== original.full_name) body.full_name = fullName;
  if (values.role !== original.role) body.role = values.role;
  if (values.is_active !== original.is_active) body.is_active = values.is_active;
  if (values.password !== "") body.password = values.password;
  return body;
}
