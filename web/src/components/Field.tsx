// A labelled form field, the API's message for it when the last error named it, and the
// error left for the banner when no shown field names it.
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

/** `error` unless one of the fields shown (`shownFields`) names it, for the form's
 * `ErrorBanner`: an error about a field the form does not show goes to the banner, so it
 * is never hidden. */
export function generalError(error: unknown, shownFields: readonly string[]): unknown {
  return error && !shownFields.some((field) => fieldError(error, field)) ? error : null;
}
