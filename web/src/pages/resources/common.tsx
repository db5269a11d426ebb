// Pieces the image, volume, network, user and audit pages share: the host list and its
// select, the warning for hosts that did not answer, a confirmation dialog that shows the
// API's error, a submit hook keeping the error for `fieldError`, the privileged-options
// fields of the create dialogs, and downloads.
import { useCallback, useEffect, useState, type ReactNode } from "react";
import type { HostView } from "../../api/types";
import { ErrorBanner, Field } from "../../components/ui";
import { FormDialog } from "./FormDialog";
import "./resources.css";

/** Host ids to offer: the configured hosts, plus any a list answered from. */
export function hostOptions(hosts: HostView[], answered: { host: string }[] = []): { value: string; label: string }[] {
  const seen = new Map<string, string>();
  for (const host of hosts) seen.set(host.id, host.name && host.name !== host.id ? `${host.name} (${host.id})` : host.id);
  for (const answer of answered) if (!seen.has(answer.host)) seen.set(answer.host, answer.host);
  return [...seen].map(([value, label]) => ({ value, label }));
}

export function HostSelect({
  value,
  onChange,
  options,
  allLabel,
  label = "Host",
  id,
}: {
  value: string;
  onChange: (value: string) => void;
  options: { value: string; label: string }[];
  /** When given, an empty choice with this text (e.g. "All hosts"). */
  allLabel?: string;
  label?: string;
  id?: string;
}) {
  const values = options.some((o) => o.value === value) || !value ? options : [...options, { value, label: value }];
  return (
    <select aria-label={label} value={value} onChange={(e) => onChange(e.target.value)} id={id}>
      {allLabel !== undefined && <option value="">{allLabel}</option>}
      {allLabel === undefined && values.length === 0 && <option value="">local</option>}
      {values.map((o) => (
        <option key={o.value} value={o.value}>
          {o.label}
        </option>
      ))}
    </select>
  );
}


/** Runs a submit; keeps its error (for `ErrorBanner` and `fieldError`) until the next run. */
export function useSubmit<A extends unknown[], R>(action: (...args: A) => Promise<R>) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const run = useCallback(
    async (...args: A): Promise<{ ok: true; value: R } | { ok: false }> => {
      setBusy(true);
      setError(null);
      try {
        const value = await action(...args);
        return { ok: true, value };
      } catch (err) {
        setError(err);
        return { ok: false };
      } finally {
        setBusy(false);
      }
    },
    [action],
  );
  const reset = useCallback(() => setError(null), []);
  return { run, busy, error, reset };
}

/** A confirmation dialog: the action runs on confirm and its error stays in the dialog. */
export function ConfirmDialog({
  title,
  children,
  confirmLabel,
  danger = true,
  onConfirm,
  onClose,
}: {
  title: string;
  children: ReactNode;
  confirmLabel: string;
  danger?: boolean;
  onConfirm: () => Promise<unknown>;
  onClose: () => void;
}) {
  const { run, busy, error } = useSubmit(onConfirm);
  return (
    <FormDialog
      title={title}
      onClose={onClose}
      onSubmit={() =>
        run().then((result) => {
          if (result.ok) onClose();
        })
      }
      submitLabel={confirmLabel}
      busyLabel="Working…"
      busy={busy}
      danger={danger}
    >
      <ErrorBanner error={error} />
      {children}
    </FormDialog>
  );
}

/** The props of a dialog creating a resource (volume, network) on a host. */
export interface CreateDialogProps {
  /** Admins may ask for privileged options. */
  admin: boolean;
  hostOptions: { value: string; label: string }[];
  defaultHost: string;
  onClose: () => void;
  onCreated: () => void;
}

/** For admins creating a resource: the box allowing privileged options (`what` says which)
 * and, once it is checked, the reason recorded with the request. */
export function PrivilegedFields({
  what,
  privileged,
  onPrivileged,
  reason,
  onReason,
  reasonError,
}: {
  what: string;
  privileged: boolean;
  onPrivileged: (checked: boolean) => void;
  reason: string;
  onReason: (reason: string) => void;
  reasonError: string | null | undefined;
}) {
  return (
    <>
      <label className="check">
        <input type="checkbox" checked={privileged} onChange={(e) => onPrivileged(e.target.checked)} />
        Allow privileged options ({what})
      </label>
      {privileged && (
        <Field label="Reason" error={reasonError}>
          <input value={reason} onChange={(e) => onReason(e.target.value)} />
        </Field>
      )}
    </>
  );
}

/** `value`, once it has not changed for `ms`. */
export function useDebounced<T>(value: T, ms = 300): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(timer);
  }, [value, ms]);
  return settled;
}

/** Saves a blob as a file the browser downloads. */
export function saveBlob(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const anchor = document.createElement("a");
  anchor.href = url;
  anchor.download = filename;
  anchor.style.display = "none";
  document.body.appendChild(anchor);
  anchor.click();
  anchor.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function Labels({ labels }: { labels: Record<string, string> | null | undefined }) {
  const entries = Object.entries(labels ?? {});
  if (entries.length === 0) return <span className="muted">—</span>;
  return (
    <div className="res-labels">
      {entries.map(([key, value]) => (
        <span key={key} className="res-label" title={`${key}=${value}`}>
          {key}
          {value ? `=${value}` : ""}
        </span>
      ))}
    </div>
  );
}
