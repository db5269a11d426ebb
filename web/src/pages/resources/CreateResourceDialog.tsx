// What the dialogs creating a volume or a network share: the name, labels, host and
// privileged option (with its reason), their checks, the submit (toast, reload, close), and
// the dialog around the fields each resource adds.
import { type ReactNode, useCallback, useState } from "react";
import { api } from "../../api/client";
import { ErrorBanner } from "../../components/ErrorBanner";
import { Field, fieldError, generalError } from "../../components/Field";
import { FormDialog } from "../../components/FormDialog";
import { HostSelect } from "../../components/HostSelect";
import { PrivilegedFields } from "../../components/PrivilegedFields";
import { useSubmit } from "../../hooks/useSubmit";
import { toastSuccess } from "../../stores/toasts";
import { type CreateDialogProps, nameError, parsePairs } from "./forms";

/** The body fields every create request has. */
interface CommonBody {
  name: string;
  labels?: Record<string, string> | null;
  allow_privileged?: boolean | null;
  reason?: string | null;
}

/** The shared fields' state, and each field's message (the local check's, else the API's). */
export interface CreateResourceForm {
  name: string;
  setName: (name: string) => void;
  labels: string;
  setLabels: (labels: string) => void;
  host: string;
  setHost: (host: string) => void;
  privileged: boolean;
  setPrivileged: (privileged: boolean) => void;
  reason: string;
  setReason: (reason: string) => void;
  busy: boolean;
  error: unknown;
  message: (field: string) => string | null;
}

/** The shared fields of a dialog creating a `what` (e.g. "network") with a POST to `path`,
 * and its submit: `checks` are the dialog's own (field → message, or nothing when fine),
 * `rest` the body fields it adds. */
export function useCreateResourceForm<Body extends CommonBody>({
  what,
  path,
  defaultHost,
  onCreated,
  onClose,
}: {
  what: string;
  path: string;
  defaultHost: string;
  onCreated: () => void;
  onClose: () => void;
}) {
  const [name, setName] = useState("");
  const [labels, setLabels] = useState("");
  const [host, setHost] = useState(defaultHost);
  const [privileged, setPrivileged] = useState(false);
  const [reason, setReason] = useState("");
  const [local, setLocal] = useState<Record<string, string>>({});
  const create = useCallback((body: Body, onHost: string) => api.post(path, body, { host: onHost }), [path]);
  const { run, busy, error } = useSubmit(create);

  const submit = async (checks: Record<string, string | null | undefined>, rest: Omit<Body, keyof CommonBody>) => {
    const errors: Record<string, string> = {};
    const badName = nameError(name);
    if (badName) errors.name = badName;
    const parsed = parsePairs(labels, "label");
    if (parsed.error) errors.labels = parsed.error;
    for (const [field, message] of Object.entries(checks)) if (message) errors[field] = message;
    if (privileged && !reason.trim()) errors.reason = "say why (recorded with the request)";
    setLocal(errors);
    if (Object.keys(errors).length > 0) return;
    const body = { name: name.trim(), ...rest } as Body;
    if (Object.keys(parsed.value).length > 0) body.labels = parsed.value;
    if (privileged) {
      body.allow_privileged = true;
      body.reason = reason.trim();
    }
    const result = await run(body, host);
    if (result.ok) {
      toastSuccess(`Created ${what} ${body.name}`);
      onCreated();
      onClose();
    }
  };
  const form: CreateResourceForm = {
    name,
    setName,
    labels,
    setLabels,
    host,
    setHost,
    privileged,
    setPrivileged,
    reason,
    setReason,
    busy,
    error,
    message: (field) => local[field] ?? fieldError(error, field),
  };
  return { form, submit };
}

/** A dialog creating a resource: Name, the resource's own `fields` (`children`, then
 * `afterLabels`), Labels, Host and, for admins, the privileged option. An API error about
 * a field not shown here goes to the banner. */
export function CreateResourceDialog({
  form,
  title,
  formId,
  admin,
  hostOptions,
  onClose,
  onSubmit,
  privilegedWhat,
  fields,
  children,
  afterLabels,
}: Pick<CreateDialogProps, "admin" | "hostOptions" | "onClose"> & {
  form: CreateResourceForm;
  title: string;
  formId: string;
  onSubmit: () => unknown;
  /** What the privileged option allows, e.g. "host paths, devices, plugins". */
  privilegedWhat: string;
  /** The names (as the API's errors give them) of the fields in `children` and `afterLabels`. */
  fields: readonly string[];
  /** The resource's fields between Name and Labels. */
  children: ReactNode;
  /** The resource's fields between Labels and Host. */
  afterLabels?: ReactNode;
}) {
  const shown = ["name", ...fields, "labels", "host", ...(admin && form.privileged ? ["reason"] : [])];
  return (
    <FormDialog
      title={title}
      onClose={onClose}
      onSubmit={onSubmit}
      formId={formId}
      submitLabel="Create"
      busyLabel="Creating…"
      busy={form.busy}
    >
      <ErrorBanner error={generalError(form.error, shown)} />
      <Field label="Name" error={form.message("name")}>
        <input value={form.name} onChange={(e) => form.setName(e.target.value)} autoComplete="off" />
      </Field>
      {children}
      <Field label="Labels" error={form.message("labels")} hint="one key=value per line">
        <textarea rows={3} value={form.labels} onChange={(e) => form.setLabels(e.target.value)} />
      </Field>
      {afterLabels}
      <Field label="Host" error={form.message("host")}>
        <HostSelect label="Host" value={form.host} onChange={form.setHost} options={hostOptions} />
      </Field>
      {admin && (
        <PrivilegedFields
          what={privilegedWhat}
          privileged={form.privileged}
          onPrivileged={form.setPrivileged}
          reason={form.reason}
          onReason={form.setReason}
          reasonError={form.message("reason")}
        />
      )}
    </FormDialog>
  );
}
