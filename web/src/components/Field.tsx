// A labelled form field, and the API's message for it when the last error named it.
import type { ReactNode } from "react";
import { ApiError } from "../api/client";

/** A labelled form field with the API's message for it, when the last error named it. */
export function Field({
  label,
  error,
  hint,
  children,
}: {
  label: string;
  error?: string | null;
  hint?: ReactNode;
  children: ReactNode;
}) {
  // The hint and message stay outside the <label>, so the control's name is the label alone.
  return (
    <div className={`field${error ? " field-error" : ""}`}>
      <label className="field">
        <span className="field-label">{label}</span>
        {children}
      </label>
      {hint && <span className="field-hint">{hint}</span>}
      {error && <span className="field-message">{error}</span>}
    </div>
  );
}

/** The message for `field` when `error` is an API error about it. */
export function fieldError(error: unknown, field: string): string | null {
  return error instanceof ApiError && error.field !== null && (error.field === field || error.field.startsWith(`${field}.`) || error.field.startsWith(`${field}[`))
    ? error.message
    : null;
}
