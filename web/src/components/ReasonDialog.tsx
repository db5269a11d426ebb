// Asks an admin why before an action on something the platform protects (its own
// database, its data volume, whatever is labelled dcp.protected=true): the server refuses
// the action without a reason, and keeps the reason in the audit log.
import { useEffect, useRef, useState } from "react";
import { Field } from "./Field";
import { FormDialog } from "./FormDialog";

export function ReasonDialog({
  title,
  protection,
  submitLabel,
  danger = false,
  onClose,
  onReason,
}: {
  title: string;
  /** Why the platform protects it, as the API says. */
  protection: string;
  submitLabel: string;
  danger?: boolean;
  onClose: () => void;
  onReason: (reason: string) => void;
}) {
  const [reason, setReason] = useState("");
  const inputRef = useRef<HTMLTextAreaElement>(null);
  useEffect(() => inputRef.current?.focus(), []);
  const trimmed = reason.trim();
  return (
    <FormDialog
      title={title}
      onClose={onClose}
      onSubmit={() => trimmed && onReason(trimmed)}
      formId="reason-form"
      submitLabel={submitLabel}
      busy={false}
      disabled={!trimmed}
      danger={danger}
    >
      <p className="warning">Protected: {protection}.</p>
      <ReasonField value={reason} onChange={setReason} inputRef={inputRef} />
    </FormDialog>
  );
}

/** The reason field itself, for dialogs that ask for more than a reason. */
export function ReasonField({
  value,
  onChange,
  inputRef,
}: {
  value: string;
  onChange: (value: string) => void;
  inputRef?: React.Ref<HTMLTextAreaElement>;
}) {
  return (
    <Field label="Reason" hint="Required for what the platform protects; kept in the audit log.">
      <textarea ref={inputRef} name="reason" rows={2} value={value} onChange={(event) => onChange(event.target.value)} required />
    </Field>
  );
}

/** An admin's reason where the page cannot tell whether the platform protects the thing:
 * left empty, the server says so when it does. */
export function OptionalReason({ value, onChange }: { value: string; onChange: (value: string) => void }) {
  return (
    <Field label="Reason (if the platform protects it)" hint="The server refuses what it protects without one; kept in the audit log.">
      <input name="reason" value={value} onChange={(event) => onChange(event.target.value)} autoComplete="off" />
    </Field>
  );
}
