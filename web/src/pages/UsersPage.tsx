// Accounts (admins only): search and filter, create, edit (profile, role, activation,
// password reset) and delete. Conflicts (a taken username or email, the last admin, a
// change to oneself) are shown with the API's message.
import { useCallback, useState } from "react";
import { api, ApiError } from "../api/client";
import { paths } from "../api/paths";
import type { Role, UserList, UserView } from "../api/types";
import { ConfirmDialog } from "../components/ConfirmDialog";
import { ErrorBanner } from "../components/ErrorBanner";
import { Field, fieldError, generalError } from "../components/Field";
import { FormDialog } from "../components/FormDialog";
import { ResourceListPage } from "../components/ResourceListPage";
import { StatusBadge } from "../components/StatusBadge";
import { useDebounced } from "../hooks/useDebounced";
import { useSubmit } from "../hooks/useSubmit";
import { formatAgo, formatTime } from "../format";
import { useQuery } from "../hooks/useQuery";
import { useAuth } from "../stores/auth";
import { toastSuccess } from "../stores/toasts";
import {
  buildCreateBody,
  buildUpdateBody,
  emptyUserForm,
  ROLES,
  userFormFrom,
  validateUserForm,
  type UserFormErrors,
  type UserFormValues,
} from "./resources/userForm";
import "./resources/resources.css";

const PAGE = 50;

export function UsersPage() {
  const me = useAuth((s) => s.user);
  const [q, setQ] = useState("");
  const [role, setRole] = useState<"" | Role>("");
  const [active, setActive] = useState<"" | "true" | "false">("");
  const [offset, setOffset] = useState(0);
  const search = useDebounced(q.trim());
  const query = useQuery(
    (signal) =>
      api.get<UserList>(paths.users.list(), { q: search || undefined, role: role || undefined, active: active || undefined, limit: PAGE, offset }, signal),
    [search, role, active, offset],
    { liveTypes: ["user"] },
  );
  const [creating, setCreating] = useState(false);
  const [editing, setEditing] = useState<UserView | null>(null);
  const [deleting, setDeleting] = useState<UserView | null>(null);
  const reload = query.reload;
  const data = query.data;
  const items = data?.items ?? [];

  return (
    <ResourceListPage
      title="Users"
      create={{ label: "Create user", onClick: () => setCreating(true) }}
      query={query}
      search={{
        label: "Search users",
        placeholder: "Search username, email, name…",
        value: q,
        onChange: (value) => {
          setQ(value);
          setOffset(0);
        },
      }}
      filters={
        <>
          <select
            aria-label="Role filter"
            value={role}
            onChange={(e) => {
              setRole(e.target.value as "" | Role);
              setOffset(0);
            }}
          >
            <option value="">All roles</option>
            {ROLES.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
          <select
            aria-label="Active filter"
            value={active}
            onChange={(e) => {
              setActive(e.target.value as "" | "true" | "false");
              setOffset(0);
            }}
          >
            <option value="">Active and deactivated</option>
            <option value="true">Active only</option>
            <option value="false">Deactivated only</option>
          </select>
        </>
      }
      count={items.length}
      empty="No users match."
      after={
        <>
          {data && data.total > PAGE && (
            <div className="res-pager">
              <button type="button" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>
                Previous
              </button>
              <span className="muted">
                {offset + 1}–{Math.min(offset + PAGE, data.total)} of {data.total}
              </span>
              <button type="button" disabled={offset + PAGE >= data.total} onClick={() => setOffset(offset + PAGE)}>
                Next
              </button>
            </div>
          )}
          {creating && <UserDialog onClose={() => setCreating(false)} onSaved={reload} />}
          {editing && <UserDialog user={editing} onClose={() => setEditing(null)} onSaved={reload} />}
          {deleting && (
            <ConfirmDialog
              title={`Delete user ${deleting.username}`}
              confirmLabel="Delete"
              onClose={() => setDeleting(null)}
              onConfirm={async () => {
                await api.delete(paths.users.remove(deleting.id));
                toastSuccess(`Deleted user ${deleting.username}`);
                reload();
              }}
            >
              <p>
                Delete the account <strong>{deleting.username}</strong> ({deleting.email}) for good? Its sessions end. Deactivating keeps the
                account and its history instead.
              </p>
            </ConfirmDialog>
          )}
        </>
      }
    >
      <table className="res-table" aria-label="Users">
        <thead>
          <tr>
            <th>Username</th>
            <th>Email</th>
            <th>Full name</th>
            <th>Role</th>
            <th>Active</th>
            <th>Last login</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {items.map((user) => (
            <tr key={user.id} data-testid="user-row">
              <td>
                <strong>{user.username}</strong>
                {user.id === me?.id && <span className="muted small"> (you)</span>}
                {user.must_change_password && <div className="muted small">must change password</div>}
              </td>
              <td>{user.email}</td>
              <td>{user.full_name}</td>
              <td>
                <span className="badge badge-info">{user.role}</span>
              </td>
              <td>
                <StatusBadge status={user.is_active ? "active" : "disabled"} />
              </td>
              <td className="nowrap" title={formatTime(user.last_login_at)}>
                {user.last_login_at ? formatAgo(user.last_login_at) : "never"}
              </td>
              <td>
                <div className="res-actions">
                  <button type="button" aria-label={`Edit user ${user.username}`} onClick={() => setEditing(user)}>
                    Edit
                  </button>
                  <button type="button" className="danger" aria-label={`Delete user ${user.username}`} onClick={() => setDeleting(user)}>
                    Delete
                  </button>
                </div>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </ResourceListPage>
  );
}

function UserDialog({ user, onClose, onSaved }: { user?: UserView; onClose: () => void; onSaved: () => void }) {
  const mode = user ? "edit" : "create";
  const [values, setValues] = useState<UserFormValues>(() => (user ? userFormFrom(user) : emptyUserForm()));
  const [local, setLocal] = useState<UserFormErrors>({});
  const [notice, setNotice] = useState<string | null>(null);
  const save = useCallback(
    (body: object) => (user ? api.patch<UserView>(paths.users.update(user.id), body) : api.post<UserView>(paths.users.create(), body)),
    [user],
  );
  const { run, busy, error } = useSubmit(save);
  const set = <K extends keyof UserFormValues>(key: K, value: UserFormValues[K]) => setValues((v) => ({ ...v, [key]: value }));

  const submit = async () => {
    const errors = validateUserForm(values, mode);
    setLocal(errors);
    setNotice(null);
    if (Object.keys(errors).length > 0) return;
    const body = user ? buildUpdateBody(user, values) : buildCreateBody(values);
    if (user && Object.keys(body).length === 0) {
      setNotice("Nothing changed.");
      return;
    }
    const result = await run(body);
    if (result.ok) {
      toastSuccess(user ? `Saved user ${user.username}` : `Created user ${values.username.trim()}`);
      onSaved();
      onClose();
    }
  };
  const err = (field: keyof UserFormValues) => local[field] ?? fieldError(error, field);
  // A conflict (taken username or email, last admin, a change to oneself) is always shown
  // in full above the form, and under the field it names. An error about a field without a
  // message here (the checkboxes, the username when editing) goes above the form too.
  const shown: (keyof UserFormValues)[] = [...(user ? [] : (["username"] as const)), "email", "full_name", "role", "password"];
  const bannerError = error instanceof ApiError && error.status === 409 ? error : generalError(error, shown);
  const formId = user ? "edit-user-form" : "create-user-form";
  return (
    <FormDialog
      title={user ? `Edit user ${user.username}` : "Create user"}
      onClose={onClose}
      onSubmit={submit}
      formId={formId}
      noValidate
      submitLabel={user ? "Save" : "Create"}
      busyLabel="Saving…"
      busy={busy}
    >
      <ErrorBanner error={bannerError} />
      {notice && <div className="notice">{notice}</div>}
      {user ? (
        <p className="muted small">
          Username <strong>{user.username}</strong> · created {formatTime(user.created_at)}
        </p>
      ) : (
        <Field label="Username" error={err("username")}>
          <input value={values.username} onChange={(e) => set("username", e.target.value)} autoComplete="off" />
        </Field>
      )}
      <Field label="Email" error={err("email")}>
        <input type="email" value={values.email} onChange={(e) => set("email", e.target.value)} autoComplete="off" />
      </Field>
      <Field label="Full name" error={err("full_name")}>
        <input value={values.full_name} onChange={(e) => set("full_name", e.target.value)} autoComplete="off" />
      </Field>
      <Field label="Role" error={err("role")}>
        <select value={values.role} onChange={(e) => set("role", e.target.value as Role)}>
          {ROLES.map((r) => (
            <option key={r} value={r}>
              {r}
            </option>
          ))}
        </select>
      </Field>
      <Field
        label={user ? "New password" : "Password"}
        error={err("password")}
        hint={user ? "Leave empty to keep it. A reset password must be changed at the next sign-in." : "8 to 256 characters"}
      >
        <input type="password" value={values.password} onChange={(e) => set("password", e.target.value)} autoComplete="new-password" />
      </Field>
      {user ? (
        <label className="check">
          <input type="checkbox" checked={values.is_active} onChange={(e) => set("is_active", e.target.checked)} />
          Active (a deactivated account cannot sign in; its sessions end)
        </label>
      ) : (
        <label className="check">
          <input type="checkbox" checked={values.must_change_password} onChange={(e) => set("must_change_password", e.target.checked)} />
          Must change the password at first sign-in
        </label>
      )}
    </FormDialog>
  );
}
